//! In-process tests of `GET /healthz` and `GET /readyz` through `app()` (no socket): `200`
//! on a working backend, `503` with a short reason when the settings store fails, hangs or
//! the delivery queue's worker has stopped, and no store call for `/healthz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use provision_server::backend::Backend;
use provision_server::{StateBuilder, app};
use swivel_provision::{
    Delivery, MemorySettings, QueueConfig, ServerKey, SettingsStore, StoreError,
};

mod common;
use common::oneshot::{Reply, send};

const UP: u8 = 0;
const FAILING: u8 = 1;
const HANGING: u8 = 2;

/// A settings store that works, fails (with an error naming a URL with a password), or
/// never answers, as the test sets it; it counts the calls.
#[derive(Default)]
struct Switchable {
    inner: MemorySettings,
    mode: AtomicU8,
    calls: AtomicUsize,
}

impl Switchable {
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    async fn gate(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            FAILING => Err(StoreError::unavailable(
                "connection refused: postgres://swivel:hunter2@db.internal/provision",
            )),
            HANGING => std::future::pending().await,
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl SettingsStore for Switchable {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.gate().await?;
        self.inner.get_setting(key).await
    }
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.gate().await?;
        self.inner.put_setting(key, value).await
    }
    async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        self.gate().await?;
        self.inner.delete_setting(key).await
    }
}

/// The memory backend with the switchable settings store.
fn backend(settings: Arc<Switchable>) -> Backend {
    Backend {
        settings,
        ..Backend::memory()
    }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn assert_plain(r: &Reply, status: StatusCode, body: &str) {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(r.body, body);
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "text/plain; charset=utf-8",
        "{:?}",
        r.headers
    );
    // The router's security headers, like every other answer.
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");
    assert!(r.headers.contains_key(header::CONTENT_SECURITY_POLICY));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_and_readyz_answer_200_on_a_working_backend() {
    let store = swivel_provision_sqlite::SqliteStore::open_in_memory()
        .await
        .unwrap();
    let state = StateBuilder::new(
        Backend::from_store(store, "sqlite::memory:"),
        ServerKey::generate(),
    )
    .build()
    .await
    .unwrap();
    assert!(state.provisioner().deliveries_running());
    let app = app(state);
    assert_plain(&get(&app, "/healthz").await, StatusCode::OK, "ok");
    assert_plain(&get(&app, "/readyz").await, StatusCode::OK, "ready");
    // Many in a row: not throttled (a load balancer polls often, from one address).
    for _ in 0..200 {
        assert_eq!(get(&app, "/readyz").await.status, StatusCode::OK);
        assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK);
    }
    let r = send(&app, Request::post("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_says_store_unreachable_while_the_store_fails_or_hangs_and_healthz_stays_ok() {
    let settings = Arc::new(Switchable::default());
    let state = StateBuilder::new(backend(settings.clone()), ServerKey::generate())
        .delivery(Delivery::Direct)
        .build()
        .await
        .unwrap();
    let app = app(state);
    let calls = || settings.calls.load(Ordering::SeqCst);
    let before = calls();
    assert_plain(&get(&app, "/readyz").await, StatusCode::OK, "ready");
    assert_eq!(calls(), before + 1, "/readyz makes one store call");
    assert_plain(&get(&app, "/healthz").await, StatusCode::OK, "ok");
    assert_eq!(calls(), before + 1, "/healthz made a store call");

    // An error: 503 with the fixed reason, never the error's text (it names a URL with a
    // password).
    settings.set(FAILING);
    let r = get(&app, "/readyz").await;
    assert_plain(&r, StatusCode::SERVICE_UNAVAILABLE, "store unreachable");
    assert!(!r.body.contains("hunter2"));
    assert_plain(&get(&app, "/healthz").await, StatusCode::OK, "ok");

    // No answer at all: 503 once the readiness timeout has passed, not later.
    settings.set(HANGING);
    let started = Instant::now();
    let r = get(&app, "/readyz").await;
    let took = started.elapsed();
    assert_plain(&r, StatusCode::SERVICE_UNAVAILABLE, "store unreachable");
    assert!(
        took >= provision_server::readiness::STORE_TIMEOUT && took < Duration::from_secs(10),
        "took {took:?}"
    );
    assert_plain(&get(&app, "/healthz").await, StatusCode::OK, "ok");

    // Back: ready again.
    settings.set(UP);
    assert_plain(&get(&app, "/readyz").await, StatusCode::OK, "ready");
}

/// The state is built on a runtime that is then shut down, which ends the delivery queue's
/// worker; the requests run on another runtime.
#[test]
fn readyz_says_delivery_queue_stopped_once_the_queue_worker_is_gone() {
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let state = first
        .block_on(
            StateBuilder::new(Backend::memory(), ServerKey::generate())
                .delivery(Delivery::Queued(QueueConfig::default()))
                .build(),
        )
        .unwrap();
    let app = app(state.clone());
    let before = first.block_on(get(&app, "/readyz"));
    assert_plain(&before, StatusCode::OK, "ready");
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(!state.provisioner().deliveries_running());
    let r = second.block_on(get(&app, "/readyz"));
    assert_plain(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "delivery queue stopped",
    );
    assert_plain(
        &second.block_on(get(&app, "/healthz")),
        StatusCode::OK,
        "ok",
    );
}
