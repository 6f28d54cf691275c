//! The shared state of every request, and [`StateBuilder`], which assembles it: the
//! provisioner, the storage parts, PINs, credentials, sessions, the event log and the
//! metrics.

use std::sync::Arc;
use std::time::Duration;

use swivel_provision::{
    Channel, Clock, Delivery, LinkTemplates, Policy, Provisioner, ServerKey, SiteId, SystemClock,
    Transport,
};

use crate::backend::Backend;
use crate::credentials::Credentials;
use crate::error::AppError;
use crate::events::EventLog;
use crate::metrics::store::Timed;
use crate::metrics::{Metrics, MetricsEndpoint};
use crate::pin::PinVault;
use crate::session::Sessions;
use crate::shared_log::SharedLog;
use crate::throttle::{ThrottleConfig, Throttles};

/// Settings-store key of the saved policy (JSON).
pub const POLICY_KEY: &str = "policy";

struct Inner {
    provisioner: Provisioner,
    backend: Backend,
    pins: PinVault,
    credentials: Credentials,
    sessions: Sessions,
    throttles: Throttles,
    log: Arc<EventLog>,
    shared_log: SharedLog,
    metrics: Arc<Metrics>,
    metrics_endpoint: MetricsEndpoint,
    public_url: String,
    secure_cookies: bool,
    request_timeout: Duration,
    auto_links: LinkTemplates,
    auto_site: Option<SiteId>,
}

/// What every handler gets. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("backend", &self.inner.backend)
            .field("public_url", &self.inner.public_url)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The provisioner.
    pub fn provisioner(&self) -> &Provisioner {
        &self.inner.provisioner
    }

    /// The storage parts.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Users' PINs.
    pub fn pins(&self) -> &PinVault {
        &self.inner.pins
    }

    /// Console password and API token.
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// Console sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// The per-client throttles.
    pub fn throttles(&self) -> &Throttles {
        &self.inner.throttles
    }

    /// The event lines of this process (in memory).
    pub fn log(&self) -> &EventLog {
        &self.inner.log
    }

    /// The way to the shared event log in the store (the Log page and
    /// `GET /api/v1/events` read [`Backend::events`]).
    pub fn shared_log(&self) -> &SharedLog {
        &self.inner.shared_log
    }

    /// Waits (at most `limit`) until this instance's events so far are in the store, so
    /// that a page read right after an action shows it. Returns whether they are.
    pub async fn flush_events(&self, limit: Duration) -> bool {
        self.inner.shared_log.flush(limit).await
    }

    /// This process's metrics (`GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether `GET /metrics` is served, and with which token.
    pub fn metrics_endpoint(&self) -> &MetricsEndpoint {
        &self.inner.metrics_endpoint
    }

    /// Base URL of this server.
    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    /// Whether cookies get the `Secure` flag and pages `Strict-Transport-Security` (HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.inner.secure_cookies
    }

    /// How long a request (its body included) may take before it gets `408`.
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Checks a policy, applies it and saves it for every instance sharing the database.
    ///
    /// Links equal to this server's automatic links, and a Site ID equal to the configured
    /// one, are saved as "automatic" (empty), so that a new public URL or Site ID applies
    /// without editing the policy.
    pub async fn save_policy(&self, policy: Policy) -> Result<(), AppError> {
        policy.validate().map_err(swivel_provision::Error::from)?;
        let mut stored = policy;
        if stored.links == self.inner.auto_links {
            stored.links = LinkTemplates::default();
        }
        if stored.site_id.is_some() && stored.site_id == self.inner.auto_site {
            stored.site_id = None;
        }
        let json = serde_json::to_string(&stored).map_err(|e| AppError::Internal(e.to_string()))?;
        self.inner
            .backend
            .settings
            .put_setting(POLICY_KEY, &json)
            .await?;
        let effective = effective(stored, &self.inner.auto_links, &self.inner.auto_site);
        self.inner
            .provisioner
            .set_policy(effective)
            .map_err(swivel_provision::Error::from)?;
        Ok(())
    }

    /// Reloads the saved policy (another instance or the command line may have changed it).
    pub async fn reload_policy(&self) -> Result<(), AppError> {
        if let Some(policy) = load_policy(&self.inner.backend).await? {
            let effective = effective(policy, &self.inner.auto_links, &self.inner.auto_site);
            self.inner
                .provisioner
                .set_policy(effective)
                .map_err(swivel_provision::Error::from)?;
        }
        Ok(())
    }
}

/// The policy in force: empty links and Site ID are filled with the automatic ones.
fn effective(mut policy: Policy, auto_links: &LinkTemplates, auto_site: &Option<SiteId>) -> Policy {
    if policy.links == LinkTemplates::default() {
        policy.links = auto_links.clone();
    }
    if policy.site_id.is_none() {
        policy.site_id = auto_site.clone();
    }
    policy
}

/// The saved policy, if any.
pub async fn load_policy(backend: &Backend) -> Result<Option<Policy>, AppError> {
    let Some(json) = backend.settings.get_setting(POLICY_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_str(&json)
        .map(Some)
        .map_err(|e| AppError::Setup(format!("the saved policy is invalid: {e}")))
}

/// Assembles an [`AppState`].
#[must_use]
pub struct StateBuilder {
    backend: Backend,
    key: ServerKey,
    transports: Vec<(Channel, Arc<dyn Transport>)>,
    clock: Option<Arc<dyn Clock>>,
    delivery: Delivery,
    initial_policy: Policy,
    public_url: String,
    site_id: Option<SiteId>,
    secure_cookies: bool,
    log_lines: usize,
    instance_name: String,
    throttle: ThrottleConfig,
    request_timeout: Duration,
    metrics_endpoint: MetricsEndpoint,
}

impl StateBuilder {
    /// A builder over `backend` with the server key; queued delivery, no transport, public
    /// URL `http://127.0.0.1:8080`.
    pub fn new(backend: Backend, key: ServerKey) -> Self {
        Self {
            backend,
            key,
            transports: Vec::new(),
            clock: None,
            delivery: Delivery::Queued(swivel_provision::QueueConfig::default()),
            initial_policy: Policy::default(),
            public_url: "http://127.0.0.1:8080".into(),
            site_id: None,
            secure_cookies: false,
            log_lines: 1000,
            instance_name: "provision-server".into(),
            throttle: ThrottleConfig::default(),
            request_timeout: crate::config::ConnectionLimits::default().request_timeout(),
            metrics_endpoint: MetricsEndpoint::default(),
        }
    }

    /// A transport for a channel.
    pub fn transport(mut self, channel: Channel, transport: Arc<dyn Transport>) -> Self {
        self.transports.push((channel, transport));
        self
    }

    /// The clock (tests): codes' lifetimes and the shared throttles' windows follow it.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How messages are delivered.
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// The policy used while none is saved (the console and `policy set` save one). Empty
    /// links become this server's landing pages and an empty Site ID
    /// [`StateBuilder::site_id`].
    pub fn initial_policy(mut self, policy: Policy) -> Self {
        self.initial_policy = policy;
        self
    }

    /// Base URL of this server as users reach it.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// This server's Site ID.
    pub fn site_id(mut self, site: Option<SiteId>) -> Self {
        self.site_id = site;
        self
    }

    /// Whether cookies get the `Secure` flag.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// Lines kept for the Log page.
    pub fn log_lines(mut self, n: usize) -> Self {
        self.log_lines = n;
        self
    }

    /// This instance's name in the shared event log (default `provision-server`; the
    /// binary uses `instance_name` or `<hostname>:<port>`).
    pub fn instance_name(mut self, name: impl Into<String>) -> Self {
        self.instance_name = name.into();
        self
    }

    /// How long a request may take before it gets `408` (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The per-client throttles (default: [`ThrottleConfig::default`]).
    pub fn throttle(mut self, config: ThrottleConfig) -> Self {
        self.throttle = config;
        self
    }

    /// Whether `GET /metrics` is served and with which token (default: served to loopback clients, no token).
    pub fn metrics_endpoint(mut self, endpoint: MetricsEndpoint) -> Self {
        self.metrics_endpoint = endpoint;
        self
    }

    /// Loads the policy and builds the state. Must run inside a tokio runtime (the shared
    /// event log's writer task, and the delivery queue when delivery is queued).
    pub async fn build(self) -> Result<AppState, AppError> {
        let auto_links = LinkTemplates::for_base_url(&self.public_url);
        let auto_site = self.site_id.clone();
        let stored = load_policy(&self.backend)
            .await?
            .unwrap_or(self.initial_policy);
        let policy = effective(stored, &auto_links, &auto_site);
        policy.validate().map_err(swivel_provision::Error::from)?;
        let shared_log = SharedLog::start(self.backend.events.clone(), self.instance_name);
        let metrics = Arc::new(Metrics::new());
        let log = Arc::new(
            EventLog::with_shared(self.log_lines, shared_log.clone()).counting(metrics.clone()),
        );
        // The provisioner's store calls are timed (`swivel_store_call_duration_seconds`).
        let durable = matches!(self.delivery, Delivery::Durable(_));
        let builder = match (&self.backend.jobs, &self.backend.joint) {
            (Some(jobs), _) if durable => Provisioner::builder()
                .job_store(Arc::new(Timed::new(jobs.clone(), metrics.clone()))),
            (_, Some(joint)) => Provisioner::builder()
                .store_with_users(Arc::new(Timed::new(joint.clone(), metrics.clone()))),
            (_, None) => Provisioner::builder()
                .store(Arc::new(Timed::new(
                    self.backend.codes.clone(),
                    metrics.clone(),
                )))
                .users(Arc::new(Timed::new(
                    self.backend.users.clone(),
                    metrics.clone(),
                ))),
        };
        let mut builder = builder
            .sites(self.backend.sites.clone())
            .server_key(self.key.clone())
            .policy(policy)
            .events(log.clone())
            .delivery(self.delivery);
        for (channel, transport) in self.transports {
            builder = builder.transport(channel, transport);
        }
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        builder = builder.clock(clock.clone());
        let provisioner = builder.build()?;
        let pins = PinVault::new(&self.key, self.backend.settings.clone());
        let credentials = Credentials::new(&self.key, self.backend.settings.clone());
        let sessions = Sessions::new(&self.key, self.backend.settings.clone());
        let counters = Arc::new(Timed::new(self.backend.counters.clone(), metrics.clone()));
        let throttles = Throttles::shared(self.throttle, counters, clock, &self.key);
        Ok(AppState {
            inner: Arc::new(Inner {
                provisioner,
                backend: self.backend,
                pins,
                credentials,
                sessions,
                throttles,
                log,
                shared_log,
                metrics,
                metrics_endpoint: self.metrics_endpoint,
                public_url: self.public_url,
                secure_cookies: self.secure_cookies,
                request_timeout: self.request_timeout,
                auto_links,
                auto_site,
            }),
        })
    }
}
