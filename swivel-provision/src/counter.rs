//! [`CounterStore`]: hit counters in fixed time windows, shared by every server instance
//! of a store, so that a host's per-client limits (failed logins, requests per address)
//! hold across a cluster and not per process.
//!
//! A counter is a key (a host-chosen name; it must hold no secret, and better no client
//! address in clear: hosts key their counters with an HMAC of the address) and a
//! [`Window`]. [`CounterStore::hit`] adds one hit and answers the window's count in one
//! atomic step: concurrent hits from any number of instances each see a distinct count,
//! and none is lost.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;

/// Longest counter key, in bytes.
pub const MAX_COUNTER_KEY_BYTES: usize = 256;

/// A fixed time window: windows of one length tile time from the Unix epoch, so every
/// instance (with a synchronised clock) computes the same window for the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: OffsetDateTime,
    length: Duration,
}

impl Window {
    /// The window of `length` (whole seconds, at least one; rounded up) that holds `t`.
    pub fn containing(t: OffsetDateTime, length: Duration) -> Self {
        let secs = (length.as_secs() + u64::from(length.subsec_nanos() > 0)).max(1);
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        let start = t.unix_timestamp().div_euclid(secs) * secs;
        Self {
            start: OffsetDateTime::from_unix_timestamp(start).unwrap_or(t),
            length: Duration::from_secs(secs as u64),
        }
    }

    /// Its first moment (whole seconds).
    pub fn start(&self) -> OffsetDateTime {
        self.start
    }

    /// How long it lasts (whole seconds).
    pub fn length(&self) -> Duration {
        self.length
    }

    /// The first moment after it (the start of the next window).
    pub fn end(&self) -> OffsetDateTime {
        let secs = i64::try_from(self.length.as_secs()).unwrap_or(i64::MAX);
        self.start.saturating_add(time::Duration::seconds(secs))
    }
}

/// Checks a counter key's length.
///
/// # Errors
/// [`StoreError::Backend`] when `key` is empty or longer than [`MAX_COUNTER_KEY_BYTES`].
pub fn check_counter_key(key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_COUNTER_KEY_BYTES {
        return Err(StoreError::backend(format!(
            "a counter key must be 1 to {MAX_COUNTER_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

/// Hit counters per key and fixed window, shared by every instance of the store.
///
/// # What an implementer must guarantee
/// - [`hit`](CounterStore::hit) is one atomic step: of `n` concurrent hits on one key and
///   window, from any number of handles and processes on the store, each returns a
///   distinct count and the last count is `n` higher than before them.
/// - Keys of any length up to [`MAX_COUNTER_KEY_BYTES`] are kept apart, as are windows
///   with different starts; longer keys are refused ([`check_counter_key`]).
/// - Counts need not survive a crash: a lost count only loosens a limit for a window.
///
/// The conformance checks (`swivel_provision::testing::conformance::counters_run`, feature
/// `testing`) test these.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// Adds one hit to `key` in `window` and returns the window's hits, this one included
    /// (1 for the first).
    async fn hit(&self, key: &str, window: Window) -> Result<u64, StoreError>;

    /// Removes the counts of every window that ended at or before `t`. Returns how many
    /// counters were removed.
    async fn purge_counters(&self, t: OffsetDateTime) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn windows_tile_time_from_the_epoch() {
        let w = Window::containing(at(1_704_067_259), Duration::from_secs(60));
        assert_eq!(w.start(), at(1_704_067_200));
        assert_eq!(w.end(), at(1_704_067_260));
        assert_eq!(
            Window::containing(at(1_704_067_260), Duration::from_secs(60)).start(),
            at(1_704_067_260)
        );
        // Before the epoch too, and a length under a second is one second.
        assert_eq!(
            Window::containing(at(-1), Duration::from_secs(60)).start(),
            at(-60)
        );
        let short = Window::containing(at(5), Duration::from_millis(10));
        assert_eq!(short.length(), Duration::from_secs(1));
        assert_eq!(short.start(), at(5));
        assert_eq!(
            Window::containing(at(5), Duration::from_millis(1500)).length(),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_counter_key("throttle/login/all").is_ok());
        assert!(check_counter_key("").is_err());
        assert!(check_counter_key(&"k".repeat(MAX_COUNTER_KEY_BYTES)).is_ok());
        assert!(check_counter_key(&"k".repeat(MAX_COUNTER_KEY_BYTES + 1)).is_err());
    }
}
