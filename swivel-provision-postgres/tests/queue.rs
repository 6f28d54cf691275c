//! The durable delivery queue (`JobStore`) on a real PostgreSQL: the core's queue checks,
//! claims from two pools at once, what the table holds in clear, and jobs written with
//! their record or not at all.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::TestSchema;
use swivel_provision::testing::{ManualClock, RecordingTransport};
use swivel_provision::{
    Channel, CodeStore, Delivery, Destination, DurableConfig, JobId, JobKind, JobStore,
    LinkTemplates, Origin, Policy, ProvisionRecord, Provisioner, QueuedJob, RecordKey, ServerKey,
    StoreError, Updated, UserAdmin, UserEntry, Username,
};
use swivel_provision_postgres::PostgresStore;
use time::{Duration, OffsetDateTime};

/// Jobs in [`two_pools_with_eight_claimers_each_hand_every_job_out_once`].
const JOBS: usize = 200;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_704_067_200).unwrap()
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

/// A job for `user`, due at `t0()`, with sealed bytes of every value.
fn job(user: &Username) -> QueuedJob {
    QueuedJob {
        id: JobId::generate(),
        username: user.clone(),
        channel: Channel::Email,
        kind: JobKind::Code,
        created_at: t0(),
        due_at: t0(),
        expires_at: t0() + Duration::minutes(10),
        attempts: 0,
        sealed: (0..=255u8).collect(),
    }
}

/// Queues `job` with the next record of its user.
async fn queue(store: &PostgresStore, job: QueuedJob) -> Result<Updated, StoreError> {
    let name = job.username.clone();
    store
        .update_with_job(
            RecordKey::User(name.clone()),
            Box::new(move |_, cur| {
                let mut next = cur
                    .cloned()
                    .unwrap_or_else(|| ProvisionRecord::new(name.clone()));
                next.version = cur.map_or(1, |c| c.version + 1);
                Some((next, job.clone()))
            }),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_suite_passes() {
    let Some(url) = common::url("queue_suite_passes") else {
        return;
    };
    // A schema of its own: the checks claim every due job.
    let schema = TestSchema::new(&url);
    swivel_provision::testing::conformance::queue_run(Arc::new(schema.store().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_pools_with_eight_claimers_each_hand_every_job_out_once() {
    let Some(url) = common::url("two_pools_with_eight_claimers_each_hand_every_job_out_once")
    else {
        return;
    };
    let schema = TestSchema::new(&url);
    let (a, b) = (schema.store().await, schema.store().await);
    let mut queued = BTreeSet::new();
    for i in 0..JOBS {
        let j = job(&user(&format!("race-{i}")));
        queued.insert(j.id.clone());
        assert_eq!(queue(&a, j).await.unwrap(), Updated::Written);
    }
    let mut claimers = Vec::new();
    for (pool, store) in [("a", &a), ("b", &b)] {
        for w in 0..8 {
            let store = store.clone();
            let owner = format!("{pool}-{w}");
            claimers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store
                        .claim_jobs(t0(), t0() + Duration::minutes(1), &owner, 3)
                        .await
                        .expect("claim_jobs");
                    if got.is_empty() {
                        return (owner, mine);
                    }
                    mine.extend(got.into_iter().map(|j| j.id));
                }
            }));
        }
    }
    let mut handed = Vec::new();
    let mut busy_claimers = 0;
    for c in claimers {
        let (owner, ids) = c.await.unwrap();
        busy_claimers += usize::from(!ids.is_empty());
        handed.extend(ids.into_iter().map(|id| (id, owner.clone())));
    }
    let distinct: BTreeSet<_> = handed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(handed.len(), distinct.len(), "no job was handed out twice");
    assert_eq!(distinct, queued, "every job was handed out");
    assert!(
        busy_claimers > 1,
        "the claims were spread over several claimers"
    );

    // The table agrees: each row is leased to the claimer that got it.
    let admin = common::admin_client(&url).await;
    let rows = admin
        .query(
            &format!("SELECT id, lease_owner FROM {}.delivery_jobs", schema.name),
            &[],
        )
        .await
        .unwrap();
    let leased: BTreeSet<(String, Option<String>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected: BTreeSet<(String, Option<String>)> = handed
        .iter()
        .map(|(id, owner)| (id.as_str().to_owned(), Some(owner.clone())))
        .collect();
    assert_eq!(leased, expected);
    // Nothing is due again before the lease ran out; all of it after.
    assert!(
        a.claim_jobs(t0(), t0(), "late", 500)
            .await
            .unwrap()
            .is_empty()
    );
    let again = b
        .claim_jobs(
            t0() + Duration::minutes(1),
            t0() + Duration::minutes(2),
            "late",
            500,
        )
        .await
        .unwrap();
    assert_eq!(again.len(), JOBS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_for_another_user_is_refused_and_nothing_is_written() {
    let Some(url) = common::url("a_job_for_another_user_is_refused_and_nothing_is_written") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    let (alice, mallory) = (user("alice"), user("mallory"));
    let stray = job(&mallory);
    let name = alice.clone();
    let refused = store
        .update_with_job(
            RecordKey::User(alice.clone()),
            Box::new(move |_, _| {
                let mut next = ProvisionRecord::new(name.clone());
                next.version = 1;
                Some((next, stray.clone()))
            }),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
    assert!(store.load(&alice).await.unwrap().is_none(), "no record");
    assert_eq!(store.queue_depth().await.unwrap().jobs, 0, "no job");
    // The store keeps working (the transaction was rolled back, not left open).
    assert_eq!(queue(&store, job(&alice)).await.unwrap(), Updated::Written);
    assert_eq!(store.queue_depth().await.unwrap().jobs, 1);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_jobs_hold_no_code_or_address_in_clear() {
    let Some(url) = common::url("queued_jobs_hold_no_code_or_address_in_clear") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = Arc::new(schema.store().await);
    let users = ["carol", "dave", "erin"].map(user);
    for u in &users {
        let address = format!("{u}@mail.example.org");
        store
            .put_user(
                &UserEntry::new(u.clone())
                    .with_destination(Destination::email(&address).unwrap())
                    .with_mobile_group(true),
            )
            .await
            .unwrap();
    }
    // The first attempt of each message fails transiently; the retry waits until the
    // (manual) clock moves, so the jobs stay queued meanwhile.
    let outbox = Arc::new(RecordingTransport::new());
    outbox.fail_next(users.len(), true);
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let mut policy = Policy::default();
    policy.links = LinkTemplates::for_base_url("https://links.example.net");
    let mut config = DurableConfig::new("t");
    config.initial_backoff = StdDuration::from_secs(30);
    config.poll_interval = StdDuration::from_millis(50);
    let provisioner = Provisioner::builder()
        .job_store(store.clone())
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::generate())
        .clock(clock.clone())
        .policy(policy)
        .delivery(Delivery::Durable(config))
        .build()
        .unwrap();
    for u in &users {
        let receipt = provisioner
            .request_provision(u, Origin::Admin)
            .await
            .unwrap();
        assert!(receipt.queued);
    }

    // Read the table raw once every job has failed its first attempt: every column as
    // text, and the sealed bytes as they are.
    let admin = common::admin_client(&url).await;
    let raw_sql = format!(
        "SELECT d::text, d.sealed, d.attempts FROM {}.delivery_jobs d",
        schema.name
    );
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(30);
    let raw = loop {
        let rows = admin.query(&raw_sql, &[]).await.unwrap();
        if rows.len() == users.len() && rows.iter().all(|r| r.get::<_, i32>(2) == 1) {
            break rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the jobs did not fail their first attempt in time ({} rows)",
            rows.len()
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    let text: Vec<String> = raw.iter().map(|r| r.get(0)).collect();
    let sealed: Vec<Vec<u8>> = raw.iter().map(|r| r.get(1)).collect();

    // Let the retries through, and learn the codes the jobs carried.
    clock.advance(Duration::minutes(1));
    tokio::time::timeout(StdDuration::from_secs(30), provisioner.deliveries_idle())
        .await
        .expect("the retries were delivered");
    assert_eq!(
        store.queue_depth().await.unwrap().jobs,
        0,
        "delivered jobs are deleted"
    );
    for u in &users {
        let message = outbox.last_message_for(u).expect("delivered on retry");
        let code = message.code().expect("a code").expose().to_owned();
        let job_id = message.job_id().expect("a job Id").as_str().to_owned();
        assert!(
            text.iter().any(|row| row.contains(&job_id)),
            "the rows read are the jobs that carried the codes"
        );
        let address = message.destination.address.clone();
        let link = message.links().provision().expect("a link").to_owned();
        assert!(link.contains(&code));
        for secret in [
            code.as_str(),
            address.as_str(),
            link.as_str(),
            "links.example.net",
        ] {
            for row in &text {
                assert!(!row.contains(secret), "a row holds {secret:?} in clear");
            }
            for bytes in &sealed {
                assert!(
                    !contains(bytes, secret.as_bytes()),
                    "sealed bytes hold {secret:?} in clear"
                );
            }
        }
    }
    provisioner.stop_deliveries().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_changes_nothing_queues_nothing() {
    let Some(url) = common::url("a_write_that_changes_nothing_queues_nothing") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    // Two users; the step gives bob's record alice's device, which the UNIQUE device Id
    // hash refuses: a conflict, and no job.
    let (alice, bob) = (user("alice"), user("bob"));
    let mut with_device = ProvisionRecord::new(alice.clone());
    with_device.version = 1;
    with_device.device = Some(swivel_provision::Device {
        id_hash: swivel_provision::IdHash([7; 32]),
        provisioned_at: t0(),
        info: None,
        generation: 0,
        used_indices: 0,
        otc_failures: 0,
    });
    assert!(store.compare_and_swap(None, &with_device).await.unwrap());
    assert_eq!(queue(&store, job(&bob)).await.unwrap(), Updated::Written);
    let before = store.claim_jobs(t0(), t0(), "peek", 10).await.unwrap();
    let device = with_device.device.clone();
    let (name, replacement) = (bob.clone(), job(&bob));
    let updated = store
        .update_with_job(
            RecordKey::User(bob.clone()),
            Box::new(move |_, cur| {
                let mut next = cur.cloned().expect("bob's record");
                next.version += 1;
                next.device = device.clone();
                assert_eq!(next.username, name);
                Some((next, replacement.clone()))
            }),
        )
        .await
        .unwrap();
    assert_eq!(updated, Updated::Conflict);
    let after = store
        .claim_jobs(t0() + Duration::hours(1), t0(), "peek", 10)
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|j| &j.id).collect::<Vec<_>>(),
        before.iter().map(|j| &j.id).collect::<Vec<_>>(),
        "bob's first job is still the only one"
    );
    assert_eq!(store.load(&bob).await.unwrap().unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_that_lost_a_race_queues_nothing() {
    let Some(url) = common::url("an_insert_that_lost_a_race_queues_nothing") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    let frank = user("frank");
    // On its first run the step finds no record, and before its insert reaches the server
    // another session inserts frank's record: the insert changes nothing. On its second
    // run (the retry) the step keeps what it finds.
    let (name, stray, url2, table) = (
        frank.clone(),
        job(&frank),
        url.clone(),
        format!("{}.records", schema.name),
    );
    let mut runs = 0;
    let updated = store
        .update_with_job(
            RecordKey::User(frank.clone()),
            Box::new(move |_, cur| {
                runs += 1;
                if runs > 1 {
                    assert!(cur.is_some(), "the retry sees the other session's record");
                    return None;
                }
                assert!(cur.is_none());
                let (url, table) = (url2.clone(), table.clone());
                std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(async move {
                            let mut theirs = ProvisionRecord::new(user("frank"));
                            theirs.version = 1;
                            let body = String::from_utf8(theirs.to_json()).unwrap();
                            common::admin_client(&url)
                                .await
                                .execute(
                                    &format!(
                                        "INSERT INTO {table} (username, version, body) \
                                         VALUES ('frank', 1, $1::text::jsonb)"
                                    ),
                                    &[&body],
                                )
                                .await
                                .unwrap();
                        });
                })
                .join()
                .unwrap();
                let mut next = ProvisionRecord::new(name.clone());
                next.version = 1;
                Some((next, stray.clone()))
            }),
        )
        .await
        .unwrap();
    assert_eq!(updated, Updated::Kept);
    assert_eq!(
        store.queue_depth().await.unwrap().jobs,
        0,
        "the job of the insert that changed nothing was not queued"
    );
}
