//! The data directory's files: the directory private (0700), the SQLite database and its
//! `-wal`/`-shm` files and the outbox private (0600), tightened with a warning when they
//! already exist with wider modes; and the instance lock that keeps a second server off
//! the same SQLite database.
//!
//! The lock is `<database>.lock`, held (an advisory `flock`-style lock, released by the
//! operating system when the process ends, even on a crash) for as long as `serve` runs.
//! Commands (`users add`, `reprovision`, ...) do not take it: they may run while a server
//! runs, as SQLite serialises their writes. PostgreSQL instances take no lock; they are
//! meant to share one database.

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

/// The lock held by a serving instance; released on drop or when the process ends.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes `<db>.lock`, or fails with a clear message when another server holds it.
    pub fn acquire(db: &Path) -> Result<Self, AppError> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
        let file = options
            .open(&path)
            .map_err(|e| AppError::Setup(format!("cannot create {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
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

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
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
        let e = InstanceLock::acquire(&db).unwrap_err().to_string();
        assert!(e.contains("already serving the SQLite database"), "{e}");
        drop(first);
        InstanceLock::acquire(&db).unwrap();
    }
}
