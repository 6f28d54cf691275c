//! [`BenchError`]: what can go wrong while preparing or running a benchmark.

/// An error of the bench helpers or the load generator. Never contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The provisioner refused or failed.
    #[error("provisioner: {0}")]
    Provision(#[from] swivel_provision::Error),
    /// A store call failed.
    #[error("store: {0}")]
    Store(#[from] swivel_provision::StoreError),
    /// The SQLite store could not be opened.
    #[error("sqlite store: {0}")]
    Sqlite(#[from] swivel_provision_sqlite::SqliteError),
    /// Direct SQL during bulk preparation failed.
    #[error("bulk preparation: {0}")]
    Prep(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The transport got no code for a user (the policy sends links only?).
    #[error("no code was delivered for user {0}")]
    NoCode(String),
    /// A command-line value or input is not acceptable.
    #[error("{0}")]
    Invalid(String),
}
