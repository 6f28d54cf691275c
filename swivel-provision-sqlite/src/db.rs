//! Connections and where they run: every call runs on tokio's blocking pool, never on an
//! async worker thread.
//!
//! Writes go through one connection per store, one at a time (an async semaphore queues
//! them without blocking a thread); reads use a few connections of their own, which WAL
//! lets run beside the writer. Between processes, SQLite's file locks and the busy timeout
//! order the writers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::SqliteError;
use crate::options::SqliteOptions;
use crate::schema;

/// Connections of one kind and how many may be in use at once.
struct Slot {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Connection>>,
}

impl Slot {
    fn new(size: usize, first: Option<Connection>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(size)),
            idle: Mutex::new(first.into_iter().collect()),
        }
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn give_back(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }
}

/// The database: where it is, how to open it, and its connections.
pub(crate) struct Db {
    /// The file, or `:memory:`.
    path: PathBuf,
    memory: bool,
    options: SqliteOptions,
    writer: Slot,
    /// `None` for an in-memory database: it has one connection, the writer.
    readers: Option<Slot>,
}

fn flags() -> OpenFlags {
    // No URI interpretation: a path is a path.
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Opens one connection to the file and sets it up (busy timeout, WAL, durability).
fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection, SqliteError> {
    let sql = |e| SqliteError::from_sqlite(path, e);
    let conn = Connection::open_with_flags(path, flags()).map_err(sql)?;
    configure(&conn, path, options)?;
    Ok(conn)
}

fn configure(conn: &Connection, path: &Path, options: &SqliteOptions) -> Result<(), SqliteError> {
    let sql = |e| SqliteError::from_sqlite(path, e);
    conn.busy_timeout(options.busy_timeout).map_err(sql)?;
    // Reading the header here is what finds a file that is not a database.
    let _mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sql)?;
    conn.pragma_update(None, "synchronous", options.durability.pragma())
        .map_err(sql)?;
    Ok(())
}

impl Db {
    /// Opens (creating if needed) and migrates the database file.
    pub(crate) fn open_file(path: PathBuf, options: SqliteOptions) -> Result<Self, SqliteError> {
        let mut conn = connect(&path, &options)?;
        schema::migrate(&mut conn, &path)?;
        let readers = options.read_connections.max(1);
        Ok(Self {
            writer: Slot::new(1, Some(conn)),
            readers: Some(Slot::new(readers, None)),
            path,
            memory: false,
            options,
        })
    }

    /// A new, private in-memory database.
    pub(crate) fn open_memory() -> Result<Self, SqliteError> {
        let path = PathBuf::from(":memory:");
        let options = SqliteOptions::default();
        let mut conn = Connection::open_in_memory_with_flags(flags())
            .map_err(|e| SqliteError::from_sqlite(&path, e))?;
        configure(&conn, &path, &options)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Self {
            writer: Slot::new(1, Some(conn)),
            readers: None,
            path,
            memory: true,
            options,
        })
    }

    /// The file, or `:memory:`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the database lives in memory.
    pub(crate) fn is_memory(&self) -> bool {
        self.memory
    }

    fn slot(&self, write: bool) -> &Slot {
        match (&self.readers, write) {
            (Some(readers), false) => readers,
            _ => &self.writer,
        }
    }

    /// Runs `f` with a connection on the blocking pool. `write` picks the single writer
    /// connection (queued behind other writes of this store).
    pub(crate) async fn run<T, F>(self: &Arc<Self>, write: bool, f: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> Result<T, SqliteError> + Send + 'static,
    {
        let permit = self
            .slot(write)
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the store never closes its semaphores");
        let db = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let slot = db.slot(write);
            let mut conn = match slot.take() {
                Some(conn) => conn,
                None if db.memory => {
                    return Err(SqliteError::MemoryLost {
                        path: db.path.clone(),
                    });
                }
                None => connect(&db.path, &db.options)?,
            };
            // A panic in `f` drops the connection (rolling back any open transaction).
            let out = f(&mut conn, &db.path);
            slot.give_back(conn);
            out
        });
        task.await.map_err(|source| SqliteError::Task {
            path: self.path.clone(),
            source,
        })?
    }
}
