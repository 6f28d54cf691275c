//! The state machine (DESIGN §3): every rule of provisioning, as pure functions from a
//! record to the next record. The [`Provisioner`](crate::Provisioner) loads a record,
//! calls one of these, and swaps the result into the store by version, retrying on
//! conflict. Nothing else changes a record.
//!
//! ```text
//!  NoDevice ──request──► Pending            Provisioned ──request──► Pending + Provisioned
//!  Pending ──redeem(right code, in time)──► Provisioned(new device); old device gone
//!  Pending ──wrong code──► attempts_left − 1; at 0 the code is burned
//!  Pending ──expired / burned / used──► redeem fails, nothing changes
//!  Provisioned ──download_strings──► generation + 1
//!  Provisioned ──right one-time code──► its index spent; a wrong one spends nothing
//!  any ──admin cancel_code──► no pending code (the device stays)
//!  any ──admin revoke──► no pending code, no device
//!  any ──name joins the directory──► no record (it starts clean)
//! ```
//!
//! Every failure (a wrong code, any cause) is counted on the name's record; a known user's
//! account locks at the policy's `max_account_failures`, a name the directory does not
//! know never locks, and its record is purged after
//! [`FAILURE_RECORD_TTL`](crate::record::FAILURE_RECORD_TTL).

use time::{Duration, OffsetDateTime};

use crate::code::{CodeHash, IdHash};
use crate::error::Error;
use crate::events::RedeemFailure;
use crate::policy::Policy;
use crate::record::{Device, Origin, PendingCode, ProvisionRecord};
use crate::strings::STRINGS_PER_SET;
use crate::types::{DeviceInfo, Username};

fn bump(mut record: ProvisionRecord) -> ProvisionRecord {
    record.version += 1;
    record
}

/// The keyed hash a presented code is compared with when there is no pending code, so that
/// the comparison costs the same with and without one.
const NO_CODE: CodeHash = CodeHash([0; 32]);

/// Counts one failed attempt on the account (per account, across codes: NIST SP 800-63B
/// §5.2.2). At the policy's `max_account_failures` the account of a known user locks; a
/// name the directory does not know is counted alike (the same work) but never locks, so
/// that nobody can lock a name before it exists, and its record, holding nothing else, is
/// purged after [`FAILURE_RECORD_TTL`](crate::record::FAILURE_RECORD_TTL). Returns whether
/// this failure locked the account.
fn count_failure(
    next: &mut ProvisionRecord,
    known_user: bool,
    now: OffsetDateTime,
    policy: &Policy,
) -> bool {
    next.failures = next.failures.saturating_add(1);
    next.last_failure_at = Some(now);
    if known_user
        && next.locked_at.is_none()
        && next.failures >= u32::from(policy.max_account_failures())
    {
        next.locked_at = Some(now);
        return true;
    }
    false
}

/// A success resets the run of failures (it does not unlock a locked account).
fn reset_failures(next: &mut ProvisionRecord) {
    next.failures = 0;
    next.last_failure_at = None;
}

/// A new code for the user. It replaces any pending code (the old one stops working) and
/// leaves the device alone: the old device keeps working until the new code is redeemed.
///
/// Refused, with nothing changed:
/// - a locked account ([`Error::AccountLocked`]), whoever asks;
/// - a self-service request when the policy says No ([`Error::SelfProvisionDisabled`]),
///   while a code an administrator issued is still pending ([`Error::AdminCodePending`]:
///   an anonymous request must not destroy it), or less than `self_service_interval_secs`
///   after the user's last request ([`Error::RateLimited`]). The rate limit counts from the
///   later of the stored and the current time, so a clock set back does not shorten it.
pub fn request(
    current: Option<&ProvisionRecord>,
    username: &Username,
    code_hash: CodeHash,
    origin: Origin,
    now: OffsetDateTime,
    policy: &Policy,
) -> Result<ProvisionRecord, Error> {
    let mut next = current
        .cloned()
        .unwrap_or_else(|| ProvisionRecord::new(username.clone()));
    if next.is_locked() {
        return Err(Error::AccountLocked {
            username: username.to_string(),
        });
    }
    if origin == Origin::SelfService {
        if !policy.allow_self_provision {
            return Err(Error::SelfProvisionDisabled);
        }
        let admin_code_live = next.pending.as_ref().is_some_and(|p| {
            p.origin == Origin::Admin && p.attempts_left > 0 && p.expires_at > now
        });
        if admin_code_live {
            return Err(Error::AdminCodePending);
        }
        if let Some(last) = next.last_self_request {
            let ready_at = last + Duration::seconds(policy.self_service_interval_secs() as i64);
            if now < ready_at {
                let wait = (ready_at - now).whole_seconds().max(1) as u64;
                return Err(Error::RateLimited {
                    retry_after_secs: wait,
                });
            }
        }
        // Past the limit `now` is later than the stored time, so it is the later of the two.
        next.last_self_request = Some(now);
    }
    next.pending = Some(PendingCode {
        code_hash,
        created_at: now,
        expires_at: now + Duration::seconds(policy.validity_secs() as i64),
        attempts_left: policy.max_attempts(),
        origin,
    });
    Ok(bump(next))
}

/// What a device presents to [`redeem`].
#[derive(Debug, Clone)]
pub struct Presented {
    /// Whether the username is in the user directory.
    pub known_user: bool,
    /// The keyed hash of the code the device sent.
    pub code_hash: CodeHash,
    /// Whether the code had the policy's shape (a malformed code costs no attempt of the
    /// code, but counts against the account).
    pub well_formed: bool,
    /// The keyed hash of the provision Id the device gets if the code is right.
    pub new_device: IdHash,
    /// What the device said about itself (already filtered by the policy).
    pub info: Option<DeviceInfo>,
}

/// What a redeem attempt leads to. Either way there is a record to store: a failure is
/// counted on the account, whatever its cause, so every failed attempt costs the same work
/// (a read, a keyed hash, a constant-time compare and a write).
#[derive(Debug)]
pub enum Redeem {
    /// The code was right and in time: the record with the new device (the old device, if
    /// any, is gone, and with it its strings).
    Provisioned(ProvisionRecord),
    /// The attempt failed. The device is untouched.
    Failed {
        /// The record to store (the failure counted; one attempt fewer on a wrong code).
        next: ProvisionRecord,
        /// Why, in detail (the policy's `device_errors` decides what the device is told):
        /// [`Error::UnknownUser`], [`Error::AccountLocked`], [`Error::InvalidProvisionCode`]
        /// (no pending code, used, burned, or malformed), [`Error::ProvisionFailure`] (wrong,
        /// expired, or created in the future — the clock was set back).
        cause: Error,
        /// Why, in the operator's words (for [`ProvisionEvent::ProvisionFailed`](crate::ProvisionEvent::ProvisionFailed)).
        reason: RedeemFailure,
        /// Whether this attempt burned the code.
        burned: bool,
        /// Whether this attempt locked the account.
        locked: bool,
    },
}

/// Redeems a code for `username`.
pub fn redeem(
    current: Option<&ProvisionRecord>,
    username: &Username,
    presented: Presented,
    now: OffsetDateTime,
    policy: &Policy,
) -> Redeem {
    let mut next = current
        .cloned()
        .unwrap_or_else(|| ProvisionRecord::new(username.clone()));
    // Compare whether or not there is a code, so that the work is the same.
    let matches = next
        .pending
        .as_ref()
        .map_or(&NO_CODE, |p| &p.code_hash)
        .ct_eq(&presented.code_hash);
    enum Verdict {
        Right,
        Wrong,
        Refused(Error, RedeemFailure),
    }
    let verdict = if !presented.known_user {
        Verdict::Refused(
            Error::UnknownUser {
                username: username.to_string(),
            },
            RedeemFailure::UnknownUser,
        )
    } else if next.is_locked() {
        Verdict::Refused(
            Error::AccountLocked {
                username: username.to_string(),
            },
            RedeemFailure::Locked,
        )
    } else {
        match &next.pending {
            None => Verdict::Refused(Error::InvalidProvisionCode, RedeemFailure::NoCode),
            Some(p) if now >= p.expires_at || now < p.created_at => {
                Verdict::Refused(Error::ProvisionFailure, RedeemFailure::Expired)
            }
            Some(p) if p.attempts_left == 0 => {
                Verdict::Refused(Error::InvalidProvisionCode, RedeemFailure::Burned)
            }
            Some(_) if !presented.well_formed => {
                Verdict::Refused(Error::InvalidProvisionCode, RedeemFailure::Malformed)
            }
            Some(_) if matches => Verdict::Right,
            Some(_) => Verdict::Wrong,
        }
    };
    let mut burned = false;
    let (cause, reason) = match verdict {
        Verdict::Right => {
            next.pending = None;
            reset_failures(&mut next);
            next.device = Some(Device {
                id_hash: presented.new_device,
                provisioned_at: now,
                info: presented.info,
                generation: 0,
                used_indices: 0,
                otc_failures: 0,
            });
            return Redeem::Provisioned(bump(next));
        }
        Verdict::Refused(e, reason) => (e, reason),
        Verdict::Wrong => {
            if let Some(p) = next.pending.as_mut() {
                p.attempts_left -= 1;
                burned = p.attempts_left == 0;
            }
            if burned {
                next.pending = None;
            }
            let reason = if burned {
                RedeemFailure::Burned
            } else {
                RedeemFailure::WrongCode
            };
            (Error::ProvisionFailure, reason)
        }
    };
    let locked = count_failure(&mut next, presented.known_user, now, policy);
    Redeem::Failed {
        next: bump(next),
        cause,
        reason,
        burned,
        locked,
    }
}

/// A strings download: the next generation, with no index used. `None` when there is no
/// device.
pub fn download(current: &ProvisionRecord) -> Option<ProvisionRecord> {
    let mut next = current.clone();
    let device = next.device.as_mut()?;
    device.generation = device.generation.checked_add(1)?;
    device.used_indices = 0;
    device.otc_failures = 0;
    Some(bump(next))
}

/// The device whose strings a one-time code on string `index` is checked against: the
/// user's, when the user is in the mobile group (`mobile_group`), the account is not
/// locked, strings were downloaded, and `index` (1–99) is not used yet in this generation.
/// `None` otherwise: the caller then checks the code against stand-in strings, so that
/// the work is the same, and [`record_otc`] refuses it whatever it matched.
pub fn otc_device(current: &ProvisionRecord, index: u8, mobile_group: bool) -> Option<&Device> {
    let device = current.device.as_ref()?;
    let usable = mobile_group
        && !current.is_locked()
        && device.generation > 0
        && index != 0
        && (index as usize) < STRINGS_PER_SET
        && device.used_indices & (1u128 << index) == 0;
    usable.then_some(device)
}

/// The index (1–99) a device should use next (Swivel's `TokenIndex`): the lowest one of the
/// current generation not used yet. `None` when there is no device, no strings were
/// downloaded yet, or every index of the generation is spent. Only a right one-time code
/// spends an index, so that a wrong one never moves it.
pub fn next_index(current: &ProvisionRecord) -> Option<u8> {
    let device = current.device.as_ref()?;
    if device.generation == 0 {
        return None;
    }
    (1..STRINGS_PER_SET as u8).find(|i| device.used_indices & (1u128 << i) == 0)
}

/// A one-time code as [`record_otc`] takes it, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtcAttempt {
    /// Whether the username is in the user directory.
    pub known_user: bool,
    /// Whether the user is in the mobile group (`false` for an unknown name).
    pub mobile_group: bool,
    /// The string index the code names (0 when the code was malformed).
    pub index: u8,
    /// Whether the code matched the strings of [`otc_device`] (stand-in strings, used when
    /// there is no such device, never count).
    pub matched: bool,
}

/// What [`record_otc`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtcOutcome {
    /// The record to store.
    pub next: ProvisionRecord,
    /// Whether the code was accepted.
    pub accepted: bool,
    /// Whether this code locked the account.
    pub locked: bool,
}

/// Records a checked one-time code for `username`. A code is accepted only when it matched
/// the strings of [`otc_device`] (a member of the mobile group, not locked, an unused index
/// of the downloaded generation); then its index is spent and the account's run of
/// failures reset.
///
/// Any other code (wrong, of another length, on a spent index, no device, outside the
/// mobile group, locked, unknown name: a record is made for the name) spends no index and
/// leaves the device as it was: it is counted on the account like a failed redeem, the
/// same for every name, so that neither `TokenIndex` nor anything else tells who was
/// named. Limiting wrong codes per client address is the host's part (the example server
/// refuses an address for an account after the policy's `max_otc_failures`); a limit kept
/// on the device would let a stranger block the user's right code.
pub fn record_otc(
    current: Option<&ProvisionRecord>,
    username: &Username,
    attempt: &OtcAttempt,
    now: OffsetDateTime,
    policy: &Policy,
) -> OtcOutcome {
    let mut next = current
        .cloned()
        .unwrap_or_else(|| ProvisionRecord::new(username.clone()));
    let member = attempt.known_user && attempt.mobile_group;
    let accepted = attempt.matched && otc_device(&next, attempt.index, member).is_some();
    let locked = if accepted {
        if let Some(device) = next.device.as_mut() {
            device.used_indices |= 1u128 << attempt.index;
        }
        reset_failures(&mut next);
        false
    } else {
        count_failure(&mut next, attempt.known_user, now, policy)
    };
    OtcOutcome {
        next: bump(next),
        accepted,
        locked,
    }
}

/// What a name joining the user directory does to the record left under it: a user added
/// starts clean, so the whole record goes ([`Purge::Delete`]): failures counted while the
/// name was unknown, a lock an earlier version wrote for an unknown name, or the device of
/// an earlier user of the same name that left the directory without a revoke.
/// [`Purge::Keep`] when there is no record.
pub fn joined(current: Option<&ProvisionRecord>) -> Purge {
    match current {
        Some(_) => Purge::Delete,
        None => Purge::Keep,
    }
}

/// An administrator's unlock: the account is unlocked and its run of failures cleared.
/// `None` when it was neither locked nor had failures.
pub fn unlock(current: &ProvisionRecord) -> Option<ProvisionRecord> {
    if !current.is_locked() && current.failures == 0 {
        return None;
    }
    let mut next = current.clone();
    next.locked_at = None;
    reset_failures(&mut next);
    Some(bump(next))
}

/// Drops the pending code if it is still the one with `code_hash` (delivery failed for
/// good). `None` when there is nothing to drop.
pub fn cancel_pending(current: &ProvisionRecord, code_hash: &CodeHash) -> Option<ProvisionRecord> {
    match &current.pending {
        Some(p) if p.code_hash.ct_eq(code_hash) => {
            let mut next = current.clone();
            next.pending = None;
            Some(bump(next))
        }
        _ => None,
    }
}

/// An administrator's cancel: the pending code goes, the device (if any) stays. `None`
/// when there is no pending code (an expired one still counts: it goes too).
pub fn cancel_code(current: &ProvisionRecord) -> Option<ProvisionRecord> {
    current.pending.as_ref()?;
    let mut next = current.clone();
    next.pending = None;
    Some(bump(next))
}

/// An administrator's revoke: no pending code and no device. `None` when there was neither.
pub fn revoke(current: &ProvisionRecord) -> Option<ProvisionRecord> {
    if current.pending.is_none() && current.device.is_none() {
        return None;
    }
    let mut next = current.clone();
    next.pending = None;
    next.device = None;
    Some(bump(next))
}

/// What purging an expired code does to a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Purge {
    /// Nothing to do (nothing is due any more, e.g. a new request came).
    Keep,
    /// Store this record (the expired code or stale failures dropped; the device, the lock
    /// or the rate-limit time stays).
    Update(Box<ProvisionRecord>),
    /// Delete the record: nothing worth keeping is left.
    Delete,
}

/// Purges what is due on a record ([`ProvisionRecord::purge_due_at`]): an expired pending
/// code, and the failure count of a record with no device, no pending code and no lock
/// once [`FAILURE_RECORD_TTL`](crate::record::FAILURE_RECORD_TTL) has passed since its
/// last failure. A locked account keeps its lock.
pub fn purge(current: &ProvisionRecord, now: OffsetDateTime, policy: &Policy) -> Purge {
    if current.purge_due_at().is_none_or(|t| t > now) {
        return Purge::Keep;
    }
    let mut next = current.clone();
    if next.pending.as_ref().is_some_and(|p| p.expires_at <= now) {
        next.pending = None;
    }
    if next.purge_due_at().is_some_and(|t| t <= now) {
        reset_failures(&mut next);
    }
    let rate_limit_live = next
        .last_self_request
        .is_some_and(|t| t + Duration::seconds(policy.self_service_interval_secs() as i64) > now);
    if next.device.is_none()
        && next.pending.is_none()
        && !next.is_locked()
        && next.failures == 0
        && !rate_limit_live
    {
        return Purge::Delete;
    }
    Purge::Update(Box::new(bump(next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Username {
        Username::parse("alice").unwrap()
    }

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn presented(code: u8, device: u8) -> Presented {
        Presented {
            known_user: true,
            code_hash: CodeHash([code; 32]),
            well_formed: true,
            new_device: IdHash([device; 32]),
            info: None,
        }
    }

    /// Tries code `code` on `record` at `at`, for device 8.
    fn try_code_at(record: Option<&ProvisionRecord>, code: u8, at: OffsetDateTime) -> Redeem {
        redeem(record, &user(), presented(code, 8), at, &Policy::default())
    }

    fn try_code(record: &ProvisionRecord, code: u8) -> Redeem {
        try_code_at(Some(record), code, t0())
    }

    /// The record and cause of a failed attempt; panics on a success.
    fn failed(r: Redeem) -> (ProvisionRecord, Error, bool, bool) {
        match r {
            Redeem::Failed {
                next,
                cause,
                burned,
                locked,
                ..
            } => (next, cause, burned, locked),
            Redeem::Provisioned(_) => panic!("expected a failure"),
        }
    }

    /// An administrator's request for code `code` now.
    fn admin_request(
        cur: Option<&ProvisionRecord>,
        code: u8,
        p: &Policy,
    ) -> Result<ProvisionRecord, Error> {
        request(cur, &user(), CodeHash([code; 32]), Origin::Admin, t0(), p)
    }

    fn self_request(
        cur: Option<&ProvisionRecord>,
        code: u8,
        at: OffsetDateTime,
        p: &Policy,
    ) -> Result<ProvisionRecord, Error> {
        request(
            cur,
            &user(),
            CodeHash([code; 32]),
            Origin::SelfService,
            at,
            p,
        )
    }

    /// Redeems the right code `code` on `record` with device `device`; panics otherwise.
    fn provision(record: &ProvisionRecord, code: u8, device: u8) -> ProvisionRecord {
        match redeem(
            Some(record),
            &user(),
            presented(code, device),
            t0(),
            &Policy::default(),
        ) {
            Redeem::Provisioned(next) => next,
            other => panic!("right code must provision, got {other:?}"),
        }
    }

    #[test]
    fn request_replaces_pending_and_keeps_device() {
        let p = Policy::default();
        let r1 = admin_request(None, 1, &p).unwrap();
        assert_eq!(r1.version, 1);
        let r2 = provision(&r1, 1, 9);
        let r3 = admin_request(Some(&r2), 2, &p).unwrap();
        assert_eq!(r3.device, r2.device, "a request leaves the device");
        assert_eq!(r3.pending.as_ref().unwrap().code_hash, CodeHash([2; 32]));
        assert_eq!(r3.version, 3);
    }

    #[test]
    fn expired_and_used_codes() {
        let p = Policy::default();
        let r1 = admin_request(None, 1, &p).unwrap();
        let late = t0() + Duration::seconds(600);
        let (_, cause, _, _) = failed(try_code_at(Some(&r1), 1, late));
        assert!(matches!(cause, Error::ProvisionFailure), "{cause:?}");
        let r2 = provision(&r1, 1, 9);
        let (_, cause, _, _) = failed(try_code(&r2, 1));
        assert!(matches!(cause, Error::InvalidProvisionCode), "{cause:?}");
    }

    #[test]
    fn a_code_created_in_the_future_is_refused() {
        // The clock was set back an hour after the code was made.
        let p = Policy::default();
        let r1 = admin_request(None, 1, &p).unwrap();
        let earlier = t0() - Duration::hours(1);
        let (next, cause, burned, _) = failed(try_code_at(Some(&r1), 1, earlier));
        assert!(matches!(cause, Error::ProvisionFailure), "{cause:?}");
        assert!(!burned);
        assert!(next.device.is_none());
    }

    #[test]
    fn wrong_codes_burn_without_touching_device() {
        let mut p = Policy::default();
        p.set_max_attempts(2).unwrap();
        let r1 = admin_request(None, 1, &p).unwrap();
        let r2 = provision(&r1, 1, 9);
        let r3 = admin_request(Some(&r2), 2, &p).unwrap();
        let (r4, _, burned, _) = failed(try_code(&r3, 3));
        assert!(!burned);
        let (r5, _, burned, _) = failed(try_code(&r4, 3));
        assert!(burned);
        assert!(r5.pending.is_none());
        assert_eq!(r5.device, r2.device);
        let (_, cause, _, _) = failed(try_code(&r5, 2));
        assert!(matches!(cause, Error::InvalidProvisionCode), "{cause:?}");
    }

    /// The operator's reason of a failed attempt; panics on a success.
    fn reason(r: Redeem) -> RedeemFailure {
        match r {
            Redeem::Failed { reason, .. } => reason,
            Redeem::Provisioned(_) => panic!("expected a failure"),
        }
    }

    #[test]
    fn each_failure_names_its_reason() {
        let mut p = Policy::default();
        p.set_max_attempts(2).unwrap();
        let no_code = try_code_at(None, 1, t0());
        assert_eq!(reason(no_code), RedeemFailure::NoCode);
        let mut unknown = presented(1, 8);
        unknown.known_user = false;
        let r = redeem(None, &user(), unknown, t0(), &p);
        assert_eq!(reason(r), RedeemFailure::UnknownUser);
        let r1 = admin_request(None, 1, &p).unwrap();
        let late = t0() + Duration::seconds(600);
        assert_eq!(
            reason(try_code_at(Some(&r1), 1, late)),
            RedeemFailure::Expired
        );
        let mut malformed = presented(1, 8);
        malformed.well_formed = false;
        let r = redeem(Some(&r1), &user(), malformed, t0(), &p);
        assert_eq!(reason(r), RedeemFailure::Malformed);
        let (r2, _, _, _) = failed(try_code(&r1, 3));
        assert_eq!(reason(try_code(&r1, 3)), RedeemFailure::WrongCode);
        assert_eq!(reason(try_code(&r2, 3)), RedeemFailure::Burned);
        let mut locked = r1.clone();
        locked.locked_at = Some(t0());
        assert_eq!(reason(try_code(&locked, 1)), RedeemFailure::Locked);
    }

    #[test]
    fn every_failure_writes_the_same_way_and_counts_on_the_account() {
        let p = Policy::default();
        // An unknown user: a record is made for the name and the failure counted.
        let mut unknown = presented(1, 8);
        unknown.known_user = false;
        let (next, cause, _, _) = failed(redeem(None, &user(), unknown, t0(), &p));
        assert!(matches!(cause, Error::UnknownUser { .. }), "{cause:?}");
        assert_eq!((next.version, next.failures), (1, 1));
        // A known user with no pending code: the same.
        let (next, cause, _, _) = failed(try_code_at(None, 1, t0()));
        assert!(matches!(cause, Error::InvalidProvisionCode), "{cause:?}");
        assert_eq!((next.version, next.failures), (1, 1));
        // Failures count across codes; a new code does not reset them; a success does.
        let r = admin_request(None, 1, &p).unwrap();
        let (r, _, _, _) = failed(try_code(&r, 2));
        let r = admin_request(Some(&r), 3, &p).unwrap();
        let (r, _, _, _) = failed(try_code(&r, 4));
        assert_eq!(r.failures, 2);
        let r = provision(&r, 3, 9);
        assert_eq!((r.failures, r.last_failure_at), (0, None));
    }

    #[test]
    fn the_account_locks_at_the_limit_until_unlocked() {
        let mut p = Policy::default();
        p.set_max_account_failures(3).unwrap();
        p.set_max_attempts(100).unwrap();
        let mut r = admin_request(None, 1, &p).unwrap();
        for i in 1..=3 {
            let (next, _, _, locked) = failed(redeem(Some(&r), &user(), presented(2, 8), t0(), &p));
            assert_eq!(locked, i == 3, "locks on the third failure");
            r = next;
        }
        assert!(r.is_locked());
        // Locked: the right code is refused, and so is a new code, even an admin's.
        let (r, cause, _, locked) = failed(redeem(Some(&r), &user(), presented(1, 8), t0(), &p));
        assert!(matches!(cause, Error::AccountLocked { .. }), "{cause:?}");
        assert!(!locked, "already locked");
        assert!(matches!(
            admin_request(Some(&r), 5, &p),
            Err(Error::AccountLocked { .. })
        ));
        let open = unlock(&r).unwrap();
        assert!(!open.is_locked());
        assert_eq!(open.failures, 0);
        assert!(unlock(&open).is_none(), "nothing to unlock");
        let open = admin_request(Some(&open), 6, &p).unwrap();
        assert!(provision(&open, 6, 9).device.is_some());
    }

    #[test]
    fn self_service_rules() {
        let mut p = Policy::default();
        assert!(matches!(
            self_request(None, 1, t0(), &p),
            Err(Error::SelfProvisionDisabled)
        ));
        p.allow_self_provision = true;
        let r1 = self_request(None, 1, t0(), &p).unwrap();
        let soon = t0() + Duration::seconds(59);
        assert!(matches!(
            self_request(Some(&r1), 2, soon, &p),
            Err(Error::RateLimited {
                retry_after_secs: 1
            })
        ));
        // An administrator is not rate-limited.
        assert!(admin_request(Some(&r1), 2, &p).is_ok());
        let later = t0() + Duration::seconds(60);
        assert!(self_request(Some(&r1), 2, later, &p).is_ok());
    }

    #[test]
    fn self_service_does_not_replace_an_administrators_code() {
        let mut p = Policy::default();
        p.allow_self_provision = true;
        let admin = admin_request(None, 1, &p).unwrap();
        assert!(matches!(
            self_request(Some(&admin), 2, t0(), &p),
            Err(Error::AdminCodePending)
        ));
        // Once it expired, or was burned, the user may ask again.
        let late = t0() + Duration::seconds(600);
        assert!(self_request(Some(&admin), 2, late, &p).is_ok());
        let mut burned = admin.clone();
        burned.pending.as_mut().unwrap().attempts_left = 0;
        assert!(self_request(Some(&burned), 2, t0(), &p).is_ok());
        // An administrator may replace anyone's code.
        let own = self_request(None, 3, t0(), &p).unwrap();
        assert!(admin_request(Some(&own), 4, &p).is_ok());
    }

    #[test]
    fn a_clock_set_back_does_not_shorten_the_rate_limit() {
        let mut p = Policy::default();
        p.allow_self_provision = true;
        let mut r1 = self_request(None, 1, t0(), &p).unwrap();
        r1.pending = None; // used
        let back = t0() - Duration::hours(1);
        assert!(matches!(
            self_request(Some(&r1), 2, back, &p),
            Err(Error::RateLimited { .. })
        ));
        // Still limited a minute after the set-back clock passes the stored time minus a
        // little: the limit counts from the stored request, the later of the two times.
        let still = t0() + Duration::seconds(59);
        assert!(self_request(Some(&r1), 2, still, &p).is_err());
    }

    /// A one-time code on `index` for `user()`, known or not, in the mobile group or not.
    fn otc(
        cur: Option<&ProvisionRecord>,
        known_user: bool,
        mobile_group: bool,
        index: u8,
        matched: bool,
        p: &Policy,
    ) -> OtcOutcome {
        let attempt = OtcAttempt {
            known_user,
            mobile_group,
            index,
            matched,
        };
        record_otc(cur, &user(), &attempt, t0(), p)
    }

    /// A known member's code on `index`.
    fn member_otc(r: &ProvisionRecord, index: u8, matched: bool) -> ProvisionRecord {
        otc(Some(r), true, true, index, matched, &Policy::default()).next
    }

    /// alice, provisioned, with strings downloaded.
    fn with_strings() -> ProvisionRecord {
        let p = Policy::default();
        download(&provision(&admin_request(None, 1, &p).unwrap(), 1, 9)).unwrap()
    }

    #[test]
    fn indices_and_generations() {
        let p = Policy::default();
        let r2 = provision(&admin_request(None, 1, &p).unwrap(), 1, 9);
        assert!(
            otc_device(&r2, 1, true).is_none(),
            "no strings before the first download"
        );
        let r3 = download(&r2).unwrap();
        assert_eq!(r3.device.as_ref().unwrap().generation, 1);
        assert!(otc_device(&r3, 0, true).is_none());
        assert!(otc_device(&r3, 100, true).is_none());
        assert!(
            otc_device(&r3, 7, false).is_none(),
            "outside the mobile group"
        );
        let r4 = member_otc(&r3, 7, true);
        assert!(
            otc_device(&r4, 7, true).is_none(),
            "an index is spent once used"
        );
        let r5 = download(&r4).unwrap();
        assert!(
            otc_device(&r5, 7, true).is_some(),
            "a new generation frees every index"
        );
        let mut locked = r3.clone();
        locked.locked_at = Some(t0());
        assert!(otc_device(&locked, 7, true).is_none(), "a locked account");
    }

    #[test]
    fn a_wrong_one_time_code_spends_nothing_whoever_is_named() {
        let p = Policy::default();
        let provisioned = with_strings();
        let no_device = failed(try_code_at(None, 1, t0())).0;
        let cases: [(&str, Option<&ProvisionRecord>, bool, bool); 5] = [
            ("a member with strings", Some(&provisioned), true, true),
            ("outside the mobile group", Some(&provisioned), true, false),
            ("a user without a device", Some(&no_device), true, true),
            (
                "an unknown name with a record",
                Some(&no_device),
                false,
                false,
            ),
            ("an unknown name", None, false, false),
        ];
        for (what, cur, known, group) in cases {
            // Any index, and a malformed code (index 0), matched or not on stand-in
            // strings, unless the code is right on a usable device.
            for index in [0, 1, 2, 50, 99, 100, 255] {
                for matched in [false, true] {
                    let usable = known && group && cur == Some(&provisioned);
                    if matched && usable && (1..100).contains(&index) {
                        continue; // a right code: see the next test
                    }
                    let out = otc(cur, known, group, index, matched, &p);
                    assert!(!out.accepted, "{what}, index {index}");
                    let before = cur.map_or(0, |c| c.failures);
                    assert_eq!(out.next.failures, before + 1, "{what}: counted");
                    assert_eq!(
                        out.next.device,
                        cur.and_then(|c| c.device.clone()),
                        "{what}, index {index}: the device is untouched"
                    );
                    assert_eq!(
                        next_index(&out.next),
                        cur.and_then(next_index),
                        "{what}: TokenIndex does not move"
                    );
                }
            }
        }
    }

    #[test]
    fn only_a_right_code_spends_its_index() {
        let r = with_strings();
        assert_eq!(next_index(&r), Some(1));
        let out = otc(Some(&r), true, true, 1, true, &Policy::default());
        assert!(out.accepted);
        assert_eq!(next_index(&out.next), Some(2));
        // The same code again is refused, and counted.
        let again = otc(Some(&out.next), true, true, 1, true, &Policy::default());
        assert!(!again.accepted);
        assert_eq!(again.next.failures, 1);
        // A right code resets the account's run of failures.
        let r = member_otc(&member_otc(&r, 5, false), 5, false);
        assert_eq!(r.failures, 2);
        let r = member_otc(&r, 5, true);
        assert_eq!((r.failures, r.last_failure_at), (0, None));
        assert_eq!(next_index(&r), Some(1), "index 5 spent, 1 still free");
    }

    #[test]
    fn wrong_codes_do_not_block_the_right_one_until_the_account_ceiling() {
        let mut p = Policy::default();
        p.set_max_account_failures(30).unwrap();
        let mut r = with_strings();
        for i in 0..29 {
            let out = otc(Some(&r), true, true, i % 5 + 1, false, &p);
            assert!(!out.locked);
            r = out.next;
        }
        let right = otc(Some(&r), true, true, 1, true, &p);
        assert!(right.accepted, "29 wrong codes do not block the right one");
        // The 30th failure locks the account; then even the right code is refused.
        let out = otc(Some(&r), true, true, 1, false, &p);
        assert!(out.locked && out.next.is_locked());
        let refused = otc(Some(&out.next), true, true, 1, true, &p);
        assert!(!refused.accepted && !refused.locked);
        assert!(
            unlock(&refused.next)
                .is_some_and(|open| { otc(Some(&open), true, true, 1, true, &p).accepted })
        );
    }

    #[test]
    fn an_unknown_name_never_locks_and_is_purged() {
        let mut p = Policy::default();
        p.set_max_account_failures(3).unwrap();
        let mut r = None;
        for _ in 0..10 {
            let out = otc(r.as_ref(), false, false, 1, false, &p);
            assert!(!out.locked);
            r = Some(out.next);
        }
        let mut unknown = presented(1, 8);
        unknown.known_user = false;
        let (r, _, _, locked) = failed(redeem(r.as_ref(), &user(), unknown, t0(), &p));
        assert!(!locked);
        assert_eq!((r.failures, r.is_locked()), (11, false));
        let due = t0() + crate::record::FAILURE_RECORD_TTL;
        assert_eq!(r.purge_due_at(), Some(due));
        assert_eq!(purge(&r, due, &p), Purge::Delete);
        // A known user without a device locks at the same count.
        let mut known = None;
        for i in 1..=3 {
            let out = otc(known.as_ref(), true, true, 1, false, &p);
            assert_eq!(out.locked, i == 3);
            known = Some(out.next);
        }
    }

    #[test]
    fn a_name_joining_the_directory_starts_clean() {
        assert_eq!(joined(None), Purge::Keep);
        let mut locked = failed(try_code_at(None, 1, t0())).0;
        locked.locked_at = Some(t0());
        assert_eq!(joined(Some(&locked)), Purge::Delete);
        assert_eq!(joined(Some(&with_strings())), Purge::Delete);
    }

    #[test]
    fn next_index_is_the_lowest_unused_of_the_generation() {
        let r = provision(&admin_request(None, 1, &Policy::default()).unwrap(), 1, 9);
        assert_eq!(next_index(&r), None, "no strings yet");
        assert_eq!(next_index(&ProvisionRecord::new(user())), None, "no device");
        let mut r = download(&r).unwrap();
        assert_eq!(next_index(&r), Some(1));
        r = member_otc(&r, 1, true);
        r = member_otc(&r, 3, true);
        assert_eq!(next_index(&r), Some(2));
        r = member_otc(&r, 2, true);
        assert_eq!(next_index(&r), Some(4));
        for i in 4..100 {
            r = member_otc(&r, i, true);
        }
        assert_eq!(next_index(&r), None, "every index spent");
        assert_eq!(
            next_index(&download(&r).unwrap()),
            Some(1),
            "a new generation starts over"
        );
    }

    #[test]
    fn purge_rules() {
        let p = Policy::default();
        let r1 = admin_request(None, 1, &p).unwrap();
        assert_eq!(purge(&r1, t0(), &p), Purge::Keep);
        let late = t0() + Duration::seconds(600);
        assert_eq!(purge(&r1, late, &p), Purge::Delete);
        let r2 = provision(&r1, 1, 9);
        let r3 = admin_request(Some(&r2), 2, &p).unwrap();
        let Purge::Update(r4) = purge(&r3, late, &p) else {
            panic!()
        };
        assert!(r4.pending.is_none());
        assert_eq!(r4.device, r2.device);
        assert!(revoke(&r4).unwrap().device.is_none());
        assert!(cancel_pending(&r3, &CodeHash([9; 32])).is_none());
        assert!(
            cancel_pending(&r3, &CodeHash([2; 32]))
                .unwrap()
                .pending
                .is_none()
        );
    }

    #[test]
    fn cancel_drops_the_pending_code_and_keeps_the_device() {
        let p = Policy::default();
        let r1 = admin_request(None, 1, &p).unwrap();
        let r2 = provision(&r1, 1, 9);
        assert!(cancel_code(&r2).is_none(), "no pending code: nothing to do");
        let r3 = admin_request(Some(&r2), 2, &p).unwrap();
        let r4 = cancel_code(&r3).unwrap();
        assert!(r4.pending.is_none());
        assert_eq!(r4.device, r2.device, "the device stays");
        assert!(r4.version > r3.version, "a change bumps the version");
        assert!(cancel_code(&r4).is_none());
    }

    #[test]
    fn failure_only_records_are_purged_after_their_ttl_but_locks_stay() {
        let mut p = Policy::default();
        let (r, _, _, _) = failed(try_code_at(None, 1, t0()));
        let due = t0() + crate::record::FAILURE_RECORD_TTL;
        assert_eq!(r.purge_due_at(), Some(due));
        assert_eq!(purge(&r, due - Duration::seconds(1), &p), Purge::Keep);
        assert_eq!(purge(&r, due, &p), Purge::Delete);
        // A pending code that expires while failures are fresh drops only the code.
        let r2 = admin_request(Some(&r), 2, &p).unwrap();
        let Purge::Update(r3) = purge(&r2, t0() + Duration::seconds(600), &p) else {
            panic!()
        };
        assert_eq!((r3.pending.is_none(), r3.failures), (true, 1));
        // A locked account is never purged.
        p.set_max_account_failures(1).unwrap();
        let (locked, _, _, did_lock) = failed(redeem(None, &user(), presented(1, 8), t0(), &p));
        assert!(did_lock);
        assert_eq!(locked.purge_due_at(), None);
        assert_eq!(purge(&locked, due + Duration::days(30), &p), Purge::Keep);
    }
}
