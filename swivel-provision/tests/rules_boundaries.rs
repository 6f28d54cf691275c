//! The state machine's rules at their boundaries, through the public `state` module: the
//! instant a code expires, the last attempt of a code and a record with none left, purging
//! while a self-service rate limit runs, and the administrator's unlock, revoke and
//! download at their edges.

use swivel_provision::state::{self, Presented, Purge, Redeem};
use swivel_provision::{
    CodeHash, Device, Error, IdHash, Origin, PendingCode, Policy, ProvisionRecord, RedeemFailure,
    Username,
};
use time::{Duration, OffsetDateTime};

fn alice() -> Username {
    Username::parse("alice").unwrap()
}

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

const RIGHT: CodeHash = CodeHash([1; 32]);
const WRONG: CodeHash = CodeHash([2; 32]);

/// A record for alice with a code `RIGHT` made at `t0` for the policy's validity, with
/// `attempts_left` attempts.
fn pending(policy: &Policy, attempts_left: u8, origin: Origin) -> ProvisionRecord {
    let mut r = ProvisionRecord::new(alice());
    r.version = 1;
    r.pending = Some(PendingCode {
        code_hash: RIGHT,
        created_at: t0(),
        expires_at: t0() + secs(policy.validity_secs().into()),
        attempts_left,
        origin,
    });
    r
}

fn device() -> Device {
    Device {
        id_hash: IdHash([7; 32]),
        provisioned_at: t0(),
        info: None,
        generation: 1,
        used_indices: 0,
        otc_failures: 0,
    }
}

fn present(code: CodeHash) -> Presented {
    Presented {
        known_user: true,
        code_hash: code,
        well_formed: true,
        new_device: IdHash([9; 32]),
        info: None,
    }
}

fn try_at(r: &ProvisionRecord, code: CodeHash, at: OffsetDateTime, p: &Policy) -> Redeem {
    state::redeem(Some(r), &alice(), present(code), at, p)
}

/// The record, cause, reason and burned flag of a failure; panics on a success.
fn failure(r: Redeem) -> (ProvisionRecord, Error, RedeemFailure, bool) {
    match r {
        Redeem::Failed {
            next,
            cause,
            reason,
            burned,
            ..
        } => (next, cause, reason, burned),
        Redeem::Provisioned(_) => panic!("expected a failure"),
    }
}

#[test]
fn a_code_works_until_the_second_it_expires() {
    let p = Policy::default();
    let r = pending(&p, 5, Origin::Admin);
    let expires = r.pending.as_ref().unwrap().expires_at;
    assert!(matches!(
        try_at(&r, RIGHT, expires - secs(1), &p),
        Redeem::Provisioned(_)
    ));
    let (next, cause, reason, burned) = failure(try_at(&r, RIGHT, expires, &p));
    assert_eq!(reason, RedeemFailure::Expired);
    assert!(matches!(cause, Error::ProvisionFailure), "{cause:?}");
    assert!(!burned && next.device.is_none());
    // From the instant it was made (and not a second before: the clock was set back).
    assert!(matches!(
        try_at(&r, RIGHT, t0(), &p),
        Redeem::Provisioned(_)
    ));
    let (_, _, reason, _) = failure(try_at(&r, RIGHT, t0() - secs(1), &p));
    assert_eq!(reason, RedeemFailure::Expired);
}

#[test]
fn a_record_with_no_attempts_left_refuses_even_the_right_code() {
    let p = Policy::default();
    let r = pending(&p, 0, Origin::Admin);
    let (next, cause, reason, burned) = failure(try_at(&r, RIGHT, t0(), &p));
    assert_eq!(reason, RedeemFailure::Burned);
    assert!(matches!(cause, Error::InvalidProvisionCode), "{cause:?}");
    assert!(!burned, "already burned, not by this attempt");
    assert!(next.device.is_none(), "no device from a burned code");
    assert_eq!(next.failures, 1, "the attempt counts on the account");
    // A wrong code on it is refused the same way, and nothing underflows.
    let (next, _, reason, _) = failure(try_at(&r, WRONG, t0(), &p));
    assert_eq!(reason, RedeemFailure::Burned);
    assert_eq!(next.pending.as_ref().map(|p| p.attempts_left), Some(0));
}

#[test]
fn the_last_attempt_provisions_or_burns() {
    let p = Policy::default();
    let r = pending(&p, 1, Origin::Admin);
    let Redeem::Provisioned(done) = try_at(&r, RIGHT, t0(), &p) else {
        panic!("the right code on the last attempt provisions")
    };
    assert_eq!(done.device.map(|d| d.id_hash), Some(IdHash([9; 32])));
    let (next, cause, reason, burned) = failure(try_at(&r, WRONG, t0(), &p));
    assert_eq!(reason, RedeemFailure::Burned);
    assert!(matches!(cause, Error::ProvisionFailure), "{cause:?}");
    assert!(burned && next.pending.is_none());
    // With two left, a wrong code costs one and burns nothing.
    let r = pending(&p, 2, Origin::Admin);
    let (next, _, reason, burned) = failure(try_at(&r, WRONG, t0(), &p));
    assert_eq!((reason, burned), (RedeemFailure::WrongCode, false));
    assert_eq!(next.pending.as_ref().map(|p| p.attempts_left), Some(1));
}

/// A policy with self-service on, codes valid `validity` seconds and a self-service
/// interval of `interval` seconds.
fn self_service(validity: u64, interval: u64) -> Policy {
    let mut p = Policy::default();
    p.allow_self_provision = true;
    p.set_validity_secs(validity).unwrap();
    p.set_self_service_interval_secs(interval).unwrap();
    p
}

/// A user's own request at `t0`, as the record holds it.
fn self_requested(p: &Policy) -> ProvisionRecord {
    let mut r = pending(p, p.max_attempts(), Origin::SelfService);
    r.last_self_request = Some(t0());
    r
}

#[test]
fn purging_an_expired_code_keeps_a_running_rate_limit() {
    // The interval outlasts the code: when the code expires the limit still runs.
    let p = self_service(300, 3600);
    let r = self_requested(&p);
    let expired = t0() + secs(300);
    let Purge::Update(next) = state::purge(&r, expired, &p) else {
        panic!("the record must stay while its rate limit runs")
    };
    assert!(next.pending.is_none(), "the expired code goes");
    assert_eq!(
        next.last_self_request,
        Some(t0()),
        "the limit's start stays"
    );
    assert!(next.version > r.version);
    let again = state::request(
        Some(&next),
        &alice(),
        WRONG,
        Origin::SelfService,
        expired + secs(1),
        &p,
    );
    assert!(matches!(again, Err(Error::RateLimited { .. })), "{again:?}");
}

#[test]
fn purge_deletes_once_the_rate_limit_ends_with_the_code() {
    // The limit runs one second past the code's expiry: the record stays.
    let p = self_service(300, 301);
    assert!(matches!(
        state::purge(&self_requested(&p), t0() + secs(300), &p),
        Purge::Update(_)
    ));
    // The limit ends at the instant the code expires (a request then is allowed): nothing
    // is left to keep.
    let p = self_service(300, 300);
    assert_eq!(
        state::purge(&self_requested(&p), t0() + secs(300), &p),
        Purge::Delete
    );
    // A limit that ended long ago keeps nothing either.
    let p = self_service(300, 10);
    assert_eq!(
        state::purge(&self_requested(&p), t0() + secs(300), &p),
        Purge::Delete
    );
}

#[test]
fn purge_keeps_whatever_one_thing_is_worth_keeping() {
    let p = Policy::default();
    let expired = t0() + secs(p.validity_secs().into());
    let base = pending(&p, 5, Origin::Admin);
    assert_eq!(state::purge(&base, expired - secs(1), &p), Purge::Keep);
    assert_eq!(state::purge(&base, expired, &p), Purge::Delete);
    let keeps = |r: ProvisionRecord, what: &str| {
        let Purge::Update(next) = state::purge(&r, expired, &p) else {
            panic!("{what} must keep the record")
        };
        assert!(next.pending.is_none(), "{what}: the expired code goes");
        *next
    };
    let mut r = base.clone();
    r.device = Some(device());
    assert_eq!(keeps(r, "a device").device, Some(device()));
    let mut r = base.clone();
    r.locked_at = Some(t0());
    r.failures = 3;
    let next = keeps(r, "a lock");
    assert_eq!((next.locked_at, next.failures), (Some(t0()), 3));
    let mut r = base.clone();
    r.failures = 2;
    r.last_failure_at = Some(t0());
    assert_eq!(keeps(r, "fresh failures").failures, 2);
}

#[test]
fn unlock_clears_a_lock_or_a_run_of_failures() {
    let mut locked = ProvisionRecord::new(alice());
    locked.locked_at = Some(t0());
    let open = state::unlock(&locked).expect("a lock without failures is still a lock");
    assert!(!open.is_locked());
    let mut failing = ProvisionRecord::new(alice());
    failing.failures = 3;
    failing.last_failure_at = Some(t0());
    let open = state::unlock(&failing).expect("failures alone are cleared");
    assert_eq!((open.failures, open.last_failure_at), (0, None));
    assert!(state::unlock(&ProvisionRecord::new(alice())).is_none());
}

#[test]
fn revoke_drops_a_pending_code_or_a_device() {
    let p = Policy::default();
    let code_only = pending(&p, 5, Origin::Admin);
    let next = state::revoke(&code_only).expect("a pending code alone is revoked");
    assert!(next.pending.is_none());
    let mut device_only = ProvisionRecord::new(alice());
    device_only.device = Some(device());
    let next = state::revoke(&device_only).expect("a device alone is revoked");
    assert!(next.device.is_none());
    assert!(state::revoke(&ProvisionRecord::new(alice())).is_none());
}

#[test]
fn download_stops_at_the_last_generation() {
    let mut r = ProvisionRecord::new(alice());
    let mut d = device();
    d.generation = u32::MAX - 1;
    d.used_indices = 0b110;
    d.otc_failures = 2;
    r.device = Some(d);
    let next = state::download(&r).expect("one generation is left");
    let d = next.device.as_ref().unwrap();
    assert_eq!(
        (d.generation, d.used_indices, d.otc_failures),
        (u32::MAX, 0, 0)
    );
    assert!(
        state::download(&next).is_none(),
        "no generation after the last"
    );
    assert!(state::download(&ProvisionRecord::new(alice())).is_none());
}
