//! Shared test helpers: find PostgreSQL, and give each test its own schema.
//!
//! PostgreSQL is found through `SWIVEL_TEST_POSTGRES_URL`. When it is unset a test prints
//! `SKIPPED: SWIVEL_TEST_POSTGRES_URL is not set` and returns, unless
//! `SWIVEL_REQUIRE_POSTGRES_TESTS=1`, which makes it fail instead.

#![allow(dead_code, unreachable_pub)]

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use swivel_provision_postgres::{PostgresOptions, PostgresStore};
use tokio_postgres::NoTls;

/// The environment variable naming the test database.
pub const URL_VAR: &str = "SWIVEL_TEST_POSTGRES_URL";

/// Prints `SKIPPED: <why>` straight to the process's stderr, past the test harness's
/// output capture, so that it shows in a normal `cargo test` run.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Whether a missing database is a failure rather than a skip.
pub fn required() -> bool {
    std::env::var("SWIVEL_REQUIRE_POSTGRES_TESTS").is_ok_and(|v| v == "1")
}

/// The test database URL, or `None` after printing the SKIPPED line.
pub fn url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                !required(),
                "{test}: {URL_VAR} is not set but SWIVEL_REQUIRE_POSTGRES_TESTS=1"
            );
            skipped(&format!("{URL_VAR} is not set ({test})"));
            None
        }
    }
}

/// A random lower-case suffix.
pub fn random_suffix() -> String {
    format!("{:016x}", ChaCha20Rng::from_os_rng().next_u64())
}

/// A plain connection for setup and inspection, outside the store's pool.
pub async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A fresh schema, dropped (with everything in it) when this value is dropped, even when
/// the test panics.
pub struct TestSchema {
    pub url: String,
    pub name: String,
}

impl TestSchema {
    /// A new schema name (the store creates the schema when it connects).
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            name: format!("swivel_test_{}", random_suffix()),
        }
    }

    /// Options for a store in this schema.
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            schema: Some(self.name.clone()),
            // Generous: on a busy two-core machine a new backend can take seconds to start,
            // and many concurrent calls may wait for a pooled connection.
            connect_timeout: std::time::Duration::from_secs(30),
            ..PostgresOptions::default()
        }
    }

    /// A store (its own pool) in this schema.
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect_with(&self.url, self.options())
            .await
            .expect("connect the store")
    }
}

impl Drop for TestSchema {
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
                let client = admin_client(&url).await;
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
