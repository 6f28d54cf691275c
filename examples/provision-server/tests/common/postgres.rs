//! The test PostgreSQL, as `swivel-provision-postgres`'s tests find it: through
//! `SWIVEL_TEST_POSTGRES_URL`. When it is unset a test prints `SKIPPED: ...` and returns,
//! unless `SWIVEL_REQUIRE_POSTGRES_TESTS=1`, which makes it fail instead.

use std::time::{SystemTime, UNIX_EPOCH};

pub const URL_VAR: &str = "SWIVEL_TEST_POSTGRES_URL";

/// The test database URL, or `None` after printing the SKIPPED line.
pub fn url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var("SWIVEL_REQUIRE_POSTGRES_TESTS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{test}: {URL_VAR} is not set but SWIVEL_REQUIRE_POSTGRES_TESTS=1"
            );
            // Straight to stderr, past the test harness's output capture.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED: {URL_VAR} is not set ({test})");
            None
        }
    }
}

/// `postgres://user[:password]@host[:port]/db...` split into the `host:port` it connects to
/// and the same URL with `host:port` replaced by `via`.
pub fn reroute(url: &str, via: &str) -> (String, String) {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or_else(|| panic!("{URL_VAR} must be a postgres:// URL"));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    assert!(
        !hostport.is_empty() && !hostport.contains(','),
        "{URL_VAR} must name one TCP host (no socket directory, no host list)"
    );
    let target = if hostport.starts_with('[') {
        match hostport.rsplit_once("]:") {
            Some(_) => hostport.to_owned(),
            None => format!("{hostport}:5432"),
        }
    } else if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (target, format!("{scheme}://{userinfo}{via}{tail}"))
}

/// A fresh schema name for one test (the server creates the schema), dropped with
/// everything in it when this value is dropped, even when the test panics.
pub struct Schema {
    url: String,
    pub name: String,
}

impl Schema {
    pub fn new(url: &str, prefix: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Self {
            url: url.to_owned(),
            name: format!("{prefix}_{}_{nanos}", std::process::id()),
        }
    }
}

impl Schema {
    /// Whether the schema exists now (the server created it).
    pub async fn exists(&self) -> bool {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[&self.name],
            )
            .await
            .expect("look the schema up");
        row.get::<_, i64>(0) == 1
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                client.batch_execute(&sql).await
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not drop test schema {}",
                self.name
            );
        }
    }
}
