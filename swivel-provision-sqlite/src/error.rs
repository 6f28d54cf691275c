//! [`SqliteError`]: what can go wrong when opening or using the database. Every error names
//! the database's path.

use std::path::PathBuf;

use rusqlite::ErrorCode;
use swivel_provision::StoreError;

/// An error of the SQLite store. Its message names the database file; it never holds
/// record contents (codes and Ids are stored only as keyed hashes anyway).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// The file exists but is not an SQLite database (or is encrypted or damaged).
    #[error("{path}: not an SQLite database (or encrypted or damaged)")]
    NotADatabase {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file cannot be created, opened or written (missing directory, a file where a
    /// directory is expected, read-only file system, permissions).
    #[error(
        "{path}: cannot create, open or write the database file (does its directory exist and may this process write there?)"
    )]
    CannotWrite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer version of this crate.
    #[error(
        "{path}: database schema version {found} is newer than this build supports (up to {supported}); \
         upgrade swivel-provision-sqlite or use another file"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// The file is an SQLite database of another application.
    #[error("{path}: an SQLite database of another application ({why}); refusing to change it")]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// How it was recognised.
        why: String,
    },
    /// Another connection held the database lock for longer than the busy timeout.
    #[error(
        "{path}: database is busy (locked by another connection for longer than the busy timeout)"
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The disk is full or failed; a retry may help once the cause is fixed.
    #[error("{path}: disk full or input/output error")]
    Io {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row cannot be read back (the file was changed by something else).
    #[error("{path}: a row of table {table} cannot be read (at line {line}, column {column})")]
    InvalidRow {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// Where the stored JSON is malformed (the error itself is not kept: it could
        /// quote the row).
        line: usize,
        /// Where the stored JSON is malformed.
        column: usize,
    },
    /// A value does not fit the store's limits.
    #[error("{path}: {what} is too large (at most {limit} bytes)")]
    TooLarge {
        /// The database file.
        path: PathBuf,
        /// What is too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Any other SQLite error.
    #[error("{path}: SQLite error")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The in-memory database lost its only connection (a panic during a call).
    #[error("{path}: the in-memory database was lost")]
    MemoryLost {
        /// `:memory:`.
        path: PathBuf,
    },
    /// The store's writer thread has stopped (it panicked), so no write can be made.
    #[error("{path}: the database writer thread has stopped")]
    WriterGone {
        /// The database file.
        path: PathBuf,
    },
    /// An update's step panicked; nothing of that update was written.
    #[error("{path}: an update step panicked; nothing was written")]
    StepPanicked {
        /// The database file.
        path: PathBuf,
    },
    /// The blocking task that ran the database call panicked or was cancelled.
    #[error("{path}: the database task failed")]
    Task {
        /// The database file.
        path: PathBuf,
        /// Why the task failed.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl SqliteError {
    /// Classifies an SQLite error met while using the database at `path`.
    pub(crate) fn from_sqlite(path: &std::path::Path, source: rusqlite::Error) -> Self {
        let path = path.to_path_buf();
        match source.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => Self::NotADatabase { path, source },
            Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
                Self::CannotWrite { path, source }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Self::Busy { path, source }
            }
            Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure) => Self::Io { path, source },
            _ => Self::Sqlite { path, source },
        }
    }

    /// A stored JSON column that does not parse.
    pub(crate) fn invalid_row(
        path: &std::path::Path,
        table: &'static str,
        e: &serde_json::Error,
    ) -> Self {
        Self::InvalidRow {
            path: path.to_path_buf(),
            table,
            line: e.line(),
            column: e.column(),
        }
    }

    /// The same error for another caller (a group commit that failed fails every update in
    /// it; SQLite's errors cannot be cloned, their code and message can).
    pub(crate) fn for_another(&self) -> Self {
        let again = |source: &rusqlite::Error| match source {
            rusqlite::Error::SqliteFailure(code, message) => {
                rusqlite::Error::SqliteFailure(*code, message.clone())
            }
            other => rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(other.to_string()),
            ),
        };
        match self {
            Self::NotADatabase { path, source }
            | Self::CannotWrite { path, source }
            | Self::Busy { path, source }
            | Self::Io { path, source }
            | Self::Sqlite { path, source } => Self::from_sqlite(path, again(source)),
            Self::NewerSchema {
                path,
                found,
                supported,
            } => Self::NewerSchema {
                path: path.clone(),
                found: *found,
                supported: *supported,
            },
            Self::ForeignDatabase { path, why } => Self::ForeignDatabase {
                path: path.clone(),
                why: why.clone(),
            },
            Self::InvalidRow {
                path,
                table,
                line,
                column,
            } => Self::InvalidRow {
                path: path.clone(),
                table,
                line: *line,
                column: *column,
            },
            Self::TooLarge { path, what, limit } => Self::TooLarge {
                path: path.clone(),
                what,
                limit: *limit,
            },
            Self::MemoryLost { path } => Self::MemoryLost { path: path.clone() },
            Self::StepPanicked { path } => Self::StepPanicked { path: path.clone() },
            Self::WriterGone { path } | Self::Task { path, .. } => {
                Self::WriterGone { path: path.clone() }
            }
        }
    }

    /// Whether the same call may succeed later (busy, disk full, I/O error).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Busy { .. } | Self::Io { .. })
    }
}

impl From<SqliteError> for StoreError {
    /// Busy and I/O errors become [`StoreError::Unavailable`] (a retry may help); all
    /// others [`StoreError::Backend`].
    fn from(e: SqliteError) -> Self {
        if e.is_transient() {
            StoreError::unavailable(e)
        } else {
            StoreError::backend(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_io_are_transient_the_rest_permanent() {
        let path = Path::new("/data/p.db");
        for (code, transient) in [
            (rusqlite::ffi::SQLITE_BUSY, true),
            (rusqlite::ffi::SQLITE_LOCKED, true),
            (rusqlite::ffi::SQLITE_FULL, true),
            (rusqlite::ffi::SQLITE_IOERR, true),
            (rusqlite::ffi::SQLITE_NOTADB, false),
            (rusqlite::ffi::SQLITE_CANTOPEN, false),
            (rusqlite::ffi::SQLITE_CORRUPT, false),
            (rusqlite::ffi::SQLITE_CONSTRAINT, false),
        ] {
            let e = SqliteError::from_sqlite(path, sqlite(code));
            assert!(e.to_string().starts_with("/data/p.db: "), "{e}");
            let store = StoreError::from(e);
            assert_eq!(store.is_transient(), transient, "code {code}");
        }
    }

    #[test]
    fn an_unreadable_row_keeps_no_contents() {
        let bad = serde_json::from_str::<serde_json::Value>("{\"secret\": nope}").unwrap_err();
        let e = SqliteError::invalid_row(Path::new("p.db"), "records", &bad);
        let text = format!("{e} {e:?}");
        assert!(!text.contains("secret") && !text.contains("nope"), "{text}");
        assert!(text.contains("records"));
    }
}
