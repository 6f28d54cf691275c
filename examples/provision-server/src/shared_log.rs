//! The shared event log: every event, with its time and this instance's name, goes to the
//! store's [`EventStore`], so that every instance sharing the database shows the same Log
//! page and `GET /api/v1/events`.
//!
//! [`SharedLog::push`] never blocks a request: it puts the event into a bounded channel
//! ([`CHANNEL_CAPACITY`]); when the channel is full the event is dropped and counted, with
//! one warning per second at most. A background task writes what waits in the channel in
//! batches of up to [`BATCH`] events, one [`EventStore::append`] each. [`spawn_purge`]
//! deletes events older than the retention, hourly.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swivel_provision::{EventStore, ProvisionEvent, StoredEvent};
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc};

/// Events waiting to be written, at most; more are dropped (and counted).
pub const CHANNEL_CAPACITY: usize = 10_000;
/// Events written by one append, at most.
pub const BATCH: usize = 500;
/// How often [`spawn_purge`] purges (and once at start).
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// What the sink and its writer task share.
#[derive(Debug, Default)]
struct Progress {
    /// Events accepted into the channel and not yet written (or given up on).
    pending: AtomicUsize,
    /// Woken after every append.
    written: Notify,
}

/// The sink side of the shared log. Cheap to clone; the writer task stops once every clone
/// is gone and the channel is empty.
#[derive(Debug, Clone)]
pub struct SharedLog {
    tx: mpsc::Sender<StoredEvent>,
    instance: Arc<str>,
    progress: Arc<Progress>,
    dropped: Arc<AtomicU64>,
    last_warning: Arc<Mutex<Option<Instant>>>,
}

impl SharedLog {
    /// Starts the writer task (inside a tokio runtime) for `store`; events are recorded as
    /// seen by `instance`.
    pub fn start(store: Arc<dyn EventStore>, instance: impl Into<String>) -> Self {
        Self::with_capacity(store, instance, CHANNEL_CAPACITY)
    }

    /// As [`SharedLog::start`], with room for `capacity` waiting events (at least one).
    pub fn with_capacity(
        store: Arc<dyn EventStore>,
        instance: impl Into<String>,
        capacity: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let progress = Arc::new(Progress::default());
        tokio::spawn(write_batches(store, rx, progress.clone()));
        Self {
            tx,
            instance: Arc::from(instance.into()),
            progress,
            dropped: Arc::new(AtomicU64::new(0)),
            last_warning: Arc::new(Mutex::new(None)),
        }
    }

    /// This instance's name, as its events carry it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Queues `event` (seen now) for the store; never waits. When the channel is full the
    /// event is dropped and counted.
    pub fn push(&self, event: &ProvisionEvent) {
        let stored = StoredEvent::new(event, OffsetDateTime::now_utc(), &*self.instance);
        self.progress.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.try_send(stored).is_err() {
            self.progress.pending.fetch_sub(1, Ordering::SeqCst);
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.warn_dropped(dropped);
        }
    }

    /// Events dropped so far because the channel was full (or the writer had stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits until every event pushed so far has been written (or given up on), for at most
    /// `limit`. Returns whether it got there.
    pub async fn flush(&self, limit: Duration) -> bool {
        let done = async {
            loop {
                let written = self.progress.written.notified();
                if self.progress.pending.load(Ordering::SeqCst) == 0 {
                    return;
                }
                written.await;
            }
        };
        tokio::time::timeout(limit, done).await.is_ok()
    }

    fn warn_dropped(&self, dropped: u64) {
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if (*last).is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            tracing::warn!(
                dropped,
                "the shared event log is behind: events were dropped (they are still in the tracing output)"
            );
        }
    }
}

/// The writer task: everything waiting, up to [`BATCH`] events, per append.
async fn write_batches(
    store: Arc<dyn EventStore>,
    mut rx: mpsc::Receiver<StoredEvent>,
    progress: Arc<Progress>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(e) = store.append(&batch).await {
            tracing::warn!(
                events = batch.len(),
                error = %crate::error::error_chain(&e),
                "could not write events to the shared event log"
            );
        }
        progress.pending.fetch_sub(batch.len(), Ordering::SeqCst);
        progress.written.notify_waiters();
        batch.clear();
    }
}

/// Deletes events older than `retention` now and then every [`PURGE_EVERY`].
pub fn spawn_purge(store: Arc<dyn EventStore>, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            let cutoff = OffsetDateTime::now_utc() - retention;
            match store.purge_before(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "old events purged from the shared event log"),
                Err(e) => tracing::warn!(
                    error = %crate::error::error_chain(&e),
                    "purging the shared event log failed"
                ),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::{EventQuery, MemoryEvents, Username};

    fn created(name: &str) -> ProvisionEvent {
        ProvisionEvent::CodeCreated {
            username: Username::parse(name).unwrap(),
            origin: swivel_provision::Origin::Admin,
        }
    }

    #[tokio::test]
    async fn events_reach_the_store_with_the_instance_name() {
        let store = Arc::new(MemoryEvents::new());
        let log = SharedLog::start(store.clone(), "alpha:8080");
        log.push(&created("a"));
        log.push(&created("b"));
        assert!(log.flush(Duration::from_secs(5)).await);
        let got = store.list(&EventQuery::newest(10)).await.unwrap();
        let lines: Vec<&str> = got.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "Provision code created for user \"b\"",
                "Provision code created for user \"a\""
            ]
        );
        assert!(got.iter().all(|e| e.instance == "alpha:8080"));
        assert_eq!(got[0].kind, "code_created");
        assert_eq!(log.dropped(), 0);
    }

    /// A store whose appends wait until they are let through.
    struct Stalled {
        gate: tokio::sync::Semaphore,
        inner: MemoryEvents,
    }

    #[async_trait::async_trait]
    impl EventStore for Stalled {
        async fn append(&self, events: &[StoredEvent]) -> Result<(), swivel_provision::StoreError> {
            let _permit = self.gate.acquire().await.expect("open gate");
            self.inner.append(events).await
        }
        async fn list(
            &self,
            query: &EventQuery,
        ) -> Result<Vec<StoredEvent>, swivel_provision::StoreError> {
            self.inner.list(query).await
        }
        async fn purge_before(
            &self,
            t: OffsetDateTime,
        ) -> Result<u64, swivel_provision::StoreError> {
            self.inner.purge_before(t).await
        }
    }

    #[tokio::test]
    async fn a_full_channel_drops_and_counts_without_waiting() {
        let store = Arc::new(Stalled {
            gate: tokio::sync::Semaphore::new(0),
            inner: MemoryEvents::new(),
        });
        let log = SharedLog::with_capacity(store.clone(), "alpha", 4);
        let started = Instant::now();
        for n in 0..50 {
            log.push(&created(&format!("u{n}")));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "push never waits"
        );
        // The writer task has not run yet (one thread): 4 wait in the channel.
        assert_eq!(log.dropped(), 46, "a full channel drops and counts");
        assert!(!log.flush(Duration::from_millis(50)).await, "still stalled");
        store.gate.add_permits(1000);
        assert!(log.flush(Duration::from_secs(5)).await);
        let kept = store.inner.list(&EventQuery::newest(100)).await.unwrap();
        assert_eq!(kept.len() as u64 + log.dropped(), 50, "kept or counted");
    }

    #[tokio::test]
    async fn purge_deletes_events_older_than_the_retention() {
        let store = Arc::new(MemoryEvents::new());
        let old = StoredEvent::new(
            &created("old"),
            OffsetDateTime::now_utc() - time::Duration::days(91),
            "a",
        );
        let new = StoredEvent::new(&created("new"), OffsetDateTime::now_utc(), "a");
        store.append(&[old, new]).await.unwrap();
        let task = spawn_purge(store.clone(), Duration::from_secs(90 * 86_400));
        for _ in 0..500 {
            if store.list(&EventQuery::newest(10)).await.unwrap().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        let left = store.list(&EventQuery::newest(10)).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].username.as_ref().unwrap().as_str(), "new");
    }
}
