//! Bulk preparation of big SQLite databases: users and provisioned records written in one
//! transaction with direct SQL (the store has no bulk API), in the store's own schema
//! (the store creates the schema first), then reused by later runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};
use swivel_provision::state::{self, Redeem};
use swivel_provision::{CodeHash, IdHash, Origin, Policy, ProvisionRecord, Username};
use swivel_provision_sqlite::{Durability, SqliteOptions, SqliteStore};
use time::OffsetDateTime;

use crate::error::BenchError;
use crate::fixture::{bench_key, email_user};

/// Settings key under which a prepared database records how many users it holds.
pub const PREPARED_KEY: &str = "bench.prepared_users";

/// Where big bench databases live: `target/bench-data/` of the workspace (or
/// `$CARGO_TARGET_DIR/bench-data/`).
pub fn bench_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data")
}

/// The name of prepared user `i`: `user-0000042` (zero-padded, so that the insertion
/// order is the primary key's order).
pub fn prepared_username(i: usize) -> Username {
    Username::parse(&format!("user-{i:07}")).expect("a valid username")
}

fn remove_db_files(path: &Path) -> Result<(), BenchError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BenchError::Io {
                    what: format!("removing {}", Path::new(&p).display()),
                    source,
                });
            }
        }
    }
    Ok(())
}

fn prepared_count(path: &Path) -> Option<usize> {
    let conn = Connection::open(path).ok()?;
    conn.query_row(
        "SELECT value FROM settings WHERE key = ?1",
        [PREPARED_KEY],
        |r| r.get::<_, String>(0),
    )
    .optional()
    .ok()
    .flatten()?
    .parse()
    .ok()
}

/// Makes sure `path` is a store database holding exactly the users `user-0000000` ..
/// `user-<n-1>`, each in the mobile group with an email destination and a provisioned
/// device (generation 1). A file already prepared for `n` users is reused as it is (its
/// records may have moved on; only their number matters); anything else at `path` is
/// replaced. Returns whether it had to prepare the file.
pub async fn prepare_users_db(path: &Path, n: usize) -> Result<bool, BenchError> {
    if path.exists() && prepared_count(path) == Some(n) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
    }
    remove_db_files(path)?;
    // The store creates its schema; then it is closed and the rows go in with plain SQL.
    drop(
        SqliteStore::open_with(
            path,
            SqliteOptions {
                durability: Durability::Normal,
                ..SqliteOptions::default()
            },
        )
        .await?,
    );
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || bulk_insert(&owned, n))
        .await
        .map_err(|e| BenchError::Invalid(format!("preparation task failed: {e}")))??;
    Ok(true)
}

fn bulk_insert(path: &Path, n: usize) -> Result<(), BenchError> {
    let started = Instant::now();
    let key = bench_key();
    let policy = Policy::default();
    let provisioned_at = OffsetDateTime::from_unix_timestamp(1_704_067_200).expect("valid");
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?; // 256 MiB
    let tx = conn.transaction()?;
    {
        let mut users = tx.prepare(
            "INSERT INTO users (username, destinations, mobile_group) VALUES (?1, ?2, 1)",
        )?;
        let mut records = tx.prepare(
            "INSERT INTO records (username, version, body, device_id_hash, pending_expires_ns)
             VALUES (?1, ?2, ?3, ?4, NULL)",
        )?;
        for i in 0..n {
            let name = prepared_username(i);
            let entry = email_user(&name);
            let destinations = serde_json::to_string(&entry.destinations)
                .map_err(|e| BenchError::Invalid(format!("destinations: {e}")))?;
            users.execute(params![name.as_str(), destinations])?;
            let id_hash = IdHash(key.derive("bench/prepared-device", &[&(i as u64).to_be_bytes()]));
            let record = provisioned_record(&name, id_hash, provisioned_at, &policy)?;
            records.execute(params![
                name.as_str(),
                i64::try_from(record.version).unwrap_or(i64::MAX),
                record.to_json(),
                id_hash.to_hex()
            ])?;
            if i > 0 && i % 250_000 == 0 {
                eprintln!("  prepared {i} of {n} users ({:.1?})", started.elapsed());
            }
        }
    }
    tx.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
        params![PREPARED_KEY, n.to_string()],
    )?;
    tx.commit()?;
    let _: (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    eprintln!(
        "prepared {} with {n} users in {:.1?}",
        path.display(),
        started.elapsed()
    );
    Ok(())
}

/// A record with a provisioned device that has downloaded its first strings, made by the
/// core's own state machine (request → redeem → download), so that it stays in step with
/// the record format.
fn provisioned_record(
    name: &Username,
    id_hash: IdHash,
    at: OffsetDateTime,
    policy: &Policy,
) -> Result<ProvisionRecord, BenchError> {
    let code = CodeHash([0; 32]);
    let pending = state::request(None, name, code, Origin::Admin, at, policy)?;
    let presented = state::Presented {
        known_user: true,
        code_hash: code,
        well_formed: true,
        new_device: id_hash,
        info: None,
    };
    let Redeem::Provisioned(device) = state::redeem(Some(&pending), name, presented, at, policy)
    else {
        return Err(BenchError::Invalid(
            "the state machine refused a prepared redeem".into(),
        ));
    };
    state::download(&device)
        .ok_or_else(|| BenchError::Invalid("the state machine refused a prepared download".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::{CodeStore, UserRepository};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn prepared_db_holds_the_users_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sqlite");
        assert!(prepare_users_db(&path, 50).await.unwrap());
        assert!(!prepare_users_db(&path, 50).await.unwrap(), "reused");
        let store = SqliteStore::open(&path).await.unwrap();
        let last = prepared_username(49);
        let user = store.find_user(&last).await.unwrap().expect("user 49");
        assert!(user.mobile_group);
        let record = store.load(&last).await.unwrap().expect("record 49");
        assert_eq!(record.device.unwrap().generation, 1);
        assert!(
            store
                .find_user(&prepared_username(50))
                .await
                .unwrap()
                .is_none()
        );
        drop(store);
        // Another size replaces the file.
        assert!(prepare_users_db(&path, 10).await.unwrap());
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(
            store
                .find_user(&prepared_username(49))
                .await
                .unwrap()
                .is_none()
        );
    }
}
