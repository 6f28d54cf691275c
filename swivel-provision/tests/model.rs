//! Random sequences of operations keep the Provisioner equal to a small model of DESIGN §3:
//! codes, devices, strings, one-time codes (only a right one spends its index; a wrong one
//! counts on the account), the mobile group, the account's lock, and a name the directory
//! does not know (counted, never locked).

mod common;

use common::*;
use proptest::prelude::*;
use swivel_provision::*;
use time::Duration;

#[derive(Debug, Clone)]
enum Op {
    Request,
    RedeemLatest,
    RedeemOld,
    RedeemWrong,
    Advance(i64),
    DownloadLatest,
    DownloadOld,
    Verify { index: u8, right: bool },
    VerifyUnknown,
    Group(bool),
    Revoke,
    Cancel,
    Unlock,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Request),
        3 => Just(Op::RedeemLatest),
        1 => Just(Op::RedeemOld),
        2 => Just(Op::RedeemWrong),
        2 => (0i64..400).prop_map(Op::Advance),
        2 => Just(Op::DownloadLatest),
        1 => Just(Op::DownloadOld),
        3 => (0u8..100, any::<bool>()).prop_map(|(index, right)| Op::Verify { index, right }),
        1 => Just(Op::VerifyUnknown),
        1 => any::<bool>().prop_map(Op::Group),
        1 => Just(Op::Revoke),
        1 => Just(Op::Cancel),
        1 => Just(Op::Unlock),
    ]
}

/// The model: what the state machine should hold.
#[derive(Debug, Default)]
struct Model {
    now: i64,
    /// (index into issued codes, expires_at, attempts_left)
    pending: Option<(usize, i64, u8)>,
    /// (index into issued ids, generation, used indices)
    device: Option<(usize, u32, u128)>,
    /// Whether alice was taken out of the mobile group.
    out_of_group: bool,
    /// Failed redeems and one-time codes in a row, and whether the account is locked.
    failures: u32,
    locked: bool,
}

/// The account locks at this many failures in a row (low, so that runs reach it).
const MAX_ACCOUNT_FAILURES: u32 = 8;
const LOCKED: &str = "Account locked, contact your administrator";

impl Model {
    fn failed(&mut self, msg: &str) -> Outcome {
        self.failures += 1;
        if self.failures >= MAX_ACCOUNT_FAILURES {
            self.locked = true;
        }
        fail(msg)
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Err(String),
}

fn outcome<T>(r: Result<T, Error>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Err(e.public_message()),
    }
}

fn fail(msg: &str) -> Outcome {
    Outcome::Err(msg.to_owned())
}

const PIN: &str = "2580";

async fn run(ops: Vec<Op>) {
    let mut policy = Policy::default();
    policy.device_errors = DeviceErrors::Detailed;
    policy
        .set_max_account_failures(MAX_ACCOUNT_FAILURES as u64)
        .unwrap();
    let k = kit_with(policy);
    let alice = user("alice");
    let nobody = user("nobody");
    let pin = Pin::parse(PIN).unwrap();
    let mut m = Model::default();
    let mut codes: Vec<ProvisionCode> = Vec::new();
    let mut ids: Vec<ProvisionId> = Vec::new();
    // Strings per id index and generation, as downloaded.
    let mut strings: Vec<Option<SecurityStrings>> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        let (got, want) = match op {
            Op::Request => {
                let got = outcome(k.p.request_provision(&alice, Origin::Admin).await);
                if m.locked {
                    (got, fail(LOCKED))
                } else {
                    codes.push(k.outbox.last_code_for(&alice).unwrap());
                    m.pending = Some((codes.len() - 1, m.now + 600, 5));
                    (got, Outcome::Ok)
                }
            }
            Op::RedeemLatest | Op::RedeemOld | Op::RedeemWrong => {
                if codes.is_empty() {
                    continue;
                }
                let (code, which) = match op {
                    Op::RedeemLatest => (codes.last().unwrap().clone(), Some(codes.len() - 1)),
                    Op::RedeemOld => (codes[0].clone(), Some(0)),
                    _ => (wrong(codes.last().unwrap()), None),
                };
                let result = k.p.redeem(&alice, &code, DeviceInfo::default()).await;
                let want = match m.pending {
                    _ if m.locked => m.failed(LOCKED),
                    None => m.failed("Invalid Provision Code"),
                    Some((_, exp, _)) if m.now >= exp => m.failed("Provision Failure"),
                    Some((idx, _, _)) if Some(idx) == which => {
                        m.pending = None;
                        m.device = Some((ids.len(), 0, 0));
                        m.failures = 0;
                        Outcome::Ok
                    }
                    Some((idx, exp, left)) => {
                        // A wrong code (an old code is a wrong code too, unless it equals the
                        // current one by chance: 10 random digits, ignore).
                        m.pending = (left > 1).then_some((idx, exp, left - 1));
                        m.failed("Provision Failure")
                    }
                };
                if let Ok(id) = &result {
                    ids.push(id.clone());
                    strings.push(None);
                }
                (outcome(result), want)
            }
            Op::Advance(secs) => {
                k.clock.advance(Duration::seconds(secs));
                m.now += secs;
                continue;
            }
            Op::DownloadLatest | Op::DownloadOld => {
                if ids.is_empty() {
                    continue;
                }
                let idx = if matches!(op, Op::DownloadLatest) {
                    ids.len() - 1
                } else {
                    0
                };
                let result = k.p.download_strings(&ids[idx]).await;
                let want = match &mut m.device {
                    Some((dev, _, _)) if *dev == idx && m.out_of_group => {
                        fail("Error Downloading Security Strings")
                    }
                    Some((dev, generation, used)) if *dev == idx => {
                        *generation += 1;
                        *used = 0;
                        Outcome::Ok
                    }
                    _ => fail("Mobile request from unknown user; the user needs to reprovision"),
                };
                if let Ok(d) = &result {
                    strings[idx] = Some(d.strings.clone());
                }
                (outcome(result), want)
            }
            Op::Verify { index, right } => {
                // Use the newest strings the device holds.
                let Some(set) = strings.iter().rev().flatten().next().cloned() else {
                    continue;
                };
                let holder = strings.iter().rposition(Option::is_some).unwrap();
                let mut otc = one_time_code(set.get(index).unwrap(), &pin, index).unwrap();
                if !right {
                    let d = otc.as_bytes()[0];
                    otc.replace_range(0..1, if d == b'9' { "0" } else { "9" });
                }
                let result = k.p.verify_otc(&alice, &otc, &pin).await;
                let want = match &mut m.device {
                    Some((dev, generation, used))
                        if right
                            && !m.out_of_group
                            && !m.locked
                            && *dev == holder
                            && *generation == set.generation()
                            && index != 0
                            && *used & (1u128 << index) == 0 =>
                    {
                        // Only a right code from the current strings passes, and spends
                        // its index.
                        *used |= 1u128 << index;
                        m.failures = 0;
                        Outcome::Ok
                    }
                    // Anything else spends nothing and counts on the account.
                    _ => m.failed("Authentication failed"),
                };
                (outcome(result), want)
            }
            Op::VerifyUnknown => {
                let result = k.p.verify_otc(&nobody, "123401", &pin).await;
                // Counted on the name's record, never locked however many.
                let st = k.p.status(&nobody).await.unwrap();
                assert!(
                    st.locked_at.is_none(),
                    "step {step}: an unknown name locked"
                );
                (outcome(result), fail("Authentication failed"))
            }
            Op::Group(member) => {
                k.users.insert(
                    UserEntry::new(alice.clone())
                        .with_destination(Destination::email("alice@example.com").unwrap())
                        .with_mobile_group(member),
                );
                m.out_of_group = !member;
                continue;
            }
            Op::Revoke => {
                let had = m.pending.is_some() || m.device.is_some();
                let got = k.p.revoke(&alice).await.unwrap();
                m.pending = None;
                m.device = None;
                assert_eq!(got, had, "step {step}: revoke");
                continue;
            }
            Op::Cancel => {
                // An expired code still in the record counts as one to cancel.
                let had = m.pending.is_some();
                let got = k.p.cancel_code(&alice).await.unwrap();
                m.pending = None;
                assert_eq!(got, had, "step {step}: cancel");
                continue;
            }
            Op::Unlock => {
                let had = m.locked || m.failures > 0;
                let got = k.p.unlock(&alice).await.unwrap();
                m.locked = false;
                m.failures = 0;
                assert_eq!(got, had, "step {step}: unlock");
                continue;
            }
        };
        assert_eq!(got, want, "step {step}: {op:?}");
        // The status agrees with the model too.
        let st = k.p.status(&alice).await.unwrap();
        let live_pending = m.pending.filter(|(_, exp, _)| m.now < *exp);
        assert_eq!(
            st.pending.map(|p| p.attempts_left),
            live_pending.map(|p| p.2),
            "step {step}: pending"
        );
        assert_eq!(
            st.device.map(|d| d.generation),
            m.device.map(|d| d.1),
            "step {step}: device"
        );
        assert_eq!(
            (st.failures, st.locked_at.is_some()),
            (m.failures, m.locked),
            "step {step}: account"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn provisioner_follows_the_model(ops in prop::collection::vec(op(), 1..60)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops));
    }
}
