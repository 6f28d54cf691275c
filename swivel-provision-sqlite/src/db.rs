//! Connections and where they run.
//!
//! Writes go to one writer thread per store, which owns the write connection and takes its
//! work from a channel (no hop through tokio's blocking pool). Record updates
//! ([`Db::update`]) and the other grouped writes ([`Db::grouped`]: event-log batches, the
//! delivery queue's claims, retries and deletes) waiting in the channel together run in one
//! transaction, a `SAVEPOINT` each, and share one commit (one `fsync` with
//! `synchronous=FULL`): group commit. Each is answered only after that commit returned.
//! Other writes ([`Db::run`] with `write`) run on the same thread, one transaction each,
//! between groups.
//!
//! The writer's commits do not checkpoint the WAL: a checkpointer thread with a connection
//! of its own does, woken by the writer's WAL hook (see [`crate::checkpoint`]); the writer
//! checkpoints itself only past a safety limit. An in-memory database has no WAL and no
//! checkpointer.
//!
//! Reads go to a few reader threads (`read_connections`, one connection each) through one
//! shared channel, which WAL lets run beside the writer. No call uses tokio's blocking
//! pool, so the store adds a fixed number of threads to the process (writer, checkpointer
//! and readers). Between processes, SQLite's file locks and the busy timeout order the
//! writers.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use swivel_provision::{RecordKey, StoreError, Updated};
use tokio::sync::oneshot;

use crate::checkpoint::{Checkpointer, WalLimits};
use crate::codes::{Step, apply_update};
use crate::error::SqliteError;
use crate::options::SqliteOptions;
use crate::schema;

/// Writes run in one group commit at most (the rest wait for the next group).
const MAX_GROUP: usize = 512;

/// A read, run on a reader thread with that thread's connection (`None` until the first
/// read opens it, and again after a read panicked).
type ReadFn = Box<dyn FnOnce(&mut Option<Connection>, &Path, &SqliteOptions) + Send>;

/// A write that is not grouped, run alone on the writer thread.
type WriteFn = Box<dyn FnOnce(&mut Connection, &Path) + Send>;

/// A write that runs inside a group commit, in a savepoint of its own.
trait GroupWrite: Send {
    /// Runs the write inside its savepoint; `false` rolls the savepoint back.
    fn apply(&mut self, conn: &Connection, path: &Path) -> bool;
    /// Answers the caller once the group's commit returned: `None` when it committed, else
    /// why nothing of the group was written.
    fn answer(self: Box<Self>, path: &Path, failed: Option<SqliteError>);
}

/// The answer of a grouped write that was never applied (not expected: a group applies
/// every write before it answers).
fn not_run(path: &Path) -> SqliteError {
    SqliteError::StepPanicked {
        path: path.to_path_buf(),
    }
}

/// A grouped write: `f`, its result once applied, and where the answer goes. `E` is the
/// caller's error type (a record update answers with `StoreError`, other writes with
/// `SqliteError`).
struct FnWrite<T, E, F> {
    f: Option<F>,
    out: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

/// The grouped write `f`, and where its answer comes.
fn group_write<T, E, F>(f: F) -> (Box<dyn GroupWrite>, oneshot::Receiver<Result<T, E>>)
where
    T: Send + 'static,
    E: From<SqliteError> + Send + 'static,
    F: FnOnce(&Connection, &Path) -> Result<T, E> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let write = FnWrite {
        f: Some(f),
        out: None,
        reply,
    };
    (Box::new(write), answer)
}

impl<T, E, F> GroupWrite for FnWrite<T, E, F>
where
    T: Send,
    E: From<SqliteError> + Send,
    F: FnOnce(&Connection, &Path) -> Result<T, E> + Send,
{
    fn apply(&mut self, conn: &Connection, path: &Path) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = catch_unwind(AssertUnwindSafe(|| f(conn, path))).unwrap_or_else(|_| {
            Err(SqliteError::StepPanicked {
                path: path.to_path_buf(),
            }
            .into())
        });
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn answer(self: Box<Self>, path: &Path, failed: Option<SqliteError>) {
        let out = match (failed, self.out) {
            (None, Some(out)) => out,
            (Some(e), _) => Err(e.into()),
            (None, None) => Err(not_run(path).into()),
        };
        let _ = self.reply.send(out);
    }
}

/// Work for the writer thread.
enum Job {
    /// Grouped with the grouped writes next to it in the channel.
    Grouped(Box<dyn GroupWrite>),
    /// Anything else, alone (it answers through a channel it captured).
    Run(WriteFn),
}

/// The database: where it is, how to open it, and its connections.
pub(crate) struct Db {
    /// The file, or `:memory:`.
    path: PathBuf,
    memory: bool,
    /// To the writer thread, which stops when the last sender is dropped (and stops the
    /// checkpointer thread it owns).
    writer: mpsc::Sender<Job>,
    /// To the reader threads (one connection each), which stop when it is dropped. `None`
    /// for an in-memory database: it has one connection, the writer's.
    readers: Option<mpsc::Sender<ReadFn>>,
    /// The checkpointer's counters (tests).
    #[cfg(test)]
    pub(crate) checkpoints: Option<crate::checkpoint::Stats>,
}

fn flags() -> OpenFlags {
    // No URI interpretation: a path is a path.
    OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
}

/// Opens one connection to the file and sets it up (busy timeout, WAL, durability).
pub(crate) fn connect(path: &Path, options: &SqliteOptions) -> Result<Connection, SqliteError> {
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

/// Starts the writer thread on `conn`; with a checkpointer, the writer owns it (and so
/// stops it when it stops itself).
fn start_writer(
    conn: Connection,
    path: PathBuf,
    checkpointer: Option<Checkpointer>,
) -> Result<mpsc::Sender<Job>, SqliteError> {
    let (tx, rx) = mpsc::channel();
    let shown = path.clone();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("swivel-sqlite-writer".into())
        .spawn(move || {
            // The WAL hook's state lives on this thread: attach here.
            let attached = match &checkpointer {
                Some(c) => c.attach(&conn, &path),
                None => Ok(()),
            };
            let ok = attached.is_ok();
            let _ = ready_tx.send(attached);
            if ok {
                writer_loop(conn, &path, &rx);
            }
            drop(checkpointer);
        })
        .map_err(|_| SqliteError::WriterGone {
            path: shown.clone(),
        })?;
    ready_rx
        .recv()
        .map_err(|_| SqliteError::WriterGone { path: shown })??;
    Ok(tx)
}

/// Starts `count` reader threads sharing one channel; each opens its connection on its
/// first read.
fn start_readers(
    count: usize,
    path: &Path,
    options: &SqliteOptions,
) -> Result<mpsc::Sender<ReadFn>, SqliteError> {
    let (tx, rx) = mpsc::channel::<ReadFn>();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..count {
        let (rx, shown, options) = (Arc::clone(&rx), path.to_path_buf(), options.clone());
        let path = shown.clone();
        std::thread::Builder::new()
            .name("swivel-sqlite-reader".into())
            .spawn(move || {
                let mut conn = None;
                loop {
                    // One thread waits in `recv` at a time; the others wait for the lock.
                    let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job(&mut conn, &path, &options);
                }
            })
            .map_err(|_| SqliteError::WriterGone { path: shown })?;
    }
    Ok(tx)
}

/// Takes every job waiting in the channel (up to [`MAX_GROUP`] grouped writes in a row),
/// runs the grouped ones among them as one group commit and the other jobs alone, in order.
fn writer_loop(mut conn: Connection, path: &Path, rx: &mpsc::Receiver<Job>) {
    let mut group: Vec<Box<dyn GroupWrite>> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Grouped(write) => {
                    group.push(write);
                    if group.len() < MAX_GROUP {
                        next = rx.try_recv().ok();
                    }
                }
                Job::Run(f) => {
                    commit_group(&mut conn, path, &mut group);
                    f(&mut conn, path);
                    next = rx.try_recv().ok();
                }
            }
        }
        commit_group(&mut conn, path, &mut group);
    }
}

/// Runs `group`'s writes in one transaction, a savepoint each, commits once, then answers
/// every one of them.
fn commit_group(conn: &mut Connection, path: &Path, group: &mut Vec<Box<dyn GroupWrite>>) {
    if group.is_empty() {
        return;
    }
    let sql = |e| SqliteError::from_sqlite(path, e);
    let outcome = (|| {
        // IMMEDIATE takes the write lock first, so every read below sees what the write
        // after it replaces, even when other processes write the same file.
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        for write in group.iter_mut() {
            let mut sp = tx.savepoint().map_err(sql)?;
            if write.apply(&sp, path) {
                sp.commit().map_err(sql)?;
            } else {
                // Undo this write only; dropping the savepoint then releases it.
                sp.rollback().map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    })();
    match outcome {
        Ok(()) => {
            for write in group.drain(..) {
                write.answer(path, None);
            }
        }
        Err(e) => {
            // Nothing of the group was written.
            for write in group.drain(..) {
                write.answer(path, Some(e.for_another()));
            }
        }
    }
}

impl Db {
    /// Opens (creating if needed) and migrates the database file.
    pub(crate) fn open_file(path: PathBuf, options: SqliteOptions) -> Result<Self, SqliteError> {
        Self::open_file_with(path, options, WalLimits::DEFAULT)
    }

    /// [`open_file`](Self::open_file) with the given checkpoint limits.
    pub(crate) fn open_file_with(
        path: PathBuf,
        options: SqliteOptions,
        limits: WalLimits,
    ) -> Result<Self, SqliteError> {
        let mut conn = connect(&path, &options)?;
        schema::migrate(&mut conn, &path)?;
        let readers = options.read_connections.max(1);
        let checkpointer = Checkpointer::start(&path, &options, limits)?;
        #[cfg(test)]
        let checkpoints = Some(checkpointer.stats());
        Ok(Self {
            writer: start_writer(conn, path.clone(), Some(checkpointer))?,
            readers: Some(start_readers(readers, &path, &options)?),
            path,
            memory: false,
            #[cfg(test)]
            checkpoints,
        })
    }

    /// A new, private in-memory database (no WAL, so no checkpointer).
    pub(crate) fn open_memory() -> Result<Self, SqliteError> {
        let path = PathBuf::from(":memory:");
        let options = SqliteOptions::default();
        let mut conn = Connection::open_in_memory_with_flags(flags())
            .map_err(|e| SqliteError::from_sqlite(&path, e))?;
        configure(&conn, &path, &options)?;
        schema::migrate(&mut conn, &path)?;
        Ok(Self {
            writer: start_writer(conn, path.clone(), None)?,
            readers: None,
            path,
            memory: true,
            #[cfg(test)]
            checkpoints: None,
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

    fn gone(&self) -> SqliteError {
        SqliteError::WriterGone {
            path: self.path.clone(),
        }
    }

    /// Applies `step` to the record `key` names, in the writer's next group commit;
    /// answers once that commit returned.
    pub(crate) async fn update(
        &self,
        key: RecordKey,
        mut step: Step,
    ) -> Result<Updated, StoreError> {
        self.submit(move |conn, path| apply_update(conn, path, &key, &mut step))
            .await
    }

    /// Runs the write `f` in the writer's next group commit, in a savepoint of its own (an
    /// error or a panic in `f` undoes only what `f` wrote); answers once that commit
    /// returned, with `f`'s result, or with the commit's error (then nothing of `f` was
    /// written). `f` must not open or end a transaction itself.
    pub(crate) async fn grouped<T, F>(&self, f: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, SqliteError> + Send + 'static,
    {
        self.submit(f).await
    }

    /// Queues the grouped write `f` and waits for its answer.
    async fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<SqliteError> + Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T, E> + Send + 'static,
    {
        let (write, answer) = group_write(f);
        self.writer
            .send(Job::Grouped(write))
            .map_err(|_| self.gone())?;
        answer.await.map_err(|_| self.gone())?
    }

    /// Runs `f` with a connection: on the writer thread when `write` (queued behind the
    /// writes before it; in its own transaction if it opens one), else on a reader thread.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, write: bool, f: F) -> Result<T, SqliteError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> Result<T, SqliteError> + Send + 'static,
    {
        let readers = match (&self.readers, write) {
            (Some(readers), false) => readers,
            // Writes, and every call on an in-memory database (one connection).
            _ => {
                let (reply, answer) = oneshot::channel();
                let job = Job::Run(Box::new(move |conn, path| {
                    // A panic in `f` would stop the writer: answer it as an error instead.
                    let out =
                        catch_unwind(AssertUnwindSafe(|| f(conn, path))).unwrap_or_else(|_| {
                            // Roll back whatever `f` left open.
                            let _ = conn.execute_batch("ROLLBACK");
                            Err(SqliteError::StepPanicked {
                                path: path.to_path_buf(),
                            })
                        });
                    let _ = reply.send(out);
                }));
                self.writer.send(job).map_err(|_| self.gone())?;
                return answer.await.map_err(|_| self.gone())?;
            }
        };
        let (reply, answer) = oneshot::channel();
        let job: ReadFn = Box::new(move |slot, path, options| {
            let out = (|| {
                let conn = match slot {
                    Some(conn) => conn,
                    None => slot.insert(connect(path, options)?),
                };
                catch_unwind(AssertUnwindSafe(|| f(conn, path))).unwrap_or_else(|_| {
                    // Drop the connection (rolling back anything open); the next read
                    // opens a new one.
                    *slot = None;
                    Err(SqliteError::StepPanicked {
                        path: path.to_path_buf(),
                    })
                })
            })();
            let _ = reply.send(out);
        });
        readers.send(job).map_err(|_| self.gone())?;
        answer.await.map_err(|_| self.gone())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::{ProvisionRecord, UpdateStep, Username};

    fn user(name: &str) -> Username {
        Username::parse(name).expect("valid")
    }

    fn insert(name: &'static str) -> UpdateStep {
        Box::new(move |_| {
            let mut r = ProvisionRecord::new(user(name));
            r.version = 1;
            Some(r)
        })
    }

    #[test]
    fn a_failed_update_does_not_undo_the_others_of_its_group() {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().expect("open");
        schema::migrate(&mut conn, path).expect("migrate");
        let mut group = Vec::new();
        let mut answers = Vec::new();
        let panics: UpdateStep = Box::new(|_| panic!("a step that fails"));
        let foreign: UpdateStep = Box::new(|_| {
            let mut r = ProvisionRecord::new(user("someone-else"));
            r.version = 1;
            Some(r)
        });
        for (name, step) in [
            ("a", insert("a")),
            ("b", panics),
            ("c", foreign),
            ("d", insert("d")),
        ] {
            let key = RecordKey::User(user(name));
            let mut step = Step::Record(step);
            let (write, answer) =
                group_write(move |conn, path| apply_update(conn, path, &key, &mut step));
            group.push(write);
            answers.push(answer);
        }
        commit_group(&mut conn, path, &mut group);
        let answers: Vec<_> = answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("answered"))
            .collect();
        assert!(matches!(answers[0], Ok(Updated::Written)));
        assert!(answers[1].is_err(), "the panicking step fails alone");
        assert!(answers[2].is_err(), "another user's record is refused");
        assert!(matches!(answers[3], Ok(Updated::Written)));
        let mut names: Vec<String> = conn
            .prepare("SELECT username FROM records ORDER BY username")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        names.sort();
        assert_eq!(names, ["a", "d"], "both good updates are committed");
    }

    #[test]
    fn a_grouped_write_that_fails_half_way_leaves_nothing() {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER)")
            .expect("create");
        let sql = |e| SqliteError::from_sqlite(Path::new(":memory:"), e);
        let (good, mut ok_answer) = group_write(move |c: &Connection, _: &Path| {
            c.execute_batch("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);")
                .map_err(sql)
        });
        let (bad, mut bad_answer) = group_write(move |c: &Connection, _: &Path| {
            c.execute_batch("INSERT INTO t VALUES (3);").map_err(sql)?;
            c.execute_batch("INSERT INTO missing VALUES (4);")
                .map_err(sql)
        });
        let mut group = vec![good, bad];
        commit_group(&mut conn, path, &mut group);
        assert!(ok_answer.try_recv().expect("answered").is_ok());
        assert!(bad_answer.try_recv().expect("answered").is_err());
        let rows: Vec<i64> = conn
            .prepare("SELECT x FROM t ORDER BY x")
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(rows, [1, 2], "the failed write left none of its rows");
    }
}
