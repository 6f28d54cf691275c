//! The conformance suite against the in-memory store.

use std::sync::Arc;

use swivel_provision::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    swivel_provision::testing::conformance::run(Arc::new(MemoryStore::new())).await;
}
