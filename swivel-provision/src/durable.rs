//! The durable delivery queue's worker (feature `tokio`): claims due jobs from a
//! [`JobStore`] with a lease, delivers each once per claim, and decides what happens next.
//!
//! Every rule of the queue is here, none in the store:
//! - a job past its code's expiry is dropped unsent ([`ProvisionEvent::MessageExpired`]);
//! - a job whose code is no longer the user's pending one (replaced, redeemed, revoked) is
//!   dropped unsent ([`ProvisionEvent::MessageCancelled`]);
//! - a transient transport error is retried with exponential backoff, up to
//!   [`DurableConfig::max_attempts`] attempts ([`ProvisionEvent::DeliveryRetry`]);
//! - a permanent error, the last attempt, a job that does not open (another server key)
//!   or a channel without a transport fail for good: the job is deleted and the code
//!   revoked ([`ProvisionEvent::DeliveryFailed`]);
//! - a delivered job is deleted ([`ProvisionEvent::MessageSent`]).
//!
//! A worker that dies keeps its claimed jobs leased until [`DurableConfig::lease`] ran out;
//! then any worker sharing the store claims them again. A worker that stops
//! ([`DurableQueue::stop`]) finishes the deliveries under way and gives the rest back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::clock::Clock;
use crate::code::{CodeHash, ServerKey};
use crate::error::StoreError;
use crate::events::{EventSink, ProvisionEvent};
use crate::queue::{JobStore, QueuedJob};
use crate::seal::JobSealer;
use crate::transport::Transport;
use crate::types::{Channel, Destination};

/// How the durable queue's worker claims, retries and leases.
#[derive(Debug, Clone)]
pub struct DurableConfig {
    /// The name this worker claims jobs under (an instance name); unique per instance.
    pub owner: String,
    /// Delivery attempts per message (first try included).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled on each retry.
    pub initial_backoff: Duration,
    /// Longest wait between two retries.
    pub max_backoff: Duration,
    /// Messages delivered at the same time (and claimed at once at most).
    pub concurrency: usize,
    /// How long a claimed job stays with this worker before another may take it: longer
    /// than one delivery may take (the transports' timeouts).
    pub lease: Duration,
    /// How often the worker looks for due jobs when it is not woken by a request of its own
    /// process (jobs queued by other instances, retries coming due, leases running out).
    pub poll_interval: Duration,
}

impl DurableConfig {
    /// The defaults, claiming under `owner`.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            concurrency: 16,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
        }
    }

    /// The wait before attempt `attempts + 1`, after `attempts` failed ones (at least 1).
    fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// What the worker shares with the provisioner.
pub(crate) struct DurableQueue {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn JobStore>,
    transports: Vec<(Channel, Arc<dyn Transport>)>,
    sealer: JobSealer,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    config: DurableConfig,
    permits: Arc<Semaphore>,
    /// Deliveries under way.
    in_flight: AtomicUsize,
    /// Wakes the worker: a job was queued here, or it is asked to stop.
    wake: Notify,
    /// Wakes those waiting for the queue to settle.
    settled: Notify,
    stopping: AtomicBool,
    /// Set by the worker task when it ends (stopped, or its runtime went).
    ended: Arc<AtomicBool>,
}

/// Sets a flag when dropped: the worker task's end, however it ends.
struct EndGuard(Arc<AtomicBool>);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

impl DurableQueue {
    /// Starts the worker on `runtime`.
    pub(crate) fn start(
        store: Arc<dyn JobStore>,
        transports: Vec<(Channel, Arc<dyn Transport>)>,
        key: &ServerKey,
        clock: Arc<dyn Clock>,
        events: Arc<dyn EventSink>,
        config: DurableConfig,
        runtime: &tokio::runtime::Handle,
    ) -> Self {
        let ended = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            store,
            transports,
            sealer: JobSealer::new(key),
            clock,
            events,
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            in_flight: AtomicUsize::new(0),
            wake: Notify::new(),
            settled: Notify::new(),
            stopping: AtomicBool::new(false),
            ended: Arc::clone(&ended),
        });
        let worker = Arc::clone(&shared);
        runtime.spawn(async move {
            let _guard = EndGuard(ended);
            worker.run().await;
        });
        Self { shared }
    }

    /// Seals a message into a new job (for [`JobStore::update_with_job`] and
    /// [`JobStore::add_job`]).
    pub(crate) fn sealer(&self) -> &JobSealer {
        &self.shared.sealer
    }

    /// Tells the worker a job was queued (so it need not wait for its next poll).
    pub(crate) fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Whether the worker still runs.
    pub(crate) fn is_running(&self) -> bool {
        !self.shared.ended.load(Ordering::Acquire)
    }

    /// Waits until the store holds no job and no delivery is under way.
    pub(crate) async fn idle(&self) {
        loop {
            let settled = self.shared.settled.notified();
            let depth = self.shared.store.queue_depth().await.map(|d| d.jobs);
            if self.shared.in_flight.load(Ordering::Acquire) == 0 && matches!(depth, Ok(0)) {
                return;
            }
            self.wake();
            let _ = tokio::time::timeout(Duration::from_millis(50), settled).await;
        }
    }

    /// Stops claiming, waits for the deliveries under way, and gives the jobs this worker
    /// still holds back to the queue. The caller bounds the wait (a deadline).
    pub(crate) async fn stop(&self) -> Result<usize, StoreError> {
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::Release);
        shared.wake.notify_one();
        // Once the worker has ended it claims nothing more; then wait for its deliveries.
        loop {
            let settled = shared.settled.notified();
            if shared.ended.load(Ordering::Acquire) && shared.in_flight.load(Ordering::Acquire) == 0
            {
                break;
            }
            shared.wake.notify_one();
            let _ = tokio::time::timeout(Duration::from_millis(20), settled).await;
        }
        shared
            .store
            .release_jobs(&shared.config.owner, shared.clock.now())
            .await
    }
}

impl Shared {
    async fn run(self: Arc<Self>) {
        while !self.stopping.load(Ordering::Acquire) {
            let claimed = self.claim().await;
            if claimed > 0 {
                continue;
            }
            let _ = tokio::time::timeout(self.config.poll_interval, self.wake.notified()).await;
        }
    }

    /// Claims as many due jobs as there are free delivery slots (waiting for one) and
    /// starts delivering them. Returns how many it claimed.
    async fn claim(self: &Arc<Self>) -> usize {
        let Ok(first) = Arc::clone(&self.permits).acquire_owned().await else {
            return 0;
        };
        if self.stopping.load(Ordering::Acquire) {
            return 0;
        }
        let mut permits = vec![first];
        while let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            permits.push(p);
        }
        let now = self.clock.now();
        let lease_until = now + self.config.lease;
        let jobs = match self
            .store
            .claim_jobs(now, lease_until, &self.config.owner, permits.len())
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(target: "swivel_provision", "delivery queue: claiming jobs failed: {e}");
                Vec::new()
            }
        };
        let count = jobs.len();
        for (job, permit) in jobs.into_iter().zip(permits) {
            self.in_flight.fetch_add(1, Ordering::AcqRel);
            let worker = Arc::clone(self);
            tokio::spawn(async move {
                worker.handle(job).await;
                drop(permit);
                if worker.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
                    worker.settled.notify_waiters();
                }
            });
        }
        count
    }

    /// Deletes a job; a failure only means it is claimed again after its lease (and its
    /// outcome decided again).
    async fn finish(&self, job: &QueuedJob) {
        if let Err(e) = self.store.finish_job(&job.id).await {
            tracing::warn!(target: "swivel_provision", "delivery queue: deleting job {} failed: {e}", job.id);
        }
    }

    async fn handle(&self, job: QueuedJob) {
        let username = job.username.clone();
        let Some((message, code_hash)) = self.sealer.open(&job) else {
            // Sealed under another server key (or altered): its code does not redeem with
            // this key either.
            self.finish(&job).await;
            self.events
                .emit(&ProvisionEvent::MessageUnreadable { username });
            return;
        };
        let destination = message.destination.clone();
        if job.expires_at <= self.clock.now() {
            self.finish(&job).await;
            self.events.emit(&match code_hash {
                Some(_) => ProvisionEvent::MessageExpired {
                    username,
                    destination,
                },
                None => ProvisionEvent::NoticeFailed {
                    username,
                    destination,
                    error: "not delivered within a day".into(),
                },
            });
            return;
        }
        // A code's message: still the user's pending code? A new request, a redeem or a
        // revoke since the job was queued make it pointless. (A notice is always sent.)
        if let Some(code_hash) = &code_hash {
            match self.store.load(&username).await {
                Ok(record) => {
                    let current = record
                        .as_ref()
                        .and_then(|r| r.pending.as_ref())
                        .is_some_and(|p| p.code_hash.ct_eq(code_hash));
                    if !current {
                        self.finish(&job).await;
                        self.events.emit(&ProvisionEvent::MessageCancelled {
                            username,
                            destination,
                        });
                        return;
                    }
                }
                Err(e) => {
                    // Try again later, without counting an attempt.
                    let due = self.clock.now() + self.config.backoff(1);
                    let _ = self
                        .store
                        .retry_job(&job.id, &self.config.owner, due, job.attempts)
                        .await;
                    tracing::warn!(target: "swivel_provision", "delivery queue: reading the record failed: {e}");
                    return;
                }
            }
        }
        let Some(transport) = self
            .transports
            .iter()
            .find(|(c, _)| *c == job.channel)
            .map(|(_, t)| Arc::clone(t))
        else {
            self.fail(
                &job,
                destination,
                code_hash,
                "no transport for this channel".into(),
            )
            .await;
            return;
        };
        let attempt = job.attempts + 1;
        match transport.deliver(&message).await {
            Ok(()) => {
                self.finish(&job).await;
                self.events.emit(&ProvisionEvent::MessageSent {
                    username,
                    destination,
                });
            }
            Err(e) if e.is_transient() && attempt < self.config.max_attempts => {
                let due = self.clock.now() + self.config.backoff(attempt);
                if let Err(err) = self
                    .store
                    .retry_job(&job.id, &self.config.owner, due, attempt)
                    .await
                {
                    tracing::warn!(target: "swivel_provision", "delivery queue: rescheduling job {} failed: {err}", job.id);
                }
                self.events.emit(&ProvisionEvent::DeliveryRetry {
                    username,
                    destination,
                    attempt,
                    error: e.to_string(),
                });
            }
            Err(e) => self.fail(&job, destination, code_hash, e.to_string()).await,
        }
    }

    /// Fails a job for good: deleted, reported, and a code's code revoked.
    async fn fail(
        &self,
        job: &QueuedJob,
        destination: Destination,
        code_hash: Option<CodeHash>,
        error: String,
    ) {
        self.finish(job).await;
        let username = job.username.clone();
        let Some(code_hash) = code_hash else {
            self.events.emit(&ProvisionEvent::NoticeFailed {
                username,
                destination,
                error,
            });
            return;
        };
        self.events.emit(&ProvisionEvent::DeliveryFailed {
            username,
            destination,
            error,
        });
        // Best effort: the failure was reported already.
        let _ = crate::provisioner::cancel_pending(self.store.as_ref(), &job.username, &code_hash)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut config = DurableConfig::new("a");
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(350);
        let waits: Vec<_> = (1..=5).map(|a| config.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350, 350]);
        assert_eq!(config.backoff(u32::MAX).as_millis(), 350);
    }
}
