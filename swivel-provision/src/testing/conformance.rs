//! The conformance suite every [`CodeStore`] must pass: compare-and-swap semantics, device
//! Id uniqueness, lookups, expiry listing, [`CodeStore::update`] (by user and by device Id
//! hash; 32 concurrent updates of one record: exactly one takes a code, and none is lost),
//! and exactly-once redeem under concurrency through the real [`Provisioner`]; for a
//! store that is also the user directory, [`run_with_users`] adds the checks of
//! [`UserRecordStore::update_with_user`] and of [`UserAdmin::list_users_page`]
//! ([`users_page`]). [`events_run`] checks an
//! [`EventStore`](crate::EventStore); [`queue_run`] a [`JobStore`](crate::JobStore) (on a
//! queue nothing else uses meanwhile); [`counters_run`] a
//! [`CounterStore`](crate::CounterStore).
//!
//! Run it from a store's tests inside a multi-thread tokio runtime:
//!
//! ```
//! # use std::sync::Arc;
//! # use swivel_provision::MemoryStore;
//! // In a store's tests: #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 4)]
//! async fn main() {
//!     swivel_provision::testing::conformance::run(Arc::new(MemoryStore::new())).await;
//! }
//! ```
//!
//! Each check uses usernames with a random suffix, so the suite can run against a shared
//! database; it leaves its records behind. A failure panics with a message naming the check.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::code::{CodeHash, IdHash, ProvisionCode, ServerKey, os_rng};
use crate::joint::UserRecordStore;
use crate::memory::MemoryUsers;
use crate::provisioner::{Delivery, Provisioner};
use crate::record::{Device, Origin, PendingCode, ProvisionRecord};
use crate::store::{CodeStore, RecordKey, Updated};
use crate::testing::{ManualClock, RecordingTransport};
use crate::types::{Channel, Destination, DeviceInfo, Username};
use crate::users::{UserAdmin, UserEntry};

mod queue;
pub use queue::{
    CLAIMED_JOBS, queue_claim_leases_until_it_runs_out,
    queue_concurrent_claims_hand_each_job_out_once, queue_depth_counts_and_finish_deletes,
    queue_new_job_replaces_the_users_old_one, queue_notices_are_added_alone_and_outlive_new_codes,
    queue_retry_and_release_need_the_holder, queue_run,
    queue_update_writes_record_and_job_together,
};
mod counters;
pub use counters::{
    CONCURRENT_HITS, counters_concurrent_hits_are_all_counted,
    counters_keys_and_windows_are_separate, counters_long_keys,
    counters_purge_removes_ended_windows, counters_run,
};
mod events;
mod users;
pub use events::{
    events_append_and_list_newest_first, events_concurrent_appends_get_distinct_ids,
    events_filters, events_limits_are_checked, events_pagination_has_no_gaps_or_repeats,
    events_purge_before, events_run,
};
pub use users::users_page;

/// Concurrent redeems of one code in [`exactly_once_redeem`].
pub const CONCURRENT_REDEEMS: usize = 32;

/// Runs every check.
pub async fn run(store: Arc<dyn CodeStore>) {
    cas_insert_update_delete(store.as_ref()).await;
    device_id_is_unique_and_found(store.as_ref()).await;
    list_expired_is_ordered_and_limited(store.as_ref()).await;
    concurrent_swaps_one_winner(store.clone()).await;
    update_reads_writes_and_keeps(store.as_ref()).await;
    update_refuses_foreign_records(store.as_ref()).await;
    concurrent_updates_one_winner(store.clone()).await;
    concurrent_updates_lose_nothing(store.clone()).await;
    exactly_once_redeem(store.clone()).await;
    purge_leaves_live_records(store).await;
}

fn unique(prefix: &str) -> Username {
    use rand_chacha::rand_core::RngCore;
    Username::parse(&format!("{prefix}-{:016x}", os_rng().next_u64())).expect("valid")
}

fn t0() -> OffsetDateTime {
    // Whole seconds: stores may keep times at second precision.
    OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("valid")
}

fn pending(hash: u8, expires_at: OffsetDateTime) -> PendingCode {
    PendingCode {
        code_hash: CodeHash([hash; 32]),
        created_at: t0(),
        expires_at,
        attempts_left: 5,
        origin: Origin::Admin,
    }
}

fn device(id: IdHash) -> Device {
    Device {
        id_hash: id,
        provisioned_at: t0(),
        info: Some(DeviceInfo::new(Some("model"), Some("os"), Some("1.0"))),
        generation: 3,
        used_indices: (1u128 << 99) | 2,
        otc_failures: 1,
    }
}

fn random_id() -> IdHash {
    use rand_chacha::rand_core::RngCore;
    let mut b = [0u8; 32];
    os_rng().fill_bytes(&mut b);
    IdHash(b)
}

/// Insert, load back unchanged, update by version, stale versions refused, delete by
/// version.
pub async fn cas_insert_update_delete(store: &dyn CodeStore) {
    let user = unique("cas");
    assert_eq!(
        store.load(&user).await.expect("load"),
        None,
        "cas: a new user has no record"
    );

    let mut r1 = ProvisionRecord::new(user.clone());
    r1.version = 1;
    r1.pending = Some(pending(1, t0() + Duration::seconds(600)));
    r1.last_self_request = Some(t0());
    assert!(
        store.compare_and_swap(None, &r1).await.expect("insert"),
        "cas: insert into nothing"
    );
    assert!(
        !store
            .compare_and_swap(None, &r1)
            .await
            .expect("insert again"),
        "cas: a second insert must be refused"
    );
    assert_eq!(
        store.load(&user).await.expect("load"),
        Some(r1.clone()),
        "cas: record round trip"
    );

    let mut r2 = r1.clone();
    r2.version = 2;
    r2.pending = None;
    r2.device = Some(device(random_id()));
    assert!(
        !store.compare_and_swap(Some(5), &r2).await.expect("stale"),
        "cas: a wrong expected version must be refused"
    );
    assert!(
        store.compare_and_swap(Some(1), &r2).await.expect("update"),
        "cas: update from v1"
    );
    assert_eq!(
        store.load(&user).await.expect("load"),
        Some(r2.clone()),
        "cas: update round trip"
    );
    assert!(
        !store.compare_and_swap(Some(1), &r2).await.expect("stale"),
        "cas: the old version must now be refused"
    );

    let other = unique("cas-missing");
    let mut ghost = ProvisionRecord::new(other.clone());
    ghost.version = 2;
    assert!(
        !store
            .compare_and_swap(Some(1), &ghost)
            .await
            .expect("update missing"),
        "cas: updating a record that does not exist must be refused"
    );
    assert_eq!(store.load(&other).await.expect("load"), None);

    assert!(
        !store.delete(&user, 1).await.expect("delete stale"),
        "delete: wrong version refused"
    );
    assert!(
        store.delete(&user, 2).await.expect("delete"),
        "delete: right version"
    );
    assert_eq!(
        store.load(&user).await.expect("load"),
        None,
        "delete: record gone"
    );
    assert!(
        !store.delete(&user, 2).await.expect("delete again"),
        "delete: nothing left"
    );
}

/// A device Id hash is found, belongs to one record only, and is released when the device
/// changes.
pub async fn device_id_is_unique_and_found(store: &dyn CodeStore) {
    let (a, b) = (unique("dev-a"), unique("dev-b"));
    let id = random_id();
    let mut ra = ProvisionRecord::new(a.clone());
    ra.version = 1;
    ra.device = Some(device(id));
    assert!(store.compare_and_swap(None, &ra).await.expect("insert a"));
    let found = store.find_by_id_hash(&id).await.expect("find");
    assert_eq!(
        found.as_ref().map(|r| &r.username),
        Some(&a),
        "find_by_id_hash finds the owner"
    );
    assert_eq!(
        store.find_by_id_hash(&random_id()).await.expect("find"),
        None
    );

    let mut rb = ProvisionRecord::new(b.clone());
    rb.version = 1;
    rb.device = Some(device(id));
    assert!(
        !store.compare_and_swap(None, &rb).await.expect("insert b"),
        "a device Id hash held by another user must be refused"
    );

    let new_id = random_id();
    let mut ra2 = ra.clone();
    ra2.version = 2;
    ra2.device = Some(device(new_id));
    assert!(
        store
            .compare_and_swap(Some(1), &ra2)
            .await
            .expect("replace device")
    );
    assert_eq!(
        store.find_by_id_hash(&id).await.expect("find old"),
        None,
        "old device Id released"
    );
    assert_eq!(
        store
            .find_by_id_hash(&new_id)
            .await
            .expect("find new")
            .map(|r| r.username),
        Some(a.clone())
    );
    assert!(
        store.compare_and_swap(None, &rb).await.expect("insert b"),
        "a released device Id hash may be taken"
    );
}

/// `list_expired` lists exactly the expired pending codes, oldest first, up to the limit.
pub async fn list_expired_is_ordered_and_limited(store: &dyn CodeStore) {
    // Far in the past so that other checks' records (at t0) do not interfere... they are at
    // t0 + 600 s; these expire before t0.
    let base = t0() - Duration::days(3650);
    let mut names = Vec::new();
    for i in 0..3 {
        let u = unique("exp");
        let mut r = ProvisionRecord::new(u.clone());
        r.version = 1;
        r.pending = Some(pending(7, base + Duration::seconds(10 * (3 - i))));
        assert!(store.compare_and_swap(None, &r).await.expect("insert"));
        names.push(u);
    }
    let live = unique("exp-live");
    let mut r = ProvisionRecord::new(live.clone());
    r.version = 1;
    r.pending = Some(pending(7, base + Duration::seconds(1000)));
    assert!(store.compare_and_swap(None, &r).await.expect("insert"));

    let now = base + Duration::seconds(30);
    let listed = store.list_expired(now, 1000).await.expect("list");
    let ours: Vec<&Username> = listed
        .iter()
        .filter(|u| names.contains(u) || **u == live)
        .collect();
    assert_eq!(
        ours,
        vec![&names[2], &names[1], &names[0]],
        "list_expired: the expired ones, oldest first, not the live one"
    );
    let limited = store
        .list_expired(base + Duration::seconds(30), 1)
        .await
        .expect("list");
    assert_eq!(limited.len(), 1, "list_expired honours the limit");
}

/// Of many concurrent swaps from the same version, exactly one wins.
pub async fn concurrent_swaps_one_winner(store: Arc<dyn CodeStore>) {
    let user = unique("race");
    let mut r = ProvisionRecord::new(user.clone());
    r.version = 1;
    assert!(store.compare_and_swap(None, &r).await.expect("insert"));
    let mut tasks = Vec::new();
    for i in 0..CONCURRENT_REDEEMS {
        let store = store.clone();
        let mut next = r.clone();
        next.version = 2;
        next.pending = Some(pending(i as u8, t0()));
        tasks.push(tokio::spawn(async move {
            store.compare_and_swap(Some(1), &next).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("task").expect("swap") {
            wins += 1;
        }
    }
    assert_eq!(
        wins, 1,
        "exactly one of {CONCURRENT_REDEEMS} concurrent swaps must win"
    );
}

/// Runs one [`CodeStore::update`] whose step records what it saw and returns `next(seen)`.
async fn update_with(
    store: &dyn CodeStore,
    key: RecordKey,
    next: impl Fn(Option<&ProvisionRecord>) -> Option<ProvisionRecord> + Send + 'static,
) -> (Updated, Option<ProvisionRecord>) {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let slot = seen.clone();
    let updated = store
        .update(
            key,
            Box::new(move |cur| {
                *slot.lock().expect("lock") = cur.cloned();
                next(cur)
            }),
        )
        .await
        .expect("update");
    let seen = seen.lock().expect("lock").take();
    (updated, seen)
}

/// `update` hands the step the stored record (by user or by device Id hash), writes what
/// it returns, and writes nothing when it returns `None`.
pub async fn update_reads_writes_and_keeps(store: &dyn CodeStore) {
    let user = unique("upd");
    let mut r1 = ProvisionRecord::new(user.clone());
    r1.version = 1;
    r1.pending = Some(pending(3, t0() + Duration::seconds(600)));
    let insert = r1.clone();
    let (updated, seen) = update_with(store, RecordKey::User(user.clone()), move |_| {
        Some(insert.clone())
    })
    .await;
    assert_eq!(updated, Updated::Written, "update: insert into nothing");
    assert_eq!(seen, None, "update: a new user's step sees no record");
    assert_eq!(store.load(&user).await.expect("load"), Some(r1.clone()));

    let (updated, seen) = update_with(store, RecordKey::User(user.clone()), |_| None).await;
    assert_eq!(
        updated,
        Updated::Kept,
        "update: a step returning None keeps"
    );
    assert_eq!(seen.as_ref(), Some(&r1), "update: the step sees the record");
    assert_eq!(store.load(&user).await.expect("load"), Some(r1.clone()));

    let id = random_id();
    let (updated, _) = update_with(store, RecordKey::User(user.clone()), move |cur| {
        let mut next = cur.cloned()?;
        next.version += 1;
        next.pending = None;
        next.device = Some(device(id));
        Some(next)
    })
    .await;
    assert_eq!(updated, Updated::Written, "update: by user");
    let (updated, seen) = update_with(store, RecordKey::Device(id), |cur| {
        let mut next = cur.cloned()?;
        next.version += 1;
        if let Some(d) = next.device.as_mut() {
            d.generation += 1;
        }
        Some(next)
    })
    .await;
    assert_eq!(updated, Updated::Written, "update: by device Id hash");
    assert_eq!(
        seen.map(|r| (r.username, r.version)),
        Some((user.clone(), 2)),
        "update: the step sees the record holding the Id hash"
    );
    let stored = store.load(&user).await.expect("load").expect("record");
    assert_eq!(stored.version, 3);
    assert_eq!(stored.device.map(|d| d.generation), Some(4));

    let (updated, seen) =
        update_with(store, RecordKey::Device(random_id()), |cur| cur.cloned()).await;
    assert_eq!(
        (updated, seen),
        (Updated::Kept, None),
        "update: an unknown Id hash finds nothing"
    );
}

/// `update` refuses a step's record of another user, and a device Id hash another user's
/// record holds.
pub async fn update_refuses_foreign_records(store: &dyn CodeStore) {
    let (a, b) = (unique("upd-a"), unique("upd-b"));
    let id = random_id();
    let mut ra = ProvisionRecord::new(a.clone());
    ra.version = 1;
    ra.device = Some(device(id));
    assert!(store.compare_and_swap(None, &ra).await.expect("insert a"));
    let mut rb = ProvisionRecord::new(b.clone());
    rb.version = 1;
    assert!(store.compare_and_swap(None, &rb).await.expect("insert b"));

    let other = rb.clone();
    let result = store
        .update(
            RecordKey::User(a.clone()),
            Box::new(move |_| {
                let mut next = other.clone();
                next.version = 2;
                Some(next)
            }),
        )
        .await;
    assert!(
        matches!(result, Err(crate::StoreError::Backend(_))),
        "update: a step's record of another user is refused"
    );
    let taken = rb.clone();
    let (updated, _) = update_with(store, RecordKey::User(b.clone()), move |_| {
        let mut next = taken.clone();
        next.version = 2;
        next.device = Some(device(id));
        Some(next)
    })
    .await;
    assert_eq!(
        updated,
        Updated::Conflict,
        "update: a device Id hash held by another user is refused"
    );
    assert_eq!(store.load(&a).await.expect("load"), Some(ra), "a unchanged");
    assert_eq!(store.load(&b).await.expect("load"), Some(rb), "b unchanged");
}

/// Of [`CONCURRENT_REDEEMS`] concurrent updates that each take the one pending code,
/// exactly one writes; the others see it gone and keep.
pub async fn concurrent_updates_one_winner(store: Arc<dyn CodeStore>) {
    let user = with_pending_code(store.as_ref(), "upd-race").await;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_REDEEMS {
        let (store, user) = (store.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let id = random_id();
            update_with(store.as_ref(), RecordKey::User(user), move |cur| {
                take_code(cur, id)
            })
            .await
            .0
        }));
    }
    exactly_one_wrote("concurrent_updates_one_winner", tasks).await;
    let stored = store.load(&user).await.expect("load").expect("record");
    assert_eq!(stored.version, 2);
    assert!(stored.pending.is_none() && stored.device.is_some());
}

/// A fresh user's record (version 1) with one pending code.
async fn with_pending_code(store: &dyn CodeStore, prefix: &str) -> Username {
    let user = unique(prefix);
    let mut r = ProvisionRecord::new(user.clone());
    r.version = 1;
    r.pending = Some(pending(9, t0() + Duration::seconds(600)));
    assert!(store.compare_and_swap(None, &r).await.expect("insert"));
    user
}

/// The step of the races: takes the pending code and provisions device `id`; keeps the
/// record when the code is gone.
fn take_code(cur: Option<&ProvisionRecord>, id: IdHash) -> Option<ProvisionRecord> {
    let cur = cur?;
    cur.pending.as_ref()?;
    let mut next = cur.clone();
    next.version += 1;
    next.pending = None;
    next.device = Some(device(id));
    Some(next)
}

/// Waits for the racing `tasks`: each must have written or kept, and exactly one written.
async fn exactly_one_wrote(check: &str, tasks: Vec<tokio::task::JoinHandle<Updated>>) {
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Updated::Written => wins += 1,
            Updated::Kept => {}
            other => panic!("{check}: unexpected {other:?}"),
        }
    }
    assert_eq!(
        wins, 1,
        "{check}: exactly one of {CONCURRENT_REDEEMS} concurrent updates must take the code"
    );
}

/// [`CONCURRENT_REDEEMS`] concurrent updates that each count one more: none is lost.
pub async fn concurrent_updates_lose_nothing(store: Arc<dyn CodeStore>) {
    let user = unique("upd-count");
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_REDEEMS {
        let (store, user) = (store.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let key = RecordKey::User(user.clone());
            update_with(store.as_ref(), key, move |cur| {
                let mut next = cur
                    .cloned()
                    .unwrap_or_else(|| ProvisionRecord::new(user.clone()));
                next.version += 1;
                Some(next)
            })
            .await
            .0
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.expect("task"),
            Updated::Written,
            "concurrent_updates_lose_nothing: every update writes"
        );
    }
    let stored = store.load(&user).await.expect("load").expect("record");
    assert_eq!(
        stored.version, CONCURRENT_REDEEMS as u64,
        "no update of {CONCURRENT_REDEEMS} may be lost"
    );
}

fn provisioner(
    store: Arc<dyn CodeStore>,
    user: &Username,
) -> (Provisioner, Arc<RecordingTransport>) {
    let users = Arc::new(MemoryUsers::new());
    users.insert(
        UserEntry::new(user.clone())
            .with_destination(Destination::new(Channel::Email, "user@example.com").expect("valid"))
            .with_mobile_group(true),
    );
    let outbox = Arc::new(RecordingTransport::new());
    // Detailed errors, so that a loser's answer says why it lost.
    let mut policy = crate::Policy::default();
    policy.device_errors = crate::DeviceErrors::Detailed;
    let p = Provisioner::builder()
        .store(store)
        .policy(policy)
        .users(users)
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::from_bytes([42; 32]))
        .delivery(Delivery::Direct)
        .build()
        .expect("provisioner");
    (p, outbox)
}

/// 32 concurrent redeems of one code through the [`Provisioner`]: exactly one wins and
/// the others get `Invalid Provision Code`.
pub async fn exactly_once_redeem(store: Arc<dyn CodeStore>) {
    let user = unique("redeem");
    let (p, outbox) = provisioner(store, &user);
    p.request_provision(&user, Origin::Admin)
        .await
        .expect("request");
    let code: ProvisionCode = outbox.last_code_for(&user).expect("code sent");
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_REDEEMS {
        let (p, user, code) = (p.clone(), user.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            p.redeem(&user, &code, DeviceInfo::default()).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => wins += 1,
            Err(crate::Error::InvalidProvisionCode) => {}
            Err(e) => panic!("exactly_once_redeem: unexpected error {e:?}"),
        }
    }
    assert_eq!(
        wins, 1,
        "exactly one of {CONCURRENT_REDEEMS} concurrent redeems must win"
    );
}

/// Purging clears expired codes and keeps live codes and devices.
pub async fn purge_leaves_live_records(store: Arc<dyn CodeStore>) {
    let (expired, live) = (unique("purge-old"), unique("purge-live"));
    let (p, outbox) = provisioner(store.clone(), &expired);
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let users = Arc::new(MemoryUsers::new());
    for u in [&expired, &live] {
        users.insert(
            UserEntry::new(u.clone())
                .with_destination(
                    Destination::new(Channel::Email, "user@example.com").expect("valid"),
                )
                .with_mobile_group(true),
        );
    }
    drop(p);
    let p = Provisioner::builder()
        .store(store.clone())
        .users(users)
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::from_bytes([42; 32]))
        .clock(clock.clone())
        .delivery(Delivery::Direct)
        .build()
        .expect("provisioner");
    // `expired` gets a device, then a code that will expire; `live` gets a fresh code later.
    p.request_provision(&expired, Origin::Admin)
        .await
        .expect("request");
    let code = outbox.last_code_for(&expired).expect("code");
    p.redeem(&expired, &code, DeviceInfo::default())
        .await
        .expect("redeem");
    p.request_provision(&expired, Origin::Admin)
        .await
        .expect("request again");
    clock.advance(Duration::seconds(601));
    p.request_provision(&live, Origin::Admin)
        .await
        .expect("request live");
    let purged = p.purge_expired().await.expect("purge");
    assert!(purged >= 1, "purge: at least our expired record");
    let after = store
        .load(&expired)
        .await
        .expect("load")
        .expect("record kept (it has a device)");
    assert!(after.pending.is_none(), "purge: expired code cleared");
    assert!(after.device.is_some(), "purge: device kept");
    let live_rec = store
        .load(&live)
        .await
        .expect("load")
        .expect("live record kept");
    assert!(live_rec.pending.is_some(), "purge: live code kept");
}

/// Runs every check of [`run`], then those of [`UserRecordStore::update_with_user`] for a
/// store that is also the user directory: the step sees the user the key names (or the
/// owner of the record a device Id finds, and no user for an unknown name); 32 concurrent
/// joint updates of one record: exactly one takes the code; and the whole cycle
/// (request, 32 concurrent redeems, strings download) through a [`Provisioner`] built with
/// [`store_with_users`](crate::ProvisionerBuilder::store_with_users); and [`users_page`].
pub async fn run_with_users<S: UserRecordStore + UserAdmin>(store: Arc<S>) {
    run(store.clone()).await;
    users_page(store.as_ref()).await;
    update_with_user_sees_the_directory(store.as_ref()).await;
    concurrent_updates_with_user_one_winner(store.clone()).await;
    joint_cycle_exactly_once(store).await;
}

fn mobile_user(name: &Username) -> UserEntry {
    UserEntry::new(name.clone())
        .with_destination(Destination::new(Channel::Email, "user@example.com").expect("valid"))
        .with_mobile_group(true)
}

/// The user and record one `update_with_user` call saw, and what it did.
async fn joint_update(
    store: &dyn UserRecordStore,
    key: RecordKey,
    next: impl Fn(Option<&UserEntry>, Option<&ProvisionRecord>) -> Option<ProvisionRecord>
    + Send
    + 'static,
) -> (Updated, Option<UserEntry>, Option<ProvisionRecord>) {
    let seen = Arc::new(std::sync::Mutex::new((None, None)));
    let slot = seen.clone();
    let updated = store
        .update_with_user(
            key,
            Box::new(move |user, cur| {
                *slot.lock().expect("lock") = (user.cloned(), cur.cloned());
                next(user, cur)
            }),
        )
        .await
        .expect("update_with_user");
    let (user, record) = seen.lock().expect("lock").clone();
    (updated, user, record)
}

/// `update_with_user` hands the step the directory entry of the user the key names (none
/// for an unknown user), or of the owner of the record a device Id finds, with the record.
pub async fn update_with_user_sees_the_directory<S: UserRecordStore + UserAdmin>(store: &S) {
    let (known, unknown) = (unique("joint"), unique("joint-none"));
    store
        .put_user(&mobile_user(&known))
        .await
        .expect("put_user");
    // Known user, no record yet: the entry and no record; the step's record is written.
    let id = random_id();
    let owner = known.clone();
    let (updated, user, record) =
        joint_update(store, RecordKey::User(known.clone()), move |u, cur| {
            assert!(u.is_some() && cur.is_none());
            let mut r = ProvisionRecord::new(owner.clone());
            r.version = 1;
            r.device = Some(device(id));
            Some(r)
        })
        .await;
    assert_eq!(
        updated,
        Updated::Written,
        "update_with_user: the step's record is written"
    );
    assert_eq!(
        user,
        Some(mobile_user(&known)),
        "update_with_user: the user's entry"
    );
    assert!(record.is_none());
    // By device Id: the owner's entry and the record.
    let (updated, user, record) = joint_update(store, RecordKey::Device(id), |_, _| None).await;
    assert_eq!(updated, Updated::Kept);
    assert_eq!(
        user.map(|u| u.username),
        Some(known.clone()),
        "update_with_user: the owner by device Id"
    );
    assert_eq!(record.map(|r| r.version), Some(1));
    // Unknown user: no entry, no record; nothing written when the step says so.
    let (updated, user, record) =
        joint_update(store, RecordKey::User(unknown.clone()), |_, _| None).await;
    assert_eq!(
        (updated, user, record),
        (Updated::Kept, None, None),
        "update_with_user: unknown user"
    );
    // Unknown device Id: no user, no record.
    let (updated, user, record) =
        joint_update(store, RecordKey::Device(random_id()), |_, _| None).await;
    assert_eq!(
        (updated, user, record),
        (Updated::Kept, None, None),
        "update_with_user: unknown device"
    );
    // A user removed from the directory is seen as gone, the record as it is.
    store.remove_user(&known).await.expect("remove_user");
    let (_, user, record) = joint_update(store, RecordKey::User(known.clone()), |_, _| None).await;
    assert!(
        user.is_none() && record.is_some(),
        "update_with_user: a removed user"
    );
}

/// Of [`CONCURRENT_REDEEMS`] concurrent `update_with_user` calls that each take the one
/// pending code, exactly one writes.
pub async fn concurrent_updates_with_user_one_winner<S: UserRecordStore + UserAdmin>(
    store: Arc<S>,
) {
    let user = with_pending_code(store.as_ref(), "joint-race").await;
    store.put_user(&mobile_user(&user)).await.expect("put_user");
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_REDEEMS {
        let (store, user) = (store.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            let id = random_id();
            joint_update(store.as_ref(), RecordKey::User(user), move |u, cur| {
                u?;
                take_code(cur, id)
            })
            .await
            .0
        }));
    }
    exactly_one_wrote("concurrent_updates_with_user_one_winner", tasks).await;
    let stored = store.load(&user).await.expect("load").expect("record");
    assert_eq!(stored.version, 2);
}

/// A request, [`CONCURRENT_REDEEMS`] concurrent redeems (exactly one wins) and a strings
/// download through a provisioner whose store is also the directory; an unknown user's
/// redeem fails like a wrong code.
pub async fn joint_cycle_exactly_once<S: UserRecordStore + UserAdmin>(store: Arc<S>) {
    let user = unique("joint-cycle");
    store.put_user(&mobile_user(&user)).await.expect("put_user");
    let outbox = Arc::new(RecordingTransport::new());
    let p = Provisioner::builder()
        .store_with_users(store.clone() as Arc<dyn UserRecordStore>)
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::from_bytes([42; 32]))
        .delivery(Delivery::Direct)
        .build()
        .expect("provisioner");
    p.request_provision(&user, Origin::Admin)
        .await
        .expect("request");
    let code = outbox.last_code_for(&user).expect("code sent");
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_REDEEMS {
        let (p, user, code) = (p.clone(), user.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            p.redeem(&user, &code, DeviceInfo::default()).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(id) => ids.push(id),
            Err(crate::Error::ProvisionFailure) => {}
            Err(e) => panic!("joint_cycle_exactly_once: unexpected error {e:?}"),
        }
    }
    assert_eq!(
        ids.len(),
        1,
        "exactly one of {CONCURRENT_REDEEMS} concurrent redeems must win"
    );
    let strings = p.download_strings(&ids[0]).await.expect("download");
    assert_eq!(strings.username, user);
    let nobody = unique("joint-nobody");
    assert!(matches!(
        p.request_provision(&nobody, Origin::Admin).await,
        Err(crate::Error::UnknownUser { .. })
    ));
    assert!(matches!(
        p.redeem(&nobody, &code, DeviceInfo::default()).await,
        Err(crate::Error::ProvisionFailure)
    ));
}
