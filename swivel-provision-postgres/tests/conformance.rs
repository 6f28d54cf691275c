//! The core's CodeStore conformance suite against a real PostgreSQL.

mod common;

use std::sync::Arc;

use common::TestSchema;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_passes() {
    let Some(url) = common::url("conformance_suite_passes") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    swivel_provision::testing::conformance::run_with_users(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_passes_on_a_small_pool() {
    // Two connections for 32 concurrent redeems: callers queue for the pool.
    let Some(url) = common::url("conformance_suite_passes_on_a_small_pool") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let options = swivel_provision_postgres::PostgresOptions {
        pool_size: 2,
        ..schema.options()
    };
    let store = swivel_provision_postgres::PostgresStore::connect_with(&url, options)
        .await
        .expect("connect");
    swivel_provision::testing::conformance::run_with_users(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_log_passes_the_event_checks() {
    let Some(url) = common::url("event_log_passes_the_event_checks") else {
        return;
    };
    let schema = TestSchema::new(&url);
    swivel_provision::testing::conformance::events_run(Arc::new(schema.store().await)).await;
    // A second instance (its own pool) on the same schema sees the same log.
    swivel_provision::testing::conformance::events_run(Arc::new(schema.store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_pass_the_counter_checks_across_two_instances() {
    let Some(url) = common::url("counters_pass_the_counter_checks_across_two_instances") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let one: Arc<dyn swivel_provision::CounterStore> = Arc::new(schema.store().await);
    // A second instance (its own pool) on the same schema counts the same hits.
    let two: Arc<dyn swivel_provision::CounterStore> = Arc::new(schema.store().await);
    swivel_provision::testing::conformance::counters_run(one.clone(), two.clone()).await;
    swivel_provision::testing::conformance::counters_run(two, one).await;
}
