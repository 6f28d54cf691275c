//! [`CounterStore`] for [`SqliteStore`] on the `counters` table: a hit is one upsert on the
//! writer thread, atomic across every store and process on the file, committed without
//! waiting for the disk (a count lost to a power cut only loosens a limit for a minute).

use async_trait::async_trait;
use rusqlite::params;
use swivel_provision::counter::check_counter_key;
use swivel_provision::{CounterStore, StoreError, Window};
use time::OffsetDateTime;

use crate::codes::unix_nanos;
use crate::error::SqliteError;
use crate::store::SqliteStore;

const HIT: &str = "INSERT INTO counters (key, start_ns, end_ns, hits) VALUES (?1, ?2, ?3, 1)
     ON CONFLICT (key, start_ns) DO UPDATE SET hits = hits + 1
     RETURNING hits";
const PURGE: &str = "DELETE FROM counters WHERE end_ns <= ?1";
/// `PRAGMA synchronous` NORMAL.
const NORMAL: i64 = 1;

#[async_trait]
impl CounterStore for SqliteStore {
    async fn hit(&self, key: &str, window: Window) -> Result<u64, StoreError> {
        check_counter_key(key)?;
        let key = key.to_owned();
        let (start, end) = (unix_nanos(window.start()), unix_nanos(window.end()));
        let hits: i64 = self
            .db
            .run(true, move |conn, path| {
                let sql = |e| SqliteError::from_sqlite(path, e);
                // Counts need not survive a power cut: the hit's commit skips the fsync
                // (synchronous=NORMAL; in WAL mode the WAL is synced at the next durable
                // commit or checkpoint). The store's own setting is restored after.
                let was: i64 = conn
                    .pragma_query_value(None, "synchronous", |r| r.get(0))
                    .map_err(sql)?;
                if was > NORMAL {
                    conn.pragma_update(None, "synchronous", NORMAL)
                        .map_err(sql)?;
                }
                let hits = conn
                    .prepare_cached(HIT)
                    .and_then(|mut s| s.query_row(params![key, start, end], |r| r.get(0)));
                if was > NORMAL {
                    conn.pragma_update(None, "synchronous", was).map_err(sql)?;
                }
                hits.map_err(sql)
            })
            .await?;
        Ok(u64::try_from(hits).unwrap_or(0))
    }

    async fn purge_counters(&self, t: OffsetDateTime) -> Result<u64, StoreError> {
        let t = unix_nanos(t);
        let removed = self
            .db
            .run(true, move |conn, path| {
                conn.prepare_cached(PURGE)
                    .and_then(|mut s| s.execute([t]))
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?;
        Ok(removed as u64)
    }
}
