//! `CodeStore::update` against a real PostgreSQL: an update dropped while it waits for a
//! row lock leaves no transaction (and no lock) behind on a pooled connection.

mod common;

use std::time::Duration;

use common::{TestSchema, admin_client};
use swivel_provision::{CodeStore, ProvisionRecord, RecordKey, Updated, Username};
use swivel_provision_postgres::{PostgresOptions, PostgresStore};

fn bump() -> swivel_provision::UpdateStep {
    Box::new(|cur| {
        let mut next = cur?.clone();
        next.version += 1;
        Some(next)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_dropped_mid_transaction_leaves_no_lock_behind() {
    let Some(url) = common::url("an_update_dropped_mid_transaction_leaves_no_lock_behind") else {
        return;
    };
    let schema = TestSchema::new(&url);
    // One connection: a transaction left open on it would be the next caller's.
    let store = PostgresStore::connect_with(
        &url,
        PostgresOptions {
            pool_size: 1,
            ..schema.options()
        },
    )
    .await
    .expect("connect");
    let user = Username::parse("dropped").unwrap();
    let mut record = ProvisionRecord::new(user.clone());
    record.version = 1;
    assert!(store.compare_and_swap(None, &record).await.unwrap());

    // Another session holds the row lock, so the store's update waits inside its
    // transaction until the caller gives up on it.
    let holder = admin_client(&url).await;
    let table = format!("{}.records", schema.name);
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT 1 FROM {table} WHERE username = 'dropped' FOR UPDATE"
        ))
        .await
        .unwrap();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(300),
        store.update(RecordKey::User(user.clone()), bump()),
    )
    .await;
    assert!(gave_up.is_err(), "the update waits for the row lock");
    holder.batch_execute("ROLLBACK").await.unwrap();

    // Had the dropped update's connection gone back to the pool, its SELECT … FOR UPDATE
    // would now hold the row lock in a transaction nobody ends.
    let checker = admin_client(&url).await;
    checker
        .batch_execute(&format!(
            "SET lock_timeout = '3s'; UPDATE {table} SET version = version WHERE username = 'dropped'"
        ))
        .await
        .expect("no lock is left behind by the dropped update");

    // The store still works, on a fresh connection, and the dropped update wrote nothing.
    assert_eq!(
        store
            .update(RecordKey::User(user.clone()), bump())
            .await
            .unwrap(),
        Updated::Written
    );
    assert_eq!(store.load(&user).await.unwrap().unwrap().version, 2);
}
