//! A test kit (feature `testing`): a transport that records what it sends, a manual clock,
//! an event sink that keeps every event, and the [`conformance`] suite every
//! [`CodeStore`](crate::CodeStore) must pass.

use std::sync::Mutex;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::code::ProvisionCode;
use crate::error::TransportError;
use crate::events::{EventSink, ProvisionEvent};
use crate::transport::{ProvisionMessage, Transport};
use crate::types::Username;

pub mod conformance;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`Transport`] that keeps every message it is given, so tests can read the code. It can
/// also be told to fail.
#[derive(Debug, Default)]
pub struct RecordingTransport {
    sent: Mutex<Vec<ProvisionMessage>>,
    failures: Mutex<Vec<bool>>,
}

impl RecordingTransport {
    /// A transport that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` deliveries fail, transiently or permanently.
    pub fn fail_next(&self, n: usize, transient: bool) {
        lock(&self.failures).extend(std::iter::repeat_n(transient, n));
    }

    /// Every message delivered so far.
    pub fn messages(&self) -> Vec<ProvisionMessage> {
        lock(&self.sent).clone()
    }

    /// The last code delivered to the user (device-bound notices carry none).
    pub fn last_code_for(&self, username: &Username) -> Option<ProvisionCode> {
        lock(&self.sent)
            .iter()
            .rev()
            .filter(|m| &m.username == username)
            .find_map(|m| m.code().cloned())
    }

    /// The last message delivered to the user.
    pub fn last_message_for(&self, username: &Username) -> Option<ProvisionMessage> {
        lock(&self.sent)
            .iter()
            .rev()
            .find(|m| &m.username == username)
            .cloned()
    }
}

#[async_trait]
impl Transport for RecordingTransport {
    async fn deliver(&self, message: &ProvisionMessage) -> Result<(), TransportError> {
        let fail = {
            let mut f = lock(&self.failures);
            (!f.is_empty()).then(|| f.remove(0))
        };
        match fail {
            Some(true) => Err(TransportError::transient(
                "recording transport: told to fail (transient)",
                None,
            )),
            Some(false) => Err(TransportError::permanent(
                "recording transport: told to fail (permanent)",
                None,
            )),
            None => {
                lock(&self.sent).push(message.clone());
                Ok(())
            }
        }
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A clock at a fixed, arbitrary instant (2024-01-01T00:00:00Z).
    pub fn fixed() -> Self {
        Self::new(OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("valid"))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *lock(&self.now) += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: OffsetDateTime) {
        *lock(&self.now) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *lock(&self.now)
    }
}

/// An [`EventSink`] that keeps every event.
#[derive(Debug, Default)]
pub struct RecordingSink {
    events: Mutex<Vec<ProvisionEvent>>,
}

impl RecordingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<ProvisionEvent> {
        lock(&self.events).clone()
    }

    /// Every event's log line so far.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.events).iter().map(ToString::to_string).collect()
    }

    /// Forgets every event.
    pub fn clear(&self) {
        lock(&self.events).clear();
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: &ProvisionEvent) {
        lock(&self.events).push(event.clone());
    }
}

/// The parser-cost attack of a hostile client: a `<SASRequest>` ping whose root start tag
/// carries as many distinct empty attributes (`a=""`, `b=""`, … `aa=""`, …) as fit in
/// [`MAX_REQUEST_BYTES`](crate::agentxml::MAX_REQUEST_BYTES) (about 9,400). A server must
/// refuse it (`Malformed request`) at about the cost of a normal request.
pub fn many_attributes_request() -> Vec<u8> {
    const TAIL: &str = "><Action>ping</Action></SASRequest>";
    let limit = crate::agentxml::MAX_REQUEST_BYTES - TAIL.len();
    let mut body = String::from("<SASRequest");
    for n in 0usize.. {
        // Bijective base 26: a, b, …, z, aa, ab, …
        let mut name = Vec::new();
        let mut k = n + 1;
        while k > 0 {
            k -= 1;
            name.push(b'a' + (k % 26) as u8);
            k /= 26;
        }
        name.reverse();
        let attr = format!(" {}=\"\"", String::from_utf8_lossy(&name));
        if body.len() + attr.len() > limit {
            break;
        }
        body.push_str(&attr);
    }
    body.push_str(TAIL);
    body.into_bytes()
}
