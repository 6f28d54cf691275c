//! Who checkpoints the WAL: the checkpointer thread, the writer's safety net, nobody else.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Stats, WalLimits};
use crate::db::Db;
use crate::options::{Durability, SqliteOptions};

const NEVER: i32 = i32::MAX;
const LONG: Duration = Duration::from_secs(600);

fn open(dir: &tempfile::TempDir, limits: WalLimits) -> (Arc<Db>, PathBuf, Stats) {
    let path = dir.path().join("wal.sqlite");
    let options = SqliteOptions {
        durability: Durability::Normal,
        ..SqliteOptions::default()
    };
    let db = Db::open_file_with(path.clone(), options, limits).expect("open");
    let stats = db.checkpoints.clone().expect("a file has a checkpointer");
    (Arc::new(db), path, stats)
}

/// `rows` commits of one 3,000-byte row each (about two WAL pages per commit).
async fn write_rows(db: &Arc<Db>, rows: usize) {
    db.run(true, |conn, _| {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS blobs (b BLOB)")
            .map_err(|e| crate::error::SqliteError::from_sqlite(Path::new("t"), e))
    })
    .await
    .expect("create");
    for _ in 0..rows {
        db.run(true, |conn, path| {
            conn.execute("INSERT INTO blobs (b) VALUES (randomblob(3000))", [])
                .map(|_| ())
                .map_err(|e| crate::error::SqliteError::from_sqlite(path, e))
        })
        .await
        .expect("insert");
    }
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The most pages the WAL has held (its file never shrinks here).
fn wal_high_water(path: &Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    len(&wal).saturating_sub(32) / (4096 + 24)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn without_any_checkpoint_the_wal_grows_and_the_file_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = WalLimits {
        wake_pages: NEVER,
        writer_pages: NEVER,
        idle: LONG,
    };
    let (db, path, stats) = open(&dir, limits);
    write_rows(&db, 1_000).await;
    assert!(wal_high_water(&path) >= 1_500, "{}", wal_high_water(&path));
    assert!(
        len(&path) < 1_000_000,
        "nothing copied back: {}",
        len(&path)
    );
    assert_eq!((stats.checkpoints(), stats.writer_checkpoints()), (0, 0));
}

#[tokio::test]
async fn the_checkpointer_thread_copies_the_wal_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = WalLimits {
        wake_pages: 100,
        writer_pages: NEVER,
        idle: LONG,
    };
    let (db, path, stats) = open(&dir, limits);
    write_rows(&db, 1_000).await;
    // 1,000 rows of 3,000 bytes: about 3 MB in the file once checkpointed.
    wait_for("the file holds the rows", || {
        len(&path) > 2_500_000 && stats.checkpoints() >= 1
    })
    .await;
    assert_eq!(
        stats.writer_checkpoints(),
        0,
        "the writer never checkpointed"
    );
}

#[tokio::test]
async fn the_checkpointer_checkpoints_when_the_writer_is_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = WalLimits {
        wake_pages: NEVER,
        writer_pages: NEVER,
        idle: Duration::from_millis(100),
    };
    let (db, path, stats) = open(&dir, limits);
    write_rows(&db, 200).await;
    wait_for("the idle checkpoint", || {
        len(&path) > 500_000 && stats.checkpoints() >= 1
    })
    .await;
    assert_eq!(stats.writer_checkpoints(), 0);
}

#[tokio::test]
async fn the_safety_net_bounds_the_wal_when_the_checkpointer_does_not_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = WalLimits {
        wake_pages: NEVER,
        writer_pages: 300,
        idle: LONG,
    };
    let (db, path, stats) = open(&dir, limits);
    write_rows(&db, 2_000).await;
    assert_eq!(stats.checkpoints(), 0, "the checkpointer was never woken");
    assert!(stats.writer_checkpoints() >= 1);
    // 300 pages, plus the commit that crossed the line and the few before the WAL restarts.
    assert!(wal_high_water(&path) <= 400, "{}", wal_high_water(&path));
    assert!(len(&path) > 4_000_000, "the rows were copied back");
}

#[tokio::test]
async fn the_checkpointer_thread_stops_with_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _path, stats) = open(&dir, WalLimits::DEFAULT);
    write_rows(&db, 10).await;
    assert!(!stats.stopped());
    drop(db);
    wait_for("the checkpointer thread returned", || stats.stopped()).await;
}
