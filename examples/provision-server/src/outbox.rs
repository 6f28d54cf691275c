//! The default transport: each message becomes a file
//! `<data-dir>/outbox/<unix-ms>-<username>.txt` (destination, subject, body with the code
//! and links; the directory is `[outbox] dir` when set), printed to stdout too when asked
//! (`--demo` or `[outbox] print = true`). A message from the durable queue carries a
//! `Message-ID` line with its job, and its file is
//! `<unix-ms of the code's creation>-<username>-<job id>.txt`: a job delivered twice (the
//! queue delivers at least once), by one instance or by two sharing the directory, is
//! written once.
//!
//! Each file is written whole under a temporary name and then given its own, never
//! replacing a file: a crash while writing leaves at most a `.*.tmp` file behind, never a
//! partial message that a second delivery of the job would take for the whole one.
//!
//! # Security
//! The files hold live provision codes. They are created with mode 0600 in a 0700 directory
//! and are meant for development and demonstrations: configure SMTP or SMS for real users.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use swivel_provision::{ProvisionMessage, Transport, TransportError};

/// Writes messages into a directory.
#[derive(Debug, Clone)]
pub struct OutboxTransport {
    dir: PathBuf,
    print: bool,
}

impl OutboxTransport {
    /// Writes into `dir` (created if missing); with `print`, also prints each message to
    /// stdout.
    pub fn new(dir: impl Into<PathBuf>, print: bool) -> Self {
        Self {
            dir: dir.into(),
            print,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The text of one message file.
    pub fn render(message: &ProvisionMessage) -> String {
        let id = message
            .job_id()
            .map(|id| format!("Message-ID: <{id}@swivel-provision>\n"))
            .unwrap_or_default();
        format!(
            "To: {}\nChannel: {}\nUser: {}\nSubject: {}\n{id}\n{}",
            message.destination.address,
            message.destination.channel,
            message.username,
            message.subject(),
            message.text_body()
        )
    }
}

/// A file-name-safe form of a username.
fn file_safe(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `text` into a new file at `path` (mode 0600), whole or not at all: into a
/// temporary file (`.*.tmp`) of the same directory first, synced, then moved to `path`
/// unless a file is there already (`AlreadyExists`). A crash leaves no partial message
/// under `path`, at worst a temporary file, so a job found written was written whole.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist_noclobber(path).map(drop).map_err(|e| e.error)
}

#[async_trait]
impl Transport for OutboxTransport {
    async fn deliver(&self, message: &ProvisionMessage) -> Result<(), TransportError> {
        let text = Self::render(message);
        let dir = self.dir.clone();
        // A message from the durable queue is named for its job, from its code's creation
        // time, so that a second delivery of it (the queue delivers at least once) finds
        // the file there and is dropped: the outbox keeps each job once.
        let (base, job) = match message.job_id() {
            Some(id) => {
                let created =
                    message.expires_at - time::Duration::seconds(message.validity_secs.into());
                (
                    format!(
                        "{}-{}-{id}",
                        created.unix_timestamp_nanos() / 1_000_000,
                        file_safe(message.username.as_str())
                    ),
                    true,
                )
            }
            None => (
                format!(
                    "{}-{}",
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0),
                    file_safe(message.username.as_str())
                ),
                false,
            ),
        };
        let body = text.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<Option<PathBuf>> {
            crate::files::private_dir(&dir).map_err(std::io::Error::other)?;
            for n in 0..100u32 {
                let name = if n == 0 {
                    format!("{base}.txt")
                } else {
                    format!("{base}-{n}.txt")
                };
                let path = dir.join(name);
                match write_new(&path, &body) {
                    Ok(()) => return Ok(Some(path)),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && job => {
                        return Ok(None);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(std::io::Error::other(
                "too many messages in the same millisecond",
            ))
        })
        .await
        .map_err(|e| TransportError::transient("outbox writer stopped", Some(Box::new(e))))?
        .map_err(|e| {
            TransportError::transient("could not write the outbox file", Some(Box::new(e)))
        })?;
        let Some(written) = written else {
            tracing::info!(
                "outbox: job {} was delivered before; not written again",
                message.job_id().map(|id| id.as_str()).unwrap_or("-")
            );
            return Ok(());
        };
        if self.print {
            println!("--- outbox: {} ---\n{text}--- end ---", written.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_safe() {
        assert_eq!(file_safe("al/ice ../x"), "al_ice_.._x");
    }

    #[test]
    fn a_file_is_written_once_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.txt");
        write_new(&path, "first").unwrap();
        let again = write_new(&path, "second").unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.txt"], "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
