//! The in-process fixture of the route tests (`app()` without a socket): SQLite in memory,
//! a recording transport, direct delivery, a manual clock, users alice, carol and dave;
//! and helpers to log in to the console, post forms and read API problems.

use std::net::SocketAddr;
use std::sync::Arc;

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
    Channel, Delivery, Destination, Pin, ServerKey, ServerSettings, SiteId, UserEntry, Username,
};

use super::oneshot::{Reply, send};

/// The console password of the fixture.
pub const PASSWORD: &str = "a console password";

pub struct Fixture {
    pub state: AppState,
    pub app: Router,
    pub outbox: Arc<RecordingTransport>,
    pub clock: Arc<ManualClock>,
}

/// Throttles far above what these tests send (tests/hardening.rs tests the limits).
pub fn roomy() -> ThrottleConfig {
    ThrottleConfig {
        agentxml_failures_per_ip: 10_000,
        login_per_ip: 10_000,
        self_service_per_ip: 10_000,
        console_login_per_ip: 10_000,
        token_index_per_ip: 10_000,
        ..ThrottleConfig::default()
    }
}

/// Waits until `done` holds (work the server does in the background).
pub async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

pub async fn fixture_with(backend: Backend) -> Fixture {
    let outbox = Arc::new(RecordingTransport::new());
    let clock = Arc::new(ManualClock::fixed());
    let state = StateBuilder::new(backend, ServerKey::generate())
        .throttle(roomy())
        .transport(Channel::Email, outbox.clone())
        .clock(clock.clone())
        .delivery(Delivery::Direct)
        .public_url("http://provision.test")
        .site_id(Some(SiteId::parse("DEMO").unwrap()))
        .instance_name("test-instance")
        .build()
        .await
        .unwrap();
    let b = state.backend();
    for (name, email, group, pin) in [
        ("alice", Some("alice@example.com"), true, "1234"),
        ("carol", Some("carol@example.com"), false, "4321"),
        ("dave", None, true, "5555"),
    ] {
        let u = Username::parse(name).unwrap();
        let mut entry = UserEntry::new(u.clone()).with_mobile_group(group);
        if let Some(e) = email {
            entry = entry.with_destination(Destination::email(e).unwrap());
        }
        b.user_admin.put_user(&entry).await.unwrap();
        state
            .pins()
            .set(&u, &Pin::parse(pin).unwrap())
            .await
            .unwrap();
    }
    b.site_admin
        .put_site(
            &SiteId::parse("DEMO").unwrap(),
            &ServerSettings {
                hostname: "provision.test".into(),
                port: 80,
                ..ServerSettings::default()
            },
        )
        .await
        .unwrap();
    state
        .credentials()
        .set_password(&SecretString::from(PASSWORD))
        .await
        .unwrap();
    Fixture {
        app: app(state.clone()).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000)))),
        state,
        outbox,
        clock,
    }
}

pub async fn fixture() -> Fixture {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    fixture_with(Backend::from_store(store, "sqlite::memory:")).await
}

pub async fn get(app: &Router, uri: &str, cookie: Option<&str>) -> Reply {
    let mut b = Request::get(uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(app, b.body(Body::empty()).unwrap()).await
}

pub fn enc(s: &str) -> String {
    provision_server::routes::landing::encode_component(s)
}

pub async fn post_form(
    app: &Router,
    uri: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let mut b =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    send(app, b.body(Body::from(body.join("&"))).unwrap()).await
}

pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// Logs in to the console; returns the session cookie (`psid=...`) and the CSRF token.
pub async fn console_login(app: &Router) -> (String, String) {
    let page = get(app, "/admin/login", None).await;
    let set = page
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let anon = set.split(';').next().unwrap().to_owned();
    let csrf = between(&page.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    let res = post_form(
        app,
        "/admin/login",
        &[("csrf", &csrf), ("password", PASSWORD)],
        Some(&anon),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let cookie = res
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(cookie, anon, "a fresh session id at login");
    let users = get(app, "/admin/users", Some(&cookie)).await;
    let csrf = between(&users.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

pub fn bearer(uri: &str, auth: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b.body(Body::empty()).unwrap()
}

/// The `detail` of an API problem (`application/problem+json`, RFC 9457), after checking
/// that its `status` is the answer's (tests/openapi.rs checks the whole shape).
pub fn detail(r: &Reply) -> String {
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{}",
        r.body
    );
    let v = json(r);
    assert_eq!(v["status"], r.status.as_u16(), "{v}");
    v["detail"].as_str().unwrap().to_owned()
}

pub fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}
