//! [`EventStore`]: a shared event log. Every [`ProvisionEvent`] a host sees can be appended
//! as a [`StoredEvent`] (its time, the instance that saw it, its kind, its user and its
//! escaped log line), so that every server instance sharing a store shows the same log.
//!
//! The log holds no secret: events carry none, and the line is
//! [`ProvisionEvent::log_line`], with every user-controlled value escaped.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::events::ProvisionEvent;
use crate::types::Username;

/// Most events one [`EventStore::list`] returns.
pub const MAX_EVENT_LIMIT: usize = 1000;

/// One event as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Assigned by the store, increasing in the order of appends (0 when appending).
    pub id: u64,
    /// When it happened.
    pub at: OffsetDateTime,
    /// The server instance that saw it (its `instance_name`).
    pub instance: String,
    /// The event's stable name ([`ProvisionEvent::kind`]), e.g. `code_created`.
    pub kind: String,
    /// The user it concerns, if any.
    pub username: Option<Username>,
    /// Whether it reports a failure ([`ProvisionEvent::is_failure`]).
    pub failure: bool,
    /// The line, escaped ([`ProvisionEvent::log_line`]).
    pub line: String,
}

impl StoredEvent {
    /// The record of `event`, seen by `instance` at `at`, ready to append (`id` 0).
    pub fn new(event: &ProvisionEvent, at: OffsetDateTime, instance: impl Into<String>) -> Self {
        Self {
            id: 0,
            at,
            instance: instance.into(),
            kind: event.kind().to_owned(),
            username: event.username().cloned(),
            failure: event.is_failure(),
            line: event.log_line(),
        }
    }
}

/// Which events a [`EventStore::list`] returns: newest first (by id), at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Only this user's events.
    pub user: Option<Username>,
    /// Only events of this kind ([`ProvisionEvent::kind`], e.g. `code_created`).
    pub kind: Option<String>,
    /// Only events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events before this time (`at < until`).
    pub until: Option<OffsetDateTime>,
    /// Only events with an id below this one (the keyset cursor of the next page: the id
    /// of the last event of the previous page).
    pub before_id: Option<u64>,
    /// At most this many events, 1 to [`MAX_EVENT_LIMIT`].
    pub limit: usize,
}

impl EventQuery {
    /// The newest `limit` events, unfiltered.
    pub fn newest(limit: usize) -> Self {
        Self {
            user: None,
            kind: None,
            since: None,
            until: None,
            before_id: None,
            limit,
        }
    }

    /// Checks the limit.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when `limit` is 0 or above [`MAX_EVENT_LIMIT`].
    pub fn validate(&self) -> Result<(), StoreError> {
        if !(1..=MAX_EVENT_LIMIT).contains(&self.limit) {
            return Err(StoreError::backend(format!(
                "an event query's limit must be between 1 and {MAX_EVENT_LIMIT}, got {}",
                self.limit
            )));
        }
        Ok(())
    }

    /// Whether `event` passes the filters (not the limit).
    pub fn matches(&self, event: &StoredEvent) -> bool {
        self.user
            .as_ref()
            .is_none_or(|u| event.username.as_ref() == Some(u))
            && self.kind.as_ref().is_none_or(|k| event.kind == *k)
            && self.since.is_none_or(|t| event.at >= t)
            && self.until.is_none_or(|t| event.at < t)
            && self.before_id.is_none_or(|b| event.id < b)
    }
}

/// Keeps the shared event log.
///
/// # What an implementer must guarantee
/// - [`append`](EventStore::append) writes a batch whole or not at all, and assigns ids
///   greater than every id assigned before (across every instance sharing the store).
/// - [`list`](EventStore::list) returns newest first (decreasing ids) and refuses a limit
///   outside 1 to [`MAX_EVENT_LIMIT`] ([`EventQuery::validate`]).
/// - Errors carry no event contents.
///
/// The conformance checks (`swivel_provision::testing::conformance::events_run`, feature
/// `testing`) test an implementation.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` (their `id` is ignored) in one write.
    async fn append(&self, events: &[StoredEvent]) -> Result<(), StoreError>;

    /// The events `query` selects, newest first.
    async fn list(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;

    /// Deletes every event older than `t` (`at < t`). Returns how many.
    async fn purge_before(&self, t: OffsetDateTime) -> Result<u64, StoreError>;
}
