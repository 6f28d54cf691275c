//! The host's protections through `app()`, in-process: per-client throttles (`429` with
//! `Retry-After`; shared by two instances on one store, failing open when the store fails), console logins under concurrency, no session before a login is posted,
//! security headers on the framework's own rejections, and `SASResponse` rejections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::throttle::ThrottleConfig;
use provision_server::{AppState, StateBuilder, app};
use secrecy::SecretString;
use swivel_provision::testing::{ManualClock, RecordingTransport};
use swivel_provision::{
    Channel, CounterStore, Delivery, Destination, MemorySettings, Pin, ServerKey, SettingsStore,
    StoreError, UserEntry, Username, Window,
};

mod common;
use common::oneshot::{Reply, assert_throttled, retry_after, send};

const PASSWORD: &str = "the console password";

async fn state_with(throttle: ThrottleConfig) -> AppState {
    state_on(Backend::memory(), ServerKey::generate(), throttle).await
}

async fn state_on(backend: Backend, key: ServerKey, throttle: ThrottleConfig) -> AppState {
    state_from(StateBuilder::new(backend, key).throttle(throttle)).await
}

/// The state `builder` builds, with alice (PIN 1234), the console password and
/// self-service allowed.
async fn state_from(builder: StateBuilder) -> AppState {
    let state = builder
        .transport(Channel::Email, Arc::new(RecordingTransport::new()))
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap();
    let alice = Username::parse("alice").unwrap();
    state
        .backend()
        .user_admin
        .put_user(
            &UserEntry::new(alice.clone())
                .with_mobile_group(true)
                .with_destination(Destination::email("alice@example.com").unwrap()),
        )
        .await
        .unwrap();
    state
        .pins()
        .set(&alice, &Pin::parse("1234").unwrap())
        .await
        .unwrap();
    state
        .credentials()
        .set_password(&SecretString::from(PASSWORD))
        .await
        .unwrap();
    let mut policy = state.provisioner().policy();
    policy.set("allow_self_provision", "Yes").unwrap();
    state.save_policy(policy).await.unwrap();
    state
}

/// Settings (in memory) that count the console sessions stored in them.
#[derive(Default)]
struct CountingSettings {
    inner: MemorySettings,
    sessions: AtomicUsize,
}

#[async_trait::async_trait]
impl SettingsStore for CountingSettings {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_setting(key).await
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if key.starts_with("console/session/") && self.inner.get_setting(key).await?.is_none() {
            self.sessions.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.put_setting(key, value).await
    }

    async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        let existed = self.inner.delete_setting(key).await?;
        if existed && key.starts_with("console/session/") {
            self.sessions.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(existed)
    }
}

/// The router as a client at `ip` reaches it.
fn from(state: &AppState, ip: [u8; 4]) -> Router {
    app(state.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 40000))))
}

async fn post(app: &Router, uri: &str, content_type: &str, body: String, cookie: &str) -> Reply {
    let mut b = Request::post(uri).header(header::CONTENT_TYPE, content_type);
    if !cookie.is_empty() {
        b = b.header(header::COOKIE, cookie);
    }
    send(app, b.body(Body::from(body)).unwrap()).await
}

async fn form(app: &Router, uri: &str, body: &str) -> Reply {
    post(
        app,
        uri,
        "application/x-www-form-urlencoded",
        body.to_owned(),
        "",
    )
    .await
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// The login form's cookie (`plogin=...`) and CSRF token.
async fn login_form(app: &Router) -> (String, String) {
    let page = send(
        app,
        Request::get("/admin/login").body(Body::empty()).unwrap(),
    )
    .await;
    let cookie = page.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = between(&page.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

async fn console_login(app: &Router, cookie: &str, csrf: &str, password: &str) -> Reply {
    post(
        app,
        "/admin/login",
        "application/x-www-form-urlencoded",
        format!("csrf={csrf}&password={}", password.replace(' ', "+")),
        cookie,
    )
    .await
}

fn provision_xml(user: &str, code: &str) -> String {
    format!(
        "<SASRequest><Version>3.6</Version><Action>provision</Action><Username>{user}</Username><ProvisionCode>{code}</ProvisionCode></SASRequest>"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_agentxml_requests_are_throttled_per_client() {
    let state = state_with(ThrottleConfig {
        agentxml_failures_per_ip: 3,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = from(&state, [203, 0, 113, 7]);
    let ping = "<SASRequest><Version>3.6</Version><Action>ping</Action></SASRequest>";
    // Successful requests do not count.
    for _ in 0..20 {
        let r = post(&attacker, "/pinsafe/AgentXML", "text/xml", ping.into(), "").await;
        assert!(r.body.contains("<Result>PASS</Result>"), "{}", r.body);
    }
    let mut refused = None;
    for i in 0..10 {
        let r = post(
            &attacker,
            "/pinsafe/AgentXML",
            "text/xml",
            provision_xml("alice", &format!("{:010}", i)),
            "",
        )
        .await;
        assert!(r.body.contains("<Result>FAIL</Result>"), "{}", r.body);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("never throttled");
    assert!(i <= 4, "throttled only after {i} failures");
    assert_throttled(&r);
    assert!(r.body.starts_with("<?xml") && r.body.contains("<SASResponse>"));
    // Now even a ping from that address is refused, and another address is served.
    let r = post(&attacker, "/sentry/AgentXML", "text/xml", ping.into(), "").await;
    assert_throttled(&r);
    let other = from(&state, [198, 51, 100, 1]);
    let r = post(&other, "/pinsafe/AgentXML", "text/xml", ping.into(), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("<Result>PASS</Result>"));
}

#[tokio::test(flavor = "multi_thread")]
async fn login_posts_are_throttled_per_client() {
    let state = state_with(ThrottleConfig {
        login_per_ip: 4,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = from(&state, [203, 0, 113, 8]);
    for _ in 0..4 {
        let r = form(&attacker, "/login", "username=alice&otc=123456").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = form(&attacker, "/login", "username=alice&otc=123456").await;
    assert_throttled(&r);
    assert!(r.body.contains("Too many login attempts"));
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    let other = from(&state, [198, 51, 100, 2]);
    let r = form(&other, "/login", "username=alice&otc=123456").await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "another address is not refused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let proxy = [10, 0, 0, 1];
    let state = state_with(ThrottleConfig {
        login_per_ip: 2,
        trusted_proxies: vec![std::net::IpAddr::from(proxy)],
        ..ThrottleConfig::default()
    })
    .await;
    let login_as = |app: Router, client: &'static str| async move {
        let req = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-for", client)
            .body(Body::from("username=alice&otc=123456"))
            .unwrap();
        send(&app, req).await.status
    };
    // Behind the trusted proxy, each forwarded client has its own allowance.
    let behind = from(&state, proxy);
    for _ in 0..2 {
        assert_eq!(
            login_as(behind.clone(), "203.0.113.20").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_as(behind.clone(), "203.0.113.20").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_as(behind.clone(), "203.0.113.21").await,
        StatusCode::UNAUTHORIZED
    );
    // From anywhere else the header is ignored: a forged one does not reset the count.
    let direct = from(&state, [198, 51, 100, 30]);
    for client in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(
            login_as(direct.clone(), client).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_as(direct.clone(), "192.0.2.3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn self_service_submissions_are_throttled_per_client_and_globally() {
    let state = state_with(ThrottleConfig {
        self_service_per_ip: 3,
        self_service_global: 5,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = from(&state, [203, 0, 113, 9]);
    for n in 0..3 {
        let r = form(&attacker, "/reset/provision", &format!("username=u{n}")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = form(&attacker, "/reset/provision", "username=u9").await;
    assert_throttled(&r);
    let second = from(&state, [203, 0, 113, 10]);
    for n in 0..2 {
        let r = form(&second, "/reset/provision", &format!("username=v{n}")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let third = from(&state, [203, 0, 113, 11]);
    let r = form(&third, "/reset/provision", "username=w").await;
    assert_throttled(&r);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_index_requests_are_throttled_per_client() {
    let state = state_with(ThrottleConfig {
        token_index_per_ip: 3,
        ..ThrottleConfig::default()
    })
    .await;
    let get = |app: Router, uri: &'static str| async move {
        send(&app, Request::get(uri).body(Body::empty()).unwrap()).await
    };
    let attacker = from(&state, [203, 0, 113, 20]);
    for name in ["u1", "u2", "u3"] {
        let uri: &'static str = Box::leak(format!("/proxy/TokenIndex?username={name}").into());
        let r = get(attacker.clone(), uri).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = get(attacker.clone(), "/pinsafe/TokenIndex?username=u4").await;
    assert_throttled(&r);
    let other = from(&state, [203, 0, 113, 21]);
    let r = get(other, "/pinsafe/TokenIndex?username=u4").await;
    assert_eq!(r.status, StatusCode::OK, "another address is not refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_over_its_console_logins_backs_off_even_with_the_right_password() {
    // One attempt a minute: the refill (60 s) is far longer than this test, however slow
    // the machine is.
    let state = state_with(ThrottleConfig {
        console_login_per_ip: 1,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = from(&state, [203, 0, 113, 13]);
    let (cookie, csrf) = login_form(&attacker).await;
    let r = console_login(&attacker, &cookie, &csrf, "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = console_login(&attacker, &cookie, &csrf, PASSWORD).await;
    assert_throttled(&r);
    let admin = from(&state, [198, 51, 100, 4]);
    let (cookie, csrf) = login_form(&admin).await;
    let r = console_login(&admin, &cookie, &csrf, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_wrong_console_logins_are_counted_before_hashing() {
    let state = state_with(ThrottleConfig {
        console_login_per_ip: 5,
        console_hashes_at_once: 2,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = from(&state, [203, 0, 113, 12]);
    let (cookie, csrf) = login_form(&attacker).await;
    let mut tasks = Vec::new();
    for n in 0..32 {
        let (app, cookie, csrf) = (attacker.clone(), cookie.clone(), csrf.clone());
        tasks.push(tokio::spawn(async move {
            console_login(&app, &cookie, &csrf, &format!("wrong password {n}")).await
        }));
    }
    let mut unauthorized = 0;
    let mut throttled = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(retry_after(&r) >= 1);
                throttled += 1;
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert!(unauthorized <= 5, "{unauthorized} passwords were hashed");
    assert_eq!(unauthorized + throttled, 32);
    assert!(
        state.throttles().peak_hashes_at_once() <= 2,
        "{} hashes at once",
        state.throttles().peak_hashes_at_once()
    );
    // The right password works at once from another address.
    let admin = from(&state, [198, 51, 100, 3]);
    let (cookie, csrf) = login_form(&admin).await;
    let r = console_login(&admin, &cookie, &csrf, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.headers[header::LOCATION], "/admin/users");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_form_stores_no_session() {
    let settings = Arc::new(CountingSettings::default());
    let mut backend = Backend::memory();
    backend.settings = settings.clone();
    let state = state_on(backend, ServerKey::generate(), ThrottleConfig::default()).await;
    let app = from(&state, [198, 51, 100, 4]);
    for _ in 0..50 {
        let r = send(
            &app,
            Request::get("/admin/login").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(
        settings.sessions.load(Ordering::SeqCst),
        0,
        "anonymous visits stored sessions"
    );
    // A forged or missing token is refused; the signed one logs in.
    let (cookie, csrf) = login_form(&app).await;
    let r = console_login(&app, &cookie, "forged", PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = console_login(&app, "plogin=someone-elses", &csrf, PASSWORD).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = console_login(&app, &cookie, &csrf, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(settings.sessions.load(Ordering::SeqCst), 1);
}

fn assert_security_headers(r: &Reply, what: &str) {
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        assert_eq!(
            r.headers.get(&name).map(|v| v.to_str().unwrap()),
            Some(value),
            "{what} ({}): {name}",
            r.status
        );
    }
    assert!(
        r.headers.contains_key(header::CONTENT_SECURITY_POLICY),
        "{what}: CSP"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn framework_rejections_carry_the_security_headers() {
    let state = state_with(ThrottleConfig::default()).await;
    let app = from(&state, [198, 51, 100, 5]);
    let big = format!("username={}", "a".repeat(70 * 1024));
    let r = form(&app, "/login", &big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&r, "413");
    let r = send(
        &app,
        Request::get("/no/such/page").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_security_headers(&r, "404");
    let r = send(&app, Request::delete("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_security_headers(&r, "405");
    let r = post(&app, "/login", "text/plain", "x".into(), "").await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_security_headers(&r, "415");
    let r = form(&app, "/login", "username=%ZZ").await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_security_headers(&r, "bad form");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_agentxml_body_gets_a_sasresponse() {
    let state = state_with(ThrottleConfig::default()).await;
    let app = from(&state, [198, 51, 100, 6]);
    let attrs: String = (0..9_000).map(|i| format!(" a{i}=\"\"")).collect();
    let body = format!("<SASRequest{attrs}><Action>ping</Action></SASRequest>");
    assert!(body.len() > 64 * 1024);
    let r = post(&app, "/pinsafe/AgentXML", "text/xml", body, "").await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        r.body.contains("<SASResponse>") && r.body.contains("<Result>FAIL</Result>"),
        "{}",
        r.body
    );
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/xml; charset=utf-8");
    assert_security_headers(&r, "AgentXML 413");
}

#[tokio::test(flavor = "multi_thread")]
async fn agentxml_framework_rejections_are_sasresponses() {
    let state = StateBuilder::new(Backend::memory(), ServerKey::generate())
        .request_timeout(std::time::Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let app = from(&state, [198, 51, 100, 8]);
    let is_sas =
        |r: &Reply| r.body.contains("<SASResponse>") && r.body.contains("<Result>FAIL</Result>");
    let r = send(
        &app,
        Request::get("/pinsafe/AgentXML")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(is_sas(&r), "{}", r.body);
    assert_security_headers(&r, "AgentXML 405");
    // A body that never ends: the request timeout answers, as a SASResponse.
    let endless = Body::from_stream(futures_util::stream::pending::<
        Result<axum::body::Bytes, std::io::Error>,
    >());
    let r = send(
        &app,
        Request::post("/pinsafe/AgentXML")
            .header(header::CONTENT_TYPE, "text/xml")
            .body(endless)
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
    assert!(is_sas(&r), "{}", r.body);
    assert_security_headers(&r, "AgentXML 408");
}

/// A transport that holds every message until released.
struct Gate {
    open: tokio::sync::Semaphore,
    delivered: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl swivel_provision::Transport for Gate {
    async fn deliver(
        &self,
        _message: &swivel_provision::ProvisionMessage,
    ) -> Result<(), swivel_provision::TransportError> {
        let _pass = self.open.acquire().await;
        self.delivered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn self_service_answers_before_the_request_is_done() {
    let gate = Arc::new(Gate {
        open: tokio::sync::Semaphore::new(0),
        delivered: std::sync::atomic::AtomicUsize::new(0),
    });
    let state = StateBuilder::new(Backend::memory(), ServerKey::generate())
        .transport(Channel::Email, gate.clone())
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap();
    let alice = Username::parse("alice").unwrap();
    state
        .backend()
        .user_admin
        .put_user(
            &UserEntry::new(alice)
                .with_destination(Destination::email("alice@example.com").unwrap()),
        )
        .await
        .unwrap();
    let mut policy = state.provisioner().policy();
    policy.set("allow_self_provision", "Yes").unwrap();
    state.save_policy(policy).await.unwrap();
    let app = from(&state, [198, 51, 100, 9]);
    // The transport holds the message: a handler that waited for it would never answer.
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        form(&app, "/reset/provision", "username=alice"),
    )
    .await
    .expect("the answer waited for the delivery");
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(gate.delivered.load(std::sync::atomic::Ordering::SeqCst), 0);
    gate.open.add_permits(1);
    for _ in 0..500 {
        if gate.delivered.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the background request never delivered");
}

#[tokio::test(flavor = "multi_thread")]
async fn hsts_only_under_tls() {
    let plain = state_with(ThrottleConfig::default()).await;
    let r = send(
        &from(&plain, [198, 51, 100, 7]),
        Request::get("/no/such/page").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(!r.headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let tls = StateBuilder::new(Backend::memory(), ServerKey::generate())
        .secure_cookies(true)
        .build()
        .await
        .unwrap();
    let r = send(
        &from(&tls, [198, 51, 100, 7]),
        Request::get("/no/such/page").body(Body::empty()).unwrap(),
    )
    .await;
    assert!(
        r.headers[header::STRICT_TRANSPORT_SECURITY]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_session_holds_on_every_instance_of_one_store() {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let key = ServerKey::generate();
    let instance = |store| {
        let key = key.clone();
        async move {
            state_on(
                Backend::from_store(store, "sqlite::memory:"),
                key,
                ThrottleConfig::default(),
            )
            .await
        }
    };
    let one = instance(store.clone()).await;
    let two = instance(store).await;
    let (a, b) = (from(&one, [198, 51, 100, 7]), from(&two, [198, 51, 100, 7]));
    let users = |app: &Router, session: &str| {
        let (app, session) = (app.clone(), session.to_owned());
        async move {
            send(
                &app,
                Request::get("/admin/users")
                    .header(header::COOKIE, session)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    // A login form from one instance is accepted by the other; the session holds on both.
    let (cookie, csrf) = login_form(&a).await;
    let r = console_login(&b, &cookie, &csrf, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let session = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("psid="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for app in [&a, &b] {
        assert_eq!(users(app, &session).await.status, StatusCode::OK);
    }
    // Logging out on one instance ends it on the other.
    let page = users(&a, &session).await;
    let csrf = between(&page.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    let r = post(
        &a,
        "/admin/logout",
        "application/x-www-form-urlencoded",
        format!("csrf={csrf}"),
        &session,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = users(&b, &session).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "the other instance still knew it"
    );
    assert_eq!(r.headers[header::LOCATION], "/admin/login");
    // An instance with another server key does not accept the first one's sessions.
    let stranger = state_on(
        Backend::memory(),
        ServerKey::generate(),
        ThrottleConfig::default(),
    )
    .await;
    let (cookie, csrf) = login_form(&a).await;
    let r = console_login(
        &from(&stranger, [198, 51, 100, 7]),
        &cookie,
        &csrf,
        PASSWORD,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// Two instances (two states, as two server processes would build them) on one store and
/// one server key. Their clock stands still, so that the test never straddles two of the
/// shared counts' one-minute windows.
async fn two_instances(throttle: ThrottleConfig) -> (AppState, AppState) {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let key = ServerKey::generate();
    let clock = Arc::new(ManualClock::fixed());
    let instance = |store| {
        StateBuilder::new(Backend::from_store(store, "sqlite::memory:"), key.clone())
            .throttle(throttle.clone())
            .clock(clock.clone())
    };
    let one = state_from(instance(store.clone())).await;
    let two = state_from(instance(store)).await;
    (one, two)
}

#[tokio::test(flavor = "multi_thread")]
async fn console_login_attempts_count_on_every_instance_of_one_store() {
    let (one, two) = two_instances(ThrottleConfig {
        console_login_per_ip: 3,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = [203, 0, 113, 40];
    let (a, b) = (from(&one, attacker), from(&two, attacker));
    let (cookie, csrf) = login_form(&a).await;
    for app in [&a, &a, &b] {
        let r = console_login(app, &cookie, &csrf, "wrong password").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // Instance two saw one attempt, but the address has made three: even the right
    // password is refused there now.
    let r = console_login(&b, &cookie, &csrf, PASSWORD).await;
    assert_throttled(&r);
    // Another address is served by either instance.
    let admin = from(&two, [198, 51, 100, 40]);
    let (cookie, csrf) = login_form(&admin).await;
    let r = console_login(&admin, &cookie, &csrf, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_posts_count_on_every_instance_of_one_store() {
    let (one, two) = two_instances(ThrottleConfig {
        login_per_ip: 4,
        login_global: 6,
        ..ThrottleConfig::default()
    })
    .await;
    let post = |state: &AppState, ip: [u8; 4]| {
        let app = from(state, ip);
        async move { form(&app, "/login", "username=alice&otc=123456").await }
    };
    let attacker = [203, 0, 113, 41];
    for _ in 0..4 {
        assert_eq!(post(&one, attacker).await.status, StatusCode::UNAUTHORIZED);
    }
    // Instance two has seen nothing from this address yet.
    assert_throttled(&post(&two, attacker).await);
    // The server-wide allowance (6) is shared too: 4 posts so far, the refused one not
    // counted.
    assert_eq!(
        post(&two, [203, 0, 113, 42]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&one, [203, 0, 113, 43]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_throttled(&post(&two, [203, 0, 113, 44]).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn agentxml_failures_count_on_every_instance_of_one_store() {
    let (one, two) = two_instances(ThrottleConfig {
        agentxml_failures_per_ip: 3,
        agentxml_failures_global: 4,
        ..ThrottleConfig::default()
    })
    .await;
    let ping = "<SASRequest><Version>3.6</Version><Action>ping</Action></SASRequest>";
    let fail = |state: &AppState, ip: [u8; 4], n: usize| {
        let app = from(state, ip);
        async move {
            let xml = provision_xml("alice", &format!("{n:010}"));
            post(&app, "/pinsafe/AgentXML", "text/xml", xml, "").await
        }
    };
    let attacker = [203, 0, 113, 45];
    for n in 0..3 {
        let r = fail(&one, attacker, n).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("<Result>FAIL</Result>"), "{}", r.body);
    }
    // The address's fourth failure (its first on instance two) is answered, and from then
    // on instance two refuses it, even a ping.
    assert_eq!(fail(&two, attacker, 3).await.status, StatusCode::OK);
    let b = from(&two, attacker);
    let r = post(&b, "/pinsafe/AgentXML", "text/xml", ping.into(), "").await;
    assert_throttled(&r);
    assert!(r.body.contains("<SASResponse>"), "{}", r.body);
    // The server-wide allowance of failures (4) is shared: the attacker's three counted
    // (its over-limit failure counted against the address only), one more spends it, the
    // next goes over, and then instance two refuses everybody.
    assert_eq!(
        fail(&one, [203, 0, 113, 46], 4).await.status,
        StatusCode::OK
    );
    assert_eq!(
        fail(&two, [203, 0, 113, 47], 5).await.status,
        StatusCode::OK
    );
    let r = post(
        &from(&two, [203, 0, 113, 48]),
        "/pinsafe/AgentXML",
        "text/xml",
        ping.into(),
        "",
    )
    .await;
    assert_throttled(&r);
}

/// Counters that always fail, as a store that is down would.
struct DownCounters;

#[async_trait::async_trait]
impl CounterStore for DownCounters {
    async fn hit(&self, _key: &str, _window: Window) -> Result<u64, StoreError> {
        Err(StoreError::unavailable("the test's counters are down"))
    }

    async fn purge_counters(&self, _t: time::OffsetDateTime) -> Result<u64, StoreError> {
        Err(StoreError::unavailable("the test's counters are down"))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_counter_store_fails_open_behind_the_in_process_limit() {
    let backend = Backend {
        counters: Arc::new(DownCounters),
        ..Backend::memory()
    };
    let state = state_on(
        backend,
        ServerKey::generate(),
        ThrottleConfig {
            login_per_ip: 3,
            console_login_per_ip: 2,
            ..ThrottleConfig::default()
        },
    )
    .await;
    // Nobody is locked out: posts are answered...
    let attacker = from(&state, [203, 0, 113, 50]);
    for _ in 0..3 {
        let r = form(&attacker, "/login", "username=alice&otc=123456").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // ...and nobody gets through unlimited: this instance's own limit still applies.
    assert_throttled(&form(&attacker, "/login", "username=alice&otc=123456").await);
    let admin = from(&state, [198, 51, 100, 50]);
    let (cookie, csrf) = login_form(&admin).await;
    let r = console_login(&admin, &cookie, &csrf, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // The failures show in the metrics.
    let metrics = state.metrics().encode();
    assert!(
        metrics.contains(r#"op="counter_hit",result="error""#),
        "{metrics}"
    );
}
