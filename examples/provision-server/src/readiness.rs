//! Whether this instance can serve requests now ([`check`]), as `GET /readyz` reports it to
//! a load balancer or an orchestrator.
//!
//! Ready means:
//! - **the store answers**: one real settings read through the backend (the same path every
//!   request takes: the SQLite reader threads, the PostgreSQL pool) within
//!   [`STORE_TIMEOUT`];
//! - **the server key is loaded**: an [`AppState`] cannot exist without one
//!   ([`crate::StateBuilder::new`] takes it, and `serve` loads it before it listens), so
//!   there is nothing to check per request;
//! - **the delivery queue's worker runs**
//!   ([`Provisioner::deliveries_running`](swivel_provision::Provisioner::deliveries_running);
//!   always with direct delivery).
//!
//! The reasons ([`NotReady::reason`]) are fixed words: never an error message, which may
//! name a host, a path or a database URL.

use std::time::Duration;

use crate::state::AppState;

/// How long the store may take to answer the readiness read.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings-store key the readiness read asks for (it needs no value: a missing key is an
/// answer too).
pub const PROBE_KEY: &str = "server/readiness";

/// Why the instance is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The settings read failed or did not answer within [`STORE_TIMEOUT`].
    StoreUnreachable,
    /// The delivery queue's worker has stopped: requested codes could not be sent.
    DeliveryQueueStopped,
}

impl NotReady {
    /// The short plain-text reason `/readyz` answers.
    pub fn reason(self) -> &'static str {
        match self {
            NotReady::StoreUnreachable => "store unreachable",
            NotReady::DeliveryQueueStopped => "delivery queue stopped",
        }
    }
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// Checks that the instance is ready: the delivery queue first (no I/O), then one settings
/// read bounded by [`STORE_TIMEOUT`].
pub async fn check(state: &AppState) -> Result<(), NotReady> {
    if !state.provisioner().deliveries_running() {
        return Err(NotReady::DeliveryQueueStopped);
    }
    let read = state.backend().settings.get_setting(PROBE_KEY);
    match tokio::time::timeout(STORE_TIMEOUT, read).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(NotReady::StoreUnreachable),
    }
}
