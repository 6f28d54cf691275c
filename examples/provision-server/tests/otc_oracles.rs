//! One-time codes through `app()`, as an attacker drives them: a wrong code tells nobody
//! apart (`TokenIndex` before and after, the status and the body, whatever the code's
//! length), a stranger cannot block a user's codes (wrong codes are limited per account
//! and client address, shared by every instance of a store), the account ceiling still
//! locks a known user but never a name that does not exist (its record is purged), a user
//! added under a name starts clean, and leaving the mobile group ends one-time-code logins.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::routes::login::{FAILED, THROTTLED};
use provision_server::{AppState, StateBuilder, app};
use secrecy::ExposeSecret;
use swivel_provision::testing::{ManualClock, RecordingTransport};
use swivel_provision::{
    Channel, Clock, Delivery, Destination, Origin, Pin, ProvisionRecord, SecurityStrings,
    ServerKey, UserEntry, Username, one_time_code,
};

mod common;
use common::fixture::{Fixture, fixture, get, post_form, roomy};
use common::oneshot::{Reply, send};

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

/// The router as a client at `ip` reaches it.
fn from(state: &AppState, ip: [u8; 4]) -> Router {
    app(state.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 40000))))
}

/// Provisions `user` through the core (its code from `outbox`) and downloads strings once.
async fn provisioned(state: &AppState, outbox: &RecordingTransport, user: &str) -> SecurityStrings {
    let p = state.provisioner();
    p.request_provision(&name(user), Origin::Admin)
        .await
        .unwrap();
    let code = outbox.last_code_for(&name(user)).unwrap();
    let id = p
        .redeem(&name(user), &code, Default::default())
        .await
        .unwrap();
    p.download_strings(&id).await.unwrap().strings
}

async fn token_index(app: &Router, user: &str) -> String {
    let r = get(app, &format!("/pinsafe/TokenIndex?username={user}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn login(app: &Router, user: &str, otc: &str) -> Reply {
    post_form(app, "/login", &[("username", user), ("otc", otc)], None).await
}

/// Alice's right one-time code on string `index` (PIN 1234).
fn right_code(strings: &SecurityStrings, index: u8) -> String {
    let pin = Pin::parse("1234").unwrap();
    one_time_code(strings.get(index).unwrap(), &pin, index).unwrap()
}

/// A wrong code of the right shape on string `index`.
fn wrong_code(strings: &SecurityStrings, index: u8) -> String {
    let right = right_code(strings, index);
    let first = if right.starts_with('9') { "0" } else { "9" };
    format!("{first}{}", &right[1..])
}

fn assert_refused(r: &Reply) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let secs: u64 = r.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    assert!(r.body.contains(THROTTLED), "{}", r.body);
}

async fn failures(state: &AppState, user: &str) -> (u32, bool) {
    let st = state.provisioner().status(&name(user)).await.unwrap();
    (st.failures, st.locked_at.is_some())
}

/// `n` wrong codes for `user`, five from each address of 198.18.<block>.x, each answered
/// `401`.
async fn wrong_codes_from_many(state: &AppState, user: &str, n: usize, block: u8) {
    for i in 0..n {
        let app = from(state, [198, 18, block, (i / 5) as u8 + 1]);
        let r = login(&app, user, &format!("{:04}{:02}", i % 10_000, i % 99 + 1)).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "failure {i}: {}",
            r.body
        );
    }
}

/// The oracle of issue 20: read `TokenIndex` = k, post `0000`+k (and codes one digit
/// shorter to three longer than the PIN), read it again. Before, the index moved only
/// for a user with a device, and only for the code of the PIN's length.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_code_moves_no_index_and_answers_alike_whoever_is_named() {
    let f = fixture().await;
    let strings = provisioned(&f.state, &f.outbox, "alice").await;
    let mut answers = Vec::new();
    // alice has a device and strings, dave is a user without a device, nobody is unknown.
    for user in ["alice", "dave", "nobody"] {
        let app = from(&f.state, [203, 0, 113, 10]);
        let before = token_index(&app, user).await;
        let k: u8 = before.parse().unwrap();
        for digits in 3..=7 {
            let mut stem = "0".repeat(digits);
            if user == "alice" && digits == 4 && right_code(&strings, k).starts_with("0000") {
                stem = "1111".into(); // never alice's right code
            }
            let r = login(&app, user, &format!("{stem}{k:02}")).await;
            answers.push((user, digits, r.status, r.body));
        }
        let after = token_index(&app, user).await;
        assert_eq!(
            before, after,
            "TokenIndex of {user} moved after wrong codes"
        );
    }
    let (_, _, status, body) = &answers[0];
    assert_eq!(*status, StatusCode::UNAUTHORIZED);
    assert!(body.contains(FAILED), "{body}");
    for (user, digits, s, b) in &answers {
        assert_eq!((s, b), (status, body), "{user}, {digits} digits");
    }
    // The right code still works on the index TokenIndex names, and only then it moves.
    let k: u8 = token_index(&f.app, "alice").await.parse().unwrap();
    let r = login(&f.app, "alice", &right_code(&strings, k)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_ne!(token_index(&f.app, "alice").await, k.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_cannot_block_a_users_one_time_codes() {
    let f = fixture().await;
    let strings = provisioned(&f.state, &f.outbox, "alice").await;
    let attacker = from(&f.state, [203, 0, 113, 20]);
    let max = f.state.provisioner().policy().max_otc_failures();
    for i in 1..=max {
        let r = login(&attacker, "alice", &wrong_code(&strings, i)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let r = login(&attacker, "nobody", &wrong_code(&strings, i)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // Alice, from her own address, logs in with her right code.
    let r = login(&f.app, "alice", &right_code(&strings, 1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Login successful"), "{}", r.body);
    // The stranger's address is refused for those accounts now, alike whether the account
    // exists; even the right code is refused from there.
    let alice = login(&attacker, "alice", &right_code(&strings, 2)).await;
    assert_refused(&alice);
    let nobody = login(&attacker, "nobody", &wrong_code(&strings, 2)).await;
    assert_refused(&nobody);
    assert_eq!(alice.body, nobody.body);
    // Another account from the same address is served.
    let r = login(&attacker, "dave", "000001").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // The refusal lasts until the minute's window ends.
    f.clock.advance(time::Duration::seconds(60));
    let r = login(&attacker, "alice", &wrong_code(&strings, 9)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_ceiling_still_locks_a_known_user() {
    let f = fixture().await;
    let strings = provisioned(&f.state, &f.outbox, "alice").await;
    let ceiling = f.state.provisioner().policy().max_account_failures();
    wrong_codes_from_many(&f.state, "alice", usize::from(ceiling), 1).await;
    assert_eq!(
        failures(&f.state, "alice").await,
        (u32::from(ceiling), true)
    );
    let r = login(&f.app, "alice", &right_code(&strings, 1)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "locked: {}", r.body);
    assert_eq!(token_index(&f.app, "alice").await, "1", "nothing spent");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_name_never_locks_and_its_record_is_purged() {
    let f = fixture().await;
    let ceiling = usize::from(f.state.provisioner().policy().max_account_failures());
    wrong_codes_from_many(&f.state, "mallory", ceiling + 10, 2).await;
    let (count, locked) = failures(&f.state, "mallory").await;
    assert!(!locked, "a name that does not exist is never locked");
    assert_eq!(count as usize, ceiling + 10, "but its failures are counted");
    // Once the failure-only record's time is up, purging drops it.
    f.clock
        .advance(swivel_provision::record::FAILURE_RECORD_TTL - time::Duration::seconds(1));
    f.state.provisioner().purge_expired().await.unwrap();
    assert!(
        f.state
            .backend()
            .codes
            .load(&name("mallory"))
            .await
            .unwrap()
            .is_some()
    );
    f.clock.advance(time::Duration::seconds(1));
    assert!(f.state.provisioner().purge_expired().await.unwrap() >= 1);
    assert!(
        f.state
            .backend()
            .codes
            .load(&name("mallory"))
            .await
            .unwrap()
            .is_none(),
        "the record is gone"
    );
}

/// `PUT /api/v1/users/{name}` as the API does it (the console's Add user and `users add`
/// share its action).
async fn put_user(f: &Fixture, user: &str, body: &str) -> Reply {
    let token = f.state.credentials().new_api_token().await.unwrap();
    let req = Request::put(format!("/api/v1/users/{user}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", token.expose_secret()),
        )
        .body(Body::from(body.to_owned()))
        .unwrap();
    send(&f.app, req).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_added_under_a_name_starts_clean() {
    let f = fixture().await;
    // Failures named erin before erin exists (enough to have locked the name before).
    let ceiling = usize::from(f.state.provisioner().policy().max_account_failures());
    wrong_codes_from_many(&f.state, "erin", ceiling, 3).await;
    assert_eq!(failures(&f.state, "erin").await.0 as usize, ceiling);
    // A lock left under frank's name (as an earlier version wrote one for unknown names).
    let mut frank = ProvisionRecord::new(name("frank"));
    frank.version = 1;
    frank.failures = 100;
    frank.locked_at = Some(f.clock.now());
    assert!(
        f.state
            .backend()
            .codes
            .compare_and_swap(None, &frank)
            .await
            .unwrap()
    );
    let body = r#"{"email":"new@example.com","mobile_group":true,"pin":"2468"}"#;
    for user in ["erin", "frank"] {
        let r = put_user(&f, user, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(failures(&f.state, user).await, (0, false), "{user}");
        // A new code can be asked for at once.
        f.state
            .provisioner()
            .request_provision(&name(user), Origin::Admin)
            .await
            .unwrap();
    }
    // Saving a user that exists keeps its record: its failures stay.
    let strings = provisioned(&f.state, &f.outbox, "alice").await;
    login(&f.app, "alice", &wrong_code(&strings, 1)).await;
    let r = put_user(&f, "alice", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(failures(&f.state, "alice").await, (1, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_the_mobile_group_ends_one_time_code_logins() {
    let f = fixture().await;
    let strings = provisioned(&f.state, &f.outbox, "alice").await;
    let out = r#"{"email":"alice@example.com","mobile_group":false}"#;
    let r = put_user(&f, "alice", out).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The strings the device already holds no longer log in.
    let r = login(&f.app, "alice", &right_code(&strings, 1)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(r.body.contains(FAILED), "{}", r.body);
    assert_eq!(token_index(&f.app, "alice").await, "1", "nothing spent");
    // Back in the group, they do again.
    let back = r#"{"email":"alice@example.com","mobile_group":true}"#;
    assert_eq!(put_user(&f, "alice", back).await.status, StatusCode::OK);
    let r = login(&f.app, "alice", &right_code(&strings, 1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Two instances on one store and one key, with alice; the clock stands still.
async fn two_instances() -> (AppState, AppState, SecurityStrings) {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let key = ServerKey::generate();
    let clock = Arc::new(ManualClock::fixed());
    let outbox = Arc::new(RecordingTransport::new());
    let mut states = Vec::new();
    for _ in 0..2 {
        let state = StateBuilder::new(
            Backend::from_store(store.clone(), "sqlite::memory:"),
            key.clone(),
        )
        .throttle(roomy())
        .transport(Channel::Email, outbox.clone())
        .clock(clock.clone())
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap();
        states.push(state);
    }
    let alice = name("alice");
    states[0]
        .backend()
        .user_admin
        .put_user(
            &UserEntry::new(alice.clone())
                .with_mobile_group(true)
                .with_destination(Destination::email("alice@example.com").unwrap()),
        )
        .await
        .unwrap();
    states[0]
        .pins()
        .set(&alice, &Pin::parse("1234").unwrap())
        .await
        .unwrap();
    let strings = provisioned(&states[0], &outbox, "alice").await;
    let two = states.pop().unwrap();
    (states.pop().unwrap(), two, strings)
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_codes_per_account_and_address_count_on_every_instance() {
    let (one, two, strings) = two_instances().await;
    let attacker = [203, 0, 113, 30];
    let (a, b) = (from(&one, attacker), from(&two, attacker));
    let max = one.provisioner().policy().max_otc_failures();
    for i in 1..=max {
        let app = if i % 2 == 0 { &b } else { &a };
        let r = login(app, "alice", &wrong_code(&strings, i)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // The instance that counted the last failure knows the address is over its allowance.
    let last = if max % 2 == 0 { &b } else { &a };
    assert_refused(&login(last, "alice", &wrong_code(&strings, 50)).await);
    // Alice is served by either instance.
    for state in [&one, &two] {
        let r = login(
            &from(state, [192, 0, 2, 1]),
            "alice",
            &wrong_code(&strings, 60),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
}
