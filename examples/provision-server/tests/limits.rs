//! Limits that hold for a class of input, through `app()` in-process (and the command
//! line): one username limit that leaves room for every key derived from a username (no
//! route answers 500 or logs an ERROR for a name of any length); a user and their PIN saved
//! together or not at all; one server per SQLite file whatever path names it; and the
//! throttles on wrong API tokens, SSD and `TokenIndex` (per client, shared by instances on
//! one store).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::throttle::ThrottleConfig;
use provision_server::{AppState, StateBuilder, app};
use secrecy::ExposeSecret;
use swivel_provision::testing::{ManualClock, RecordingTransport};
use swivel_provision::types::MAX_USERNAME_BYTES;
use swivel_provision::{
    Channel, Delivery, MemorySettings, ServerKey, SettingsStore, StoreError, UserAdmin, UserEntry,
    UserQuery, UserRepository, Username,
};

mod common;
use common::fixture::{self, console_login, enc, get, post_form};
use common::oneshot::{Reply, assert_throttled, send};

// ---------------------------------------------------------------------------------------
// Log capture: every line the code under test logs on this thread.

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

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
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// Logs everything (on this thread) into the buffer until the guard is dropped. The
    /// test runs on a current-thread runtime, so that the handlers log here too.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn error_lines(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .map(str::to_owned)
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Usernames

/// The lengths every route is tried with: the limit, one more, and the lengths that used to
/// overflow the PIN's key (253 to 256 bytes).
fn lengths() -> Vec<usize> {
    let mut v = vec![
        MAX_USERNAME_BYTES,
        MAX_USERNAME_BYTES + 1,
        253,
        254,
        255,
        256,
    ];
    v.sort_unstable();
    v.dedup();
    v
}

/// A name of exactly `len` bytes, unique per length; with a two-byte character so that a
/// byte limit is not mistaken for a character limit.
fn name_of(len: usize) -> String {
    let mut name = format!("é{len}");
    while name.len() < len {
        name.push('a');
    }
    assert_eq!(name.len(), len);
    name
}

fn put_json(uri: &str, auth: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::PUT)
        .uri(uri)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn get_auth(uri: &str, auth: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, auth)
        .body(Body::empty())
        .unwrap()
}

fn no_500(what: &str, len: usize, r: &Reply) {
    assert!(
        !r.status.is_server_error(),
        "{what} with a {len}-byte name answered {}: {}",
        r.status,
        r.body
    );
}

#[tokio::test]
async fn usernames_of_any_length_never_answer_500_on_any_route() {
    let log = Captured::default();
    let _guard = log.install();
    let f = fixture::fixture().await;
    let mut policy = f.state.provisioner().policy();
    policy.set("allow_self_provision", "Yes").unwrap();
    f.state.save_policy(policy).await.unwrap();
    let token = f.state.credentials().new_api_token().await.unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    let (cookie, csrf) = console_login(&f.app).await;

    for len in lengths() {
        let name = name_of(len);
        let fits = len <= MAX_USERNAME_BYTES;
        // Devices.
        let xml = format!(
            "<SASRequest><Version>3.6</Version><Action>provision</Action><Username>{name}</Username><ProvisionCode>1234567890</ProvisionCode></SASRequest>"
        );
        let r = send(
            &f.app,
            Request::post("/pinsafe/AgentXML")
                .header(header::CONTENT_TYPE, "text/xml")
                .body(Body::from(xml))
                .unwrap(),
        )
        .await;
        no_500("AgentXML", len, &r);
        assert!(r.body.contains("<SASResponse>"), "{}", r.body);
        let r = get(
            &f.app,
            &format!("/pinsafe/TokenIndex?username={}", enc(&name)),
            None,
        )
        .await;
        no_500("TokenIndex", len, &r);
        // Users.
        let r = post_form(
            &f.app,
            "/login",
            &[("username", &name), ("otc", "1234")],
            None,
        )
        .await;
        no_500("/login", len, &r);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{len}: {}", r.body);
        let r = post_form(&f.app, "/reset/provision", &[("username", &name)], None).await;
        no_500("self-service", len, &r);
        // The console: add (with a PIN), the user's page, edit (with a new PIN).
        let r = post_form(
            &f.app,
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", &name),
                ("email", "long@example.com"),
                ("pin", "2468"),
            ],
            Some(&cookie),
        )
        .await;
        no_500("console add", len, &r);
        let path = format!("/admin/users/{}", enc(&name));
        let r = get(&f.app, &path, Some(&cookie)).await;
        no_500("console user page", len, &r);
        let r = post_form(
            &f.app,
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("email", "long@example.com"),
                ("pin", "1357"),
            ],
            Some(&cookie),
        )
        .await;
        no_500("console edit", len, &r);
        // The API: PUT with a PIN, then GET.
        let uri = format!("/api/v1/users/{}", enc(&name));
        let r = send(
            &f.app,
            put_json(&uri, &auth, r#"{"email":"long@example.com","pin":"97531"}"#),
        )
        .await;
        no_500("API PUT", len, &r);
        assert_eq!(
            r.status,
            if fits {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            },
            "API PUT, {len} bytes: {}",
            r.body
        );
        let r = send(&f.app, get_auth(&uri, &auth)).await;
        no_500("API GET", len, &r);
        // A name that fits is saved with its PIN (the API's, the last one set); a longer
        // one is refused everywhere, so it exists nowhere.
        let parsed = Username::parse(&name);
        assert_eq!(parsed.is_ok(), fits, "{len} bytes");
        if let Ok(user) = parsed {
            assert!(
                f.state
                    .backend()
                    .users
                    .find_user(&user)
                    .await
                    .unwrap()
                    .is_some()
            );
            let pin = f.state.pins().get(&user).await.unwrap().expect("a PIN");
            assert_eq!(pin.expose(), "97531");
        }
    }
    // Self-service works in the background: let it finish before reading the log.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let users = f
        .state
        .backend()
        .user_admin
        .list_users_page(&UserQuery::first(1000))
        .await
        .unwrap();
    assert!(
        users
            .iter()
            .all(|u| u.username.as_str().len() <= MAX_USERNAME_BYTES)
    );
    // The capture works: the administrator actions above were logged here.
    assert!(log.text().contains("save_user"), "{}", log.text());
    let errors = log.error_lines();
    assert!(errors.is_empty(), "ERROR lines: {errors:#?}");
}

#[test]
fn the_command_line_refuses_long_usernames_without_an_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for len in lengths() {
        let name = name_of(len);
        let (ok, out, err) = common::run_cli(
            &data,
            &[
                "users",
                "add",
                &name,
                "--email",
                "long@example.com",
                "--pin",
                "2468",
            ],
        );
        assert_eq!(ok, len <= MAX_USERNAME_BYTES, "{len} bytes: {out}\n{err}");
        assert!(
            !err.contains("ERROR") && !out.contains("ERROR"),
            "{out}\n{err}"
        );
        if len > MAX_USERNAME_BYTES {
            assert!(err.contains("Invalid Username"), "{err}");
        }
    }
    let (ok, out, err) = common::run_cli(&data, &["users", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains(&name_of(MAX_USERNAME_BYTES)), "{out}");
}

// ---------------------------------------------------------------------------------------
// A user and their PIN: together or not at all

/// Settings whose PIN writes fail (as a store that goes down between two writes would).
#[derive(Default)]
struct PinWritesFail(MemorySettings);

#[async_trait::async_trait]
impl SettingsStore for PinWritesFail {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.0.get_setting(key).await
    }
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if key.starts_with("pin/") {
            return Err(StoreError::backend("the test's PIN writes fail"));
        }
        self.0.put_setting(key, value).await
    }
    async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        self.0.delete_setting(key).await
    }
}

/// A user directory whose writes fail (reads work).
struct UserWritesFail(Arc<dyn UserAdmin>);

#[async_trait::async_trait]
impl UserRepository for UserWritesFail {
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError> {
        self.0.find_user(username).await
    }
}

#[async_trait::async_trait]
impl UserAdmin for UserWritesFail {
    async fn put_user(&self, _user: &UserEntry) -> Result<(), StoreError> {
        Err(StoreError::backend("the test's user writes fail"))
    }
    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError> {
        self.0.remove_user(username).await
    }
    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError> {
        self.0.list_users().await
    }
}

async fn api_state(backend: Backend) -> (AppState, Router, String) {
    let state = StateBuilder::new(backend, ServerKey::generate())
        .throttle(fixture::roomy())
        .transport(Channel::Email, Arc::new(RecordingTransport::new()))
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap();
    let token = state.credentials().new_api_token().await.unwrap();
    let app = app(state.clone()).layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000))));
    (state, app, format!("Bearer {}", token.expose_secret()))
}

#[tokio::test]
async fn a_pin_that_fails_to_save_leaves_no_user() {
    let backend = Backend {
        settings: Arc::new(PinWritesFail::default()),
        ..Backend::memory()
    };
    let (state, app, auth) = api_state(backend).await;
    let r = send(
        &app,
        put_json(
            "/api/v1/users/erin",
            &auth,
            r#"{"email":"erin@example.com","pin":"2468"}"#,
        ),
    )
    .await;
    assert!(r.status.is_server_error(), "{}: {}", r.status, r.body);
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{}",
        r.body
    );
    let erin = Username::parse("erin").unwrap();
    assert!(
        state
            .backend()
            .users
            .find_user(&erin)
            .await
            .unwrap()
            .is_none(),
        "the user was saved without the PIN"
    );
    let r = send(&app, get_auth("/api/v1/users/erin", &auth)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // Without a PIN, the user is saved.
    let r = send(
        &app,
        put_json(
            "/api/v1/users/erin",
            &auth,
            r#"{"email":"erin@example.com"}"#,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn a_user_that_fails_to_save_keeps_the_pin_it_had() {
    let memory = Backend::memory();
    let frank = Username::parse("frank").unwrap();
    memory
        .user_admin
        .put_user(&UserEntry::new(frank.clone()))
        .await
        .unwrap();
    let failing = Backend {
        user_admin: Arc::new(UserWritesFail(memory.user_admin.clone())),
        ..memory
    };
    let (state, app, auth) = api_state(failing).await;
    let old = swivel_provision::Pin::parse("1111").unwrap();
    state.pins().set(&frank, &old).await.unwrap();
    let r = send(
        &app,
        put_json("/api/v1/users/frank", &auth, r#"{"pin":"2222"}"#),
    )
    .await;
    assert!(r.status.is_server_error(), "{}: {}", r.status, r.body);
    let pin = state.pins().get(&frank).await.unwrap().expect("a PIN");
    assert_eq!(
        pin.expose(),
        "1111",
        "the PIN changed though the user did not"
    );
}

// ---------------------------------------------------------------------------------------
// One server per SQLite file, whatever path names it

#[cfg(unix)]
#[test]
fn the_instance_lock_refuses_every_path_to_the_same_file() {
    use provision_server::files::InstanceLock;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("provision.sqlite");
    std::fs::write(&db, b"").unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let symlink = elsewhere.join("symlink.sqlite");
    std::os::unix::fs::symlink(&db, &symlink).unwrap();
    let hard = elsewhere.join("hard.sqlite");
    std::fs::hard_link(&db, &hard).unwrap();
    let dotted = dir.path().join("elsewhere/../provision.sqlite");

    let _held = InstanceLock::acquire(&db).unwrap();
    for other in [&db, &symlink, &hard, &dotted] {
        let e = InstanceLock::acquire(other)
            .map(|_| ())
            .expect_err(&format!("{} was not refused", other.display()))
            .to_string();
        assert!(e.contains("already serving the SQLite database"), "{e}");
    }
    // Another file is not refused.
    let other = dir.path().join("other.sqlite");
    InstanceLock::acquire(&other).unwrap();
}

/// Starts `provision-server` serving `database` (with its own data directory) and waits
/// for it to end: its exit status and stderr, or `None` when it kept running (it is then
/// killed).
fn second_server(data: &Path, database: &Path) -> Option<(bool, String)> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(common::SERVER)
        .arg("--data-dir")
        .arg(data)
        .arg("--database")
        .arg(database)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Some((status.success(), stderr))
}

#[cfg(unix)]
#[test]
fn a_second_server_through_a_symlink_or_a_hard_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _first = common::ServerProcess::start(&data);
    let db = data.join("provision.sqlite");
    let symlink = dir.path().join("symlink.sqlite");
    std::os::unix::fs::symlink(&db, &symlink).unwrap();
    let hard = dir.path().join("hard.sqlite");
    std::fs::hard_link(&db, &hard).unwrap();
    for (n, path) in [&symlink, &hard].into_iter().enumerate() {
        let other = dir.path().join(format!("other-{n}"));
        let (ok, stderr) = second_server(&other, path)
            .unwrap_or_else(|| panic!("a second server on {} kept running", path.display()));
        assert!(!ok);
        assert!(
            stderr.contains("another provision-server is already serving the SQLite database"),
            "{stderr}"
        );
        assert!(
            !other.join("server.key").exists(),
            "the refused server made its own key"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Throttles: wrong API tokens, SSD, TokenIndex

/// A state on `store` with a fixed clock (so that a test never straddles two of the shared
/// counts' one-minute windows), the API token `token`, and the site DEMO.
async fn throttled_state(
    store: swivel_provision_sqlite::SqliteStore,
    key: &ServerKey,
    clock: Arc<ManualClock>,
    throttle: ThrottleConfig,
) -> AppState {
    StateBuilder::new(Backend::from_store(store, "sqlite::memory:"), key.clone())
        .throttle(throttle)
        .clock(clock)
        .transport(Channel::Email, Arc::new(RecordingTransport::new()))
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap()
}

/// Two instances (two states, as two server processes would build them) on one store and
/// one server key, with one API token; and the token's `Authorization` value.
async fn two_instances(throttle: ThrottleConfig) -> (AppState, AppState, String) {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let key = ServerKey::generate();
    let clock = Arc::new(ManualClock::fixed());
    let one = throttled_state(store.clone(), &key, clock.clone(), throttle.clone()).await;
    let two = throttled_state(store, &key, clock, throttle).await;
    let token = one.credentials().new_api_token().await.unwrap();
    one.backend()
        .site_admin
        .put_site(
            &swivel_provision::SiteId::parse("DEMO").unwrap(),
            &swivel_provision::ServerSettings {
                hostname: "provision.test".into(),
                port: 80,
                ..swivel_provision::ServerSettings::default()
            },
        )
        .await
        .unwrap();
    (one, two, format!("Bearer {}", token.expose_secret()))
}

async fn one_instance(throttle: ThrottleConfig) -> (AppState, String) {
    let (one, _, auth) = two_instances(throttle).await;
    (one, auth)
}

/// The router as a client at `ip` reaches it.
fn from(state: &AppState, ip: [u8; 4]) -> Router {
    app(state.clone()).layer(MockConnectInfo(SocketAddr::from((ip, 40000))))
}

/// A `429` of the API: a problem like its other errors.
fn assert_api_throttled(r: &Reply) {
    assert_throttled(r);
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "application/problem+json",
        "{}",
        r.body
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["status"], 429, "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
}

const WRONG: &str = "Bearer not-the-token-not-the-token-not-the-token";

#[tokio::test(flavor = "multi_thread")]
async fn wrong_api_tokens_are_throttled_per_client() {
    let (state, auth) = one_instance(ThrottleConfig {
        api_token_failures_per_ip: 3,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = from(&state, [203, 0, 113, 60]);
    // Right tokens do not count.
    for _ in 0..10 {
        let r = send(&attacker, get_auth("/api/v1/users", &auth)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let mut refused = None;
    for i in 0..10 {
        let r = send(&attacker, get_auth("/api/v1/users", WRONG)).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some((i, r));
            break;
        }
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let (i, r) = refused.expect("wrong tokens are never refused");
    assert!(i <= 4, "refused only after {i} wrong tokens");
    assert_api_throttled(&r);
    // The address is refused even with the right token now (a guess would not be
    // checked), on every API route...
    let r = send(&attacker, get_auth("/api/v1/users/alice", &auth)).await;
    assert_api_throttled(&r);
    // ...but another address is served.
    let admin = from(&state, [198, 51, 100, 60]);
    let r = send(&admin, get_auth("/api/v1/users", &auth)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_api_tokens_count_on_every_instance_of_one_store() {
    let (one, two, auth) = two_instances(ThrottleConfig {
        api_token_failures_per_ip: 3,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = [203, 0, 113, 61];
    let (a, b) = (from(&one, attacker), from(&two, attacker));
    for app in [&a, &a, &a] {
        let r = send(app, get_auth("/api/v1/users", WRONG)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // The fourth wrong token (the address's first on instance two) is answered, and from
    // then on instance two refuses the address.
    let r = send(&b, get_auth("/api/v1/users", WRONG)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = send(&b, get_auth("/api/v1/users", &auth)).await;
    assert_api_throttled(&r);
    let r = send(
        &from(&two, [198, 51, 100, 61]),
        get_auth("/api/v1/users", &auth),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "another address: {}", r.body);
}

async fn ssd(app: &Router) -> Reply {
    get(app, "/ssdserver/getServerDetails?id=DEMO", None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn ssd_requests_are_throttled_per_client_and_globally() {
    let (state, _) = one_instance(ThrottleConfig {
        ssd_per_ip: 3,
        ssd_global: 5,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = from(&state, [203, 0, 113, 62]);
    for _ in 0..3 {
        let r = ssd(&attacker).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(
            r.body.contains("<hostname>provision.test</hostname>"),
            "{}",
            r.body
        );
    }
    let r = ssd(&attacker).await;
    assert_throttled(&r);
    assert!(r.body.contains("<getServerDetailsResponse>"), "{}", r.body);
    assert!(
        r.body.contains("<responseCode>1</responseCode>"),
        "{}",
        r.body
    );
    let second = from(&state, [203, 0, 113, 63]);
    for _ in 0..2 {
        assert_eq!(ssd(&second).await.status, StatusCode::OK);
    }
    assert_throttled(&ssd(&from(&state, [203, 0, 113, 64])).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn ssd_requests_count_on_every_instance_of_one_store() {
    let (one, two, _) = two_instances(ThrottleConfig {
        ssd_per_ip: 3,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = [203, 0, 113, 65];
    for _ in 0..3 {
        assert_eq!(ssd(&from(&one, attacker)).await.status, StatusCode::OK);
    }
    // Instance two has seen nothing from this address yet.
    assert_throttled(&ssd(&from(&two, attacker)).await);
    assert_eq!(
        ssd(&from(&two, [198, 51, 100, 65])).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn token_index_requests_count_on_every_instance_of_one_store() {
    let (one, two, _) = two_instances(ThrottleConfig {
        token_index_per_ip: 3,
        ..ThrottleConfig::default()
    })
    .await;
    let attacker = [203, 0, 113, 66];
    let token_index = |state: &AppState, ip: [u8; 4]| {
        let app = from(state, ip);
        async move { get(&app, "/pinsafe/TokenIndex?username=alice", None).await }
    };
    for _ in 0..3 {
        let r = token_index(&one, attacker).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_throttled(&token_index(&two, attacker).await);
    assert_eq!(
        token_index(&two, [198, 51, 100, 66]).await.status,
        StatusCode::OK
    );
}

#[test]
fn the_new_throttle_settings_are_checked() {
    for config in [
        ThrottleConfig {
            api_token_failures_per_ip: 0,
            ..ThrottleConfig::default()
        },
        ThrottleConfig {
            ssd_per_ip: 0,
            ..ThrottleConfig::default()
        },
        ThrottleConfig {
            ssd_global: 1_000_001,
            ..ThrottleConfig::default()
        },
    ] {
        assert!(config.validate().is_err(), "{config:?}");
    }
    let parsed: ThrottleConfig =
        toml::from_str("api_token_failures_per_ip = 7\nssd_per_ip = 8\nssd_global = 9\n").unwrap();
    assert_eq!(
        (
            parsed.api_token_failures_per_ip,
            parsed.ssd_per_ip,
            parsed.ssd_global
        ),
        (7, 8, 9)
    );
    ThrottleConfig::default().validate().unwrap();
}
