//! Behind a reverse proxy: `/metrics` without a token refuses every forwarded request (the
//! proxy's loopback address proves nothing about the client), and forwarding headers from a
//! peer that is not in `[throttle] trusted_proxies` are warned about, once.

mod common;

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::metrics::MetricsEndpoint;
use provision_server::throttle::ThrottleConfig;
use provision_server::{AppState, StateBuilder, app};
use secrecy::SecretString;
use swivel_provision::ServerKey;

use common::oneshot::send;

const TOKEN: &str = "a metrics token of some length";
const FORWARDING: [(&str, &str); 3] = [
    ("forwarded", "for=203.0.113.7"),
    ("x-forwarded-for", "203.0.113.7"),
    ("x-real-ip", "203.0.113.7"),
];

async fn state(trusted: &[[u8; 4]], token: Option<&str>) -> AppState {
    StateBuilder::new(Backend::memory(), ServerKey::generate())
        .throttle(ThrottleConfig {
            trusted_proxies: trusted.iter().map(|ip| IpAddr::from(*ip)).collect(),
            ..ThrottleConfig::default()
        })
        .metrics_endpoint(MetricsEndpoint {
            enabled: true,
            token: token.map(SecretString::from),
        })
        .build()
        .await
        .unwrap()
}

fn from(state: &AppState, ip: [u8; 4]) -> Router {
    app(state.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 4000))))
}

async fn metrics(app: &Router, headers: &[(&str, &str)]) -> StatusCode {
    let mut req = Request::get("/metrics");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(app, req.body(Body::empty()).unwrap()).await.status
}

#[tokio::test]
async fn metrics_without_a_token_refuse_every_forwarded_request() {
    Captured::global();
    // A reverse proxy on this host: its requests come from loopback.
    for trusted in [&[][..], &[[127, 0, 0, 1]][..]] {
        let state = state(trusted, None).await;
        let local = from(&state, [127, 0, 0, 1]);
        assert_eq!(metrics(&local, &[]).await, StatusCode::OK);
        for (name, value) in FORWARDING {
            assert_eq!(
                metrics(&local, &[(name, value)]).await,
                StatusCode::UNAUTHORIZED,
                "{name} (trusted: {trusted:?})"
            );
        }
        // Even a forwarded "client" on loopback is refused.
        let claim = [("x-forwarded-for", "127.0.0.1")];
        assert_eq!(metrics(&local, &claim).await, StatusCode::UNAUTHORIZED);
    }
    // With a token, a scraper behind a proxy is served.
    let state = state(&[], Some(TOKEN)).await;
    let remote = from(&state, [192, 0, 2, 1]);
    let bearer = format!("Bearer {TOKEN}");
    for (name, value) in FORWARDING {
        let headers = [(name, value), (header::AUTHORIZATION.as_str(), &bearer)];
        assert_eq!(metrics(&remote, &headers).await, StatusCode::OK, "{name}");
        assert_eq!(
            metrics(&remote, &[(name, value)]).await,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// What the log subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The log of this test binary: one global subscriber (a scoped one misses events
    /// whose call site another test's thread reached first).
    fn global() -> &'static Captured {
        static LOG: OnceLock<Captured> = OnceLock::new();
        LOG.get_or_init(|| {
            let log = Captured::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(log.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::WARN)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            log
        })
    }

    /// Lines holding every one of `needles`.
    fn lines_with(&self, needles: &[&str]) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .count()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

async fn login(app: &Router, headers: &[(&str, &str)]) -> StatusCode {
    let mut req =
        Request::post("/login").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let body = Body::from("username=alice&otc=123456");
    send(app, req.body(body).unwrap()).await.status
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_warned_about_once() {
    let log = Captured::global();
    // A proxy on this host that nobody declared (an address no other test uses).
    let warned = || log.lines_with(&["trusted_proxies", "127.0.0.5"]);
    let state = state(&[], None).await;
    let local = from(&state, [127, 0, 0, 5]);
    login(&local, &[]).await;
    assert_eq!(warned(), 0, "no forwarding header, no warning");
    for (name, value) in FORWARDING {
        login(&local, &[(name, value)]).await;
        metrics(&local, &[(name, value)]).await;
    }
    assert_eq!(warned(), 1, "one warning for the first forwarded request");

    // A declared proxy: no warning.
    let state = self::state(&[[10, 0, 0, 6]], None).await;
    let proxy = from(&state, [10, 0, 0, 6]);
    for (name, value) in FORWARDING {
        login(&proxy, &[(name, value)]).await;
    }
    assert_eq!(log.lines_with(&["trusted_proxies", "10.0.0.6"]), 0);
    // Another server's state warns for itself.
    let state = self::state(&[], None).await;
    let other = from(&state, [10, 0, 0, 7]);
    login(&other, &[FORWARDING[1]]).await;
    assert_eq!(log.lines_with(&["trusted_proxies", "10.0.0.7"]), 1);
    assert_eq!(warned(), 1);
}
