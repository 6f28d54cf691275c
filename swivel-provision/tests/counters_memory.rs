//! The counter checks against the memory store, and proof that they catch a counter that
//! loses hits under concurrency.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use swivel_provision::testing::conformance;
use swivel_provision::{CounterStore, MemoryCounters, StoreError, Window};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_counters_pass_the_counter_checks() {
    let store: Arc<dyn CounterStore> = Arc::new(MemoryCounters::new());
    conformance::counters_run(store.clone(), store).await;
}

/// Reads the count, yields, then writes it back plus one: two hits in between lose one.
#[derive(Default)]
struct ReadThenWrite(Mutex<HashMap<(String, OffsetDateTime), u64>>);

#[async_trait]
impl CounterStore for ReadThenWrite {
    async fn hit(&self, key: &str, window: Window) -> Result<u64, StoreError> {
        let k = (key.to_owned(), window.start());
        let seen = self.0.lock().unwrap().get(&k).copied().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.0.lock().unwrap().insert(k, seen + 1);
        Ok(seen + 1)
    }

    async fn purge_counters(&self, _t: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[should_panic(expected = "counters: count")]
async fn the_concurrency_check_catches_lost_hits() {
    let store: Arc<dyn CounterStore> = Arc::new(ReadThenWrite::default());
    conformance::counters_concurrent_hits_are_all_counted(store.clone(), store).await;
}
