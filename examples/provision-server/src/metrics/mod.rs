//! The server's Prometheus metrics, served at `GET /metrics` in the OpenMetrics text
//! format (which Prometheus reads) by [`crate::routes::metrics`].
//!
//! What is counted, and where from:
//! - the core's events ([`Metrics`] is an [`EventSink`]): codes created by origin,
//!   redeems by outcome, requests from unknown devices, account locks, strings downloads,
//!   one-time code checks by outcome, deliveries by channel and outcome;
//! - every HTTP answer by route template, method and status, with its latency
//!   ([`http::track`]);
//! - the latency of every call the provisioner makes to its store ([`store::Timed`]).
//!
//! No label holds a username, an address, a code or a raw path: labels are route
//! templates, fixed words and status numbers, so their number is bounded.

pub mod config;
pub mod http;
pub mod store;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use swivel_provision::{EventSink, Origin, ProvisionEvent};

pub use config::{MetricsConfig, MetricsEndpoint};

/// The `origin` label of a created code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabel {
    origin: &'static str,
}

/// An `outcome` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The labels of a delivery.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: &'static str,
    outcome: &'static str,
}

/// The labels of an HTTP answer.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// The labels of an HTTP latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// The labels of a store call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    op: &'static str,
    result: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn store_histogram() -> Histogram {
    // 0.1 ms to about 3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every metric of the server, and the registry that encodes them. One per process
/// ([`crate::AppState::metrics`]); cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    codes_created: Family<OriginLabel, Counter>,
    redeems: Family<OutcomeLabel, Counter>,
    unknown_mobile: Counter,
    account_locks: Counter,
    self_service_refused: Counter,
    strings_downloads: Counter,
    otc_checks: Family<OutcomeLabel, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    queue_depth: Gauge,
    queue_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Histograms<RouteLabels>,
    store_duration: Histograms<StoreLabels>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `swivel_` prefix.
    pub fn new() -> Self {
        let mut m = Self {
            registry: Registry::with_prefix("swivel"),
            codes_created: Family::default(),
            redeems: Family::default(),
            unknown_mobile: Counter::default(),
            account_locks: Counter::default(),
            self_service_refused: Counter::default(),
            strings_downloads: Counter::default(),
            otc_checks: Family::default(),
            deliveries: Family::default(),
            queue_depth: Gauge::default(),
            queue_oldest_age: Gauge::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram),
            store_duration: Family::new_with_constructor(store_histogram),
        };
        let r = &mut m.registry;
        r.register(
            "codes_created",
            "Provision codes created, by who asked (admin, self_service)",
            m.codes_created.clone(),
        );
        r.register(
            "redeems",
            "Provision code redeems by outcome (success, wrong_code, burned, expired, locked, no_code, malformed)",
            m.redeems.clone(),
        );
        r.register(
            "unknown_mobile_requests",
            "Redeems and strings downloads from an unknown user or device",
            m.unknown_mobile.clone(),
        );
        r.register(
            "account_locks",
            "Accounts locked after too many failed redeems or one-time codes",
            m.account_locks.clone(),
        );
        r.register(
            "self_service_refused",
            "Self-service code requests refused (policy, rate limit, pending administrator code)",
            m.self_service_refused.clone(),
        );
        r.register(
            "strings_downloads",
            "Security strings downloads",
            m.strings_downloads.clone(),
        );
        r.register(
            "otc_checks",
            "One-time code checks by outcome (accepted, rejected)",
            m.otc_checks.clone(),
        );
        r.register(
            "deliveries",
            "Provision code deliveries by channel (email, sms) and outcome (queued, sent, retry, failed, expired, cancelled)",
            m.deliveries.clone(),
        );
        r.register(
            "delivery_queue_depth",
            "Messages waiting in the durable delivery queue (the whole store, read at scrape time)",
            m.queue_depth.clone(),
        );
        r.register(
            "delivery_queue_oldest_age_seconds",
            "Age of the oldest message in the durable delivery queue (0: empty)",
            m.queue_oldest_age.clone(),
        );
        r.register(
            "http_requests",
            "HTTP answers by method, route template and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            m.http_duration.clone(),
        );
        r.register(
            "store_call_duration_seconds",
            "Time of the provisioner's store calls, by operation and result (ok, error)",
            m.store_duration.clone(),
        );
        m
    }

    /// Every metric in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one HTTP answer and its latency. `route` is the matched route template (or
    /// a fixed word), never a raw path.
    pub fn observe_http(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// Sets the durable queue's depth and the age of its oldest message (read at scrape
    /// time, so every instance sharing the store reports the same).
    pub fn set_queue(&self, depth: u64, oldest_age_secs: f64) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.queue_oldest_age.set(oldest_age_secs.max(0.0));
    }

    /// Records the latency of one store call.
    pub fn observe_store(&self, op: &'static str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.store_duration
            .get_or_create(&StoreLabels { op, result })
            .observe(seconds);
    }

    fn delivery(&self, destination: &swivel_provision::Destination, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                channel: destination.channel.as_str(),
                outcome,
            })
            .inc();
    }
}

impl EventSink for Metrics {
    fn emit(&self, event: &ProvisionEvent) {
        use ProvisionEvent::*;
        let outcome = |outcome| OutcomeLabel { outcome };
        match event {
            CodeCreated { origin, .. } => {
                let origin = match origin {
                    Origin::Admin => "admin",
                    Origin::SelfService => "self_service",
                };
                self.codes_created
                    .get_or_create(&OriginLabel { origin })
                    .inc();
            }
            Provisioned { .. } => {
                self.redeems.get_or_create(&outcome("success")).inc();
            }
            ProvisionFailed { reason, .. } => {
                self.redeems.get_or_create(&outcome(reason.as_str())).inc();
            }
            UnknownMobileUser => {
                self.unknown_mobile.inc();
            }
            AccountLocked { .. } => {
                self.account_locks.inc();
            }
            SelfServiceRefused { .. } => {
                self.self_service_refused.inc();
            }
            StringsDownloaded { .. } => {
                self.strings_downloads.inc();
            }
            OtcAccepted { .. } => {
                self.otc_checks.get_or_create(&outcome("accepted")).inc();
            }
            OtcRejected { .. } => {
                self.otc_checks.get_or_create(&outcome("rejected")).inc();
            }
            MessageQueued { destination, .. } => self.delivery(destination, "queued"),
            MessageSent { destination, .. } => self.delivery(destination, "sent"),
            DeliveryRetry { destination, .. } => self.delivery(destination, "retry"),
            DeliveryFailed { destination, .. } => self.delivery(destination, "failed"),
            MessageExpired { destination, .. } => self.delivery(destination, "expired"),
            MessageCancelled { destination, .. } => self.delivery(destination, "cancelled"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::{Destination, RedeemFailure, Username};

    #[test]
    fn events_move_their_counters_without_naming_the_user() {
        let m = Metrics::new();
        let username = Username::parse("secret-name").unwrap();
        let destination = Destination::email("secret-name@example.com").unwrap();
        m.emit(&ProvisionEvent::ProvisionFailed {
            username: username.clone(),
            reason: RedeemFailure::Expired,
        });
        m.emit(&ProvisionEvent::MessageSent {
            username,
            destination,
        });
        let text = m.encode();
        assert!(
            text.contains("swivel_redeems_total{outcome=\"expired\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("swivel_deliveries_total{channel=\"email\",outcome=\"sent\"} 1"),
            "{text}"
        );
        assert!(!text.contains("secret-name"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
