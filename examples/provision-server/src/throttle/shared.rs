//! The second line of the throttles: counts kept in the store ([`CounterStore`]), so that a
//! limit holds across every instance sharing the database, not per process.
//!
//! A request the in-process rate admitted adds one hit to the client's counter for the
//! current one-minute window (a fixed window: windows tile time from the Unix epoch, so
//! every instance with a synchronised clock uses the same one), then, if the address is
//! within its allowance, to the server's. A count over the allowance refuses the request
//! until the window ends, and this instance remembers the refusal, so that a refused
//! client costs no further store write. An over-limit hit on the client's counter is not
//! added to the server's.
//!
//! Counters are named `throttle/<limit>/<client>`, where `<client>` is an HMAC of the client
//! key ([`super::client_key`]) under a key derived from the server key, or `all` for the
//! server: the store holds no client address.
//!
//! A store that fails is not a reason to refuse everybody, nor to let everybody through:
//! the count fails open (a warning is logged at most once a minute) and the in-process
//! rate still applies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swivel_provision::{Clock, CounterStore, ServerKey, Window};

use super::{Throttled, client_key};

/// The length of a shared window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts older than this (after their window ended) are purged: a margin for instances
/// whose clocks run a little behind.
const PURGE_AFTER: time::Duration = time::Duration::minutes(2);

/// The store and the means to name counters: what every shared limit uses.
pub(super) struct Counters {
    store: Arc<dyn CounterStore>,
    clock: Arc<dyn Clock>,
    key: ServerKey,
    /// Unix seconds of the last "the store failed" warning.
    warned: AtomicI64,
}

impl Counters {
    pub(super) fn new(
        store: Arc<dyn CounterStore>,
        clock: Arc<dyn Clock>,
        key: &ServerKey,
    ) -> Self {
        Self {
            store,
            clock,
            key: ServerKey::from_bytes(key.derive("provision-server/throttle", &[])),
            warned: AtomicI64::new(i64::MIN),
        }
    }

    /// The counter name of `ip` under `limit`: no address, only an HMAC of its client key.
    fn client_name(&self, limit: &str, ip: IpAddr) -> String {
        let client = client_key(ip).to_string();
        let mac = self.key.derive("throttle-client", &[client.as_bytes()]);
        format!("throttle/{limit}/{}", hex::encode(&mac[..16]))
    }

    /// One hit on `name` in the window of `now`: the count, or `None` (warned) when the
    /// store failed.
    pub(super) async fn hit(&self, limit: &str, name: &str, window: Window) -> Option<u64> {
        match self.store.hit(name, window).await {
            Ok(n) => Some(n),
            Err(e) => {
                let now = window.start().unix_timestamp();
                let last = self.warned.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= 60
                    && self
                        .warned
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(
                        limit,
                        error = %crate::error::error_chain(&e),
                        "the store could not count a throttled request: counting in this instance only"
                    );
                }
                None
            }
        }
    }

    /// Removes the counts of windows that ended a while ago (run periodically).
    pub(super) async fn purge(&self) {
        let before = self.clock.now() - PURGE_AFTER;
        if let Err(e) = self.store.purge_counters(before).await {
            tracing::warn!(error = %crate::error::error_chain(&e), "purging old throttle counts failed");
        }
    }
}

/// What this instance learnt from the store: who is refused until when.
#[derive(Default)]
struct Refused {
    clients: HashMap<IpAddr, Instant>,
    server: Option<Instant>,
}

/// One limit's shared counts: an allowance per client and, optionally, one for the server.
pub(super) struct SharedLimit {
    name: &'static str,
    per_ip: u64,
    global: Option<u64>,
    refused: Mutex<Refused>,
}

impl SharedLimit {
    pub(super) fn new(name: &'static str, per_ip: u32, global: Option<u32>) -> Self {
        Self {
            name,
            per_ip: u64::from(per_ip),
            global: global.map(u64::from),
            refused: Mutex::new(Refused::default()),
        }
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, Refused> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `ip` (or the server) is known to be over its allowance; no store call.
    pub(super) fn known_refusal(&self, ip: IpAddr) -> Result<(), Throttled> {
        let now = Instant::now();
        let until = |t: Instant| Throttled {
            retry_after: t - now,
        };
        let mut refused = self.refused();
        if let Some(t) = refused.server.filter(|t| *t > now) {
            return Err(until(t));
        }
        match refused.clients.get(&client_key(ip)) {
            Some(&t) if t > now => Err(until(t)),
            Some(_) => {
                refused.clients.remove(&client_key(ip));
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts one event of `ip` in the store: refused if the client or the server is over
    /// its allowance in the current window (remembered until the window ends).
    pub(super) async fn count(&self, counters: &Counters, ip: IpAddr) -> Result<(), Throttled> {
        self.known_refusal(ip)?;
        let now = counters.clock.now();
        let window = Window::containing(now, WINDOW);
        let refusal = || {
            let left = (window.end() - now).max(time::Duration::ZERO);
            Throttled {
                retry_after: Duration::try_from(left).unwrap_or(WINDOW),
            }
        };
        let client = counters.client_name(self.name, ip);
        match counters.hit(self.name, &client, window).await {
            None => return Ok(()),
            Some(n) if n > self.per_ip => {
                let t = refusal();
                self.refused()
                    .clients
                    .insert(client_key(ip), Instant::now() + t.retry_after);
                return Err(t);
            }
            Some(_) => {}
        }
        let Some(global) = self.global else {
            return Ok(());
        };
        let server = format!("throttle/{}/all", self.name);
        match counters.hit(self.name, &server, window).await {
            Some(n) if n > global => {
                let t = refusal();
                self.refused().server = Some(Instant::now() + t.retry_after);
                Err(t)
            }
            _ => Ok(()),
        }
    }

    /// Forgets refusals that ended.
    pub(super) fn forget_idle(&self) {
        let now = Instant::now();
        let mut refused = self.refused();
        refused.clients.retain(|_, t| *t > now);
        refused.clients.shrink_to_fit();
        if refused.server.is_some_and(|t| t <= now) {
            refused.server = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::MemoryCounters;
    use swivel_provision::testing::ManualClock;
    use time::OffsetDateTime;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn counters(
        store: Arc<dyn CounterStore>,
        clock: Arc<ManualClock>,
        key: &ServerKey,
    ) -> Counters {
        Counters::new(store, clock, key)
    }

    #[tokio::test]
    async fn two_instances_share_the_allowance_until_the_window_ends() {
        let store: Arc<dyn CounterStore> = Arc::new(MemoryCounters::new());
        let clock = Arc::new(ManualClock::new(at(1_704_067_200 + 50)));
        let key = ServerKey::generate();
        let (a, b) = (
            counters(store.clone(), clock.clone(), &key),
            counters(store, clock.clone(), &key),
        );
        let (la, lb) = (
            SharedLimit::new("login", 2, None),
            SharedLimit::new("login", 2, None),
        );
        let client = ip("2001:db8::1");
        la.count(&a, client).await.unwrap();
        // Another address of the same /64 is the same client.
        lb.count(&b, ip("2001:db8::2")).await.unwrap();
        let refused = lb.count(&b, client).await.unwrap_err();
        assert_eq!(
            refused.retry_after,
            Duration::from_secs(10),
            "until the window ends"
        );
        // Remembered on b; a learns it at its next count.
        assert!(lb.known_refusal(client).is_err());
        assert!(la.known_refusal(client).is_ok());
        assert!(la.count(&a, client).await.is_err());
        // The next window starts afresh.
        clock.advance(time::Duration::seconds(10));
        let fresh = SharedLimit::new("login", 2, None);
        fresh.count(&a, client).await.unwrap();
    }

    #[test]
    fn counter_names_hold_no_address() {
        let c = Counters::new(
            Arc::new(MemoryCounters::new()),
            Arc::new(ManualClock::fixed()),
            &ServerKey::generate(),
        );
        let name = c.client_name("login", ip("192.0.2.7"));
        assert!(name.starts_with("throttle/login/"), "{name}");
        assert!(!name.contains("192.0.2.7") && name.len() == "throttle/login/".len() + 32);
        assert_eq!(name, c.client_name("login", ip("::ffff:192.0.2.7")));
        assert_ne!(name, c.client_name("login", ip("192.0.2.8")));
        assert_ne!(name, c.client_name("console_login", ip("192.0.2.7")));
    }
}
