//! [`SqliteStore`]: the handle hosts hold, and how it is opened.

use std::path::Path;
use std::sync::Arc;

use crate::db::Db;
use crate::error::SqliteError;
use crate::options::SqliteOptions;

/// Provisioning records, users, sites, settings and the event log in one SQLite file.
///
/// Implements [`CodeStore`](swivel_provision::CodeStore),
/// [`UserRepository`](swivel_provision::UserRepository) +
/// [`UserAdmin`](swivel_provision::UserAdmin),
/// [`SiteDirectory`](swivel_provision::SiteDirectory) +
/// [`SiteAdmin`](swivel_provision::SiteAdmin),
/// [`SettingsStore`](swivel_provision::SettingsStore) and
/// [`EventStore`](swivel_provision::EventStore). Cheap to clone (an `Arc` inside):
/// put clones in as many `Arc<dyn Trait>`s as needed.
///
/// Several processes may open the same file: compare-and-swap runs in an immediate
/// transaction, so a code is redeemed exactly once across all of them.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) db: Arc<Db>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.db.path())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database file, creating it (and its schema) when it does not exist, with
    /// the durable defaults of [`SqliteOptions::default`] (WAL, `synchronous=FULL`, 5 s
    /// busy timeout).
    ///
    /// # Errors
    /// [`SqliteError::NotADatabase`], [`SqliteError::CannotWrite`],
    /// [`SqliteError::NewerSchema`], [`SqliteError::ForeignDatabase`], each naming the path.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, SqliteError> {
        Self::open_with(path, SqliteOptions::default()).await
    }

    /// Opens the database file with the given options (see [`open`](Self::open)).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<SqliteStore, SqliteError> {
        let path = path.as_ref().to_path_buf();
        let shown = path.clone();
        let db = tokio::task::spawn_blocking(move || Db::open_file(path, options))
            .await
            .map_err(|source| SqliteError::Task {
                path: shown,
                source,
            })??;
        Ok(SqliteStore { db: Arc::new(db) })
    }

    /// A new, empty database in memory, private to this store and its clones (for tests).
    pub async fn open_in_memory() -> Result<SqliteStore, SqliteError> {
        let db = tokio::task::spawn_blocking(Db::open_memory)
            .await
            .map_err(|source| SqliteError::Task {
                path: ":memory:".into(),
                source,
            })??;
        Ok(SqliteStore { db: Arc::new(db) })
    }

    /// The database file (`:memory:` for an in-memory database).
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// Whether the database lives in memory.
    pub fn is_in_memory(&self) -> bool {
        self.db.is_memory()
    }
}
