//! The durable delivery queue's rules, through the public API: a `Provisioner` with
//! `Delivery::Durable` over a `MemoryJobStore`, a manual clock and a recording transport.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use swivel_provision::testing::{ManualClock, RecordingSink, RecordingTransport};
use swivel_provision::*;
use time::Duration;

struct World {
    store: Arc<MemoryJobStore>,
    clock: Arc<ManualClock>,
    outbox: Arc<RecordingTransport>,
    events: Arc<RecordingSink>,
    key: ServerKey,
}

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid")
}

impl World {
    fn new() -> Self {
        let users = Arc::new(MemoryUsers::new());
        for name in ["alice", "bob"] {
            users.insert(
                UserEntry::new(user(name))
                    .with_destination(
                        Destination::email(&format!("{name}@example.com")).expect("valid"),
                    )
                    .with_mobile_group(true),
            );
        }
        Self {
            store: Arc::new(MemoryJobStore::new(users)),
            clock: Arc::new(ManualClock::fixed()),
            outbox: Arc::new(RecordingTransport::new()),
            events: Arc::new(RecordingSink::new()),
            key: ServerKey::from_bytes([3; 32]),
        }
    }

    /// A provisioner (an "instance") on this world's store, claiming as `owner`.
    fn instance(&self, owner: &str) -> Provisioner {
        let mut config = DurableConfig::new(owner);
        config.poll_interval = StdDuration::from_millis(10);
        config.initial_backoff = StdDuration::from_secs(5);
        config.max_attempts = 3;
        config.lease = StdDuration::from_secs(60);
        Provisioner::builder()
            .job_store(self.store.clone())
            .transport(Channel::Email, self.outbox.clone())
            .server_key(self.key.clone())
            .clock(self.clock.clone())
            .events(self.events.clone())
            .delivery(Delivery::Durable(config))
            .build()
            .expect("build")
    }

    /// An instance that queues but whose worker has stopped (its jobs stay in the store),
    /// after it queued a code for alice.
    async fn queued_for_alice(&self) -> Provisioner {
        let queuing = self.instance("queuing");
        queuing.stop_deliveries().await.expect("stop");
        queuing
            .request_provision(&user("alice"), Origin::Admin)
            .await
            .expect("request");
        queuing
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.events.events().iter().map(|e| e.kind()).collect()
    }
}

/// Waits (real time, bounded) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn a_queued_message_is_delivered_with_its_job_id_and_the_code_redeems() {
    let w = World::new();
    let p = w.instance("a");
    let receipt = p
        .request_provision(&user("alice"), Origin::Admin)
        .await
        .expect("request");
    assert!(receipt.queued);
    assert_eq!(w.store.jobs().len(), 1, "the job is in the store");
    p.deliveries_idle().await;
    let sent = w.outbox.last_message_for(&user("alice")).expect("sent");
    assert!(sent.job_id().is_some(), "the message names its job");
    assert!(w.store.jobs().is_empty(), "a delivered job is deleted");
    let code = sent.code().expect("a code").clone();
    p.redeem(&user("alice"), &code, DeviceInfo::default())
        .await
        .expect("the delivered code redeems");
    let kinds = w.kinds();
    for kind in ["code_created", "message_queued", "message_sent"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn transient_failures_are_retried_after_the_backoff_then_sent() {
    let w = World::new();
    w.outbox.fail_next(1, true);
    let p = w.instance("a");
    p.request_provision(&user("alice"), Origin::Admin)
        .await
        .expect("request");
    until("the first attempt failed", || {
        w.kinds().contains(&"delivery_retry")
    })
    .await;
    let job = w.store.jobs().pop().expect("the job is kept");
    assert_eq!(job.attempts, 1);
    // Not before its backoff (5 s on the manual clock) ...
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert!(
        w.outbox.messages().is_empty(),
        "no retry before the backoff"
    );
    // ... and then it is sent.
    w.clock.advance(Duration::seconds(5));
    p.deliveries_idle().await;
    assert_eq!(w.outbox.messages().len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_drops_the_job_and_revokes_the_code() {
    let w = World::new();
    w.outbox.fail_next(1, false);
    let p = w.instance("a");
    p.request_provision(&user("alice"), Origin::Admin)
        .await
        .expect("request");
    p.deliveries_idle().await;
    assert!(w.kinds().contains(&"delivery_failed"));
    assert!(w.store.jobs().is_empty());
    let status = p.status(&user("alice")).await.expect("status");
    assert!(
        status.pending.is_none(),
        "the undeliverable code is revoked"
    );
}

#[tokio::test]
async fn the_last_attempt_fails_for_good() {
    let w = World::new();
    w.outbox.fail_next(3, true);
    let p = w.instance("a");
    p.request_provision(&user("alice"), Origin::Admin)
        .await
        .expect("request");
    for _ in 0..2 {
        let before = w.kinds().len();
        until("an attempt", || w.kinds().len() > before).await;
        w.clock.advance(Duration::seconds(60));
    }
    p.deliveries_idle().await;
    let kinds = w.kinds();
    assert_eq!(
        kinds.iter().filter(|k| **k == "delivery_retry").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"delivery_failed"), "{kinds:?}");
    assert!(w.outbox.messages().is_empty());
}

#[tokio::test]
async fn a_job_whose_code_expired_is_dropped_unsent_with_an_event() {
    let w = World::new();
    w.outbox.fail_next(1, true);
    let p = w.instance("a");
    p.request_provision(&user("alice"), Origin::Admin)
        .await
        .expect("request");
    until("the first attempt failed", || {
        w.kinds().contains(&"delivery_retry")
    })
    .await;
    w.clock.advance(Duration::seconds(601));
    p.deliveries_idle().await;
    assert!(w.outbox.messages().is_empty(), "nothing sent");
    assert!(w.kinds().contains(&"message_expired"));
    assert!(w.store.jobs().is_empty());
}

#[tokio::test]
async fn a_new_request_replaces_the_unsent_message_and_a_revoke_cancels_it() {
    let w = World::new();
    let queuing = w.queued_for_alice().await;
    let first = w.store.jobs();
    queuing
        .request_provision(&user("alice"), Origin::Admin)
        .await
        .expect("second request");
    let second = w.store.jobs();
    assert_eq!(second.len(), 1, "one job per user");
    assert_ne!(
        first[0].id, second[0].id,
        "the new code's message replaced the old"
    );
    queuing
        .request_provision(&user("bob"), Origin::Admin)
        .await
        .expect("bob");
    queuing.revoke(&user("bob")).await.expect("revoke");
    // Another instance delivers: alice's second code; bob's revoked code not at all.
    let delivering = w.instance("delivering");
    delivering.deliveries_idle().await;
    let sent = w.outbox.messages();
    assert_eq!(sent.len(), 1, "only alice's live code is sent");
    assert_eq!(sent[0].job_id(), Some(&second[0].id));
    assert!(w.kinds().contains(&"message_cancelled"));
    assert!(w.store.jobs().is_empty());
}

#[tokio::test]
async fn a_dead_workers_jobs_are_taken_over_when_its_lease_runs_out() {
    let w = World::new();
    w.queued_for_alice().await;
    // A worker claims it and dies without a word.
    let now = w.clock.now();
    let taken = w
        .store
        .claim_jobs(now, now + Duration::seconds(60), "dead", 10)
        .await
        .expect("claim");
    assert_eq!(taken.len(), 1);
    let survivor = w.instance("survivor");
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    assert!(w.outbox.messages().is_empty(), "not while the lease holds");
    w.clock.advance(Duration::seconds(60));
    survivor.deliveries_idle().await;
    assert_eq!(w.outbox.messages().len(), 1, "taken over and sent once");
}

#[tokio::test]
async fn a_stopped_worker_ends_and_durable_delivery_needs_a_job_store() {
    let w = World::new();
    let p = w.instance("a");
    assert!(p.deliveries_running());
    p.stop_deliveries().await.expect("stop");
    until("the worker ended", || !p.deliveries_running()).await;
    let missing = Provisioner::builder()
        .store(Arc::new(MemoryStore::new()))
        .users(Arc::new(MemoryUsers::new()))
        .server_key(ServerKey::generate())
        .delivery(Delivery::Durable(DurableConfig::new("x")))
        .build();
    assert!(matches!(missing, Err(Error::Missing(_))));
}

#[tokio::test]
async fn a_job_sealed_under_another_key_is_dropped() {
    let w = World::new();
    w.queued_for_alice().await;
    let other = World {
        key: ServerKey::from_bytes([4; 32]),
        store: w.store.clone(),
        clock: w.clock.clone(),
        outbox: w.outbox.clone(),
        events: w.events.clone(),
    };
    other.instance("other").deliveries_idle().await;
    assert!(w.outbox.messages().is_empty());
    assert!(w.kinds().contains(&"message_unreadable"));
}

#[tokio::test]
async fn a_successful_redeem_queues_a_device_bound_notice_without_code_or_id() {
    let w = World::new();
    let p = w.instance("a");
    p.request_provision(&user("alice"), Origin::Admin)
        .await
        .expect("request");
    p.deliveries_idle().await;
    let code = w.outbox.last_code_for(&user("alice")).expect("a code");
    let device = DeviceInfo {
        model: Some("Pixel 8".into()),
        ..DeviceInfo::default()
    };
    let id = p
        .redeem(&user("alice"), &code, device)
        .await
        .expect("redeem");
    p.deliveries_idle().await;
    let sent = w.outbox.messages();
    assert_eq!(sent.len(), 2, "the code, then the notice");
    let notice = &sent[1];
    let told = notice.notice().expect("a device-bound notice");
    assert_eq!(told.at, w.clock.now());
    assert!(notice.code().is_none() && notice.links().is_empty());
    assert!(notice.job_id().is_some(), "queued like provision messages");
    let text = format!("{}{}", notice.text_body(), notice.short_text());
    assert!(!text.contains(code.expose()), "no code in the notice");
    assert!(!text.contains(id.expose()), "no provision Id in the notice");
    assert!(text.contains("If this was not you"));
    assert_eq!(notice.subject(), ProvisionMessage::NOTICE_SUBJECT);
}

#[tokio::test]
async fn the_notice_goes_to_the_users_other_destination_and_can_be_switched_off() {
    let w = World::new();
    let sms = Arc::new(RecordingTransport::new());
    w.store.users().insert(
        UserEntry::new(user("carol"))
            .with_destination(Destination::email("carol@example.com").expect("valid"))
            .with_destination(Destination::sms("+15555550123").expect("valid"))
            .with_mobile_group(true),
    );
    let p = Provisioner::builder()
        .job_store(w.store.clone())
        .transport(Channel::Email, w.outbox.clone())
        .transport(Channel::Sms, sms.clone())
        .server_key(w.key.clone())
        .clock(w.clock.clone())
        .delivery(Delivery::Direct)
        .build()
        .expect("build");
    p.request_provision(&user("carol"), Origin::Admin)
        .await
        .expect("request");
    let code = w.outbox.last_code_for(&user("carol")).expect("by email");
    p.redeem(&user("carol"), &code, DeviceInfo::default())
        .await
        .expect("redeem");
    let notices = sms.messages();
    assert_eq!(notices.len(), 1, "the notice went to the other destination");
    assert!(notices[0].notice().is_some());
    assert_eq!(w.outbox.messages().len(), 1, "only the code by email");
    // Switched off: a new device, no notice.
    let mut policy = p.policy();
    policy.set("notify_device_bound", "No").expect("a switch");
    p.set_policy(policy).expect("policy");
    p.request_provision(&user("carol"), Origin::Admin)
        .await
        .expect("request");
    let code = w.outbox.last_code_for(&user("carol")).expect("by email");
    p.redeem(&user("carol"), &code, DeviceInfo::default())
        .await
        .expect("redeem");
    assert_eq!(sms.messages().len(), 1, "no second notice");
}
