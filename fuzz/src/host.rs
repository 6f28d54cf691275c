//! The example server's whole router in process, for the targets that post bodies to it
//! (`forms`, `api_json`): a memory backend with users `alice` (email, PIN, mobile group) and
//! `carol`, a site, a logged-in console session with its CSRF token, and an API token.
//! Throttles are set far above what a fuzzer sends, so inputs reach the handlers. The host
//! is built again every [`REBUILD_EVERY`] requests, so that what inputs add (users, sites,
//! messages, events) does not grow without bound over millions of runs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::throttle::ThrottleConfig;
use provision_server::{StateBuilder, app};
use secrecy::{ExposeSecret, SecretString};
use swivel_provision::testing::RecordingTransport;
use swivel_provision::{
    Channel, Delivery, Destination, Pin, ServerKey, ServerSettings, SiteId, UserEntry, Username,
};
use tower::ServiceExt;

/// Requests served by one host before it is built again.
pub const REBUILD_EVERY: u32 = 2_000;

/// The console password of the host.
const PASSWORD: &str = "a console password for fuzzing";

/// An answer: its status and its body as text.
pub struct Sent {
    /// The status.
    pub status: StatusCode,
    /// The body (lossy UTF-8).
    pub body: String,
}

struct Live {
    app: Router,
    cookie: String,
    csrf: String,
    token: String,
    served: u32,
}

/// The process's one host.
pub struct Host {
    runtime: tokio::runtime::Runtime,
    live: Mutex<Option<Live>>,
}

impl Host {
    /// The host (made on first use).
    pub fn get() -> &'static Host {
        static HOST: OnceLock<Host> = OnceLock::new();
        HOST.get_or_init(|| Host {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime"),
            live: Mutex::new(None),
        })
    }

    /// Posts `body` as a form to `path`; with `console`, with the session cookie and the
    /// session's CSRF token appended to the body.
    pub fn post_form(&self, path: &str, body: &[u8], console: bool) -> Sent {
        self.with_live(|live| {
            let mut bytes = body.to_vec();
            let mut builder = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if console {
                bytes.extend_from_slice(format!("&csrf={}", live.csrf).as_bytes());
                builder = builder.header(header::COOKIE, &live.cookie);
            }
            (live.app.clone(), builder.body(Body::from(bytes)))
        })
    }

    /// Sends `body` as JSON with the API token.
    pub fn send_json(&self, method: &str, path: &str, body: &[u8]) -> Sent {
        self.with_live(|live| {
            let builder = Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {}", live.token));
            (live.app.clone(), builder.body(Body::from(body.to_vec())))
        })
    }

    /// Builds the host again when it is due (first use, or [`REBUILD_EVERY`] requests
    /// served); a target calls this before timing an input, so the set-up is not counted.
    pub fn prepare(&self) {
        let mut guard = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(|l| l.served >= REBUILD_EVERY) {
            *guard = Some(self.runtime.block_on(build()));
        }
    }

    fn with_live(
        &self,
        make: impl FnOnce(&Live) -> (Router, Result<Request<Body>, axum::http::Error>),
    ) -> Sent {
        self.prepare();
        let mut guard = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let live = guard.as_mut().expect("prepared above");
        live.served += 1;
        let (router, request) = make(live);
        let Ok(request) = request else {
            // A path or header the fuzzer made unsendable: nothing reached the server.
            return Sent {
                status: StatusCode::OK,
                body: String::new(),
            };
        };
        self.runtime.block_on(send(router, request))
    }
}

async fn send(app: Router, request: Request<Body>) -> Sent {
    let response = app
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap_or_default();
    Sent {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn roomy() -> ThrottleConfig {
    let n = 1_000_000;
    ThrottleConfig {
        agentxml_failures_per_ip: n,
        agentxml_failures_global: n,
        login_per_ip: n,
        login_global: n,
        self_service_per_ip: n,
        self_service_global: n,
        console_login_per_ip: n,
        token_index_per_ip: n,
        token_index_global: n,
        ..ThrottleConfig::default()
    }
}

async fn build() -> Live {
    let state = StateBuilder::new(Backend::memory(), ServerKey::generate())
        .throttle(roomy())
        .transport(Channel::Email, Arc::new(RecordingTransport::new()))
        .delivery(Delivery::Direct)
        .public_url("http://provision.test")
        .site_id(Some(SiteId::parse("DEMO").expect("a site id")))
        .build()
        .await
        .expect("the host builds");
    let backend = state.backend();
    for (name, email, group) in [
        ("alice", Some("alice@example.com"), true),
        ("carol", None, false),
    ] {
        let user = Username::parse(name).expect("a username");
        let mut entry = UserEntry::new(user.clone()).with_mobile_group(group);
        if let Some(e) = email {
            entry = entry.with_destination(Destination::email(e).expect("an address"));
        }
        backend.user_admin.put_user(&entry).await.expect("a user");
        let pin = Pin::parse("1234").expect("a PIN");
        state.pins().set(&user, &pin).await.expect("a PIN saved");
    }
    backend
        .site_admin
        .put_site(
            &SiteId::parse("DEMO").expect("a site id"),
            &ServerSettings {
                hostname: "provision.test".into(),
                port: 80,
                ..ServerSettings::default()
            },
        )
        .await
        .expect("a site");
    state
        .credentials()
        .set_password(&SecretString::from(PASSWORD))
        .await
        .expect("a console password");
    let token = state
        .credentials()
        .new_api_token()
        .await
        .expect("an API token")
        .expose_secret()
        .to_owned();
    let app = app(state).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000))));
    let (cookie, csrf) = console_login(&app).await;
    Live {
        app,
        cookie,
        csrf,
        token,
        served: 0,
    }
}

/// Logs in to the console as a browser would: the login form's cookie and token, the
/// password, then the users page's CSRF token.
async fn console_login(app: &Router) -> (String, String) {
    let get = |uri: &str, cookie: Option<&str>| {
        let mut b = Request::builder().uri(uri);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::empty()).expect("a request")
    };
    let (headers, page) = full(app, get("/admin/login", None)).await;
    let anon = first_cookie(&headers);
    let csrf = csrf_of(&page);
    let form = format!("csrf={csrf}&password={}", PASSWORD.replace(' ', "+"));
    let post = Request::builder()
        .method(Method::POST)
        .uri("/admin/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &anon)
        .body(Body::from(form))
        .expect("a request");
    let (headers, _) = full(app, post).await;
    let session = first_cookie(&headers);
    let (_, page) = full(app, get("/admin/users", Some(&session))).await;
    (session, csrf_of(&page))
}

async fn full(app: &Router, request: Request<Body>) -> (HeaderMap, String) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .expect("a body");
    (headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn first_cookie(headers: &HeaderMap) -> String {
    headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a cookie")
        .to_owned()
}

fn csrf_of(page: &str) -> String {
    let start =
        page.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    let end = page[start..].find('"').expect("the field's end") + start;
    page[start..end].to_owned()
}
