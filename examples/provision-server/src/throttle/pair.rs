//! Wrong one-time codes per account and client address: after the policy's
//! `max_otc_failures` wrong codes for one account from one address in a one-minute window,
//! that address is refused for that account (`429` with `Retry-After`) until the window
//! ends. Other addresses, the user's own among them, are not affected, so a stranger
//! cannot block a user's codes; the account's ceiling (`max_account_failures`, in the
//! core) still locks a known user. Names that do not exist are counted alike, so that a
//! refusal tells nothing.
//!
//! Each instance counts in its own windows and, with a store, in the store's
//! ([`CounterStore`](swivel_provision::CounterStore), like the other shared limits): a
//! failure adds one hit there and the instance keeps the larger of the two counts, so
//! every instance refuses once it has seen the pair go over (an instance that has not yet
//! counted one of the pair's failures lets one more through). The pair is named by an
//! HMAC of the username and the client key, under a key derived from the server key:
//! counters are `throttle/otc_failures/<hmac>`, with no username or address in clear.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swivel_provision::{Clock, ServerKey, Window};

use super::shared::{Counters, WINDOW};
use super::{Throttled, client_key};

/// The limit's name in counter keys and warnings.
const NAME: &str = "otc_failures";

/// An account and client address, as an HMAC.
type PairId = [u8; 16];

/// A pair's wrong codes in a window.
struct Count {
    window: Window,
    failures: u64,
}

/// The wrong one-time codes of each (account, client address) pair in the current window.
pub(super) struct PairLimit {
    key: ServerKey,
    clock: Arc<dyn Clock>,
    pairs: Mutex<HashMap<PairId, Count>>,
}

impl PairLimit {
    /// Pairs named under `key` (every instance sharing counters must use the same one),
    /// in windows of `clock`.
    pub(super) fn new(key: &ServerKey, clock: Arc<dyn Clock>) -> Self {
        Self {
            key: ServerKey::from_bytes(key.derive("provision-server/throttle-otc", &[])),
            clock,
            pairs: Mutex::new(HashMap::new()),
        }
    }

    fn pair(&self, username: &str, ip: IpAddr) -> PairId {
        let client = client_key(ip).to_string();
        let mac = self
            .key
            .derive("otc-pair", &[username.as_bytes(), client.as_bytes()]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&mac[..16]);
        id
    }

    fn pairs(&self) -> std::sync::MutexGuard<'_, HashMap<PairId, Count>> {
        self.pairs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `ip` may try a code for `username`: refused once the pair has `allowance`
    /// wrong codes in the current window (as far as this instance knows: no store call).
    pub(super) fn admit(&self, username: &str, ip: IpAddr, allowance: u8) -> Result<(), Throttled> {
        let now = self.clock.now();
        let window = Window::containing(now, WINDOW);
        let id = self.pair(username, ip);
        match self.pairs().get(&id) {
            Some(c) if c.window == window && c.failures >= u64::from(allowance) => {
                let left = (window.end() - now).max(time::Duration::ZERO);
                Err(Throttled {
                    retry_after: Duration::try_from(left).unwrap_or(WINDOW),
                })
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong code of `ip` for `username`, in the store too when there is one.
    pub(super) async fn failed(&self, counters: Option<&Counters>, username: &str, ip: IpAddr) {
        let window = Window::containing(self.clock.now(), WINDOW);
        let id = self.pair(username, ip);
        let shared = match counters {
            Some(c) => {
                let name = format!("throttle/{NAME}/{}", hex::encode(id));
                c.hit(NAME, &name, window).await.unwrap_or(0)
            }
            None => 0,
        };
        let mut pairs = self.pairs();
        let count = pairs.entry(id).or_insert(Count {
            window,
            failures: 0,
        });
        if count.window != window {
            *count = Count {
                window,
                failures: 0,
            };
        }
        count.failures = (count.failures + 1).max(shared);
    }

    /// Forgets the pairs of windows that ended.
    pub(super) fn forget_idle(&self) {
        let window = Window::containing(self.clock.now(), WINDOW);
        let mut pairs = self.pairs();
        pairs.retain(|_, c| c.window == window);
        pairs.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::testing::ManualClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_pair_is_refused_until_its_window_ends() {
        let clock = Arc::new(ManualClock::fixed());
        let limit = PairLimit::new(&ServerKey::generate(), clock.clone());
        let (attacker, user) = (ip("203.0.113.5"), ip("192.0.2.5"));
        clock.advance(time::Duration::seconds(45));
        for _ in 0..3 {
            limit.admit("alice", attacker, 3).unwrap();
            limit.failed(None, "alice", attacker).await;
        }
        let refused = limit.admit("alice", attacker, 3).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(15));
        // Per pair: another account from that address, the account from another address.
        limit.admit("bob", attacker, 3).unwrap();
        limit.admit("alice", user, 3).unwrap();
        // The same /64 is the same client.
        limit.failed(None, "bob", ip("2001:db8::1")).await;
        limit.admit("bob", ip("2001:db8::2"), 1).unwrap_err();
        clock.advance(time::Duration::seconds(15));
        limit.admit("alice", attacker, 3).unwrap();
        limit.forget_idle();
        assert!(limit.pairs().is_empty());
    }
}
