//! Delivery of provision messages: direct (in the request) or through an in-process queue
//! that retries transient transport errors with backoff (feature `tokio`).

use std::sync::Arc;
use std::time::Duration;

use crate::code::CodeHash;
#[cfg(feature = "tokio")]
use crate::error::TransportError;
#[cfg(feature = "tokio")]
use crate::events::{EventSink, ProvisionEvent};
use crate::transport::{ProvisionMessage, Transport};

/// How the queue retries.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Messages waiting at most; a request beyond that is refused with a transient error
    /// (and its code revoked).
    pub capacity: usize,
    /// Delivery attempts per message (first try included).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled on each retry.
    pub initial_backoff: Duration,
    /// Longest wait between two retries.
    pub max_backoff: Duration,
    /// Messages delivered at the same time.
    pub concurrency: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            concurrency: 16,
        }
    }
}

/// One message to deliver, with what is needed to report and undo it.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct Job {
    pub(crate) message: ProvisionMessage,
    pub(crate) transport: Arc<dyn Transport>,
    /// The code's hash, to revoke it when delivery fails (`None`: a notice).
    pub(crate) code_hash: Option<CodeHash>,
}

/// Called when a queued delivery failed for good, to revoke the code.
#[cfg(feature = "tokio")]
pub(crate) type OnFailure =
    Arc<dyn Fn(ProvisionMessage, Option<CodeHash>) -> futures_lite::BoxFuture + Send + Sync>;

#[cfg(feature = "tokio")]
pub(crate) mod futures_lite {
    /// A boxed, sendable future.
    pub(crate) type BoxFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;
}

/// Delivers with retries; returns the last error when it gives up.
#[cfg(feature = "tokio")]
pub(crate) async fn deliver_with_retry(
    job: &Job,
    config: &QueueConfig,
    events: &dyn EventSink,
) -> Result<(), TransportError> {
    let mut backoff = config.initial_backoff;
    let mut attempt = 1;
    loop {
        match job.transport.deliver(&job.message).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < config.max_attempts => {
                events.emit(&ProvisionEvent::DeliveryRetry {
                    username: job.message.username.clone(),
                    destination: job.message.destination.clone(),
                    attempt,
                    error: e.to_string(),
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The queue: a channel into a worker task that delivers up to `concurrency` messages at a
/// time.
#[cfg(feature = "tokio")]
pub(crate) struct Queue {
    sender: tokio::sync::mpsc::Sender<Job>,
    idle: Arc<Idle>,
}

#[cfg(feature = "tokio")]
#[derive(Default)]
pub(crate) struct Idle {
    in_flight: std::sync::atomic::AtomicUsize,
    notify: tokio::sync::Notify,
}

#[cfg(feature = "tokio")]
impl Idle {
    fn done(&self) {
        if self
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.notify.notify_waiters();
        }
    }
}

#[cfg(feature = "tokio")]
impl Queue {
    /// Starts the worker on the current tokio runtime.
    pub(crate) fn start(
        config: QueueConfig,
        events: Arc<dyn EventSink>,
        on_failure: OnFailure,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Job>(config.capacity.max(1));
        let idle = Arc::new(Idle::default());
        let worker_idle = idle.clone();
        let config = Arc::new(config);
        let permits = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
        runtime.spawn(async move {
            while let Some(job) = receiver.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let (config, events, on_failure, idle) = (
                    config.clone(),
                    events.clone(),
                    on_failure.clone(),
                    worker_idle.clone(),
                );
                tokio::spawn(async move {
                    match deliver_with_retry(&job, &config, events.as_ref()).await {
                        Ok(()) => events.emit(&ProvisionEvent::MessageSent {
                            username: job.message.username.clone(),
                            destination: job.message.destination.clone(),
                        }),
                        Err(e) => {
                            let (username, destination, error) = (
                                job.message.username.clone(),
                                job.message.destination.clone(),
                                e.to_string(),
                            );
                            events.emit(&if job.code_hash.is_some() {
                                ProvisionEvent::DeliveryFailed {
                                    username,
                                    destination,
                                    error,
                                }
                            } else {
                                ProvisionEvent::NoticeFailed {
                                    username,
                                    destination,
                                    error,
                                }
                            });
                            on_failure(job.message, job.code_hash).await;
                        }
                    }
                    drop(permit);
                    idle.done();
                });
            }
        });
        Self { sender, idle }
    }

    /// Queues a job; fails (giving back its code hash) when the queue is full or stopped.
    pub(crate) fn push(&self, job: Job) -> Result<(), Option<CodeHash>> {
        self.idle
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.sender.try_send(job).map_err(|e| {
            self.idle.done();
            match e {
                tokio::sync::mpsc::error::TrySendError::Full(j)
                | tokio::sync::mpsc::error::TrySendError::Closed(j) => j.code_hash,
            }
        })
    }

    /// Whether the worker task still takes jobs: it holds the receiving end, which is gone
    /// once the task has ended (its runtime shut down, or it panicked).
    pub(crate) fn is_running(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Waits until no message is queued or being delivered.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notify.notified();
            if self
                .idle
                .in_flight
                .load(std::sync::atomic::Ordering::Acquire)
                == 0
            {
                return;
            }
            notified.await;
        }
    }
}
