//! [`PostgresError`]: what can go wrong talking to PostgreSQL, and whether a retry can help.
//!
//! No error carries the connection URL (it may hold a password) or the contents of a row:
//! server errors keep only their SQLSTATE and primary message, never the `DETAIL` line
//! (which can quote a whole row).

use std::error::Error as StdError;
use std::fmt;

use swivel_provision::{BoxError, StoreError};

/// Everything that can go wrong in [`PostgresStore`](crate::PostgresStore).
///
/// [`PostgresError::is_transient`] tells whether the same call may succeed later; the
/// conversion into [`StoreError`] maps transient errors to [`StoreError::Unavailable`] and
/// the rest to [`StoreError::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The connection URL could not be parsed. (The URL itself is never shown.)
    #[error("invalid PostgreSQL connection URL")]
    InvalidUrl(#[source] BoxError),
    /// The schema name in [`PostgresOptions`](crate::PostgresOptions) is not a plain
    /// lower-case identifier.
    #[error("invalid PostgreSQL schema name: {0}")]
    InvalidSchemaName(&'static str),
    /// The pool could not be set up (bad pool settings).
    #[error("could not set up the PostgreSQL connection pool")]
    PoolSetup(#[source] BoxError),
    /// No connection could be opened (server down, refused, timed out, authentication
    /// failed, unknown database).
    #[error("could not connect to PostgreSQL")]
    Connect {
        /// Whether a retry may help (a refused or timed-out connection) or not (rejected
        /// credentials, unknown database).
        transient: bool,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// Every pooled connection stayed busy for the whole connect timeout.
    #[error("timed out waiting for a PostgreSQL connection from the pool")]
    PoolTimeout,
    /// The pool was closed.
    #[error("the PostgreSQL connection pool is closed")]
    PoolClosed,
    /// A statement failed.
    #[error("PostgreSQL statement failed")]
    Query {
        /// Whether a retry may help (connection lost, server shutting down, serialization
        /// failure) or not (constraint, type or syntax error).
        transient: bool,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The database was migrated by a newer build of this crate: this build refuses to use it.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         upgrade swivel-provision-postgres before using this database"
    )]
    SchemaTooNew {
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A stored row could not be decoded (the row's contents are not shown).
    #[error("stored {what} is corrupt (JSON error at line {line}, column {column})")]
    Corrupt {
        /// Which kind of row.
        what: &'static str,
        /// Line of the JSON error.
        line: usize,
        /// Column of the JSON error.
        column: usize,
    },
    /// A value does not fit what the store keeps (version above `i64::MAX`, setting key
    /// over 256 bytes or value over 1 MiB).
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
}

impl PostgresError {
    /// Whether the same call may succeed if retried later.
    pub fn is_transient(&self) -> bool {
        match self {
            PostgresError::Connect { transient, .. } | PostgresError::Query { transient, .. } => {
                *transient
            }
            PostgresError::PoolTimeout => true,
            _ => false,
        }
    }

    /// A failed statement.
    pub(crate) fn query(e: tokio_postgres::Error) -> Self {
        let (transient, source) = classify(e);
        PostgresError::Query { transient, source }
    }

    /// A failed connection attempt.
    pub(crate) fn connect(e: tokio_postgres::Error) -> Self {
        let (transient, source) = classify(e);
        PostgresError::Connect { transient, source }
    }

    /// A pool checkout that failed.
    pub(crate) fn pool(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Timeout(_) => PostgresError::PoolTimeout,
            PoolError::Backend(e) => PostgresError::connect(e),
            PoolError::Closed => PostgresError::PoolClosed,
            other => PostgresError::PoolSetup(other.to_string().into()),
        }
    }

    /// A stored JSON document that does not decode.
    pub(crate) fn corrupt(what: &'static str, e: &serde_json::Error) -> Self {
        PostgresError::Corrupt {
            what,
            line: e.line(),
            column: e.column(),
        }
    }
}

impl From<PostgresError> for StoreError {
    fn from(e: PostgresError) -> Self {
        if e.is_transient() {
            StoreError::unavailable(e)
        } else {
            StoreError::backend(e)
        }
    }
}

/// An error the server answered with, reduced to what is safe to show: severity, SQLSTATE
/// and primary message (no `DETAIL`, `HINT` or `WHERE`, which may quote row contents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    severity: String,
    code: String,
    message: String,
}

impl ServerError {
    /// The SQLSTATE code, e.g. `23505`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The primary message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)
    }
}

impl StdError for ServerError {}

/// SQLSTATEs worth retrying: connection exceptions (08), insufficient resources (53),
/// server shutting down or starting (57P01-57P03), serialization failure and deadlock,
/// lock not available, query cancelled (statement timeout).
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03" | "57014"
        )
}

/// Whether the error is worth retrying, and a source safe to keep.
fn classify(e: tokio_postgres::Error) -> (bool, BoxError) {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code().to_owned();
        let transient = transient_sqlstate(&code);
        let safe = ServerError {
            severity: db.severity().to_owned(),
            code,
            message: db.message().to_owned(),
        };
        return (transient, Box::new(safe));
    }
    let transient = e.is_closed() || has_io_source(&e);
    (transient, Box::new(e))
}

fn has_io_source(e: &(dyn StdError + 'static)) -> bool {
    let mut cur = e.source();
    while let Some(s) = cur {
        if s.is::<std::io::Error>() {
            return true;
        }
        cur = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        for c in [
            "08006", "08001", "53300", "57P01", "57P03", "40001", "40P01",
        ] {
            assert!(transient_sqlstate(c), "{c}");
        }
        for c in ["23505", "28P01", "3D000", "42P01", "22P02", "23514"] {
            assert!(!transient_sqlstate(c), "{c}");
        }
    }

    #[test]
    fn store_error_mapping() {
        let e: StoreError = PostgresError::PoolTimeout.into();
        assert!(e.is_transient());
        let e: StoreError = PostgresError::SchemaTooNew {
            found: 9,
            supported: 1,
        }
        .into();
        assert!(!e.is_transient());
        let e: StoreError = PostgresError::OutOfRange("version").into();
        assert!(matches!(e, StoreError::Backend(_)));
    }

    #[test]
    fn schema_too_new_says_what_to_do() {
        let msg = PostgresError::SchemaTooNew {
            found: 7,
            supported: 1,
        }
        .to_string();
        assert!(msg.contains("version 7"), "{msg}");
        assert!(msg.contains("(1)"), "{msg}");
        assert!(msg.contains("upgrade"), "{msg}");
    }
}
