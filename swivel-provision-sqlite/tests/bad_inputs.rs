//! Files and paths the store refuses, each with an error that names the path.

use swivel_provision::StoreError;
use swivel_provision_sqlite::{SCHEMA_VERSION, SqliteError, SqliteStore};

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("garbage.db");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(&path)
        .await
        .expect_err("garbage is no database");
    assert!(matches!(err, SqliteError::NotADatabase { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not an SQLite database"), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        garbage,
        "the file is not changed"
    );

    // A text file too.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(40)).unwrap();
    let err = SqliteStore::open(&text)
        .await
        .expect_err("text is no database");
    assert!(matches!(err, SqliteError::NotADatabase { .. }), "{err:?}");
}

#[tokio::test]
async fn a_path_that_cannot_be_written_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Tests may run as root, whom permission bits do not stop: make the parent a file.
    let parent = dir.path().join("a-regular-file");
    std::fs::write(&parent, "x").unwrap();
    let path = parent.join("provision.db");
    let err = SqliteStore::open(&path)
        .await
        .expect_err("parent is a file");
    assert!(matches!(err, SqliteError::CannotWrite { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("cannot create, open or write"),
        "{message}"
    );

    // A missing directory.
    let missing = dir.path().join("no-such-dir").join("provision.db");
    let err = SqliteStore::open(&missing).await.expect_err("no directory");
    assert!(matches!(err, SqliteError::CannotWrite { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir"));

    // A directory where the file should be.
    let err = SqliteStore::open(dir.path())
        .await
        .expect_err("a directory");
    assert!(matches!(err, SqliteError::CannotWrite { .. }), "{err:?}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("future.db");
    drop(SqliteStore::open(&path).await.expect("create"));
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 5)
            .unwrap();
    }
    let err = SqliteStore::open(&path).await.expect_err("newer schema");
    match &err {
        SqliteError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, SCHEMA_VERSION + 5);
            assert_eq!(*supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("newer than this build supports"),
        "{message}"
    );
    // Hosts holding a StoreError get a permanent error.
    let store_err = StoreError::from(err);
    assert!(!store_err.is_transient());
}

#[tokio::test]
async fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
            .unwrap();
    }
    let err = SqliteStore::open(&path)
        .await
        .expect_err("foreign database");
    assert!(
        matches!(err, SqliteError::ForeignDatabase { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));
    // Nothing was added to it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn an_empty_file_becomes_a_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let store = SqliteStore::open(&path)
        .await
        .expect("an empty file is an empty database");
    assert_eq!(store.path(), path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}
