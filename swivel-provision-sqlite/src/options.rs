//! [`SqliteOptions`] and [`Durability`].

use std::time::Duration;

/// When a committed transaction is on disk.
///
/// The database always runs in WAL mode, so neither setting can corrupt it, and a crash of
/// the *process* (even `SIGKILL`) loses nothing with either: a commit that returned is in
/// the operating system's hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `PRAGMA synchronous=FULL`: every commit is flushed to the disk (fsync) before it
    /// returns, so a redeem that answered success survives a power loss. The default.
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL`: faster (the WAL is flushed only at checkpoints), but a
    /// power loss or operating-system crash may lose the last transactions that were
    /// committed. It never corrupts the database: after the loss it holds the state before
    /// those transactions. A lost redeem means the device must provision again.
    Normal,
}

impl Durability {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// How [`SqliteStore`](crate::SqliteStore) opens its database.
///
/// ```
/// use std::time::Duration;
/// use swivel_provision_sqlite::{Durability, SqliteOptions};
///
/// let options = SqliteOptions {
///     durability: Durability::Normal,
///     busy_timeout: Duration::from_secs(2),
///     ..SqliteOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// When a commit is on disk (default [`Durability::Full`]).
    pub durability: Durability,
    /// How long a call waits for another connection or process that holds the write lock
    /// before it fails with a transient error (`StoreError::Unavailable`). Default 5 s.
    pub busy_timeout: Duration,
    /// Reader threads, one connection each, for reads at the same time (at least 1;
    /// default 4). Writes go through the store's one writer thread and connection.
    pub read_connections: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(5),
            read_connections: 4,
        }
    }
}
