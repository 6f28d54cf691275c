//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that pushes the WAL past 1,000
//! pages, on the connection that committed: with one writer thread, every write waiting
//! behind that commit waits for the checkpoint too. So the writer connection runs with
//! `wal_autocheckpoint=0`, and a WAL hook on it (called after each of its commits with the
//! WAL's length in pages) wakes the checkpointer thread each time the WAL has grown by
//! [`WalLimits::wake_pages`] since the last wake-up. That thread runs
//! `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own, beside the writer (a passive
//! checkpoint waits for no reader and no writer), and also after [`WalLimits::idle`]
//! without a wake-up if anything was committed meanwhile.
//!
//! Safety net: a passive checkpoint copies only the frames no reader still needs, and the
//! WAL starts over from its beginning only once everything was copied. Should the
//! checkpointer keep falling behind, each commit that leaves the WAL longer than
//! [`WalLimits::writer_pages`] runs a passive checkpoint on the writer itself, as SQLite's
//! automatic checkpoint did (skipped when the checkpointer is in the middle of one), so the
//! writer can never run away from its checkpoints.
//!
//! Other processes on the same file are unaffected: each connection's WAL hook sees only
//! its own commits, and any connection may checkpoint the shared WAL.

use std::cell::RefCell;
use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::{CheckpointMode, Wal};

use crate::db::connect;
use crate::error::SqliteError;
use crate::options::SqliteOptions;

/// When the WAL is checkpointed, and by whom.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalLimits {
    /// The checkpointer is woken each time the WAL has grown by this many pages (SQLite's
    /// automatic checkpoint interval).
    pub(crate) wake_pages: i32,
    /// Past this many pages in the WAL, the writer checkpoints after its commit itself.
    pub(crate) writer_pages: i32,
    /// Without a wake-up for this long, the checkpointer checkpoints whatever was committed.
    pub(crate) idle: Duration,
}

impl WalLimits {
    /// What a store uses.
    pub(crate) const DEFAULT: WalLimits = WalLimits {
        wake_pages: 1_000,
        writer_pages: 4_000,
        idle: Duration::from_secs(1),
    };
}

/// What the writer's hook and the checkpointer thread share.
#[derive(Default)]
struct Shared {
    wake: Mutex<Wake>,
    ring: Condvar,
    /// Something was committed since the checkpointer last looked.
    written: AtomicBool,
    /// Checkpoints the checkpointer thread ran to the end (busy or not).
    checkpoints: AtomicU64,
    /// Checkpoints the writer ran itself (the safety net).
    writer_checkpoints: AtomicU64,
    /// The checkpointer thread has returned.
    stopped: AtomicBool,
}

#[derive(Default)]
struct Wake {
    asked: bool,
    stop: bool,
}

impl Shared {
    fn ask(&self, stop: bool) {
        let mut wake = self.wake.lock().unwrap_or_else(|e| e.into_inner());
        wake.asked = true;
        wake.stop |= stop;
        self.ring.notify_one();
    }
}

/// The checkpointer thread of one store's file; it stops (and is joined) when this is
/// dropped.
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    limits: WalLimits,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; its connection opens on its first checkpoint.
    pub(crate) fn start(
        path: &Path,
        options: &SqliteOptions,
        limits: WalLimits,
    ) -> Result<Self, SqliteError> {
        let shared = Arc::new(Shared::default());
        let (for_thread, path, options) =
            (Arc::clone(&shared), path.to_path_buf(), options.clone());
        let shown = path.clone();
        let thread = std::thread::Builder::new()
            .name("swivel-sqlite-ckpt".into())
            .spawn(move || {
                checkpointer_loop(&for_thread, &path, &options, limits.idle);
                for_thread.stopped.store(true, Ordering::Release);
            })
            .map_err(|_| SqliteError::WriterGone { path: shown })?;
        Ok(Self {
            shared,
            limits,
            thread: Some(thread),
        })
    }

    /// On the writer thread, for its connection: turns SQLite's automatic checkpoint off
    /// and reports every commit of `conn` to this checkpointer.
    pub(crate) fn attach(&self, conn: &Connection, path: &Path) -> Result<(), SqliteError> {
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| SqliteError::from_sqlite(path, e))?;
        HOOK.with(|hook| {
            *hook.borrow_mut() = Some(HookState {
                shared: Arc::clone(&self.shared),
                limits: self.limits,
                mark: 0,
            });
        });
        conn.wal_hook(Some(on_commit));
        Ok(())
    }

    /// What tests look at.
    #[cfg(test)]
    pub(crate) fn stats(&self) -> Stats {
        Stats(Arc::clone(&self.shared))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.ask(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A view of a checkpointer's counters (tests).
#[cfg(test)]
#[derive(Clone)]
pub(crate) struct Stats(Arc<Shared>);

#[cfg(test)]
impl Stats {
    /// Checkpoints the checkpointer thread ran.
    pub(crate) fn checkpoints(&self) -> u64 {
        self.0.checkpoints.load(Ordering::Acquire)
    }

    /// Checkpoints the writer ran itself.
    pub(crate) fn writer_checkpoints(&self) -> u64 {
        self.0.writer_checkpoints.load(Ordering::Acquire)
    }

    /// Whether the checkpointer thread has returned.
    pub(crate) fn stopped(&self) -> bool {
        self.0.stopped.load(Ordering::Acquire)
    }
}

/// The writer thread's side: its checkpointer and where the WAL stood at the last wake-up.
struct HookState {
    shared: Arc<Shared>,
    limits: WalLimits,
    /// The WAL's length when the checkpointer was last woken.
    mark: i32,
}

thread_local! {
    /// Set on the writer thread by [`Checkpointer::attach`] (the WAL hook is a plain
    /// function, so its state lives with the thread that owns the connection).
    static HOOK: RefCell<Option<HookState>> = const { RefCell::new(None) };
}

/// The writer connection's WAL hook: after each commit, with the WAL's length in pages.
fn on_commit(wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    HOOK.with(|hook| {
        if let Some(state) = hook.borrow_mut().as_mut() {
            state.committed(wal, pages);
        }
    });
    // Never an error: the commit has happened, and an error here would be reported as its.
    Ok(())
}

impl HookState {
    fn committed(&mut self, wal: &Wal, pages: i32) {
        self.shared.written.store(true, Ordering::Release);
        if pages < self.mark {
            // The WAL started over from its beginning.
            self.mark = 0;
        }
        if pages >= self.mark.saturating_add(self.limits.wake_pages) {
            self.mark = pages;
            self.shared.ask(false);
        }
        if pages >= self.limits.writer_pages && wal.checkpoint_v2(CheckpointMode::PASSIVE).is_ok() {
            self.shared
                .writer_checkpoints
                .fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Waits for a wake-up (or `idle`), checkpoints, until asked to stop.
fn checkpointer_loop(shared: &Shared, path: &Path, options: &SqliteOptions, idle: Duration) {
    let mut conn = None;
    loop {
        let wake = shared.wake.lock().unwrap_or_else(|e| e.into_inner());
        let (mut wake, waited) = shared
            .ring
            .wait_timeout_while(wake, idle, |w| !w.asked && !w.stop)
            .unwrap_or_else(|e| e.into_inner());
        if wake.stop {
            return;
        }
        let asked = std::mem::take(&mut wake.asked);
        drop(wake);
        let written = shared.written.swap(false, Ordering::AcqRel);
        if asked || (waited.timed_out() && written) {
            checkpoint(&mut conn, path, options, shared);
        }
    }
}

/// One passive checkpoint on the checkpointer's connection (opened on first use, and
/// again after an error).
fn checkpoint(
    slot: &mut Option<Connection>,
    path: &Path,
    options: &SqliteOptions,
    shared: &Shared,
) {
    let conn = match slot {
        Some(conn) => conn,
        None => match connect(path, options) {
            Ok(conn) => slot.insert(conn),
            // The next wake-up tries again; meanwhile the writer's safety net holds.
            Err(_) => return,
        },
    };
    // One row: busy (another checkpoint was running), WAL pages, pages checkpointed.
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)) {
        Ok(_) => {
            shared.checkpoints.fetch_add(1, Ordering::AcqRel);
        }
        Err(_) => *slot = None,
    }
}

#[cfg(test)]
mod tests;
