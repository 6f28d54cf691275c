//! [`CodeStore`] for [`SqliteStore`].

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use swivel_provision::store::check_owner;
use swivel_provision::{
    CodeStore, IdHash, JobStep, ProvisionRecord, RecordKey, StoreError, UpdateStep, Updated,
    UserRecordStore, UserUpdateStep, Username,
};
use time::OffsetDateTime;

use crate::error::SqliteError;
use crate::store::SqliteStore;

/// Unix nanoseconds, saturating (i64 nanoseconds reach the year 2262).
pub(crate) fn unix_nanos(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

fn parse_record(path: &Path, body: &[u8]) -> Result<ProvisionRecord, SqliteError> {
    ProvisionRecord::from_json(body).map_err(|e| SqliteError::invalid_row(path, "records", &e))
}

/// The columns stored beside the JSON body.
struct Row {
    username: String,
    version: i64,
    body: Vec<u8>,
    device_id_hash: Option<String>,
    pending_expires_ns: Option<i64>,
}

impl Row {
    fn of(record: &ProvisionRecord) -> Result<Row, StoreError> {
        let version = i64::try_from(record.version)
            .map_err(|_| StoreError::backend("record version does not fit SQLite's INTEGER"))?;
        Ok(Row {
            username: record.username.as_str().to_owned(),
            version,
            body: record.to_json(),
            device_id_hash: record.device_id_hash().map(|h| h.to_hex()),
            pending_expires_ns: record.purge_due_at().map(unix_nanos),
        })
    }
}

fn compare_and_swap(
    conn: &mut Connection,
    path: &Path,
    expected: Option<i64>,
    row: &Row,
) -> Result<bool, SqliteError> {
    let sql = |e| SqliteError::from_sqlite(path, e);
    // IMMEDIATE takes the write lock first, so the check and the write see the same state
    // even when other processes write the same file.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    if !swap_in(&tx, path, expected, row)? {
        return Ok(false);
    }
    tx.commit().map_err(sql)?;
    Ok(true)
}

/// The checks and the write of a compare-and-swap, inside the caller's transaction (or
/// savepoint), which holds the write lock.
fn swap_in(
    tx: &Connection,
    path: &Path,
    expected: Option<i64>,
    row: &Row,
) -> Result<bool, SqliteError> {
    let sql = |e| SqliteError::from_sqlite(path, e);
    let current: Option<i64> = tx
        .prepare_cached("SELECT version FROM records WHERE username = ?1")
        .and_then(|mut s| s.query_row([&row.username], |r| r.get(0)).optional())
        .map_err(sql)?;
    if current != expected {
        return Ok(false);
    }
    if let Some(hash) = &row.device_id_hash {
        let owner: Option<String> = tx
            .prepare_cached("SELECT username FROM records WHERE device_id_hash = ?1")
            .and_then(|mut s| s.query_row([hash], |r| r.get(0)).optional())
            .map_err(sql)?;
        if owner.is_some_and(|owner| owner != row.username) {
            return Ok(false);
        }
    }
    let changed = match expected {
        None => tx
            .prepare_cached(
                "INSERT INTO records (username, version, body, device_id_hash, pending_expires_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.username,
                    row.version,
                    row.body,
                    row.device_id_hash,
                    row.pending_expires_ns
                ])
            }),
        Some(old) => tx
            .prepare_cached(
                "UPDATE records SET version = ?2, body = ?3, device_id_hash = ?4,
                        pending_expires_ns = ?5
                 WHERE username = ?1 AND version = ?6",
            )
            .and_then(|mut s| {
                s.execute(params![
                    row.username,
                    row.version,
                    row.body,
                    row.device_id_hash,
                    row.pending_expires_ns,
                    old
                ])
            }),
    }
    .map_err(sql)?;
    Ok(changed == 1)
}

/// The transition an update applies: to the record alone ([`CodeStore::update`]) or to the
/// user's directory entry and the record ([`UserRecordStore::update_with_user`]).
pub(crate) enum Step {
    /// Sees the record.
    Record(UpdateStep),
    /// Sees the user (read in the same transaction) and the record.
    WithUser(UserUpdateStep),
    /// As [`Step::WithUser`], and queues a delivery job with the record
    /// ([`JobStore::update_with_job`](swivel_provision::JobStore::update_with_job)).
    WithJob(JobStep),
}

/// One update inside the writer's group transaction: reads the record `key` names (and,
/// for [`Step::WithUser`], its user), runs `step`, writes its record. Runs on the writer
/// thread, inside a savepoint that is rolled back when this returns an error.
pub(crate) fn apply_update(
    conn: &Connection,
    path: &Path,
    key: &RecordKey,
    step: &mut Step,
) -> Result<Updated, StoreError> {
    let sql = |e| SqliteError::from_sqlite(path, e);
    let (query, value) = match key {
        RecordKey::User(username) => (
            "SELECT body FROM records WHERE username = ?1",
            username.as_str().to_owned(),
        ),
        RecordKey::Device(id_hash) => (
            "SELECT body FROM records WHERE device_id_hash = ?1",
            id_hash.to_hex(),
        ),
        _ => return Err(StoreError::backend("a record key this store does not know")),
    };
    let body: Option<Vec<u8>> = conn
        .prepare_cached(query)
        .and_then(|mut s| s.query_row([&value], |r| r.get(0)).optional())
        .map_err(sql)?;
    let current = body.map(|b| parse_record(path, &b)).transpose()?;
    let owner = match (key, &current) {
        (_, Some(c)) => Some(c.username.as_str()),
        (RecordKey::User(username), None) => Some(username.as_str()),
        _ => None,
    };
    let user = match (&step, owner) {
        (Step::Record(_), _) | (_, None) => None,
        (_, Some(name)) => crate::users::read_user(conn, path, name)?,
    };
    let (next, job) = match step {
        Step::Record(step) => (step(current.as_ref()), None),
        Step::WithUser(step) => (step(user.as_ref(), current.as_ref()), None),
        Step::WithJob(step) => match step(user.as_ref(), current.as_ref()) {
            Some((next, job)) => (Some(next), Some(job)),
            None => (None, None),
        },
    };
    let Some(next) = next else {
        return Ok(Updated::Kept);
    };
    if job.as_ref().is_some_and(|j| j.username != next.username) {
        return Err(StoreError::backend(
            "an update step queued a job for another user",
        ));
    }
    check_owner(key, current.as_ref(), &next)?;
    let expected = match current.map(|c| i64::try_from(c.version)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Err(StoreError::backend("stored version out of range")),
    };
    if !swap_in(conn, path, expected, &Row::of(&next)?)? {
        return Ok(Updated::Conflict);
    }
    if let Some(job) = job {
        crate::jobs::replace_jobs(conn, path, &job)?;
    }
    Ok(Updated::Written)
}

/// The one record `sql` (a `SELECT body … WHERE <unique column> = ?1`) finds for `key`, read
/// on a reader connection.
async fn record_where(
    store: &SqliteStore,
    sql: &'static str,
    key: String,
) -> Result<Option<ProvisionRecord>, StoreError> {
    Ok(store
        .db
        .run(false, move |conn, path| {
            let body: Option<Vec<u8>> = conn
                .prepare_cached(sql)
                .and_then(|mut s| s.query_row([&key], |r| r.get(0)).optional())
                .map_err(|e| SqliteError::from_sqlite(path, e))?;
            body.map(|b| parse_record(path, &b)).transpose()
        })
        .await?)
}

#[async_trait]
impl CodeStore for SqliteStore {
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError> {
        let sql = "SELECT body FROM records WHERE username = ?1";
        record_where(self, sql, username.as_str().to_owned()).await
    }

    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError> {
        let expected = match expected_version.map(i64::try_from) {
            None => None,
            Some(Ok(v)) => Some(v),
            // No stored version can be that large.
            Some(Err(_)) => return Ok(false),
        };
        let row = Row::of(record)?;
        Ok(self
            .db
            .run(true, move |conn, path| {
                compare_and_swap(conn, path, expected, &row)
            })
            .await?)
    }

    async fn update(&self, key: RecordKey, step: UpdateStep) -> Result<Updated, StoreError> {
        self.db.update(key, Step::Record(step)).await
    }

    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError> {
        let Ok(expected) = i64::try_from(expected_version) else {
            return Ok(false);
        };
        let username = username.as_str().to_owned();
        Ok(self
            .db
            .run(true, move |conn, path| {
                conn.prepare_cached("DELETE FROM records WHERE username = ?1 AND version = ?2")
                    .and_then(|mut s| s.execute(params![username, expected]))
                    .map(|n| n == 1)
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }

    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError> {
        let sql = "SELECT body FROM records WHERE device_id_hash = ?1";
        record_where(self, sql, id_hash.to_hex()).await
    }

    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError> {
        let now = unix_nanos(now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let names = self
            .db
            .run(false, move |conn, path| {
                let sql = |e| SqliteError::from_sqlite(path, e);
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT username FROM records
                         WHERE pending_expires_ns <= ?1
                         ORDER BY pending_expires_ns, username
                         LIMIT ?2",
                    )
                    .map_err(sql)?;
                let names = stmt
                    .query_map(params![now, limit], |r| r.get::<_, String>(0))
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(sql)?;
                Ok(names)
            })
            .await?;
        names
            .iter()
            .map(|n| Username::parse(n).map_err(StoreError::backend))
            .collect()
    }
}

/// The user is read inside the update's own transaction, on the writer thread: a
/// transition makes one store call.
#[async_trait]
impl UserRecordStore for SqliteStore {
    async fn update_with_user(
        &self,
        key: RecordKey,
        step: UserUpdateStep,
    ) -> Result<Updated, StoreError> {
        self.db.update(key, Step::WithUser(step)).await
    }
}
