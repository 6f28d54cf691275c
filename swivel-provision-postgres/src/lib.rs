//! # swivel-provision-postgres
//!
//! A [`PostgresStore`] for [`swivel_provision`]: provisioning records, users, sites,
//! settings, the shared event log and hit counters (for limits that hold cluster-wide,
//! [`CounterStore`](swivel_provision::CounterStore)) in one PostgreSQL database, so that **every server instance behind a load
//! balancer sees the same codes, devices and used indices**, with exactly-once redeem across
//! them.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use swivel_provision::{Provisioner, ServerKey};
//! use swivel_provision_postgres::PostgresStore;
//!
//! let store = PostgresStore::connect("postgres://swivel@127.0.0.1:5432/swivel").await?;
//! let provisioner = Provisioner::builder()
//!     .store(Arc::new(store.clone()))
//!     .users(Arc::new(store.clone()))
//!     .sites(Arc::new(store))
//!     // Every instance of the cluster uses the same key (never stored in the database).
//!     .server_key(ServerKey::generate())
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! # How it stays consistent
//! - Compare-and-swap is one statement (`INSERT … ON CONFLICT DO NOTHING`, or
//!   `UPDATE … WHERE username = $1 AND version = $2`); PostgreSQL's row locks make it
//!   atomic across connections and instances.
//! - [`CodeStore::update`](swivel_provision::CodeStore::update) is one transaction in two
//!   pipelined round trips (`BEGIN` + `SELECT … FOR UPDATE`, then `UPDATE` + `COMMIT`):
//!   the row stays locked while the core's step decides, so no update is lost.
//! - [`JobStore`](swivel_provision::JobStore) (the durable delivery queue) keeps each
//!   queued message in `delivery_jobs`, sealed by the core: a record and its job are
//!   written by one statement of the update's transaction, and claims pick due rows with
//!   `FOR UPDATE SKIP LOCKED` and lease them in the same statement, so instances claiming
//!   at once neither wait for each other nor get the same job while its lease holds.
//! - A device Id hash is `UNIQUE`: a swap that would give two users the same device
//!   returns `false`.
//! - The schema is created and upgraded by embedded, versioned migrations at connect
//!   ([`SCHEMA_VERSION`]); a database migrated by a newer build is refused
//!   ([`PostgresError::SchemaTooNew`]).
//! - When the connection is lost, calls fail with a transient error
//!   ([`StoreError::Unavailable`](swivel_provision::StoreError::Unavailable)); the pool
//!   checks each connection before handing it out and opens new ones once the server is back.
//!
//! # Security
//! - The connection URL (and its password) never reaches an error or a `Debug` output.
//!   Server errors keep only their SQLSTATE and primary message, not the `DETAIL` line.
//! - The store keeps no secret in clear: codes and provision Ids are keyed hashes, security
//!   strings are derived from the server key, which stays out of the database.
//! - Connections are not encrypted (`NoTls`): run PostgreSQL on loopback, a Unix socket, or
//!   a private network.
//!
//! # What this crate does not do
//! - No TLS to the database, no connection failover between PostgreSQL servers.
//! - No retries: a transient error goes back to the caller (the core retries only
//!   compare-and-swap conflicts).
//! - It does not create the database or the role, only the tables in an existing database.

mod codes;
mod counters;
mod directory;
mod error;
mod events;
mod jobs;
mod migrations;
mod options;
mod settings;
mod store;

pub use error::{PostgresError, ServerError};
pub use migrations::SCHEMA_VERSION;
pub use options::PostgresOptions;
pub use settings::{MAX_SETTING_KEY_BYTES, MAX_SETTING_VALUE_BYTES};
pub use store::PostgresStore;
