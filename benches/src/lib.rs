//! # swivel-provision-benches
//!
//! Criterion benchmarks of every path of swivel-provision (`benches/`) and `loadgen`, a
//! load generator for a running `provision-server` (`src/bin/loadgen.rs`). This library
//! holds what both share: a transport that keeps only the last code per user
//! ([`LastCodeTransport`]), ready-made provisioners over the memory and SQLite stores
//! ([`Fixture`]), the full provisioning cycle ([`full_cycle`]), bulk preparation of big
//! SQLite databases ([`prepare_users_db`]), and the load generator's helpers (loopback
//! check, duration parsing, server key file, latency summary, the server's JSON API
//! ([`ApiClient`]) and outbox ([`OutboxReader`])).
//!
//! The measured figures and how to reproduce them are in `BENCHMARKS.md` at the root of
//! the workspace.

mod api;
mod cycle;
mod error;
mod fixture;
mod keyfile;
mod latency;
mod loopback;
mod outbox;
mod prep;
mod transport;

pub use api::ApiClient;
pub use cycle::{full_cycle, full_cycle_id};
pub use error::BenchError;
pub use fixture::{Fixture, bench_key, email_user, username};
pub use keyfile::read_server_key;
pub use latency::{LatencySummary, parse_duration};
pub use loopback::ensure_loopback;
pub use outbox::{OutboxReader, parse_message};
pub use prep::{PREPARED_KEY, bench_data_dir, prepare_users_db, prepared_username};
pub use transport::LastCodeTransport;
