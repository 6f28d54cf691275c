//! The event sink of the server: keeps the last lines of this process (with their time),
//! forwards every event to `tracing` (stdout), when it has one to the shared event log in
//! the store ([`SharedLog`]), which the console's Log page and `GET /api/v1/events` read,
//! and to the metrics ([`Metrics`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use swivel_provision::{EventSink, ProvisionEvent, TracingSink};
use time::OffsetDateTime;

use crate::metrics::Metrics;
use crate::shared_log::SharedLog;

/// One line of the Log page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it happened (UTC).
    pub at: OffsetDateTime,
    /// The event's log line (seed wording).
    pub text: String,
    /// Whether it reports a failure.
    pub failure: bool,
}

/// A ring buffer of the last `capacity` event lines of this process, and the way to the
/// shared event log.
#[derive(Debug)]
pub struct EventLog {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    shared: Option<SharedLog>,
    metrics: Option<Arc<Metrics>>,
}

impl EventLog {
    /// Keeps the last `capacity` lines (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            shared: None,
            metrics: None,
        }
    }

    /// Keeps the last `capacity` lines and also sends every event to `shared`.
    pub fn with_shared(capacity: usize, shared: SharedLog) -> Self {
        Self {
            shared: Some(shared),
            ..Self::new(capacity)
        }
    }

    /// Also counts every event in `metrics`.
    pub fn counting(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The shared event log events go to, if any.
    pub fn shared(&self) -> Option<&SharedLog> {
        self.shared.as_ref()
    }

    /// The lines, newest first.
    pub fn newest_first(&self) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().rev().cloned().collect()
    }

    fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

impl EventSink for EventLog {
    fn emit(&self, event: &ProvisionEvent) {
        self.push(LogLine {
            at: OffsetDateTime::now_utc(),
            text: event.to_string(),
            failure: event.is_failure(),
        });
        TracingSink.emit(event);
        if let Some(shared) = &self.shared {
            shared.push(event);
        }
        if let Some(metrics) = &self.metrics {
            metrics.emit(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::Username;

    #[test]
    fn keeps_the_newest_lines_first() {
        let log = EventLog::new(2);
        for name in ["a", "b", "c"] {
            log.emit(&ProvisionEvent::CodeCreated {
                username: Username::parse(name).unwrap(),
                origin: swivel_provision::Origin::Admin,
            });
        }
        let lines: Vec<String> = log.newest_first().into_iter().map(|l| l.text).collect();
        assert_eq!(
            lines,
            [
                "Provision code created for user \"c\"",
                "Provision code created for user \"b\""
            ]
        );
    }
}
