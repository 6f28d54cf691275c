//! The configuration file (`--config FILE`, TOML). Every part is optional:
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! public_url = "https://auth.example.com"   # what links and QR codes point at
//! site_id = "DEMO"                          # put into the getsettings/complete links
//! database = "postgres://user@db/provision" # default: <data-dir>/provision.sqlite
//! log_lines = 1000                          # lines of this process kept in memory
//! instance_name = "auth-1"                  # default: <hostname>:<port>
//!
//! [events]                                  # the shared event log in the store
//! retention_days = 90                       # older events are purged (hourly)
//!
//! [tls]
//! cert = "cert.pem"
//! key = "key.pem"
//!
//! [policy]                                  # used at first start; later the console's
//! allow_self_provision = true               # saved policy wins
//! validity_secs = 600
//!
//! [smtp]                                    # see swivel-provision-smtp
//! [sms]                                     # see swivel-provision-sms
//!
//! [outbox]                                  # default: on when neither [smtp] nor [sms] is set
//! enabled = true                            # carry channels that have no transport
//! print = false                             # also print messages (live codes) on stdout
//! dir = "/var/spool/provision"              # default: <data-dir>/outbox
//!
//! [postgres]                                # with a postgres:// database; see PostgresConfig
//! pool_size = 16                            # connections per instance
//! connect_timeout_secs = 5
//! schema = "swivel"                         # default: the connection's (public)
//!
//! [connections]                             # see ConnectionLimits for the defaults
//! header_timeout_secs = 10
//! request_timeout_secs = 30
//! idle_timeout_secs = 60
//! max_connections = 10000
//! max_per_address = 256                     # open connections per client address
//! shutdown_timeout_secs = 10                # SIGTERM/SIGINT: finish requests and deliveries
//!
//! [delivery]                                # see crate::delivery::DeliveryConfig
//! lease_secs = 120                          # a crashed instance's jobs wait this long
//!
//! [throttle]                                # see crate::throttle::ThrottleConfig
//! trusted_proxies = ["127.0.0.1"]           # believe X-Forwarded-For from these peers only
//!
//! [metrics]                                 # GET /metrics; see crate::metrics::MetricsConfig
//! enabled = true                            # default
//! token_file = "metrics.token"              # or token = "..."; none: loopback clients only
//! ```

use std::path::{Path, PathBuf};

use std::time::Duration;

use serde::Deserialize;
use swivel_provision::Policy;

use crate::error::AppError;
use crate::metrics::MetricsConfig;
use crate::throttle::ThrottleConfig;

/// Where messages go for channels without a configured transport (`[outbox]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// Write messages of channels without a transport into `<data-dir>/outbox`. Default: on
    /// when neither `[smtp]` nor `[sms]` is configured, else off (such a channel is then a
    /// `NoSuitableTransport` error).
    pub enabled: Option<bool>,
    /// Also print each outbox message (with its live code) on stdout. Default off; `--demo`
    /// turns it on.
    #[serde(default)]
    pub print: bool,
    /// The directory the messages are written into (created if missing); a relative path is
    /// taken from the data directory. Default: `<data-dir>/outbox`. Instances of a cluster
    /// may share one: each job is written there once, by whichever instance delivers it.
    pub dir: Option<PathBuf>,
}

impl OutboxConfig {
    /// Checks that `dir`, when given, is not empty.
    pub fn validate(&self) -> Result<(), AppError> {
        if self
            .dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().to_string_lossy().trim().is_empty())
        {
            return Err(AppError::Setup(
                "invalid configuration: outbox.dir must not be empty".into(),
            ));
        }
        Ok(())
    }

    /// The directory messages go into: `dir` (taken from `data_dir` when relative), else
    /// `<data_dir>/outbox`.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        match &self.dir {
            Some(dir) => data_dir.join(dir),
            None => data_dir.join("outbox"),
        }
    }
}

/// Connections one client address may hold open unless `max_per_address` says otherwise
/// (room for a load test's 64 clients, and a few NATed households).
pub const DEFAULT_MAX_PER_ADDRESS: usize = 256;

/// Connection limits and timeouts (`[connections]`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// A request's head must arrive within this many seconds of the connection opening or
    /// of the previous answer; so it also closes an idle keep-alive connection (default 10).
    pub header_timeout_secs: u64,
    /// A request, body included, must be answered within this many seconds, else `408`
    /// (default 30).
    pub request_timeout_secs: u64,
    /// A connection on which no byte is read or written for this many seconds is closed: a
    /// stalled body, a client that does not read its answer (default 60).
    pub idle_timeout_secs: u64,
    /// Connections served at once; further ones wait in the listen backlog until one
    /// closes (default 10,000).
    pub max_connections: usize,
    /// Connections one client address (an IPv4 address, an IPv6 /64) may hold open at once,
    /// at most `max_connections`; a connection beyond it is closed unanswered. Default: 256,
    /// or `max_connections` when that is lower ([`ConnectionLimits::per_address`]); equal to
    /// `max_connections` it is not applied (one address's connections then wait for a slot
    /// like any other). The address is the TCP peer's, never a forwarding header: behind a
    /// reverse proxy every client shares the proxy's, so raise it to what the proxy opens.
    pub max_per_address: Option<usize>,
    /// On SIGTERM or SIGINT the server stops accepting, then gives requests in flight and
    /// queued deliveries this many seconds, together, to finish before it exits (default
    /// 10, 1 to 3,600).
    pub shutdown_timeout_secs: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 10_000,
            max_per_address: None,
            shutdown_timeout_secs: 10,
        }
    }
}

impl ConnectionLimits {
    /// Checks that every value is usable.
    pub fn validate(&self) -> Result<(), AppError> {
        let checks = [
            ("header_timeout_secs", self.header_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("max_connections", self.max_connections as u64),
            ("max_per_address", self.per_address() as u64),
        ];
        for (name, value) in checks {
            if value == 0 || value > 1_000_000 {
                return Err(AppError::Setup(format!(
                    "invalid configuration: connections.{name} must be between 1 and 1000000, got {value}"
                )));
            }
        }
        if self.per_address() > self.max_connections {
            return Err(AppError::Setup(format!(
                "invalid configuration: connections.max_per_address ({}) must not exceed connections.max_connections ({})",
                self.per_address(),
                self.max_connections
            )));
        }
        if !(1..=3_600).contains(&self.shutdown_timeout_secs) {
            return Err(AppError::Setup(format!(
                "invalid configuration: connections.shutdown_timeout_secs must be between 1 and 3600, got {}",
                self.shutdown_timeout_secs
            )));
        }
        Ok(())
    }

    /// Connections one client address may hold open: [`ConnectionLimits::max_per_address`],
    /// else [`DEFAULT_MAX_PER_ADDRESS`] or `max_connections`, whichever is lower.
    pub fn per_address(&self) -> usize {
        self.max_per_address
            .unwrap_or(DEFAULT_MAX_PER_ADDRESS.min(self.max_connections))
    }

    /// [`ConnectionLimits::header_timeout_secs`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// [`ConnectionLimits::request_timeout_secs`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// [`ConnectionLimits::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`ConnectionLimits::shutdown_timeout_secs`] as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

/// The PostgreSQL pool (`[postgres]`), used when the database is a `postgres://` URL.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Most connections this instance opens (default 16, 1 to 1,000). Keep `instances ×
    /// pool_size` under the server's `max_connections`.
    pub pool_size: usize,
    /// How long to wait for a new or a free pooled connection, in seconds (default 5, 1 to
    /// 600); past it a request fails with `503`.
    pub connect_timeout_secs: u64,
    /// The PostgreSQL schema holding the tables (created if missing); every instance of a
    /// cluster must name the same one. Default: the connection's (`public`).
    pub schema: Option<String>,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        let d = swivel_provision_postgres::PostgresOptions::default();
        Self {
            pool_size: d.pool_size,
            connect_timeout_secs: d.connect_timeout.as_secs(),
            schema: None,
        }
    }
}

impl PostgresConfig {
    /// Checks that every value is usable (the schema name is checked when connecting).
    pub fn validate(&self) -> Result<(), AppError> {
        if !(1..=1_000).contains(&self.pool_size) {
            return Err(AppError::Setup(format!(
                "invalid configuration: postgres.pool_size must be between 1 and 1000, got {}",
                self.pool_size
            )));
        }
        if !(1..=600).contains(&self.connect_timeout_secs) {
            return Err(AppError::Setup(format!(
                "invalid configuration: postgres.connect_timeout_secs must be between 1 and 600, got {}",
                self.connect_timeout_secs
            )));
        }
        Ok(())
    }

    /// The store's options.
    pub fn options(&self) -> swivel_provision_postgres::PostgresOptions {
        swivel_provision_postgres::PostgresOptions {
            pool_size: self.pool_size,
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            schema: self.schema.clone(),
        }
    }
}

/// The shared event log (`[events]`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Events older than this many days are purged, at start and hourly (default 90, 1 to
    /// 3,650).
    pub retention_days: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

impl EventsConfig {
    /// Checks that every value is usable.
    pub fn validate(&self) -> Result<(), AppError> {
        if !(1..=3_650).contains(&self.retention_days) {
            return Err(AppError::Setup(format!(
                "invalid configuration: events.retention_days must be between 1 and 3650, got {}",
                self.retention_days
            )));
        }
        Ok(())
    }

    /// [`EventsConfig::retention_days`] as a duration.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 86_400)
    }
}

/// Longest instance name, in bytes.
pub const MAX_INSTANCE_NAME_BYTES: usize = 128;

/// Checks an instance name: 1 to [`MAX_INSTANCE_NAME_BYTES`] bytes, no control characters.
pub fn check_instance_name(name: &str) -> Result<(), AppError> {
    let bad = |why: &str| {
        Err(AppError::Setup(format!(
            "invalid configuration: instance_name {why}"
        )))
    };
    if name.trim().is_empty() {
        return bad("must not be empty");
    }
    if name.len() > MAX_INSTANCE_NAME_BYTES {
        return bad(&format!(
            "must be at most {MAX_INSTANCE_NAME_BYTES} bytes, got {}",
            name.len()
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || swivel_provision::types::is_bidi_or_separator(c))
    {
        return bad("must not contain control, bidirectional or separator characters");
    }
    Ok(())
}

/// The default instance name: `<hostname>:<port>`, or the listen address when the host
/// name cannot be read.
pub fn default_instance_name(listen: std::net::SocketAddr) -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| check_instance_name(h).is_ok() && h.len() < MAX_INSTANCE_NAME_BYTES - 6);
    match host {
        Some(h) => format!("{h}:{}", listen.port()),
        None => listen.to_string(),
    }
}

/// Certificate and key files (PEM) for HTTPS.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Base URL of this server as users reach it (links, QR codes).
    pub public_url: Option<String>,
    /// The Site ID of this server (links; SSD).
    pub site_id: Option<String>,
    /// `postgres://...`, `memory`, or a SQLite file path.
    pub database: Option<String>,
    /// Event lines of this process kept in memory.
    pub log_lines: Option<usize>,
    /// This instance's name in the shared event log (default `<hostname>:<port>`).
    pub instance_name: Option<String>,
    /// The shared event log.
    #[serde(default)]
    pub events: EventsConfig,
    /// HTTPS.
    pub tls: Option<TlsFiles>,
    /// The initial policy (checked: an out-of-range value is an error naming the setting).
    pub policy: Option<Policy>,
    /// SMTP transport settings (`swivel-provision-smtp`).
    pub smtp: Option<toml::Table>,
    /// SMS transport settings (`swivel-provision-sms`).
    pub sms: Option<toml::Table>,
    /// The outbox (development transport).
    #[serde(default)]
    pub outbox: OutboxConfig,
    /// The PostgreSQL pool.
    #[serde(default)]
    pub postgres: PostgresConfig,
    /// Connection limits and timeouts.
    #[serde(default)]
    pub connections: ConnectionLimits,
    /// Per-client throttles.
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// Message delivery: retries, and the durable queue's lease and polling.
    #[serde(default)]
    pub delivery: crate::delivery::DeliveryConfig,
    /// `GET /metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, AppError> {
        let config: Self = toml::from_str(text)
            .map_err(|e| AppError::Setup(format!("invalid configuration: {e}")))?;
        config.connections.validate()?;
        config.outbox.validate()?;
        config.postgres.validate()?;
        config.throttle.validate()?;
        config.events.validate()?;
        config.delivery.validate()?;
        config.metrics.validate()?;
        if let Some(name) = &config.instance_name {
            check_instance_name(name)?;
        }
        Ok(config)
    }

    /// Whether the outbox carries channels without a transport.
    pub fn outbox_enabled(&self) -> bool {
        self.outbox
            .enabled
            .unwrap_or(self.smtp.is_none() && self.sms.is_none())
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::Setup(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| AppError::Setup(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_the_policy() {
        let c = FileConfig::parse(
            "listen = \"127.0.0.1:9000\"\n[policy]\nallow_self_provision = true\nvalidity_secs = 120\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:9000"));
        let p = c.policy.unwrap();
        assert!(p.allow_self_provision);
        assert_eq!(p.validity_secs(), 120);
        assert_eq!(c.tls.unwrap().key, PathBuf::from("k.pem"));
        let e = FileConfig::parse("[policy]\nvalidity_secs = 5\n").unwrap_err();
        assert!(e.to_string().contains("validity_secs"), "{e}");
        assert!(FileConfig::parse("lisen = 1").is_err());
    }

    #[test]
    fn connection_limits_and_outbox_defaults() {
        let c = FileConfig::parse("").unwrap();
        assert_eq!(c.connections, ConnectionLimits::default());
        assert_eq!(c.connections.header_timeout(), Duration::from_secs(10));
        assert_eq!(c.connections.max_connections, 10_000);
        assert!(c.outbox_enabled() && !c.outbox.print);
        let c = FileConfig::parse("[smtp]\nhost = \"x\"\n").unwrap();
        assert!(
            !c.outbox_enabled(),
            "a configured transport turns the outbox off"
        );
        let c = FileConfig::parse("[smtp]\nhost = \"x\"\n[outbox]\nenabled = true\n").unwrap();
        assert!(c.outbox_enabled());
        let data = Path::new("/srv/data");
        assert_eq!(c.outbox.dir_in(data), data.join("outbox"));
        let c = FileConfig::parse("[outbox]\ndir = \"/var/spool/provision\"\n").unwrap();
        assert_eq!(c.outbox.dir_in(data), Path::new("/var/spool/provision"));
        let c = FileConfig::parse("[outbox]\ndir = \"spool\"\n").unwrap();
        assert_eq!(c.outbox.dir_in(data), data.join("spool"));
        for bad in ["dir = \"\"", "dir = \"  \"", "dir = 3"] {
            let e = FileConfig::parse(&format!("[outbox]\n{bad}\n")).unwrap_err();
            assert!(e.to_string().contains("dir"), "{bad}: {e}");
        }
        let e = FileConfig::parse("[outbox]\ndir = \"\"\n").unwrap_err();
        assert!(
            e.to_string().contains("outbox.dir must not be empty"),
            "{e}"
        );
        let c = FileConfig::parse("[connections]\nheader_timeout_secs = 2\n").unwrap();
        assert_eq!(c.connections.header_timeout_secs, 2);
        assert_eq!(c.connections.request_timeout_secs, 30);
        let e = FileConfig::parse("[connections]\nmax_connections = 0\n").unwrap_err();
        assert!(e.to_string().contains("connections.max_connections"), "{e}");
    }

    #[test]
    fn max_per_address_default_and_bounds() {
        let c = FileConfig::parse("").unwrap();
        assert_eq!(c.connections.per_address(), 256);
        let c =
            FileConfig::parse("[connections]\nmax_connections = 8\nmax_per_address = 8\n").unwrap();
        assert_eq!(c.connections.per_address(), 8);
        // Unset, it follows a lower global cap.
        let c = FileConfig::parse("[connections]\nmax_connections = 100\n").unwrap();
        assert_eq!(c.connections.per_address(), 100);
        for (bad, says) in [
            (
                "max_per_address = 0",
                "connections.max_per_address must be between 1",
            ),
            (
                "max_per_address = 10001",
                "connections.max_per_address (10001) must not exceed connections.max_connections (10000)",
            ),
            (
                "max_connections = 100\nmax_per_address = 101",
                "connections.max_per_address (101) must not exceed connections.max_connections (100)",
            ),
        ] {
            let e = FileConfig::parse(&format!("[connections]\n{bad}\n")).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn shutdown_timeout_default_and_bounds() {
        let c = FileConfig::parse("").unwrap();
        assert_eq!(c.connections.shutdown_timeout(), Duration::from_secs(10));
        for ok in [1, 3600] {
            let c = FileConfig::parse(&format!("[connections]\nshutdown_timeout_secs = {ok}\n"))
                .unwrap();
            assert_eq!(c.connections.shutdown_timeout_secs, ok);
        }
        for bad in ["0", "3601", "-1", "\"ten\""] {
            let e = FileConfig::parse(&format!("[connections]\nshutdown_timeout_secs = {bad}\n"))
                .unwrap_err();
            assert!(
                e.to_string().contains("shutdown_timeout_secs"),
                "{bad}: {e}"
            );
        }
        let e = FileConfig::parse("[connections]\nshutdown_timeout_secs = 0\n").unwrap_err();
        assert!(e.to_string().contains("between 1 and 3600, got 0"), "{e}");
    }

    #[test]
    fn postgres_pool_settings() {
        let c = FileConfig::parse("").unwrap();
        let o = c.postgres.options();
        assert_eq!(o, swivel_provision_postgres::PostgresOptions::default());
        let c = FileConfig::parse(
            "[postgres]\npool_size = 48\nconnect_timeout_secs = 2\nschema = \"swivel\"\n",
        )
        .unwrap();
        let o = c.postgres.options();
        assert_eq!(o.pool_size, 48);
        assert_eq!(o.connect_timeout, Duration::from_secs(2));
        assert_eq!(o.schema.as_deref(), Some("swivel"));
        for (bad, names) in [
            ("pool_size = 0", "postgres.pool_size"),
            ("pool_size = 5000", "postgres.pool_size"),
            ("connect_timeout_secs = 0", "postgres.connect_timeout_secs"),
            ("pool = 3", "unknown field"),
        ] {
            let e = FileConfig::parse(&format!("[postgres]\n{bad}\n")).unwrap_err();
            assert!(e.to_string().contains(names), "{bad}: {e}");
        }
    }

    #[test]
    fn events_retention_and_instance_name() {
        let c = FileConfig::parse("").unwrap();
        assert_eq!(c.events.retention_days, 90);
        assert_eq!(c.events.retention(), Duration::from_secs(90 * 86_400));
        assert_eq!(c.instance_name, None);
        let c = FileConfig::parse("instance_name = \"auth-1\"\n[events]\nretention_days = 3650\n")
            .unwrap();
        assert_eq!(c.instance_name.as_deref(), Some("auth-1"));
        assert_eq!(c.events.retention_days, 3650);
        for (bad, names) in [
            (
                "[events]\nretention_days = 0\n",
                "between 1 and 3650, got 0",
            ),
            ("[events]\nretention_days = 3651\n", "events.retention_days"),
            ("[events]\nretention_days = -1\n", "retention_days"),
            ("[events]\nkeep = 3\n", "unknown field"),
            ("instance_name = \"\"\n", "instance_name must not be empty"),
            (
                "instance_name = \"a\\nb\"\n",
                "instance_name must not contain",
            ),
        ] {
            let e = FileConfig::parse(bad).unwrap_err();
            assert!(e.to_string().contains(names), "{bad}: {e}");
        }
        let long = format!("instance_name = \"{}\"\n", "x".repeat(129));
        assert!(
            FileConfig::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("at most 128")
        );
        let addr: std::net::SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let name = default_instance_name(addr);
        assert!(name.ends_with(":8443"), "{name}");
        assert!(check_instance_name(&name).is_ok(), "{name}");
    }
}
