//! The core's counter checks against SqliteStore: on a file, with two stores (as two
//! processes) on one file hitting one counter at once, and in memory.

use std::sync::Arc;

use swivel_provision::CounterStore;
use swivel_provision::testing::conformance;
use swivel_provision_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_on_a_file_shared_by_two_stores() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("counters.db");
    let one: Arc<dyn CounterStore> = Arc::new(SqliteStore::open(&path).await.expect("open"));
    let two: Arc<dyn CounterStore> = Arc::new(SqliteStore::open(&path).await.expect("reopen"));
    conformance::counters_run(one.clone(), two.clone()).await;
    conformance::counters_run(two, one).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_in_memory() {
    let store: Arc<dyn CounterStore> = Arc::new(SqliteStore::open_in_memory().await.expect("open"));
    conformance::counters_run(store.clone(), store).await;
}
