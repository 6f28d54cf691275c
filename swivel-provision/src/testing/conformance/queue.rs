//! The checks every [`JobStore`] must pass ([`queue_run`]).
//!
//! Unlike the record checks, these claim whatever job is due in the store: run them on a
//! store whose queue nothing else uses while they run (a new file, a new schema). Each
//! check leaves the queue empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{mobile_user, t0, unique};
use crate::queue::{JobId, JobKind, JobStore, QueuedJob};
use crate::record::ProvisionRecord;
use crate::store::{RecordKey, Updated};
use crate::types::{Channel, Username};
use crate::users::UserAdmin;

/// Jobs in [`queue_concurrent_claims_hand_each_job_out_once`].
pub const CLAIMED_JOBS: usize = 100;

/// Runs every queue check, one after the other.
pub async fn queue_run<S: JobStore + UserAdmin>(store: Arc<S>) {
    queue_update_writes_record_and_job_together(store.as_ref()).await;
    queue_new_job_replaces_the_users_old_one(store.as_ref()).await;
    queue_notices_are_added_alone_and_outlive_new_codes(store.as_ref()).await;
    queue_claim_leases_until_it_runs_out(store.as_ref()).await;
    queue_retry_and_release_need_the_holder(store.as_ref()).await;
    queue_depth_counts_and_finish_deletes(store.as_ref()).await;
    queue_concurrent_claims_hand_each_job_out_once(store).await;
}

/// A job for `user` queued at `at`, with sealed bytes a store must keep as they are
/// (every byte value, including NUL).
fn job(user: &Username, at: OffsetDateTime) -> QueuedJob {
    QueuedJob {
        id: JobId::generate(),
        username: user.clone(),
        channel: Channel::Email,
        kind: JobKind::Code,
        created_at: at,
        due_at: at,
        expires_at: at + Duration::minutes(10),
        attempts: 0,
        sealed: (0..=255u8).chain([0, 0, 255]).collect(),
    }
}

/// The user's next record: version one above `current`'s.
fn next_record(user: &Username, current: Option<&ProvisionRecord>) -> ProvisionRecord {
    let mut r = current
        .cloned()
        .unwrap_or_else(|| ProvisionRecord::new(user.clone()));
    r.version = current.map_or(1, |c| c.version + 1);
    r
}

/// Queues `job` with a new record for its user; returns what the store did.
async fn queue(store: &dyn JobStore, job: QueuedJob) -> Updated {
    let user = job.username.clone();
    let key = RecordKey::User(user.clone());
    store
        .update_with_job(
            key,
            Box::new(move |_, cur| Some((next_record(&user, cur), job.clone()))),
        )
        .await
        .expect("update_with_job")
}

async fn claim(
    store: &dyn JobStore,
    now: OffsetDateTime,
    owner: &str,
    limit: usize,
) -> Vec<QueuedJob> {
    store
        .claim_jobs(now, now + Duration::seconds(60), owner, limit)
        .await
        .expect("claim_jobs")
}

async fn finish_all(store: &dyn JobStore, jobs: &[QueuedJob]) {
    for j in jobs {
        store.finish_job(&j.id).await.expect("finish_job");
    }
}

/// The record and its job are written together; the job comes back as it was given; a
/// step that returns nothing writes neither; the step sees the user.
pub async fn queue_update_writes_record_and_job_together(store: &(impl JobStore + UserAdmin)) {
    let user = unique("queue-both");
    store.put_user(&mobile_user(&user)).await.expect("put_user");
    let kept = store
        .update_with_job(RecordKey::User(user.clone()), Box::new(|_, _| None))
        .await
        .expect("update_with_job");
    assert_eq!(kept, Updated::Kept, "queue: a step returning None keeps");
    assert_eq!(
        store.queue_depth().await.expect("depth").jobs,
        0,
        "queue: nothing queued by a step that returned None"
    );
    let given = job(&user, t0());
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let (name, copy) = (user.clone(), given.clone());
    let updated = store
        .update_with_job(
            RecordKey::User(user.clone()),
            Box::new(move |u, cur| {
                let _ = seen_tx.send(u.map(|u| u.username.clone()));
                Some((next_record(&name, cur), copy.clone()))
            }),
        )
        .await
        .expect("update_with_job");
    assert_eq!(updated, Updated::Written, "queue: record and job written");
    assert_eq!(
        seen.try_recv().ok().flatten().as_ref(),
        Some(&user),
        "queue: the step sees the user the key names"
    );
    let record = store.load(&user).await.expect("load");
    assert_eq!(
        record.map(|r| r.version),
        Some(1),
        "queue: the record is there"
    );
    let claimed = claim(store, t0(), "conformance", 10).await;
    assert_eq!(claimed.len(), 1, "queue: exactly the one job is due");
    let got = &claimed[0];
    assert_eq!(
        (&got.id, &got.username, &got.channel, got.attempts),
        (&given.id, &given.username, &given.channel, 0),
        "queue: the job comes back as given"
    );
    assert_eq!(got.sealed, given.sealed, "queue: sealed bytes unchanged");
    assert_eq!(
        (got.created_at, got.expires_at),
        (given.created_at, given.expires_at),
        "queue: times unchanged"
    );
    assert_eq!(
        got.due_at,
        t0() + Duration::seconds(60),
        "queue: a claimed job is due at the end of its lease"
    );
    finish_all(store, &claimed).await;
}

/// A new job for a user deletes that user's other jobs in the same transaction, and no
/// one else's.
pub async fn queue_new_job_replaces_the_users_old_one(store: &(impl JobStore + UserAdmin)) {
    let (user, other) = (unique("queue-replace"), unique("queue-keep"));
    let (first, second, theirs) = (job(&user, t0()), job(&user, t0()), job(&other, t0()));
    for j in [first, theirs.clone(), second.clone()] {
        assert_eq!(queue(store, j).await, Updated::Written);
    }
    let claimed = claim(store, t0(), "conformance", 10).await;
    let ids: BTreeSet<_> = claimed.iter().map(|j| j.id.clone()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([second.id.clone(), theirs.id.clone()]),
        "queue: the user's first job was replaced by the second; the other user's stays"
    );
    finish_all(store, &claimed).await;
}

/// [`JobStore::add_job`] queues a notice without touching the user's code job; a new
/// code's job replaces the old code's and leaves the notice; the kind comes back.
pub async fn queue_notices_are_added_alone_and_outlive_new_codes(
    store: &(impl JobStore + UserAdmin),
) {
    let user = unique("queue-notice");
    let code = job(&user, t0());
    queue(store, code.clone()).await;
    let notice = QueuedJob {
        kind: JobKind::Notice,
        ..job(&user, t0())
    };
    store.add_job(&notice).await.expect("add_job");
    let newer = job(&user, t0());
    assert_eq!(queue(store, newer.clone()).await, Updated::Written);
    let claimed = claim(store, t0(), "conformance", 10).await;
    let kinds: BTreeSet<_> = claimed
        .iter()
        .map(|j| (j.id.clone(), j.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([(newer.id.clone(), "code"), (notice.id.clone(), "notice")]),
        "queue: the notice stays beside the new code's job; the old code's is gone"
    );
    finish_all(store, &claimed).await;
}

/// A claimed job is nobody else's until its lease ran out; then another worker claims it.
pub async fn queue_claim_leases_until_it_runs_out(store: &(impl JobStore + UserAdmin)) {
    let user = unique("queue-lease");
    let j = job(&user, t0());
    queue(store, j.clone()).await;
    let future = t0() + Duration::seconds(1);
    assert!(
        claim(store, t0() - Duration::seconds(1), "a", 10)
            .await
            .is_empty(),
        "queue: a job is not claimed before it is due"
    );
    let by_a = claim(store, future, "a", 10).await;
    assert_eq!(by_a.len(), 1, "queue: a claims the due job");
    assert!(
        claim(store, future, "b", 10).await.is_empty(),
        "queue: b gets nothing while a's lease holds"
    );
    let lease_end = future + Duration::seconds(60);
    let by_b = claim(store, lease_end, "b", 10).await;
    assert_eq!(
        by_b.iter().map(|j| &j.id).collect::<Vec<_>>(),
        [&j.id],
        "queue: once a's lease ran out, b claims the job"
    );
    assert!(
        !store
            .retry_job(&j.id, "a", lease_end, 1)
            .await
            .expect("retry_job"),
        "queue: a, whose lease ran out, can no longer reschedule it"
    );
    finish_all(store, &by_b).await;
}

/// Only the holder reschedules a job; a rescheduled job is due when it says, with its
/// attempts; releasing gives back every job of one holder and no other.
pub async fn queue_retry_and_release_need_the_holder(store: &(impl JobStore + UserAdmin)) {
    let (u1, u2) = (unique("queue-retry"), unique("queue-release"));
    let (j1, j2) = (job(&u1, t0()), job(&u2, t0()));
    queue(store, j1.clone()).await;
    queue(store, j2.clone()).await;
    let claimed = claim(store, t0(), "holder", 10).await;
    assert_eq!(claimed.len(), 2);
    assert!(
        !store
            .retry_job(&j1.id, "stranger", t0(), 1)
            .await
            .expect("retry_job"),
        "queue: only the holder reschedules"
    );
    let later = t0() + Duration::seconds(30);
    assert!(
        store
            .retry_job(&j1.id, "holder", later, 3)
            .await
            .expect("retry_job"),
        "queue: the holder reschedules"
    );
    assert_eq!(
        store
            .release_jobs("stranger", t0())
            .await
            .expect("release_jobs"),
        0,
        "queue: a stranger releases nothing"
    );
    assert_eq!(
        store
            .release_jobs("holder", t0())
            .await
            .expect("release_jobs"),
        1,
        "queue: the holder releases the job it still holds (the other was rescheduled)"
    );
    let now = claim(store, t0(), "next", 10).await;
    assert_eq!(
        now.iter().map(|j| &j.id).collect::<Vec<_>>(),
        [&j2.id],
        "queue: the released job is due at once, the rescheduled one is not"
    );
    let then = claim(store, later, "next", 10).await;
    assert_eq!(
        then.len(),
        1,
        "queue: the rescheduled job is due when it said"
    );
    assert_eq!(
        (&then[0].id, then[0].attempts),
        (&j1.id, 3),
        "queue: with its attempts"
    );
    finish_all(store, &now).await;
    finish_all(store, &then).await;
}

/// The depth counts every job, claimed or not, and names the oldest; finishing deletes
/// (once).
pub async fn queue_depth_counts_and_finish_deletes(store: &(impl JobStore + UserAdmin)) {
    let (u1, u2) = (unique("queue-depth"), unique("queue-depth"));
    let (old, new) = (job(&u1, t0() - Duration::hours(1)), job(&u2, t0()));
    queue(store, old.clone()).await;
    queue(store, new.clone()).await;
    claim(store, t0(), "conformance", 1).await;
    let depth = store.queue_depth().await.expect("queue_depth");
    assert_eq!(depth.jobs, 2, "queue: depth counts claimed jobs too");
    assert_eq!(depth.oldest, Some(old.created_at), "queue: the oldest job");
    assert!(store.finish_job(&old.id).await.expect("finish_job"));
    assert!(
        !store.finish_job(&old.id).await.expect("finish_job"),
        "queue: a finished job is gone"
    );
    assert!(store.finish_job(&new.id).await.expect("finish_job"));
    let depth = store.queue_depth().await.expect("queue_depth");
    assert_eq!((depth.jobs, depth.oldest), (0, None), "queue: empty again");
}

/// [`CLAIMED_JOBS`] jobs and 16 workers claiming a few at a time, at once: each job is
/// handed out exactly once.
pub async fn queue_concurrent_claims_hand_each_job_out_once<S: JobStore + UserAdmin>(
    store: Arc<S>,
) {
    let mut queued = BTreeSet::new();
    for _ in 0..CLAIMED_JOBS {
        let j = job(&unique("queue-race"), t0());
        queued.insert(j.id.clone());
        queue(store.as_ref(), j).await;
    }
    let mut workers = Vec::new();
    for w in 0..16 {
        let store = store.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = claim(store.as_ref(), t0(), &format!("worker-{w}"), 7).await;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got);
            }
        }));
    }
    let mut handed = Vec::new();
    for w in workers {
        handed.extend(w.await.expect("worker"));
    }
    let ids: Vec<_> = handed.iter().map(|j| j.id.clone()).collect();
    let distinct: BTreeSet<_> = ids.iter().cloned().collect();
    assert_eq!(
        ids.len(),
        distinct.len(),
        "queue: no job was handed to two workers"
    );
    assert_eq!(distinct, queued, "queue: every job was handed out");
    finish_all(store.as_ref(), &handed).await;
}
