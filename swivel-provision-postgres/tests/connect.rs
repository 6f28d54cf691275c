//! Connecting: migrations, schema versions, and errors that never show the URL.

mod common;

use std::time::Duration;

use common::TestSchema;
use swivel_provision::{CodeStore, StoreError, Username};
use swivel_provision_postgres::{PostgresError, PostgresOptions, PostgresStore, SCHEMA_VERSION};

const PASSWORD: &str = "s3cret-Pa55word";

fn assert_no_password(e: &PostgresError) {
    let mut texts = vec![e.to_string(), format!("{e:?}")];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        texts.push(s.to_string());
        texts.push(format!("{s:?}"));
        source = s.source();
    }
    for t in texts {
        assert!(!t.contains(PASSWORD), "password leaked: {t}");
    }
}

#[tokio::test]
async fn malformed_url_is_refused_without_showing_it() {
    let url = format!("postgres://user:{PASSWORD}@127.0.0.1:5432/db?sslmode=bogus");
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, PostgresError::InvalidUrl(_)), "{err:?}");
    assert!(!err.is_transient());
    assert_no_password(&err);
}

#[tokio::test]
async fn unreachable_server_is_a_transient_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let url = format!("postgres://user:{PASSWORD}@127.0.0.1:1/db");
    let options = PostgresOptions {
        connect_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let err = PostgresStore::connect_with(&url, options)
        .await
        .unwrap_err();
    assert!(matches!(err, PostgresError::Connect { .. }), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    assert_no_password(&err);
    let store_error: StoreError = err.into();
    assert!(matches!(store_error, StoreError::Unavailable(_)));
}

#[tokio::test]
async fn bad_schema_name_and_empty_pool_are_refused() {
    for schema in ["Robert'); DROP TABLE records;--", "1abc", ""] {
        let options = PostgresOptions {
            schema: Some(schema.into()),
            ..PostgresOptions::default()
        };
        let err = PostgresStore::connect_with("postgres://u@127.0.0.1:1/db", options)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PostgresError::InvalidSchemaName(_)),
            "{err:?}"
        );
    }
    let options = PostgresOptions {
        pool_size: 0,
        ..PostgresOptions::default()
    };
    let err = PostgresStore::connect_with("postgres://u@127.0.0.1:1/db", options)
        .await
        .unwrap_err();
    assert!(matches!(err, PostgresError::PoolSetup(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_is_a_permanent_error() {
    let Some(url) = common::url("unknown_database_is_a_permanent_error") else {
        return;
    };
    let admin = common::admin_client(&url).await;
    let user: String = admin
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    let port: String = admin
        .query_one("SELECT setting FROM pg_settings WHERE name = 'port'", &[])
        .await
        .unwrap()
        .get(0);
    let missing = format!("swivel_missing_{}", common::random_suffix());
    let bad = format!("postgres://{user}:{PASSWORD}@127.0.0.1:{port}/{missing}");
    let err = PostgresStore::connect(&bad).await.unwrap_err();
    assert!(matches!(err, PostgresError::Connect { .. }), "{err:?}");
    assert!(
        !err.is_transient(),
        "an unknown database is not worth retrying: {err:?}"
    );
    assert_no_password(&err);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_reconnecting_is_harmless() {
    let Some(url) = common::url("migrations_run_once_and_reconnecting_is_harmless") else {
        return;
    };
    let schema = TestSchema::new(&url);
    // Several instances starting at once take turns migrating.
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            let options = schema.options();
            tokio::spawn(async move { PostgresStore::connect_with(&url, options).await })
        })
        .collect();
    for s in starts {
        let store = s.await.unwrap().expect("concurrent start");
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    }
    let admin = common::admin_client(&url).await;
    let rows: i64 = admin
        .query_one(
            &format!("SELECT count(*) FROM {}.schema_version", schema.name),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, SCHEMA_VERSION, "one row per applied migration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_with_a_clear_error() {
    let Some(url) = common::url("a_newer_schema_is_refused_with_a_clear_error") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    let admin = common::admin_client(&url).await;
    admin
        .execute(
            &format!(
                "INSERT INTO {}.schema_version (version) VALUES ($1)",
                schema.name
            ),
            &[&(SCHEMA_VERSION + 41)],
        )
        .await
        .unwrap();
    drop(store);
    let err = PostgresStore::connect_with(&url, schema.options())
        .await
        .unwrap_err();
    match &err {
        PostgresError::SchemaTooNew { found, supported } => {
            assert_eq!(*found, SCHEMA_VERSION + 41);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert!(
        err.to_string().contains("newer than this build supports"),
        "{err}"
    );
    assert!(!err.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_is_a_backend_error_that_does_not_quote_it() {
    let Some(url) = common::url("a_corrupt_row_is_a_backend_error_that_does_not_quote_it") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    let admin = common::admin_client(&url).await;
    admin
        .execute(
            &format!(
                "INSERT INTO {}.records (username, version, body) \
                 VALUES ('mallory', 1, '{{\"username\": \"mallory\", \"hush\": \"TOPSECRET\"}}')",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap();
    let err = store
        .load(&Username::parse("mallory").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    let source = std::error::Error::source(&err).expect("a source");
    let shown = format!("{source} {source:?}");
    assert!(shown.contains("corrupt"), "{shown}");
    assert!(!shown.contains("TOPSECRET"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_shows_no_url() {
    let Some(url) = common::url("debug_output_shows_no_url") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    let shown = format!("{store:?}");
    assert!(shown.contains(&schema.name), "{shown}");
    assert!(!shown.contains("postgres://"), "{shown}");
    assert!(!shown.contains("127.0.0.1"), "{shown}");
}
