//! Compare-and-swap details beyond the conformance suite: persistence, device Id hashes
//! across processes' connections, and busy → transient error.

use std::sync::Arc;
use std::time::Duration;

use swivel_provision::{
    CodeHash, CodeStore, Device, IdHash, Origin, PendingCode, ProvisionRecord, StoreError, Username,
};
use swivel_provision_sqlite::{Durability, SqliteOptions, SqliteStore};
use time::OffsetDateTime;

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid")
}

fn t(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_704_067_200 + secs).expect("valid")
}

fn with_pending(name: &str, version: u64, expires: OffsetDateTime) -> ProvisionRecord {
    let mut r = ProvisionRecord::new(user(name));
    r.version = version;
    r.pending = Some(PendingCode {
        code_hash: CodeHash([1; 32]),
        created_at: t(0),
        expires_at: expires,
        attempts_left: 5,
        origin: Origin::Admin,
    });
    r
}

fn with_device(name: &str, version: u64, id: u8) -> ProvisionRecord {
    let mut r = ProvisionRecord::new(user(name));
    r.version = version;
    r.device = Some(Device {
        id_hash: IdHash([id; 32]),
        provisioned_at: t(0),
        info: None,
        generation: 1,
        used_indices: 0,
        otc_failures: 0,
    });
    r
}

#[tokio::test]
async fn records_survive_reopening_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("codes.db");
    {
        let store = SqliteStore::open(&path).await.expect("open");
        assert!(
            store
                .compare_and_swap(None, &with_device("alice", 1, 9))
                .await
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap(None, &with_pending("bob", 1, t(600)))
                .await
                .unwrap()
        );
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(
        store.load(&user("alice")).await.unwrap(),
        Some(with_device("alice", 1, 9))
    );
    assert_eq!(
        store
            .find_by_id_hash(&IdHash([9; 32]))
            .await
            .unwrap()
            .map(|r| r.username),
        Some(user("alice"))
    );
    assert_eq!(
        store.list_expired(t(600), 10).await.unwrap(),
        vec![user("bob")]
    );
    assert!(store.list_expired(t(599), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn stale_versions_and_taken_devices_change_nothing() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    assert!(
        store
            .compare_and_swap(None, &with_device("alice", 1, 1))
            .await
            .unwrap()
    );
    // Insert over an existing record, update from a wrong version, update a missing record.
    assert!(
        !store
            .compare_and_swap(None, &with_device("alice", 2, 2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(Some(7), &with_device("alice", 8, 2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(Some(1), &with_device("nobody", 2, 3))
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(Some(u64::MAX), &with_device("alice", 2, 2))
            .await
            .unwrap()
    );
    // Bob may not take alice's device.
    assert!(
        !store
            .compare_and_swap(None, &with_device("bob", 1, 1))
            .await
            .unwrap()
    );
    assert_eq!(store.load(&user("bob")).await.unwrap(), None);
    assert_eq!(
        store.load(&user("alice")).await.unwrap(),
        Some(with_device("alice", 1, 1))
    );
    // Alice may keep her own device across an update, and delete needs the right version.
    assert!(
        store
            .compare_and_swap(Some(1), &with_device("alice", 2, 1))
            .await
            .unwrap()
    );
    assert!(!store.delete(&user("alice"), 1).await.unwrap());
    assert!(store.delete(&user("alice"), 2).await.unwrap());
    assert_eq!(store.find_by_id_hash(&IdHash([1; 32])).await.unwrap(), None);
    assert!(!store.delete(&user("alice"), 2).await.unwrap());
}

#[tokio::test]
async fn list_expired_compares_below_the_second() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    let half = t(10) + time::Duration::milliseconds(500);
    assert!(
        store
            .compare_and_swap(None, &with_pending("carol", 1, half))
            .await
            .unwrap()
    );
    assert!(store.list_expired(t(10), 10).await.unwrap().is_empty());
    assert_eq!(
        store.list_expired(half, 10).await.unwrap(),
        vec![user("carol")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_the_busy_timeout_is_a_transient_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("busy.db");
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(200),
        durability: Durability::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&path, options).await.expect("open");
    // Another "process" holds the write lock.
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let err = store
        .compare_and_swap(None, &with_device("dave", 1, 4))
        .await
        .expect_err("the write lock is held");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
    let source = std::error::Error::source(&err).expect("source").to_string();
    assert!(source.contains("busy.db"), "names the file: {source}");
    // Reads still work beside the writer (WAL).
    assert_eq!(store.load(&user("dave")).await.unwrap(), None);
    other.execute_batch("ROLLBACK").expect("unlock");
    assert!(
        store
            .compare_and_swap(None, &with_device("dave", 1, 4))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_swap_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("two.db");
    let a = SqliteStore::open(&path).await.expect("open a");
    let b = SqliteStore::open(&path).await.expect("open b");
    let mut wins = 0;
    for round in 0..20u64 {
        let name = format!("race-{round}");
        assert!(
            a.compare_and_swap(None, &with_pending(&name, 1, t(600)))
                .await
                .unwrap()
        );
        let mut tasks = Vec::new();
        for (i, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
            .into_iter()
            .enumerate()
        {
            let next = with_device(&name, 2, (round * 4) as u8 + i as u8 + 10);
            let store: Arc<dyn CodeStore> = Arc::new(store);
            tasks.push(tokio::spawn(async move {
                store.compare_and_swap(Some(1), &next).await
            }));
        }
        let mut round_wins = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                round_wins += 1;
            }
        }
        assert_eq!(round_wins, 1, "round {round}");
        wins += round_wins;
    }
    assert_eq!(wins, 20);
}
