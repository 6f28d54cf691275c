//! [`OutboxReader`]: takes the codes a running `provision-server` delivers through its
//! outbox (`<data-dir>/outbox/*.txt`, one file per message), for `loadgen` runs against a
//! store it cannot write itself (memory, PostgreSQL) and for its `--full-cycle` mode.
//!
//! A thread lists the directories, reads each message of a user with the run's prefix,
//! deletes the file and hands the code to whoever waits for that user (or keeps it until
//! asked). Files of other users are left alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use swivel_provision::ProvisionCode;
use tokio::sync::oneshot;

use crate::error::BenchError;

/// How long the thread sleeps when a listing found nothing new.
const IDLE_SLEEP: Duration = Duration::from_millis(1);

#[derive(Default)]
struct Waiting {
    waiters: HashMap<String, oneshot::Sender<ProvisionCode>>,
    arrived: HashMap<String, ProvisionCode>,
}

struct Shared {
    dirs: Vec<PathBuf>,
    prefix: String,
    state: Mutex<Waiting>,
    stop: AtomicBool,
}

/// Reads provision codes out of outbox directories (see the module docs). Stops its thread
/// when dropped.
pub struct OutboxReader {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for OutboxReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxReader")
            .field("dirs", &self.shared.dirs)
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

/// The user and the code of one outbox message, from its `User:` and `Provision code:`
/// lines (`None` when it has no code, as a links-only message, or when a line is not
/// finished: a file read while it is being written).
pub fn parse_message(text: &str) -> Option<(String, ProvisionCode)> {
    let mut user = None;
    let mut code = None;
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        if let Some(u) = line.strip_prefix("User: ") {
            user.get_or_insert_with(|| u.trim().to_owned());
        } else if let Some(c) = line.strip_prefix("Provision code: ") {
            code.get_or_insert_with(|| ProvisionCode::new(c.trim()));
        }
    }
    Some((user?, code?))
}

impl OutboxReader {
    /// Starts reading `dirs` (each created if missing) for messages to users whose name
    /// starts with `prefix`; such messages already there (from an earlier run) are deleted
    /// first, unread.
    ///
    /// # Errors
    /// [`BenchError::Io`] when a directory cannot be created or listed.
    pub fn start(dirs: Vec<PathBuf>, prefix: &str) -> Result<Self, BenchError> {
        for dir in &dirs {
            std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
                what: format!("creating {}", dir.display()),
                source,
            })?;
        }
        let shared = Arc::new(Shared {
            dirs,
            prefix: prefix.to_owned(),
            state: Mutex::new(Waiting::default()),
            stop: AtomicBool::new(false),
        });
        for dir in &shared.dirs {
            drain(dir, &shared.prefix, &mut |_, _| {})?;
        }
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("outbox-reader".into())
            .spawn(move || {
                while !worker.stop.load(Ordering::Relaxed) {
                    let mut found = 0;
                    for dir in &worker.dirs {
                        let _ = drain(dir, &worker.prefix, &mut |user, code| {
                            found += 1;
                            worker.hand_over(user, code);
                        });
                    }
                    if found == 0 {
                        std::thread::sleep(IDLE_SLEEP);
                    }
                }
            })
            .map_err(|source| BenchError::Io {
                what: "starting the outbox reader".into(),
                source,
            })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// The next code delivered to `user` (one that arrived before the call counts).
    ///
    /// # Errors
    /// [`BenchError::NoCode`] when none arrives within `timeout`.
    pub async fn code_for(
        &self,
        user: &str,
        timeout: Duration,
    ) -> Result<ProvisionCode, BenchError> {
        let rx = {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(code) = state.arrived.remove(user) {
                return Ok(code);
            }
            let (tx, rx) = oneshot::channel();
            state.waiters.insert(user.to_owned(), tx);
            rx
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(code)) => Ok(code),
            _ => {
                let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                state.waiters.remove(user);
                // It may have come in between the timeout and the lock.
                state
                    .arrived
                    .remove(user)
                    .ok_or_else(|| BenchError::NoCode(user.to_owned()))
            }
        }
    }
}

impl Shared {
    fn hand_over(&self, user: String, code: ProvisionCode) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let code = match state.waiters.remove(&user) {
            Some(tx) => match tx.send(code) {
                Ok(()) => return,
                Err(code) => code,
            },
            None => code,
        };
        state.arrived.insert(user, code);
    }
}

impl Drop for OutboxReader {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads and deletes every message in `dir` for a user with `prefix`, calling `found` with
/// each user and code. A file being written may be read half-way: it is left for the next
/// listing when it has no code line yet.
fn drain(
    dir: &Path,
    prefix: &str,
    found: &mut dyn FnMut(String, ProvisionCode),
) -> Result<(), BenchError> {
    let entries = std::fs::read_dir(dir).map_err(|source| BenchError::Io {
        what: format!("listing {}", dir.display()),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some((user, code)) = parse_message(&text) else {
            // A device-bound notice of a run's user (no code): not needed; removed so that
            // listings stay short.
            let ours = text
                .lines()
                .filter_map(|l| l.strip_prefix("User: "))
                .any(|u| u.trim().starts_with(prefix));
            if ours {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        };
        if !user.starts_with(prefix) {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            found(user, code);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_outbox_format() {
        let text = "To: a@example.com\nChannel: email\nUser: load-7\nSubject: x\n\nHello load-7,\n\nProvision URL: http://h/smc/provision/?user=load-7&code=1234567890\nProvision code: 1234567890\n";
        let (user, code) = parse_message(text).unwrap();
        assert_eq!(user, "load-7");
        assert_eq!(code.expose(), "1234567890");
        assert!(parse_message("User: load-7\nProvision URL: http://h/\n").is_none());
        // Half-written: the code line is not finished yet.
        assert!(parse_message("User: load-7\nProvision code: 12345").is_none());
    }

    #[tokio::test]
    async fn hands_over_codes_that_arrive_before_and_after_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, user: &str, code: &str| {
            std::fs::write(
                dir.path().join(name),
                format!("User: {user}\n\nProvision code: {code}\n"),
            )
            .unwrap();
        };
        write("0-load-old.txt", "load-old", "0000000000");
        write("0-other.txt", "other", "1111111111");
        let reader = OutboxReader::start(vec![dir.path().to_owned()], "load-").unwrap();
        // An earlier run's message was dropped unread; another user's file is left alone.
        assert!(!dir.path().join("0-load-old.txt").exists());
        assert!(dir.path().join("0-other.txt").exists());
        write("1-load-1.txt", "load-1", "2222222222");
        let early = reader
            .code_for("load-1", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(early.expose(), "2222222222");
        let late = {
            let wait = reader.code_for("load-2", Duration::from_secs(5));
            let put = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                write("2-load-2.txt", "load-2", "3333333333");
            };
            let (code, ()) = tokio::join!(wait, put);
            code.unwrap()
        };
        assert_eq!(late.expose(), "3333333333");
        assert!(!dir.path().join("2-load-2.txt").exists());
        let none = reader.code_for("load-3", Duration::from_millis(30)).await;
        assert!(matches!(none, Err(BenchError::NoCode(u)) if u == "load-3"));
        assert!(
            reader
                .code_for("load-old", Duration::from_millis(10))
                .await
                .is_err()
        );
    }
}
