//! Every per-client throttle of the server, in one place (`[throttle]` in the
//! configuration): failed AgentXML requests, `/login` posts, self-service submissions,
//! console logins, API requests with a wrong token, SSD requests and `TokenIndex` requests,
//! each per client address and (except console logins and wrong API tokens) for the whole
//! server. The rates are kept by [`governor`] (GCRA); an address over its allowance gets
//! `429` with `Retry-After` (AgentXML: a `SASResponse` `FAIL`; the API: a problem; SSD: a
//! `getServerDetailsResponse` error), see [`Throttled`].
//!
//! Wrong API tokens count like failed AgentXML requests: only failures count, and an
//! address past its allowance is refused whatever it sends, the right token included (so
//! that a guess past the allowance is never checked). There is no server-wide allowance of
//! wrong tokens: it would let anyone lock the administrators out of the API.
//!
//! IPv6 clients are counted per /64 (one subscriber usually holds a whole /64), IPv4-mapped
//! IPv6 addresses as their IPv4 address.
//!
//! Wrong one-time codes are limited per account and client address ([`pair`]): a stranger
//! cannot spend the user's allowance.
//!
//! Console logins are counted *before* the password is hashed, at most
//! [`ThrottleConfig::console_hashes_at_once`] Argon2 hashes run at once (the others wait
//! their turn), and there is no server-wide login rate: one address's failures never refuse
//! the right password from another address.
//!
//! # Across a cluster
//! Built with [`Throttles::shared`] (as [`crate::StateBuilder`] does, on the backend's
//! [`CounterStore`]), every limit also counts in the store ([`shared`]), per client address
//! and for the server, in one-minute windows: several instances sharing one database (or
//! several processes on one SQLite file) share one allowance. The in-process rate stays
//! in front: it refuses floods without a store write, and keeps applying when the store
//! fails (the shared count then fails open, with a warning).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use swivel_provision::{CounterStore, ServerKey};

use crate::error::AppError;

pub mod pair;
pub mod shared;
use pair::PairLimit;
use shared::{Counters, SharedLimit};

/// The `[throttle]` section. Every rate is "per minute", with a burst of the same size.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Peers (reverse proxies) whose `X-Forwarded-For` header names the client. Empty
    /// (default): the header is ignored and the peer address is the client, so behind a
    /// reverse proxy every client would share the proxy's allowance: list the proxy here
    /// (the server warns once when forwarding headers come from a peer not listed).
    pub trusted_proxies: Vec<IpAddr>,
    /// Failed AgentXML requests per client address per minute (default 10).
    pub agentxml_failures_per_ip: u32,
    /// Failed AgentXML requests for the whole server per minute (default 600).
    pub agentxml_failures_global: u32,
    /// `/login` posts per client address per minute (default 10).
    pub login_per_ip: u32,
    /// `/login` posts for the whole server per minute (default 600).
    pub login_global: u32,
    /// Self-service submissions per client address per minute (default 5).
    pub self_service_per_ip: u32,
    /// Self-service submissions for the whole server per minute (default 120).
    pub self_service_global: u32,
    /// Console login attempts per client address per minute (default 5).
    pub console_login_per_ip: u32,
    /// `TokenIndex` requests per client address per minute (default 30).
    pub token_index_per_ip: u32,
    /// `TokenIndex` requests for the whole server per minute (default 3,000).
    pub token_index_global: u32,
    /// API requests with a wrong bearer token per client address per minute (default 10).
    pub api_token_failures_per_ip: u32,
    /// SSD (`/ssdserver/getServerDetails`) requests per client address per minute
    /// (default 30).
    pub ssd_per_ip: u32,
    /// SSD requests for the whole server per minute (default 3,000).
    pub ssd_global: u32,
    /// Console password hashes (Argon2, about 19 MiB each) computed at once (default 2).
    pub console_hashes_at_once: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            agentxml_failures_per_ip: 10,
            agentxml_failures_global: 600,
            login_per_ip: 10,
            login_global: 600,
            self_service_per_ip: 5,
            self_service_global: 120,
            console_login_per_ip: 5,
            token_index_per_ip: 30,
            token_index_global: 3000,
            api_token_failures_per_ip: 10,
            ssd_per_ip: 30,
            ssd_global: 3000,
            console_hashes_at_once: 2,
        }
    }
}

impl ThrottleConfig {
    /// Checks that every rate is between 1 and 1,000,000.
    pub fn validate(&self) -> Result<(), AppError> {
        let checks = [
            ("agentxml_failures_per_ip", self.agentxml_failures_per_ip),
            ("agentxml_failures_global", self.agentxml_failures_global),
            ("login_per_ip", self.login_per_ip),
            ("login_global", self.login_global),
            ("self_service_per_ip", self.self_service_per_ip),
            ("self_service_global", self.self_service_global),
            ("console_login_per_ip", self.console_login_per_ip),
            ("token_index_per_ip", self.token_index_per_ip),
            ("token_index_global", self.token_index_global),
            ("api_token_failures_per_ip", self.api_token_failures_per_ip),
            ("ssd_per_ip", self.ssd_per_ip),
            ("ssd_global", self.ssd_global),
            ("console_hashes_at_once", self.console_hashes_at_once),
        ];
        for (name, value) in checks {
            if value == 0 || value > 1_000_000 {
                return Err(AppError::Setup(format!(
                    "invalid configuration: throttle.{name} must be between 1 and 1000000, got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// A refusal: the client may try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Time until the next attempt is allowed.
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }

    /// The `Retry-After` header value.
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from(self.retry_after_secs().max(1))
    }

    /// `429 Too Many Requests` with `Retry-After` and `body` (an HTML page).
    pub fn html_response(&self, body: String) -> Response {
        let mut response =
            (StatusCode::TOO_MANY_REQUESTS, crate::html::headers(), body).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, self.header_value());
        response
    }
}

/// The key a client is counted under: its IPv4 address, or the /64 of its IPv6 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// A rate per client address, and optionally one for the whole server.
struct Limit {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    global: Option<DefaultDirectRateLimiter>,
    clock: DefaultClock,
}

/// Which allowance refused a request.
enum Over {
    Ip(Throttled),
    Global(Throttled),
}

impl Limit {
    fn new(per_ip: u32, global: Option<u32>) -> Self {
        Self {
            per_ip: RateLimiter::keyed(per_minute(per_ip)),
            global: global.map(|g| RateLimiter::direct(per_minute(g))),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one event for `ip` (then for the server).
    fn count(&self, ip: IpAddr) -> Result<(), Over> {
        let now = self.clock.now();
        self.per_ip.check_key(&client_key(ip)).map_err(|n| {
            Over::Ip(Throttled {
                retry_after: n.wait_time_from(now),
            })
        })?;
        if let Some(global) = &self.global {
            global.check().map_err(|n| {
                Over::Global(Throttled {
                    retry_after: n.wait_time_from(now),
                })
            })?;
        }
        Ok(())
    }

    fn check(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.count(ip).map_err(|o| match o {
            Over::Ip(t) | Over::Global(t) => t,
        })
    }

    fn forget_idle(&self) {
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
    }
}

/// Counts failures only: an address (or the server) that used up its allowance of failures
/// is refused until the allowance has room again.
struct FailureLimit {
    limit: Limit,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    global_blocked: Mutex<Option<Instant>>,
}

impl FailureLimit {
    fn new(per_ip: u32, global: Option<u32>) -> Self {
        Self {
            limit: Limit::new(per_ip, global),
            blocked: Mutex::new(HashMap::new()),
            global_blocked: Mutex::new(None),
        }
    }

    fn admit(&self, ip: IpAddr) -> Result<(), Throttled> {
        let now = Instant::now();
        let until = |t: Instant| Throttled {
            retry_after: t - now,
        };
        let global = *self
            .global_blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(t) = global
            && t > now
        {
            return Err(until(t));
        }
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match blocked.get(&client_key(ip)) {
            Some(&t) if t > now => Err(until(t)),
            Some(_) => {
                blocked.remove(&client_key(ip));
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        match self.limit.count(ip) {
            Ok(()) => {}
            Err(Over::Ip(t)) => {
                self.blocked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(client_key(ip), now + t.retry_after);
            }
            Err(Over::Global(t)) => {
                *self
                    .global_blocked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(now + t.retry_after);
            }
        }
    }

    fn forget_idle(&self) {
        self.limit.forget_idle();
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked.retain(|_, t| *t > now);
        blocked.shrink_to_fit();
    }
}

/// A turn to hash a console password; counts the hashes running.
#[derive(Debug)]
pub struct HashTurn {
    _permit: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
}

impl Drop for HashTurn {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The server's throttles (see the module documentation).
pub struct Throttles {
    config: ThrottleConfig,
    agentxml: FailureLimit,
    login: Limit,
    self_service: Limit,
    token_index: Limit,
    console: Limit,
    api_token: FailureLimit,
    ssd: Limit,
    hashes: Arc<Semaphore>,
    running: Arc<AtomicUsize>,
    peak: AtomicUsize,
    /// Whether forwarding headers from a peer that is not a trusted proxy have been seen.
    untrusted_forwarding: AtomicBool,
    /// The store's counters, when the limits hold across instances.
    counters: Option<Counters>,
    shared_agentxml: SharedLimit,
    shared_login: SharedLimit,
    shared_self_service: SharedLimit,
    shared_console: SharedLimit,
    shared_token_index: SharedLimit,
    shared_api_token: SharedLimit,
    shared_ssd: SharedLimit,
    /// Wrong one-time codes per account and client address.
    otc: PairLimit,
}

impl std::fmt::Debug for Throttles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttles")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for Throttles {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

impl Throttles {
    /// Throttles with the given settings, counted in this process only.
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            counters: None,
            shared_agentxml: SharedLimit::new(
                "agentxml_failures",
                config.agentxml_failures_per_ip,
                Some(config.agentxml_failures_global),
            ),
            shared_login: SharedLimit::new("login", config.login_per_ip, Some(config.login_global)),
            shared_self_service: SharedLimit::new(
                "self_service",
                config.self_service_per_ip,
                Some(config.self_service_global),
            ),
            shared_console: SharedLimit::new("console_login", config.console_login_per_ip, None),
            shared_token_index: SharedLimit::new(
                "token_index",
                config.token_index_per_ip,
                Some(config.token_index_global),
            ),
            shared_api_token: SharedLimit::new(
                "api_token_failures",
                config.api_token_failures_per_ip,
                None,
            ),
            shared_ssd: SharedLimit::new("ssd", config.ssd_per_ip, Some(config.ssd_global)),
            agentxml: FailureLimit::new(
                config.agentxml_failures_per_ip,
                Some(config.agentxml_failures_global),
            ),
            login: Limit::new(config.login_per_ip, Some(config.login_global)),
            self_service: Limit::new(config.self_service_per_ip, Some(config.self_service_global)),
            token_index: Limit::new(config.token_index_per_ip, Some(config.token_index_global)),
            console: Limit::new(config.console_login_per_ip, None),
            api_token: FailureLimit::new(config.api_token_failures_per_ip, None),
            ssd: Limit::new(config.ssd_per_ip, Some(config.ssd_global)),
            otc: PairLimit::new(
                &ServerKey::generate(),
                Arc::new(swivel_provision::SystemClock),
            ),
            hashes: Arc::new(Semaphore::new(config.console_hashes_at_once.max(1) as usize)),
            running: Arc::new(AtomicUsize::new(0)),
            peak: AtomicUsize::new(0),
            untrusted_forwarding: AtomicBool::new(false),
            config,
        }
    }

    /// Throttles whose limits also count in `store`, shared by every instance with the
    /// same store and server `key`; windows follow `clock`.
    pub fn shared(
        config: ThrottleConfig,
        store: Arc<dyn CounterStore>,
        clock: Arc<dyn swivel_provision::Clock>,
        key: &ServerKey,
    ) -> Self {
        Self {
            otc: PairLimit::new(key, clock.clone()),
            counters: Some(Counters::new(store, clock, key)),
            ..Self::new(config)
        }
    }

    /// Counts one event of `ip` under a shared limit (nothing without a store).
    async fn count_shared(&self, limit: &SharedLimit, ip: IpAddr) -> Result<(), Throttled> {
        match &self.counters {
            Some(counters) => limit.count(counters, ip).await,
            None => Ok(()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// True the first time only: forwarding headers came from a peer that is not one of
    /// `trusted_proxies` ([`crate::client`] warns then, once).
    pub fn first_untrusted_forwarding(&self) -> bool {
        !self.untrusted_forwarding.swap(true, Ordering::Relaxed)
    }

    /// Whether an AgentXML request from `ip` may be answered (its failures are within the
    /// allowance, as far as this instance knows: no store call).
    pub fn agentxml_admit(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.agentxml.admit(ip)?;
        self.shared_agentxml.known_refusal(ip)
    }

    /// Counts a failed AgentXML request from `ip` (in the store too: an address over the
    /// shared allowance is refused by this instance from then on).
    pub async fn agentxml_failed(&self, ip: IpAddr) {
        self.agentxml.failed(ip);
        // A refusal is remembered for the next request: this one was answered.
        let _ = self.count_shared(&self.shared_agentxml, ip).await;
    }

    /// Counts a `/login` post from `ip`.
    pub async fn login(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.login.check(ip)?;
        self.count_shared(&self.shared_login, ip).await
    }

    /// Counts a self-service submission from `ip`.
    pub async fn self_service(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.self_service.check(ip)?;
        self.count_shared(&self.shared_self_service, ip).await
    }

    /// Counts a `TokenIndex` request from `ip`.
    pub async fn token_index(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.token_index.check(ip)?;
        self.count_shared(&self.shared_token_index, ip).await
    }

    /// Counts an SSD request from `ip`.
    pub async fn ssd(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.ssd.check(ip)?;
        self.count_shared(&self.shared_ssd, ip).await
    }

    /// Whether an API request from `ip` may have its token checked (its wrong tokens are
    /// within the allowance, as far as this instance knows: no store call).
    pub fn api_admit(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.api_token.admit(ip)?;
        self.shared_api_token.known_refusal(ip)
    }

    /// Counts a wrong API token from `ip` (in the store too: an address over the shared
    /// allowance is refused by this instance from then on).
    pub async fn api_token_failed(&self, ip: IpAddr) {
        self.api_token.failed(ip);
        // A refusal is remembered for the next request: this one was answered.
        let _ = self.count_shared(&self.shared_api_token, ip).await;
    }

    /// Whether `ip` may try a one-time code for `username`: refused (until the minute's
    /// window ends) once it made `allowance` wrong codes for that account in it, whether
    /// or not the account exists. No store call: what this instance knows.
    pub fn otc_admit(&self, username: &str, ip: IpAddr, allowance: u8) -> Result<(), Throttled> {
        self.otc.admit(username, ip, allowance)
    }

    /// Counts a wrong one-time code of `ip` for `username` (in the store too).
    pub async fn otc_failed(&self, username: &str, ip: IpAddr) {
        self.otc.failed(self.counters.as_ref(), username, ip).await;
    }

    /// Counts a console login attempt from `ip` (before any hashing).
    pub async fn console_login(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.console.check(ip)?;
        self.count_shared(&self.shared_console, ip).await
    }

    /// Waits for a turn to hash a console password.
    pub async fn hash_turn(&self) -> Result<HashTurn, AppError> {
        let permit = self
            .hashes
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let now = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        Ok(HashTurn {
            _permit: permit,
            running: self.running.clone(),
        })
    }

    /// The most console password hashes that ran at once since the start.
    pub fn peak_hashes_at_once(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Drops the state of addresses that are back to a full allowance (run periodically).
    pub fn forget_idle(&self) {
        self.agentxml.forget_idle();
        self.login.forget_idle();
        self.self_service.forget_idle();
        self.token_index.forget_idle();
        self.console.forget_idle();
        self.api_token.forget_idle();
        self.ssd.forget_idle();
        self.otc.forget_idle();
        for limit in [
            &self.shared_agentxml,
            &self.shared_login,
            &self.shared_self_service,
            &self.shared_console,
            &self.shared_token_index,
            &self.shared_api_token,
            &self.shared_ssd,
        ] {
            limit.forget_idle();
        }
    }

    /// Removes old counts from the store (run periodically; nothing without a store).
    pub async fn purge_shared(&self) {
        if let Some(counters) = &self.counters {
            counters.purge().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_as_ipv4() {
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[tokio::test]
    async fn per_ip_and_global_limits() {
        let t = Throttles::new(ThrottleConfig {
            login_per_ip: 3,
            login_global: 5,
            ..ThrottleConfig::default()
        });
        for _ in 0..3 {
            t.login(ip("192.0.2.1")).await.unwrap();
        }
        let refused = t.login(ip("192.0.2.1")).await.unwrap_err();
        assert!(refused.retry_after_secs() >= 1 && refused.retry_after_secs() <= 20);
        t.login(ip("192.0.2.2")).await.unwrap();
        t.login(ip("192.0.2.3")).await.unwrap();
        assert!(
            t.login(ip("192.0.2.4")).await.is_err(),
            "the server-wide rate is spent"
        );
    }

    #[tokio::test]
    async fn only_failures_count_against_agentxml() {
        let t = Throttles::new(ThrottleConfig {
            agentxml_failures_per_ip: 2,
            ..ThrottleConfig::default()
        });
        let a = ip("198.51.100.1");
        for _ in 0..50 {
            t.agentxml_admit(a).unwrap();
        }
        t.agentxml_failed(a).await;
        t.agentxml_failed(a).await;
        t.agentxml_admit(a).unwrap();
        t.agentxml_failed(a).await;
        let refused = t.agentxml_admit(a).unwrap_err();
        assert!(refused.retry_after_secs() >= 1);
        t.agentxml_admit(ip("198.51.100.2")).unwrap();
        t.forget_idle();
        assert!(
            t.agentxml_admit(a).is_err(),
            "still blocked after a clean-up"
        );
    }
}
