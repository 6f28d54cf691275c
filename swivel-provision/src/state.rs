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
//! ```

use time::{Duration, OffsetDateTime};

use crate::code::{CodeHash, IdHash};
use crate::error::Error;
use crate::policy::Policy;
use crate::record::{Device, Origin, PendingCode, ProvisionRecord};
use crate::strings::STRINGS_PER_SET;
use crate::types::{DeviceInfo, Username};

fn bump(mut record: ProvisionRecord) -> ProvisionRecord {
    record.version += 1;
    record
}

/// A new code for the user. It replaces any pending code (the old one stops working) and
/// leaves the device alone: the old device keeps working until the new code is redeemed.
///
/// Self-service requests are refused when the policy says No ([`Error::SelfProvisionDisabled`])
/// or when the user asked less than `self_service_interval_secs` ago ([`Error::RateLimited`]).
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
    if origin == Origin::SelfService {
        if !policy.allow_self_provision {
            return Err(Error::SelfProvisionDisabled);
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

/// What a redeem attempt leads to.
#[derive(Debug)]
pub enum Redeem {
    /// The code was right and in time: the record with the new device (the old device, if
    /// any, is gone, and with it its strings).
    Provisioned(ProvisionRecord),
    /// The code was wrong: the record with one attempt fewer (and no pending code when it
    /// was the last attempt: `burned`). The device is untouched.
    WrongCode {
        /// The record to store.
        next: ProvisionRecord,
        /// Whether this attempt burned the code.
        burned: bool,
    },
    /// Refused without any change: no pending code (never asked, already used, burned) →
    /// [`Error::InvalidProvisionCode`]; expired → [`Error::ProvisionFailure`].
    Refused(Error),
}

/// Redeems a code. `presented` is the keyed hash of the code the device sent and
/// `well_formed` whether it had the policy's shape (a malformed code costs no attempt).
/// `new_device` is the keyed hash of the new provision Id.
pub fn redeem(
    current: Option<&ProvisionRecord>,
    presented: &CodeHash,
    well_formed: bool,
    new_device: IdHash,
    info: Option<DeviceInfo>,
    now: OffsetDateTime,
) -> Redeem {
    let Some(record) = current else {
        return Redeem::Refused(Error::InvalidProvisionCode);
    };
    let Some(pending) = &record.pending else {
        return Redeem::Refused(Error::InvalidProvisionCode);
    };
    if now >= pending.expires_at {
        return Redeem::Refused(Error::ProvisionFailure);
    }
    if pending.attempts_left == 0 || !well_formed {
        return Redeem::Refused(Error::InvalidProvisionCode);
    }
    let mut next = record.clone();
    if !pending.code_hash.ct_eq(presented) {
        let left = pending.attempts_left - 1;
        let burned = left == 0;
        if burned {
            next.pending = None;
        } else if let Some(p) = next.pending.as_mut() {
            p.attempts_left = left;
        }
        return Redeem::WrongCode {
            next: bump(next),
            burned,
        };
    }
    next.pending = None;
    next.device = Some(Device {
        id_hash: new_device,
        provisioned_at: now,
        info,
        generation: 0,
        used_indices: 0,
        otc_failures: 0,
    });
    Redeem::Provisioned(bump(next))
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

/// Whether a one-time code on string `index` may be checked now: 1–99, of a generation
/// that was downloaded, not used before (rightly or wrongly), and fewer than `max_failures`
/// wrong codes in a row.
pub fn otc_allowed(current: &ProvisionRecord, index: u8, max_failures: u8) -> bool {
    let Some(device) = &current.device else {
        return false;
    };
    device.generation > 0
        && device.otc_failures < max_failures
        && index != 0
        && (index as usize) < STRINGS_PER_SET
        && device.used_indices & (1u128 << index) == 0
}

/// The index (1–99) a device should use next (Swivel's `TokenIndex`): the lowest one of the
/// current generation not used yet. `None` when there is no device, no strings were
/// downloaded yet, or every index of the generation is spent.
pub fn next_index(current: &ProvisionRecord) -> Option<u8> {
    let device = current.device.as_ref()?;
    if device.generation == 0 {
        return None;
    }
    (1..STRINGS_PER_SET as u8).find(|i| device.used_indices & (1u128 << i) == 0)
}

/// Records a checked one-time code: its index is spent whether it was right or wrong (so
/// each guess costs the attacker a string), and the run of wrong codes is reset or grows.
/// `None` when there is no device.
pub fn record_otc(current: &ProvisionRecord, index: u8, correct: bool) -> Option<ProvisionRecord> {
    let mut next = current.clone();
    let device = next.device.as_mut()?;
    device.used_indices |= 1u128 << (index as u32 % 128);
    device.otc_failures = if correct {
        0
    } else {
        device.otc_failures.saturating_add(1)
    };
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
    /// Nothing to do (the code is not expired any more, e.g. a new request came).
    Keep,
    /// Store this record (the expired code dropped; the device or rate-limit time stays).
    Update(Box<ProvisionRecord>),
    /// Delete the record: nothing worth keeping is left.
    Delete,
}

/// Purges an expired pending code.
pub fn purge(current: &ProvisionRecord, now: OffsetDateTime, policy: &Policy) -> Purge {
    match &current.pending {
        Some(p) if p.expires_at <= now => {}
        _ => return Purge::Keep,
    }
    let rate_limit_live = current
        .last_self_request
        .is_some_and(|t| t + Duration::seconds(policy.self_service_interval_secs() as i64) > now);
    if current.device.is_none() && !rate_limit_live {
        return Purge::Delete;
    }
    let mut next = current.clone();
    next.pending = None;
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

    /// Tries code `code` on `record` now, for device 8.
    fn try_code(record: &ProvisionRecord, code: u8) -> Redeem {
        redeem(
            Some(record),
            &CodeHash([code; 32]),
            true,
            IdHash([8; 32]),
            None,
            t0(),
        )
    }

    /// An administrator's request for code `code` now.
    fn admin_request(
        cur: Option<&ProvisionRecord>,
        code: u8,
        p: &Policy,
    ) -> Result<ProvisionRecord, Error> {
        request(cur, &user(), CodeHash([code; 32]), Origin::Admin, t0(), p)
    }

    /// Redeems the right code `code` on `record` with device `device`; panics otherwise.
    fn provision(record: &ProvisionRecord, code: u8, device: u8) -> ProvisionRecord {
        match redeem(
            Some(record),
            &CodeHash([code; 32]),
            true,
            IdHash([device; 32]),
            None,
            t0(),
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
        assert!(matches!(
            redeem(
                Some(&r1),
                &CodeHash([1; 32]),
                true,
                IdHash([9; 32]),
                None,
                late
            ),
            Redeem::Refused(Error::ProvisionFailure)
        ));
        let r2 = provision(&r1, 1, 9);
        assert!(matches!(
            try_code(&r2, 1),
            Redeem::Refused(Error::InvalidProvisionCode)
        ));
    }

    #[test]
    fn wrong_codes_burn_without_touching_device() {
        let mut p = Policy::default();
        p.set_max_attempts(2).unwrap();
        let r1 = admin_request(None, 1, &p).unwrap();
        let r2 = provision(&r1, 1, 9);
        let r3 = admin_request(Some(&r2), 2, &p).unwrap();
        let Redeem::WrongCode {
            next: r4,
            burned: false,
        } = try_code(&r3, 3)
        else {
            panic!()
        };
        let Redeem::WrongCode {
            next: r5,
            burned: true,
        } = try_code(&r4, 3)
        else {
            panic!()
        };
        assert!(r5.pending.is_none());
        assert_eq!(r5.device, r2.device);
        assert!(matches!(
            try_code(&r5, 2),
            Redeem::Refused(Error::InvalidProvisionCode)
        ));
    }

    #[test]
    fn self_service_rules() {
        let mut p = Policy::default();
        assert!(matches!(
            request(
                None,
                &user(),
                CodeHash([1; 32]),
                Origin::SelfService,
                t0(),
                &p
            ),
            Err(Error::SelfProvisionDisabled)
        ));
        p.allow_self_provision = true;
        let r1 = request(
            None,
            &user(),
            CodeHash([1; 32]),
            Origin::SelfService,
            t0(),
            &p,
        )
        .unwrap();
        let soon = t0() + Duration::seconds(59);
        assert!(matches!(
            request(
                Some(&r1),
                &user(),
                CodeHash([2; 32]),
                Origin::SelfService,
                soon,
                &p
            ),
            Err(Error::RateLimited {
                retry_after_secs: 1
            })
        ));
        // An administrator is not rate-limited.
        assert!(
            request(
                Some(&r1),
                &user(),
                CodeHash([2; 32]),
                Origin::Admin,
                soon,
                &p
            )
            .is_ok()
        );
        let later = t0() + Duration::seconds(60);
        assert!(
            request(
                Some(&r1),
                &user(),
                CodeHash([2; 32]),
                Origin::SelfService,
                later,
                &p
            )
            .is_ok()
        );
    }

    #[test]
    fn indices_and_generations() {
        let p = Policy::default();
        let r1 = admin_request(None, 1, &p).unwrap();
        let r2 = provision(&r1, 1, 9);
        assert!(
            !otc_allowed(&r2, 1, 5),
            "no strings before the first download"
        );
        let r3 = download(&r2).unwrap();
        assert_eq!(r3.device.as_ref().unwrap().generation, 1);
        assert!(!otc_allowed(&r3, 0, 5));
        assert!(!otc_allowed(&r3, 100, 5));
        let r4 = record_otc(&r3, 7, true).unwrap();
        assert!(!otc_allowed(&r4, 7, 5), "an index is spent once used");
        // Wrong codes spend their index too, and lock the strings at the limit.
        let mut r = r4.clone();
        for i in 10..15 {
            assert!(otc_allowed(&r, i, 5));
            r = record_otc(&r, i, false).unwrap();
        }
        assert!(
            !otc_allowed(&r, 20, 5),
            "locked after 5 wrong codes in a row"
        );
        assert!(
            otc_allowed(&download(&r).unwrap(), 20, 5),
            "a new download unlocks"
        );
        let r1 = record_otc(&record_otc(&r4, 30, false).unwrap(), 31, true).unwrap();
        assert_eq!(
            r1.device.as_ref().unwrap().otc_failures,
            0,
            "a right code resets the run"
        );
        let r5 = download(&r4).unwrap();
        assert!(otc_allowed(&r5, 7, 5), "a new generation frees every index");
    }

    #[test]
    fn next_index_is_the_lowest_unused_of_the_generation() {
        let p = Policy::default();
        let r = provision(&admin_request(None, 1, &p).unwrap(), 1, 9);
        assert_eq!(next_index(&r), None, "no strings yet");
        assert_eq!(next_index(&ProvisionRecord::new(user())), None, "no device");
        let mut r = download(&r).unwrap();
        assert_eq!(next_index(&r), Some(1));
        r = record_otc(&r, 1, true).unwrap();
        r = record_otc(&r, 3, false).unwrap();
        assert_eq!(next_index(&r), Some(2));
        r = record_otc(&r, 2, true).unwrap();
        assert_eq!(next_index(&r), Some(4));
        for i in 4..100 {
            r = record_otc(&r, i, true).unwrap();
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
}
