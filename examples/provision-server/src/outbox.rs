//! The default transport: each message becomes a file
//! `<data-dir>/outbox/<unix-ms>-<username>.txt` (destination, subject, body with the code
//! and links), printed to stdout too when asked (`--demo` or `[outbox] print = true`). A
//! message from the durable queue carries a `Message-ID` line with its job, and its file
//! is `<unix-ms of the code's creation>-<username>-<job id>.txt`: a job delivered twice
//! (the queue delivers at least once) is written once.
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
            ProvisionMessage::SUBJECT,
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

fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
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
}
