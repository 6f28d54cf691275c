//! [`MemoryCounters`]: a [`CounterStore`] in the process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::counter::{CounterStore, Window, check_counter_key};
use crate::error::StoreError;

/// Hit counters in memory: shared by the holders of one value in one process, not between
/// processes.
#[derive(Debug, Default)]
pub struct MemoryCounters {
    /// `(key, window start)` → (window end, hits).
    counts: Mutex<HashMap<(String, OffsetDateTime), (OffsetDateTime, u64)>>,
}

impl MemoryCounters {
    /// No counts.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CounterStore for MemoryCounters {
    async fn hit(&self, key: &str, window: Window) -> Result<u64, StoreError> {
        check_counter_key(key)?;
        let mut counts = super::lock(&self.counts);
        let entry = counts
            .entry((key.to_owned(), window.start()))
            .or_insert((window.end(), 0));
        entry.1 += 1;
        Ok(entry.1)
    }

    async fn purge_counters(&self, t: OffsetDateTime) -> Result<u64, StoreError> {
        let mut counts = super::lock(&self.counts);
        let before = counts.len();
        counts.retain(|_, (end, _)| *end > t);
        Ok((before - counts.len()) as u64)
    }
}
