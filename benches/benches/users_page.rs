//! The console's users page on a database of 1,000,000 users (SQLite, prepared in bulk
//! under `target/bench-data/users-1000000.sqlite` as `scaling` does, and reused), through
//! the example server's whole router (`provision_server::app`, in process, no socket) with
//! a logged-in console session: the first page, a search by username prefix, a search by
//! exact destination, and the tenth page (keyset cursor `after`). Each answer is read whole
//! and checked.
//!
//! `SWIVEL_BENCH_USERS_PAGE_USERS` sets the size. Outside `cargo bench` (e.g.
//! `cargo test --benches`) the database holds 1,000 users.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode, header};
use criterion::Criterion;
use provision_server::backend::Backend;
use provision_server::{StateBuilder, app};
use swivel_provision::ServerKey;
use swivel_provision_benches::{bench_data_dir, prepare_users_db, prepared_username};
use swivel_provision_sqlite::SqliteStore;
use tower::ServiceExt;

/// Users of the database under `cargo bench`.
const USERS: usize = 1_000_000;

async fn render(app: &Router, cookie: &str, uri: &str, expect: &str) -> usize {
    let request = Request::get(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("a request");
    let answer = app.clone().oneshot(request).await.expect("an answer");
    assert_eq!(answer.status(), StatusCode::OK, "{uri}");
    let body = axum::body::to_bytes(answer.into_body(), 1 << 24)
        .await
        .expect("the body");
    let text = std::str::from_utf8(&body).expect("UTF-8");
    assert!(text.contains(expect), "{uri}: no {expect:?} in the page");
    body.len()
}

fn users_page(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("SWIVEL_BENCH_USERS_PAGE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { USERS } else { 1_000 });
    let path = bench_data_dir().join(format!("users-{n}.sqlite"));
    let started = Instant::now();
    let (app, cookie) = rt.block_on(async {
        prepare_users_db(&path, n).await.expect("prepared database");
        let store = SqliteStore::open(&path).await.expect("open the store");
        let state = StateBuilder::new(
            Backend::from_store(store, path.display().to_string()),
            ServerKey::from_bytes([0x5a; 32]),
        )
        .public_url("http://provision.test")
        .build()
        .await
        .expect("server state");
        let session = state.sessions().create(true).await.expect("a session");
        let cookie = format!("{}={}", provision_server::session::COOKIE, session.id);
        let app = app(state).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
        (app, cookie)
    });
    eprintln!("users_page: {n} users ready in {:.1?}", started.elapsed());

    // The tenth page starts after the 450th user; the searches find a 50-user page and one
    // user in the middle of the database.
    let middle = prepared_username(n / 2);
    let tenth_after = prepared_username(449.min(n - 1));
    let prefix = &middle.as_str()[..middle.as_str().len() - 3];
    let cases = [
        (
            "first_page",
            "/admin/users".to_owned(),
            prepared_username(0),
        ),
        (
            "prefix_search",
            format!("/admin/users?prefix={prefix}"),
            prepared_username(n / 2 / 1000 * 1000),
        ),
        (
            "destination_search",
            format!("/admin/users?destination={middle}%40example.invalid"),
            middle.clone(),
        ),
        (
            "tenth_page",
            format!("/admin/users?after={tenth_after}"),
            prepared_username(450.min(n - 1)),
        ),
    ];
    let mut g = c.benchmark_group(format!("users_page/sqlite_{n}"));
    for (name, uri, expect) in &cases {
        let bytes = rt.block_on(render(&app, &cookie, uri, expect.as_str()));
        eprintln!("users_page: {name}: {uri} is {bytes} bytes");
        g.bench_function(*name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(render(&app, &cookie, uri, expect.as_str()).await) });
        });
    }
    g.finish();
}

fn main() {
    // What criterion_group!/criterion_main! expand to, without an undocumented `pub fn`.
    let mut c = Criterion::default().configure_from_args();
    users_page(&mut c);
    c.final_summary();
}
