//! # swivel-provision-sqlite
//!
//! [`SqliteStore`]: the embedded default store of swivel-provision. One SQLite file holds
//! the per-user provisioning records ([`CodeStore`](swivel_provision::CodeStore)), the
//! users and their destinations ([`UserRepository`](swivel_provision::UserRepository),
//! [`UserAdmin`](swivel_provision::UserAdmin)), the sites for server settings discovery
//! ([`SiteDirectory`](swivel_provision::SiteDirectory),
//! [`SiteAdmin`](swivel_provision::SiteAdmin)), host settings
//! ([`SettingsStore`](swivel_provision::SettingsStore)), the shared event log
//! ([`EventStore`](swivel_provision::EventStore)), hit counters for cluster-wide limits
//! ([`CounterStore`](swivel_provision::CounterStore)) and the durable delivery queue
//! ([`JobStore`](swivel_provision::JobStore): each job written in the transaction of the
//! code it carries, sealed).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use swivel_provision::{Provisioner, ServerKey};
//! use swivel_provision_sqlite::SqliteStore;
//!
//! let store = SqliteStore::open("/var/lib/swivel/provision.db").await?;
//! let provisioner = Provisioner::builder()
//!     .store(Arc::new(store.clone()))
//!     .users(Arc::new(store.clone()))
//!     .sites(Arc::new(store))
//!     .server_key(ServerKey::generate())
//!     .build()?;
//! # let _ = provisioner; Ok(()) }
//! ```
//!
//! # Guarantees
//! - Bundled SQLite (no system library), WAL mode, a busy timeout, and
//!   `synchronous=FULL` unless [`Durability::Normal`] is chosen.
//! - Compare-and-swap runs in one `BEGIN IMMEDIATE` transaction: exactly once across every
//!   thread and every process sharing the file. A lock held longer than the busy timeout
//!   gives [`StoreError::Unavailable`](swivel_provision::StoreError::Unavailable).
//! - A crash (even `SIGKILL`) leaves every record before or after its change, never half.
//! - [`CodeStore::update`](swivel_provision::CodeStore::update) runs on the store's writer
//!   thread: concurrent updates share one transaction (a savepoint each) and one commit
//!   (group commit), and each is answered only after that commit returned. Event-log
//!   batches and the delivery queue's writes join the same group commits.
//! - The WAL is checkpointed by a thread of its own, beside the writer (the writer's own
//!   commits checkpoint only past a safety limit of 4,000 WAL pages).
//! - Writes run on that writer thread, reads on a few reader threads (one connection
//!   each); never on async worker threads, nor on tokio's blocking pool (a tokio runtime
//!   is required all the same).
//! - Embedded, versioned migrations; a newer schema, a file that is not a database, a
//!   database of another application and an unwritable path are refused with an error
//!   that names the path ([`SqliteError`]).
//!
//! # What this crate does not do
//! - It does not share state between machines: several processes on one host may share
//!   the file, but not over a network file system. Use the PostgreSQL store for clusters.
//! - It does not encrypt the file. It holds no secret in clear (codes and Ids are keyed
//!   hashes, strings are derived), but usernames and destinations are plain.
//! - It does not back up or vacuum the file.

mod checkpoint;
mod codes;
mod counters;
mod db;
mod error;
mod events;
mod jobs;
mod options;
mod schema;
mod settings;
mod sites;
mod store;
mod users;

pub use error::SqliteError;
pub use options::{Durability, SqliteOptions};
pub use schema::SCHEMA_VERSION;
pub use settings::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
pub use store::SqliteStore;
