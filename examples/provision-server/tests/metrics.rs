//! `GET /metrics` through `app()` without a socket: each counter moves with the action
//! that should move it (read back with a Prometheus text-format parser), the bearer token
//! is enforced when one is configured, and no username shows.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use prometheus_parse::{Scrape, Value};
use provision_server::backend::Backend;
use provision_server::metrics::MetricsEndpoint;
use provision_server::throttle::ThrottleConfig;
use provision_server::{AppState, StateBuilder, app};
use secrecy::{ExposeSecret, SecretString};
use swivel_provision::testing::{ManualClock, RecordingTransport};
use swivel_provision::{
    Channel, Delivery, Destination, Pin, Policy, ServerKey, UserEntry, Username,
};

mod common;
use common::oneshot::{Reply, send};

const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const METRICS_TOKEN: &str = "metrics-token-0123456789";

/// Served, with [`METRICS_TOKEN`] (the fixture's client is not on loopback).
fn with_token() -> MetricsEndpoint {
    MetricsEndpoint {
        enabled: true,
        token: Some(SecretString::from(METRICS_TOKEN)),
    }
}

struct Fixture {
    state: AppState,
    app: Router,
    outbox: Arc<RecordingTransport>,
    clock: Arc<ManualClock>,
    api: String,
}

/// SQLite in memory, a recording email transport, direct delivery, a manual clock; codes
/// burn after 2 wrong tries and accounts lock after 3 failures in a row; self-service on.
async fn fixture(endpoint: MetricsEndpoint) -> Fixture {
    fixture_with(endpoint, Delivery::Direct).await
}

/// [`fixture`] with another delivery (the durable queue on the same SQLite store).
async fn fixture_with(endpoint: MetricsEndpoint, delivery: Delivery) -> Fixture {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let outbox = Arc::new(RecordingTransport::new());
    let clock = Arc::new(ManualClock::fixed());
    let mut policy = Policy::default();
    policy.set_max_attempts(2).unwrap();
    policy.set_max_account_failures(3).unwrap();
    policy.allow_self_provision = true;
    let roomy = ThrottleConfig {
        agentxml_failures_per_ip: 10_000,
        login_per_ip: 10_000,
        self_service_per_ip: 10_000,
        ..ThrottleConfig::default()
    };
    let backend = Backend::from_store(store.clone(), "sqlite::memory:").with_jobs(Arc::new(store));
    let state = StateBuilder::new(backend, ServerKey::generate())
        .throttle(roomy)
        .transport(Channel::Email, outbox.clone())
        .clock(clock.clone())
        .delivery(delivery)
        .initial_policy(policy)
        .metrics_endpoint(endpoint)
        .build()
        .await
        .unwrap();
    for name in USERS {
        let u = Username::parse(name).unwrap();
        let entry = UserEntry::new(u.clone())
            .with_mobile_group(true)
            .with_destination(Destination::email(&format!("{name}@example.com")).unwrap());
        state.backend().user_admin.put_user(&entry).await.unwrap();
        state
            .pins()
            .set(&u, &Pin::parse("1234").unwrap())
            .await
            .unwrap();
    }
    let token = state.credentials().new_api_token().await.unwrap();
    Fixture {
        app: app(state.clone()).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000)))),
        state,
        outbox,
        clock,
        api: format!("Bearer {}", token.expose_secret()),
    }
}

fn request(
    method: &str,
    uri: &str,
    auth: Option<&str>,
    content_type: &str,
    body: String,
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    if !body.is_empty() {
        b = b.header(header::CONTENT_TYPE, content_type);
    }
    b.body(Body::from(body)).unwrap()
}

async fn scrape_body(app: &Router, auth: Option<&str>) -> Reply {
    send(app, request("GET", "/metrics", auth, "", String::new())).await
}

/// The parsed `/metrics` (token: [`METRICS_TOKEN`] if the fixture has one, sent either way).
async fn scrape(f: &Fixture) -> Metrics {
    let bearer = format!("Bearer {METRICS_TOKEN}");
    let r = scrape_body(&f.app, Some(&bearer)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for name in USERS {
        assert!(!r.body.contains(name), "{name} in /metrics:\n{}", r.body);
    }
    let lines = r.body.lines().map(|l| Ok(l.to_owned()));
    Metrics(Scrape::parse(lines).expect("a Prometheus text scrape"))
}

struct Metrics(Scrape);

impl Metrics {
    /// The sum of the samples of `metric` whose labels include `labels` (0 when none).
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                other => panic!("{metric} is not a number: {other:?}"),
            })
            .sum()
    }
}

/// The first scrape (within 5 s) where `metric{labels}` moved since `before` (work the
/// server finishes in the background).
async fn scrape_once_moved(
    f: &Fixture,
    before: &Metrics,
    metric: &str,
    labels: &[(&str, &str)],
) -> Metrics {
    for _ in 0..500 {
        let now = scrape(f).await;
        if moved(before, &now, metric, labels) != 0.0 {
            return now;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{metric}{labels:?} never moved");
}

/// How much `metric{labels}` moved between two scrapes.
fn moved(before: &Metrics, after: &Metrics, metric: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(metric, labels) - before.value(metric, labels)
}

/// The redeem outcomes, to check that an action moved exactly one of them.
const OUTCOMES: [&str; 7] = [
    "success",
    "wrong_code",
    "burned",
    "expired",
    "locked",
    "no_code",
    "malformed",
];

/// Asserts that, of the redeem outcomes, only `outcome` moved, by one.
fn one_redeem(before: &Metrics, after: &Metrics, outcome: &str) {
    for o in OUTCOMES {
        let want = if o == outcome { 1.0 } else { 0.0 };
        let got = moved(before, after, "swivel_redeems_total", &[("outcome", o)]);
        assert_eq!(got, want, "redeems{{outcome={o}}} after a {outcome} redeem");
    }
}

fn provision_xml(user: &str, code: &str) -> String {
    format!(
        "<SASRequest><Version>3.6</Version><Action>provision</Action><Username>{user}</Username><ProvisionCode>{code}</ProvisionCode></SASRequest>"
    )
}

fn strings_xml(id: &str) -> String {
    format!(
        "<SASRequest><Version>3.6</Version><Action>SecurityStrings</Action><Id>{id}</Id></SASRequest>"
    )
}

async fn agentxml(f: &Fixture, xml: String) -> Reply {
    send(
        &f.app,
        request("POST", "/pinsafe/AgentXML", None, "text/xml", xml),
    )
    .await
}

async fn reprovision(f: &Fixture, user: &str) -> Reply {
    let uri = format!("/api/v1/users/{user}/reprovision");
    send(
        &f.app,
        request("POST", &uri, Some(&f.api), "", String::new()),
    )
    .await
}

async fn login(f: &Fixture, user: &str, otc: &str) -> Reply {
    let body = format!("username={user}&otc={otc}");
    send(
        &f.app,
        request(
            "POST",
            "/login",
            None,
            "application/x-www-form-urlencoded",
            body,
        ),
    )
    .await
}

fn code_of(f: &Fixture, user: &str) -> String {
    let code = f
        .outbox
        .last_code_for(&Username::parse(user).unwrap())
        .unwrap();
    code.expose().to_owned()
}

/// A code of the policy's shape that is not `code`.
fn wrong(code: &str) -> String {
    let first = if code.starts_with('1') { "2" } else { "1" };
    format!("{first}{}", &code[1..])
}

#[tokio::test(flavor = "multi_thread")]
async fn each_action_moves_its_counter() {
    let f = fixture(with_token()).await;
    let s0 = scrape(&f).await;

    // An administrator's code through the API: created (admin), sent by email.
    assert_eq!(reprovision(&f, "alice").await.status, StatusCode::ACCEPTED);
    let s1 = scrape(&f).await;
    let created = |o| [("origin", o)];
    assert_eq!(
        moved(&s0, &s1, "swivel_codes_created_total", &created("admin")),
        1.0
    );
    assert_eq!(
        moved(
            &s0,
            &s1,
            "swivel_codes_created_total",
            &created("self_service")
        ),
        0.0
    );
    let email = |o| [("channel", "email"), ("outcome", o)];
    assert_eq!(
        moved(&s0, &s1, "swivel_deliveries_total", &email("sent")),
        1.0
    );
    assert_eq!(
        moved(&s0, &s1, "swivel_deliveries_total", &email("failed")),
        0.0
    );
    // The route template, never the raw path (a label value with braces, which this parser
    // skips: read from the text).
    let bearer = format!("Bearer {METRICS_TOKEN}");
    let body = scrape_body(&f.app, Some(&bearer)).await.body;
    assert!(
        body.contains(
            "swivel_http_requests_total{method=\"POST\",route=\"/api/v1/users/{username}/reprovision\",status=\"202\"} 1"
        ),
        "{body}"
    );

    // A self-service request: created (self_service).
    let form = "username=bob".to_owned();
    let r = send(
        &f.app,
        request(
            "POST",
            "/reset/provision",
            None,
            "application/x-www-form-urlencoded",
            form,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // The page answers at once; the request runs in the background.
    let s2 = scrape_once_moved(&f, &s1, "swivel_deliveries_total", &email("sent")).await;
    assert_eq!(
        moved(
            &s1,
            &s2,
            "swivel_codes_created_total",
            &created("self_service")
        ),
        1.0
    );
    assert_eq!(
        moved(&s1, &s2, "swivel_codes_created_total", &created("admin")),
        0.0
    );
    assert_eq!(
        moved(&s1, &s2, "swivel_deliveries_total", &email("sent")),
        1.0
    );

    // A delivery that fails.
    f.outbox.fail_next(1, false);
    assert!(reprovision(&f, "dave").await.status.is_server_error());
    let s3 = scrape(&f).await;
    assert_eq!(
        moved(&s2, &s3, "swivel_deliveries_total", &email("failed")),
        1.0
    );
    assert_eq!(
        moved(&s2, &s3, "swivel_deliveries_total", &email("sent")),
        0.0
    );

    // A wrong code through AgentXML: the device sees the uniform error, the operator the
    // reason.
    let code = code_of(&f, "alice");
    let r = agentxml(&f, provision_xml("alice", &wrong(&code))).await;
    assert!(
        r.body.contains("<Error>Provision Failure</Error>"),
        "{}",
        r.body
    );
    let s4 = scrape(&f).await;
    one_redeem(&s3, &s4, "wrong_code");

    // The right code.
    let r = agentxml(&f, provision_xml("alice", &code)).await;
    assert!(r.body.contains("<Result>PASS</Result>"), "{}", r.body);
    let id = r
        .body
        .split("<Id>")
        .nth(1)
        .unwrap()
        .split("</Id>")
        .next()
        .unwrap()
        .to_owned();
    let s5 = scrape(&f).await;
    one_redeem(&s4, &s5, "success");

    // A strings download.
    let r = agentxml(&f, strings_xml(&id)).await;
    assert!(r.body.contains("<SecurityStrings>"), "{}", r.body);
    let s6 = scrape(&f).await;
    assert_eq!(moved(&s5, &s6, "swivel_strings_downloads_total", &[]), 1.0);

    // One-time codes at /login, wrong then right.
    let strings = f
        .state
        .provisioner()
        .download_strings(&swivel_provision::ProvisionId::new(&id))
        .await
        .unwrap()
        .strings;
    let pin = Pin::parse("1234").unwrap();
    let right = swivel_provision::one_time_code(strings.get(7).unwrap(), &pin, 7).unwrap();
    let other = swivel_provision::one_time_code(strings.get(8).unwrap(), &pin, 8).unwrap();
    let s7 = scrape(&f).await;
    assert_eq!(
        login(&f, "alice", &wrong(&other)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let s8 = scrape(&f).await;
    let otc = |o| [("outcome", o)];
    assert_eq!(
        moved(&s7, &s8, "swivel_otc_checks_total", &otc("rejected")),
        1.0
    );
    assert_eq!(
        moved(&s7, &s8, "swivel_otc_checks_total", &otc("accepted")),
        0.0
    );
    assert_eq!(login(&f, "alice", &right).await.status, StatusCode::OK);
    let s9 = scrape(&f).await;
    assert_eq!(
        moved(&s8, &s9, "swivel_otc_checks_total", &otc("accepted")),
        1.0
    );
    assert_eq!(
        moved(&s8, &s9, "swivel_otc_checks_total", &otc("rejected")),
        0.0
    );
    let login_route = |status| [("method", "POST"), ("route", "/login"), ("status", status)];
    assert_eq!(
        moved(&s7, &s9, "swivel_http_requests_total", &login_route("401")),
        1.0
    );
    assert_eq!(
        moved(&s7, &s9, "swivel_http_requests_total", &login_route("200")),
        1.0
    );
    let timed = [("method", "POST"), ("route", "/login")];
    assert_eq!(
        moved(
            &s7,
            &s9,
            "swivel_http_request_duration_seconds_count",
            &timed
        ),
        2.0
    );

    // bob's self-service code: wrong, then wrong again (burned), then no code left (the
    // third failure locks the account), then locked.
    let bob_code = code_of(&f, "bob");
    let mut before = s9;
    for (outcome, locks) in [
        ("wrong_code", 0.0),
        ("burned", 0.0),
        ("no_code", 1.0),
        ("locked", 0.0),
    ] {
        let r = agentxml(&f, provision_xml("bob", &wrong(&bob_code))).await;
        assert!(
            r.body.contains("<Error>Provision Failure</Error>"),
            "{}",
            r.body
        );
        let after = scrape(&f).await;
        one_redeem(&before, &after, outcome);
        assert_eq!(
            moved(&before, &after, "swivel_account_locks_total", &[]),
            locks,
            "{outcome}"
        );
        before = after;
    }

    // carol's code expires.
    assert_eq!(reprovision(&f, "carol").await.status, StatusCode::ACCEPTED);
    f.clock.advance(time::Duration::hours(1));
    let s10 = scrape(&f).await;
    let r = agentxml(&f, provision_xml("carol", &code_of(&f, "carol"))).await;
    assert!(
        r.body.contains("<Error>Provision Failure</Error>"),
        "{}",
        r.body
    );
    let s11 = scrape(&f).await;
    one_redeem(&s10, &s11, "expired");

    // Someone not in the directory.
    let r = agentxml(&f, provision_xml("mallory", &code)).await;
    assert!(
        r.body.contains("<Error>Provision Failure</Error>"),
        "{}",
        r.body
    );
    let s12 = scrape(&f).await;
    assert_eq!(
        moved(&s11, &s12, "swivel_unknown_mobile_requests_total", &[]),
        1.0
    );
    one_redeem(&s11, &s12, "none");

    // A path that matches no route is counted as `unmatched`, not under its path.
    let r = send(
        &f.app,
        request("GET", "/no/such/page-xyz", None, "", String::new()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let s13 = scrape(&f).await;
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(
        moved(&s12, &s13, "swivel_http_requests_total", &unmatched),
        1.0
    );
    assert!(!scrape_body(&f.app, None).await.body.contains("page-xyz"));

    // Every AgentXML post so far was counted and timed under its route.
    let agent = [("method", "POST"), ("route", "/pinsafe/AgentXML")];
    assert_eq!(s13.value("swivel_http_requests_total", &agent), 9.0);
    assert_eq!(
        s13.value("swivel_http_request_duration_seconds_count", &agent),
        9.0
    );
    // The provisioner's store calls were timed (SQLite: one call per transition; the two
    // one-time codes read the directory in theirs too).
    let calls = |op| [("op", op), ("result", "ok")];
    let joint = s13.value(
        "swivel_store_call_duration_seconds_count",
        &calls("update_with_user"),
    );
    assert!(joint >= 16.0, "update_with_user calls: {joint}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_enforced_when_configured() {
    let f = fixture(MetricsEndpoint {
        enabled: true,
        token: Some(SecretString::from(METRICS_TOKEN)),
    })
    .await;
    let right = format!("Bearer {METRICS_TOKEN}");
    let wrong = format!("Bearer {METRICS_TOKEN}x");
    for auth in [
        None,
        Some("Bearer "),
        Some(wrong.as_str()),
        Some(f.api.as_str()),
    ] {
        let r = scrape_body(&f.app, auth).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(!r.body.contains("swivel_"), "{}", r.body);
    }
    let r = scrape_body(&f.app, Some(&right)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let unauthorized = [("route", "/metrics"), ("status", "401")];
    assert_eq!(
        scrape(&f)
            .await
            .value("swivel_http_requests_total", &unauthorized),
        4.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_only_loopback_clients_read_it_and_it_can_be_disabled() {
    // Open counters tell a remote guesser what the uniform device errors hide (an unknown
    // name moves another counter than a known one): without a token, only this host reads
    // them.
    let f = fixture(MetricsEndpoint::default()).await;
    let remote = scrape_body(&f.app, None).await;
    assert_eq!(remote.status, StatusCode::UNAUTHORIZED, "{}", remote.body);
    assert!(
        !remote.body.contains("swivel_"),
        "no metric to a remote client"
    );
    let local =
        app(f.state.clone()).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
    assert_eq!(scrape_body(&local, None).await.status, StatusCode::OK);
    let f = fixture(MetricsEndpoint {
        enabled: false,
        token: None,
    })
    .await;
    assert_eq!(
        scrape_body(&f.app, None).await.status,
        StatusCode::NOT_FOUND
    );
}

/// The built server reads `[metrics] token_file` and enforces it on its socket; without a
/// token it warns that the endpoint is open.
#[test]
fn the_server_reads_the_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{METRICS_TOKEN}\n")).unwrap();
    let config = dir.path().join("config.toml");
    let text = format!(
        "[metrics]\ntoken_file = {:?}\n",
        token_file.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let server = common::ServerProcess::start_with(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let limit = std::time::Duration::from_secs(10);
    let (status, body) = common::http_get(&server.addr(), "/metrics", limit).unwrap();
    assert_eq!(status, 401, "{body}");
    let (status, body) =
        common::http_bearer(&server.addr(), "GET", "/metrics", METRICS_TOKEN, limit).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("swivel_http_requests_total"), "{body}");
    assert!(
        !server
            .output()
            .contains("GET /metrics answers only this host")
    );
    // Without a token the server says at start that only this host reads it (the test
    // client is on loopback).
    let open = common::ServerProcess::start(&dir.path().join("data2"));
    open.wait_for_output("GET /metrics answers only this host");
    let (status, _) = common::http_get(&open.addr(), "/metrics", limit).unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_durable_queue_depth_and_oldest_age_are_read_at_scrape_time() {
    let mut config = swivel_provision::DurableConfig::new("metrics");
    config.initial_backoff = std::time::Duration::from_secs(3600);
    let f = fixture_with(with_token(), Delivery::Durable(config)).await;
    let s0 = scrape(&f).await;
    assert_eq!(s0.value("swivel_delivery_queue_depth", &[]), 0.0);
    // Every delivery fails transiently: the messages stay queued.
    f.outbox.fail_next(100, true);
    assert_eq!(reprovision(&f, "alice").await.status, StatusCode::ACCEPTED);
    f.clock.advance(time::Duration::seconds(30));
    assert_eq!(reprovision(&f, "bob").await.status, StatusCode::ACCEPTED);
    f.clock.advance(time::Duration::seconds(12));
    let s1 = scrape(&f).await;
    assert_eq!(s1.value("swivel_delivery_queue_depth", &[]), 2.0);
    assert_eq!(
        s1.value("swivel_delivery_queue_oldest_age_seconds", &[]),
        42.0,
        "alice's message, queued 42 s ago on the manual clock"
    );
    let queued = [("channel", "email"), ("outcome", "queued")];
    assert_eq!(moved(&s0, &s1, "swivel_deliveries_total", &queued), 2.0);
}
