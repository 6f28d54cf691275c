//! How provision messages are delivered (`[delivery]`): through the durable queue in the
//! store where the store keeps one (SQLite, PostgreSQL), else through the in-process queue
//! (memory). Both retry transient transport errors with backoff.
//!
//! ```toml
//! [delivery]
//! max_attempts = 5          # first try included, 1 to 100
//! initial_backoff_ms = 500  # doubled per retry, 10 to 3,600,000
//! max_backoff_secs = 30     # 1 to 86,400
//! concurrency = 16          # messages delivered at once, 1 to 1,024
//! lease_secs = 120          # a claimed job is this instance's for this long, 5 to 86,400
//! poll_interval_ms = 1000   # how often jobs of other instances are looked for, 10 to 60,000
//! ```

use std::time::Duration;

use serde::Deserialize;
use swivel_provision::{Delivery, DurableConfig, QueueConfig};

use crate::error::AppError;

/// The `[delivery]` section.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Delivery attempts per message, first try included (default 5).
    pub max_attempts: u32,
    /// Wait before the first retry in milliseconds, doubled on each retry (default 500).
    pub initial_backoff_ms: u64,
    /// Longest wait between two retries in seconds (default 30).
    pub max_backoff_secs: u64,
    /// Messages delivered at the same time (default 16).
    pub concurrency: usize,
    /// How long a job this instance claimed stays its own before another instance may take
    /// it (default 120 s): longer than one delivery can take. After a crash, its jobs are
    /// delivered by another instance (or by this one after a restart) once it ran out.
    pub lease_secs: u64,
    /// How often the queue is looked at for jobs this process was not told about (queued
    /// by other instances, retries coming due, leases running out), in milliseconds
    /// (default 1000).
    pub poll_interval_ms: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let durable = DurableConfig::new("");
        Self {
            max_attempts: durable.max_attempts,
            initial_backoff_ms: durable.initial_backoff.as_millis() as u64,
            max_backoff_secs: durable.max_backoff.as_secs(),
            concurrency: durable.concurrency,
            lease_secs: durable.lease.as_secs(),
            poll_interval_ms: durable.poll_interval.as_millis() as u64,
        }
    }
}

impl DeliveryConfig {
    /// Checks every value against its range; an error names the setting.
    pub fn validate(&self) -> Result<(), AppError> {
        let checks: [(&str, u64, u64, u64); 6] = [
            ("max_attempts", self.max_attempts.into(), 1, 100),
            ("initial_backoff_ms", self.initial_backoff_ms, 10, 3_600_000),
            ("max_backoff_secs", self.max_backoff_secs, 1, 86_400),
            ("concurrency", self.concurrency as u64, 1, 1_024),
            ("lease_secs", self.lease_secs, 5, 86_400),
            ("poll_interval_ms", self.poll_interval_ms, 10, 60_000),
        ];
        for (name, value, low, high) in checks {
            if !(low..=high).contains(&value) {
                return Err(AppError::Setup(format!(
                    "invalid configuration: delivery.{name} must be between {low} and {high}, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// The delivery for a store: durable, claiming as `instance`, when the store keeps a
    /// queue; else the in-process queue.
    pub fn delivery(&self, durable: bool, instance: &str) -> Delivery {
        let backoff = Duration::from_millis(self.initial_backoff_ms);
        let max_backoff = Duration::from_secs(self.max_backoff_secs);
        if durable {
            let mut config = DurableConfig::new(instance);
            config.max_attempts = self.max_attempts;
            config.initial_backoff = backoff;
            config.max_backoff = max_backoff;
            config.concurrency = self.concurrency;
            config.lease = Duration::from_secs(self.lease_secs);
            config.poll_interval = Duration::from_millis(self.poll_interval_ms);
            Delivery::Durable(config)
        } else {
            Delivery::Queued(QueueConfig {
                max_attempts: self.max_attempts,
                initial_backoff: backoff,
                max_backoff,
                concurrency: self.concurrency,
                ..QueueConfig::default()
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_cores_and_every_bound_is_checked() {
        let c = DeliveryConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!((c.max_attempts, c.lease_secs), (5, 120));
        for (bad, name) in [
            (
                DeliveryConfig {
                    max_attempts: 0,
                    ..c
                },
                "delivery.max_attempts",
            ),
            (DeliveryConfig { lease_secs: 4, ..c }, "delivery.lease_secs"),
            (
                DeliveryConfig {
                    concurrency: 2_000,
                    ..c
                },
                "delivery.concurrency",
            ),
            (
                DeliveryConfig {
                    poll_interval_ms: 5,
                    ..c
                },
                "delivery.poll_interval_ms",
            ),
            (
                DeliveryConfig {
                    initial_backoff_ms: 0,
                    ..c
                },
                "delivery.initial_backoff_ms",
            ),
            (
                DeliveryConfig {
                    max_backoff_secs: 0,
                    ..c
                },
                "delivery.max_backoff_secs",
            ),
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        assert!(matches!(c.delivery(true, "a"), Delivery::Durable(_)));
        assert!(matches!(c.delivery(false, "a"), Delivery::Queued(_)));
    }
}
