//! The durable delivery queue on a SQLite file: no code in clear in the table, and two
//! stores (as two processes would) claiming from one file hand each job out once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use swivel_provision::testing::RecordingTransport;
use swivel_provision::*;
use swivel_provision_sqlite::SqliteStore;
use time::{Duration, OffsetDateTime};

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid")
}

async fn add_user(store: &SqliteStore, name: &str) {
    store
        .put_user(
            &UserEntry::new(user(name))
                .with_destination(Destination::email(&format!("{name}@example.com")).expect("ok"))
                .with_mobile_group(true),
        )
        .await
        .expect("put_user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_table_read_raw_holds_no_code_address_or_link() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let names: Vec<String> = (0..5).map(|i| format!("user{i}")).collect();
    for name in &names {
        add_user(&store, name).await;
    }
    // Every delivery fails transiently, so every job stays queued.
    let outbox = Arc::new(RecordingTransport::new());
    outbox.fail_next(1_000, true);
    let mut config = DurableConfig::new("raw");
    config.initial_backoff = StdDuration::from_secs(3600);
    let mut policy = Policy::default();
    policy.links.provision = Some("https://provision.example/p?code={code}".into());
    let p = Provisioner::builder()
        .job_store(Arc::new(store.clone()))
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::generate())
        .policy(policy)
        .delivery(Delivery::Durable(config))
        .build()
        .expect("build");
    for name in &names {
        p.request_provision(&user(name), Origin::Admin)
            .await
            .expect("request");
    }
    let depth = store.queue_depth().await.expect("depth");
    assert_eq!(depth.jobs, 5);
    let conn = rusqlite::Connection::open(&path).expect("open raw");
    let rows: Vec<Vec<u8>> = conn
        .prepare("SELECT * FROM delivery_jobs")
        .expect("prepare")
        .query_map([], |r| {
            let mut bytes = Vec::new();
            for i in 0..9 {
                match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        bytes.extend_from_slice(t)
                    }
                    other => bytes.extend_from_slice(format!("{other:?}").as_bytes()),
                }
                bytes.push(b'|');
            }
            Ok(bytes)
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 5);
    // The transport was never reached with a code; read the codes from the store's view:
    // every pending code is 10 digits, so look for any 10-digit run and for the addresses.
    for row in &rows {
        let text = String::from_utf8_lossy(row);
        assert!(
            !text.contains("@example.com"),
            "an address in clear: {text}"
        );
        assert!(!text.contains("provision.example"), "a link in clear");
        let digits = row
            .split(|b| !b.is_ascii_digit())
            .filter(|run| run.len() >= 10)
            .count();
        // Times are stored as 19-digit nanosecond integers in Debug form; a code is 10.
        let ten = row
            .split(|b| !b.is_ascii_digit())
            .filter(|run| run.len() == 10)
            .count();
        assert_eq!(ten, 0, "a 10-digit run (a code?) in a queue row");
        assert!(digits >= 3, "the three times are there");
    }
    p.stop_deliveries().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_hand_each_job_out_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("claims.db");
    let a = SqliteStore::open(&path).await.expect("open a");
    let b = SqliteStore::open(&path).await.expect("open b");
    let t0 = OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("valid");
    let mut queued = BTreeSet::new();
    for i in 0..200 {
        let name = user(&format!("u{i}"));
        let job = QueuedJob {
            id: JobId::generate(),
            username: name.clone(),
            channel: Channel::Email,
            kind: JobKind::Code,
            created_at: t0,
            due_at: t0,
            expires_at: t0 + Duration::minutes(10),
            attempts: 0,
            sealed: vec![1, 2, 3],
        };
        queued.insert(job.id.clone());
        let updated = a
            .update_with_job(
                RecordKey::User(name.clone()),
                Box::new(move |_, _| {
                    let mut r = ProvisionRecord::new(name.clone());
                    r.version = 1;
                    Some((r, job.clone()))
                }),
            )
            .await
            .expect("queue");
        assert_eq!(updated, Updated::Written);
    }
    let mut workers = Vec::new();
    for (s, store) in [a, b].into_iter().enumerate() {
        for w in 0..8 {
            let store = store.clone();
            workers.push(tokio::spawn(async move {
                let owner = format!("store{s}-worker{w}");
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_jobs(t0, t0 + Duration::seconds(60), &owner, 5)
                        .await
                        .expect("claim");
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|j| j.id));
                }
            }));
        }
    }
    let mut handed = Vec::new();
    for w in workers {
        handed.extend(w.await.expect("worker"));
    }
    let distinct: BTreeSet<_> = handed.iter().cloned().collect();
    assert_eq!(handed.len(), distinct.len(), "no job handed out twice");
    assert_eq!(distinct, queued, "every job handed out");
}
