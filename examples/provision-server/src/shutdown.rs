//! Graceful shutdown of `serve` on SIGTERM or SIGINT, within one deadline
//! (`[connections] shutdown_timeout_secs`):
//!
//! 1. stop accepting connections (the listener is closed, so new ones are refused);
//! 2. let requests in flight finish; idle keep-alive connections are closed at once;
//! 3. at the deadline, close whatever is still open;
//! 4. wait for the delivery queue to send what was queued, until the same deadline;
//! 5. write the events still waiting for the shared event log, until the same deadline.
//!
//! [`Shutdown::watch`] registers for the signals (before the server says it listens, so a
//! signal sent once it has said so is never missed); [`Shutdown::finish`] runs steps 3–4
//! after the server returned. Then `serve` prints `provision-server stopped.` and the
//! process exits with status 0.

use std::time::Duration;

use swivel_provision::Provisioner;
use tokio::time::Instant;

use crate::error::AppError;
use crate::shared_log::SharedLog;

/// The shutdown of one server: watches for the signals and knows the deadline they set.
#[derive(Debug)]
pub struct Shutdown {
    handle: axum_server::Handle,
    deadline: tokio::sync::oneshot::Receiver<Instant>,
    grace: Duration,
}

impl Shutdown {
    /// Registers for SIGTERM and SIGINT now and starts a task that, on the first of them,
    /// shuts `handle`'s server down gracefully with `grace` to finish, and closes every
    /// connection still open once `grace` has passed (also one accepted while the
    /// connection cap was reached, which axum-server's own countdown misses).
    pub fn watch(handle: axum_server::Handle, grace: Duration) -> Result<Self, AppError> {
        let signal = signals()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server = handle.clone();
        tokio::spawn(async move {
            signal.await;
            let deadline = Instant::now() + grace;
            let _ = tx.send(deadline);
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: finishing requests in flight and queued deliveries"
            );
            server.graceful_shutdown(Some(grace));
            tokio::time::sleep_until(deadline).await;
            server.shutdown();
        });
        Ok(Self {
            handle,
            deadline: rx,
            grace,
        })
    }

    /// After the server returned: reports connections closed at the deadline, then waits for
    /// the delivery queue to be idle and the shared event log to be written, until the same
    /// deadline (reporting what was left).
    pub async fn finish(mut self, provisioner: &Provisioner, events: &SharedLog) {
        let deadline = self
            .deadline
            .try_recv()
            .unwrap_or_else(|_| Instant::now() + self.grace);
        let open = self.handle.connection_count();
        if open > 0 {
            tracing::warn!(
                connections = open,
                "shutdown deadline reached: connections still open were closed"
            );
        }
        // The in-process queue delivers what it holds; the durable queue finishes the
        // deliveries under way and gives the rest of its claimed jobs back to the store.
        match tokio::time::timeout_at(deadline, provisioner.stop_deliveries()).await {
            Err(_) => {
                tracing::warn!("shutdown deadline reached: deliveries under way were cut off")
            }
            Ok(Err(e)) => tracing::warn!(
                error = %crate::error::error_chain(&e),
                "giving queued messages back failed: other instances take them when their lease runs out"
            ),
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(jobs = n, "queued messages given back to the store"),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !events.flush(left).await {
            tracing::warn!("shutdown deadline reached: events were not written to the shared log");
        }
    }
}

/// A future that ends at the first SIGTERM or SIGINT, registered before it is returned.
#[cfg(unix)]
fn signals() -> Result<impl std::future::Future<Output = ()> + Send + 'static, AppError> {
    use tokio::signal::unix::{SignalKind, signal};
    let register = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| AppError::Setup(format!("cannot watch for {name}: {e}")))
    };
    let mut term = register(SignalKind::terminate(), "SIGTERM")?;
    let mut int = register(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// A future that ends at the first Ctrl-C.
#[cfg(not(unix))]
fn signals() -> Result<impl std::future::Future<Output = ()> + Send + 'static, AppError> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
