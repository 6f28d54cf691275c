//! The core's conformance suite (with the checks of a store that is also the user
//! directory) against SqliteStore, on a file and in memory.

use std::sync::Arc;

use swivel_provision::testing::conformance;
use swivel_provision_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_on_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("conformance.db"))
        .await
        .expect("open");
    conformance::run_with_users(Arc::new(store.clone())).await;
    // The suite shares one database between its checks; run it again on the same file
    // through a second store, as a second process would.
    let again = SqliteStore::open(dir.path().join("conformance.db"))
        .await
        .expect("reopen");
    conformance::run_with_users(Arc::new(again)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_in_memory() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    conformance::run_with_users(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_log_on_a_file_and_in_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).await.expect("open");
    conformance::events_run(Arc::new(store)).await;
    // Again through a second store on the same file, as a second process would.
    let again = SqliteStore::open(&path).await.expect("reopen");
    conformance::events_run(Arc::new(again)).await;
    let memory = SqliteStore::open_in_memory().await.expect("open in memory");
    conformance::events_run(Arc::new(memory)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivery_queue_on_a_file_and_in_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.db");
    conformance::queue_run(Arc::new(SqliteStore::open(&path).await.expect("open"))).await;
    // Again through a second store on the same file, as a second process would.
    conformance::queue_run(Arc::new(SqliteStore::open(&path).await.expect("reopen"))).await;
    conformance::queue_run(Arc::new(
        SqliteStore::open_in_memory().await.expect("open in memory"),
    ))
    .await;
}
