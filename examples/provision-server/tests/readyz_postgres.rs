//! `/readyz` of the built `provision-server` follows its PostgreSQL connection, without
//! touching the machine's PostgreSQL: the server reaches the database in
//! `SWIVEL_TEST_POSTGRES_URL` through a loopback TCP forwarder (in a fresh schema, dropped
//! at the end); stopping the forwarder makes `/readyz` answer `503 store unreachable` while
//! `/healthz` stays `200`, and starting it again on the same port makes it `200 ready`
//! again. Without the variable the test prints `SKIPPED: ...` and passes, unless
//! `SWIVEL_REQUIRE_POSTGRES_TESTS=1`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::forwarder::Forwarder;
use common::postgres::{Schema, reroute};
use common::{ServerProcess, http_get};

/// How long `/readyz` may take to change its answer.
const WAIT: Duration = Duration::from_secs(20);

/// Polls `/readyz` until it answers `status` with `body`; panics after [`WAIT`].
fn wait_for_readyz(server: &ServerProcess, status: u16, body: &str) {
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    while Instant::now() < deadline {
        match http_get(&server.addr(), "/readyz", Duration::from_secs(5)) {
            Ok((s, b)) if s == status && b == body => return,
            other => last = Some(other),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "/readyz never answered {status} {body:?} within {WAIT:?}; last: {last:?}; output:\n{}",
        server.output()
    );
}

fn write_config(dir: &Path, database: &str, schema: &str) -> String {
    let path = dir.join("config.toml");
    let text = format!(
        "database = {}\n[postgres]\nschema = \"{schema}\"\npool_size = 4\n",
        toml::Value::String(database.to_owned())
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn readyz_is_503_while_postgres_is_unreachable_and_200_once_it_is_back() {
    let test = "readyz_is_503_while_postgres_is_unreachable_and_200_once_it_is_back";
    let Some(url) = common::postgres::url(test) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (target, _) = reroute(&url, "");
    let mut forwarder = rt.block_on(Forwarder::start(&target));
    let (_, via_forwarder) = reroute(&url, &forwarder.addr().to_string());

    // Declared before the server, so that the server is killed before the schema is dropped.
    let schema = Schema::new(&url, "swivel_readyz");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &via_forwarder, &schema.name);
    let server = ServerProcess::start_with(&dir.path().join("data"), &["--config", &config]);
    assert!(
        server.output().contains("store: postgres"),
        "{}",
        server.output()
    );
    wait_for_readyz(&server, 200, "ready");
    assert!(
        rt.block_on(schema.exists()),
        "the server did not use the schema {}",
        schema.name
    );

    // The database goes away: every pooled connection is cut, new ones are refused.
    rt.block_on(forwarder.stop());
    wait_for_readyz(&server, 503, "store unreachable");
    let (status, body) = http_get(&server.addr(), "/healthz", Duration::from_secs(5)).unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));

    // It comes back on the same address.
    let port = forwarder.addr().port();
    rt.block_on(forwarder.resume());
    assert_eq!(forwarder.addr().port(), port);
    wait_for_readyz(&server, 200, "ready");
    drop(server);
    drop(schema);
}

#[test]
fn reroute_keeps_user_database_and_options() {
    assert_eq!(
        reroute("postgres://postgres@127.0.0.1:5432/postgres", "127.0.0.1:7"),
        (
            "127.0.0.1:5432".to_owned(),
            "postgres://postgres@127.0.0.1:7/postgres".to_owned()
        )
    );
    assert_eq!(
        reroute("postgresql://u:pw@db/x?sslmode=disable", "127.0.0.1:7"),
        (
            "db:5432".to_owned(),
            "postgresql://u:pw@127.0.0.1:7/x?sslmode=disable".to_owned()
        )
    );
    assert_eq!(reroute("postgres://[::1]:6000/d", "h:1").0, "[::1]:6000");
}
