//! [`EventStore`] for [`SqliteStore`] on the `events` table. A batch is one grouped write
//! on the writer thread (a savepoint in its next group commit: written whole or not at
//! all, answered after that commit); lists run on a reader thread.

use async_trait::async_trait;
use rusqlite::params;
use swivel_provision::{EventQuery, EventStore, StoreError, StoredEvent, Username};
use time::OffsetDateTime;

use crate::codes::unix_nanos;
use crate::error::SqliteError;
use crate::store::SqliteStore;

const INSERT: &str = "INSERT INTO events (at_ns, instance, kind, username, failure, line)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
// Every filter is optional: a NULL parameter lets every row through.
const LIST: &str = "SELECT id, at_ns, instance, kind, username, failure, line FROM events
     WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR at_ns >= ?2)
       AND (?3 IS NULL OR id < ?3) AND (?5 IS NULL OR kind = ?5) AND (?6 IS NULL OR at_ns < ?6)
     ORDER BY id DESC LIMIT ?4";
const PURGE: &str = "DELETE FROM events WHERE at_ns < ?1";

fn from_nanos(n: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok()
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, events: &[StoredEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events.to_vec();
        self.db
            .grouped(move |conn, path| {
                let mut insert = conn
                    .prepare_cached(INSERT)
                    .map_err(|e| SqliteError::from_sqlite(path, e))?;
                for e in &events {
                    insert
                        .execute(params![
                            unix_nanos(e.at),
                            e.instance,
                            e.kind,
                            e.username.as_ref().map(Username::as_str),
                            e.failure,
                            e.line
                        ])
                        .map_err(|e| SqliteError::from_sqlite(path, e))?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        query.validate()?;
        let user = query.user.as_ref().map(|u| u.as_str().to_owned());
        let since = query.since.map(unix_nanos);
        let until = query.until.map(unix_nanos);
        let kind = query.kind.clone();
        // Ids are positive i64: a cursor above i64::MAX lets every row through.
        let before = query
            .before_id
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = query.limit as i64;
        let rows = self
            .db
            .run(false, move |conn, path| {
                let sql = |e| SqliteError::from_sqlite(path, e);
                let mut stmt = conn.prepare_cached(LIST).map_err(sql)?;
                let rows = stmt
                    .query_map(params![user, since, before, limit, kind, until], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, bool>(5)?,
                            r.get::<_, String>(6)?,
                        ))
                    })
                    .map_err(sql)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sql)
            })
            .await?;
        rows.into_iter()
            .map(
                |(id, at, instance, kind, username, failure, line)| -> Result<StoredEvent, StoreError> {
                Ok(StoredEvent {
                    id: u64::try_from(id)
                        .map_err(|_| StoreError::backend("an event id in the database is negative"))?,
                    at: from_nanos(at).ok_or_else(|| {
                        StoreError::backend("an event time in the database is out of range")
                    })?,
                    instance,
                    kind,
                    username: username
                        .map(|u| Username::parse(&u))
                        .transpose()
                        .map_err(StoreError::backend)?,
                    failure,
                    line,
                })
            })
            .collect()
    }

    async fn purge_before(&self, t: OffsetDateTime) -> Result<u64, StoreError> {
        let t = unix_nanos(t);
        Ok(self
            .db
            .run(true, move |conn, path| {
                conn.prepare_cached(PURGE)
                    .and_then(|mut s| s.execute([t]))
                    .map(|n| n as u64)
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }
}
