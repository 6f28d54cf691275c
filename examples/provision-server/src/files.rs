//! The data directory's files: the directory private (0700), the SQLite database and its
//! `-wal`/`-shm` files and the outbox private (0600), tightened with a warning when they
//! already exist with wider modes; and the instance lock that keeps a second server off
//! the same SQLite database.
//!
//! # The instance lock
//! One server per SQLite file, whatever path names it: a symbolic link, a hard link, `..`
//! or another data directory reach the same file and are refused. So the lock belongs to
//! the file, not to a name:
//!
//! - On Linux (and Android), the server takes an `flock` on the database file itself. An
//!   `flock` belongs to the open file, so every path to the same inode meets it. SQLite
//!   locks the same file with POSIX (`fcntl`) record locks; on Linux the two kinds are
//!   independent (on local file systems; SQLite is not for network file systems anyway),
//!   so the `flock` neither blocks SQLite nor is blocked by it. One care remains: a process
//!   that closes *any* descriptor of a file loses every POSIX lock it holds on it, SQLite's
//!   included. So the descriptor that holds the `flock` is never closed: it is kept for the
//!   life of the process (and the operating system releases the lock when the process ends,
//!   even on a crash), outliving every SQLite connection.
//! - Elsewhere (the BSDs and macOS, where `flock` and POSIX locks may be one lock list and
//!   would refuse SQLite its own locks), the lock is the file `<canonical path>.lock`, named
//!   after the database's canonical path (symbolic links and `..` resolved): every path but
//!   a hard link in another directory is refused there.
//!
//! The lock is taken before the server key is read or made: a refused second server
//! leaves nothing behind. Commands (`users add`, `reprovision`, ...) do not take it: they
//! may run while a server runs, as SQLite serialises their writes. PostgreSQL instances
//! take no lock; they are meant to share one database.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::AppError;

/// The mode of the data directory.
pub const DIR_MODE: u32 = 0o700;
/// The mode of the database, its WAL and SHM files and outbox files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) with mode 0700, or tightens an existing `dir` that group
/// or others may use, with a warning.
pub fn private_dir(dir: &Path) -> Result<(), AppError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR_MODE);
    b.create(dir)
        .map_err(|e| AppError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    tighten(dir, DIR_MODE)
}

/// Creates `path` empty with mode 0600 when it is missing, else tightens it.
pub fn private_file(path: &Path) -> Result<(), AppError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
        .open(path)
        .map_err(|e| AppError::Setup(format!("cannot create {}: {e}", path.display())))?;
    tighten(path, FILE_MODE)
}

/// Tightens `path` to `mode` when it exists and group or others have any access.
pub fn tighten(path: &Path, mode: u32) -> Result<(), AppError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(());
        };
        let current = meta.permissions().mode() & 0o777;
        if current & 0o077 != 0 {
            tracing::warn!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "tightening the mode of a data file");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
                AppError::Setup(format!("cannot chmod {:o} {}: {e}", mode, path.display()))
            })?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The first line of a secret file (an API token), trimmed; warns when group or others
/// may read the file (it is the operator's file: its mode is left as it is). The error
/// names the file, never its content.
pub fn read_secret_line(path: &Path) -> Result<secrecy::SecretString, AppError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::Setup(format!("cannot read {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "a secret file that group or others may read");
            }
        }
    }
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        return Err(AppError::Setup(format!(
            "{} holds no token on its first line",
            path.display()
        )));
    }
    Ok(line.to_owned().into())
}

/// The SQLite database's companion files (`-wal`, `-shm`, `-journal`).
pub fn sqlite_companions(db: &Path) -> [PathBuf; 3] {
    ["-wal", "-shm", "-journal"].map(|suffix| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

/// Descriptors that hold instance locks: never closed (see the module documentation).
static HELD: std::sync::Mutex<Vec<File>> = std::sync::Mutex::new(Vec::new());

/// The lock of a serving instance on its SQLite file, held until the process ends (see the
/// module documentation).
#[derive(Debug)]
pub struct InstanceLock {
    path: PathBuf,
}

impl InstanceLock {
    /// Locks the database file `db` (created empty, mode 0600, when missing) for the life
    /// of this process, or fails with a clear message when another server holds it, through
    /// whatever path.
    pub fn acquire(db: &Path) -> Result<Self, AppError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
        let database = options
            .open(db)
            .map_err(|e| AppError::Setup(format!("cannot create {}: {e}", db.display())))?;
        let (file, path) = lock_target(db, database, &options)?;
        match file.try_lock() {
            Ok(()) => {
                HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
                Ok(Self { path })
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(AppError::Setup(format!(
                "another provision-server is already serving the SQLite database {} (lock {}); \
stop it first, or use PostgreSQL for several instances",
                db.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(AppError::Setup(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }

    /// The file locked: the database itself (Linux), or the lock file beside its canonical
    /// path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What to lock: the database file itself.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn lock_target(
    db: &Path,
    database: File,
    _options: &std::fs::OpenOptions,
) -> Result<(File, PathBuf), AppError> {
    Ok((database, db.to_owned()))
}

/// What to lock: `<canonical path>.lock`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn lock_target(
    db: &Path,
    database: File,
    options: &std::fs::OpenOptions,
) -> Result<(File, PathBuf), AppError> {
    // Only opened to create a missing database; no lock is taken on it, so closing it
    // drops nothing.
    drop(database);
    let canonical = std::fs::canonicalize(db)
        .map_err(|e| AppError::Setup(format!("cannot resolve {}: {e}", db.display())))?;
    let mut name = canonical.into_os_string();
    name.push(".lock");
    let path = PathBuf::from(name);
    let file = options
        .open(&path)
        .map_err(|e| AppError::Setup(format!("cannot create {}: {e}", path.display())))?;
    Ok((file, path))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_and_existing_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "an existing directory is tightened");

        let db = dir.join("provision.sqlite");
        private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600, "an existing file is tightened");
    }

    #[test]
    fn a_second_lock_is_refused_with_a_clear_message() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("provision.sqlite");
        let first = InstanceLock::acquire(&db).unwrap();
        assert_eq!(mode(&db), FILE_MODE, "the database is made private");
        let e = InstanceLock::acquire(&db).unwrap_err().to_string();
        assert!(e.contains("already serving the SQLite database"), "{e}");
        // Held for the life of the process: dropping the value does not release it.
        drop(first);
        assert!(InstanceLock::acquire(&db).is_err());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn sqlite_works_on_a_locked_database_file() {
        use swivel_provision::{SettingsStore, UserAdmin, UserEntry, UserRepository, Username};
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("provision.sqlite");
        let _lock = InstanceLock::acquire(&db).unwrap();
        let store = swivel_provision_sqlite::SqliteStore::open(&db)
            .await
            .unwrap();
        let alice = Username::parse("alice").unwrap();
        store
            .put_user(&UserEntry::new(alice.clone()))
            .await
            .unwrap();
        store.put_setting("k", "v").await.unwrap();
        // A second connection (another process would do the same) reads what was written.
        let other = swivel_provision_sqlite::SqliteStore::open(&db)
            .await
            .unwrap();
        assert!(other.find_user(&alice).await.unwrap().is_some());
        assert_eq!(other.get_setting("k").await.unwrap().as_deref(), Some("v"));
    }
}
