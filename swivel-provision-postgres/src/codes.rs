//! [`CodeStore`] on the `records` table: one row per user, swapped by version.
//!
//! Compare-and-swap is a single statement: `INSERT … ON CONFLICT DO NOTHING` when no record
//! is expected, `UPDATE … WHERE username = $1 AND version = $2` otherwise. Row-level
//! locking makes it atomic across every connection and server instance: of concurrent
//! swaps from one version, the first commits and the others re-check the `WHERE` clause
//! against the new row and change nothing.
//!
//! [`CodeStore::update`] is one transaction on one pooled connection, in two round trips:
//! `BEGIN` and `SELECT … FOR UPDATE` pipelined (the row stays locked while the core's step
//! decides), then the `UPDATE` (or `INSERT`) and `COMMIT` pipelined. Concurrent updates of
//! one record queue on its row lock; none is lost. An insert that races another insert of
//! the same user changes nothing and is retried.
//!
//! [`UserRecordStore::update_with_user`] reads the user in the same first round trip: for a
//! user key a third pipelined statement (the `users` row), for a device key the same
//! `SELECT … FOR UPDATE OF records` joined to the owner's `users` row. A transition is then
//! two round trips, as an update alone.
//!
//! [`JobStore::update_with_job`](swivel_provision::JobStore::update_with_job) is the same
//! transaction; its write is one statement that also queues the job (see `jobs.rs`).

use async_trait::async_trait;
use deadpool_postgres::Object;
use swivel_provision::store::{MAX_UPDATE_ATTEMPTS, check_owner};
use swivel_provision::{
    CodeStore, IdHash, JobStep, ProvisionRecord, QueuedJob, RecordKey, StoreError, UpdateStep,
    Updated, UserEntry, UserRecordStore, UserUpdateStep, Username,
};
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::error::PostgresError;
use crate::jobs::{INSERT_WITH_JOB, JOBS_PRIMARY_KEY, JobColumns, UPDATE_WITH_JOB};
use crate::store::PostgresStore;

const LOAD: &str = "SELECT body::text FROM records WHERE username = $1";
const INSERT: &str =
    "INSERT INTO records (username, version, body, device_id_hash, pending_expires_at)
     VALUES ($1, $2, $3::text::jsonb, $4, $5)
     ON CONFLICT DO NOTHING";
const UPDATE: &str = "UPDATE records
     SET version = $3, body = $4::text::jsonb, device_id_hash = $5, pending_expires_at = $6
     WHERE username = $1 AND version = $2";
const LOCK_USER: &str = "SELECT body::text FROM records WHERE username = $1 FOR UPDATE";
const LOCK_DEVICE: &str = "SELECT body::text FROM records WHERE device_id_hash = $1 FOR UPDATE";
const LOCK_DEVICE_WITH_USER: &str =
    "SELECT r.body::text, u.username, u.destinations::text, u.mobile_group
     FROM records r LEFT JOIN users u ON u.username = r.username
     WHERE r.device_id_hash = $1
     FOR UPDATE OF r";
const DELETE: &str = "DELETE FROM records WHERE username = $1 AND version = $2";
const FIND_BY_ID: &str = "SELECT body::text FROM records WHERE device_id_hash = $1";
// Timestamps are kept to the microsecond: rows in the same microsecond as `now` also bring
// their body, whose exact expiry decides.
const LIST_EXPIRED: &str = "SELECT username, CASE WHEN pending_expires_at = $1 THEN body::text END
     FROM records
     WHERE pending_expires_at <= $1
     ORDER BY pending_expires_at, username
     LIMIT $2";

fn version_to_sql(v: u64) -> Result<i64, PostgresError> {
    i64::try_from(v).map_err(|_| PostgresError::OutOfRange("record version"))
}

fn decode(body: &str) -> Result<ProvisionRecord, PostgresError> {
    ProvisionRecord::from_json(body.as_bytes()).map_err(|e| PostgresError::corrupt("record", &e))
}

pub(crate) fn decode_username(name: &str) -> Result<Username, PostgresError> {
    Username::parse(name).map_err(|_| PostgresError::Corrupt {
        what: "username",
        line: 0,
        column: 0,
    })
}

/// A pooled connection inside a transaction. Dropped before the transaction ended (an
/// error, or the caller's future dropped mid-update), it takes the connection out of the
/// pool and closes it, so the server rolls the transaction back and no later caller
/// inherits it.
struct InTransaction {
    client: Option<Object>,
}

impl InTransaction {
    fn client(&self) -> &Object {
        self.client.as_ref().expect("present until finished")
    }

    /// The transaction ended (committed or rolled back): the connection may go back.
    fn finished(mut self) {
        drop(self.client.take());
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// The transition of one update: on the record alone, on the user and the record, or on
/// the user and the record with a job to queue.
pub(crate) enum Step<'a> {
    Record(&'a mut UpdateStep),
    WithUser(&'a mut UserUpdateStep),
    WithJob(&'a mut JobStep),
}

/// The columns of a record, as the `INSERT` and `UPDATE` statements take them.
struct Columns {
    version: i64,
    body: String,
    device: Option<String>,
    expires: Option<OffsetDateTime>,
}

impl Columns {
    fn of(record: &ProvisionRecord) -> Result<Columns, PostgresError> {
        let body = String::from_utf8(record.to_json())
            .map_err(|_| PostgresError::OutOfRange("record JSON"))?;
        Ok(Columns {
            version: version_to_sql(record.version)?,
            body,
            device: record.device_id_hash().map(|h| h.to_hex()),
            expires: record.purge_due_at(),
        })
    }
}

impl PostgresStore {
    /// One attempt of [`CodeStore::update`]: `None` when an insert raced another insert of
    /// the same user (nothing changed; try again).
    pub(crate) async fn update_once(
        &self,
        key: &RecordKey,
        step: Step<'_>,
    ) -> Result<Option<Updated>, StoreError> {
        let with_user = !matches!(step, Step::Record(_));
        let with_job = matches!(step, Step::WithJob(_));
        let (insert, update) = if with_job {
            (INSERT_WITH_JOB, UPDATE_WITH_JOB)
        } else {
            (INSERT, UPDATE)
        };
        let (lock, value) = match key {
            RecordKey::User(username) => (LOCK_USER, username.as_str().to_owned()),
            RecordKey::Device(id_hash) if with_user => (LOCK_DEVICE_WITH_USER, id_hash.to_hex()),
            RecordKey::Device(id_hash) => (LOCK_DEVICE, id_hash.to_hex()),
            _ => return Err(StoreError::backend("a record key this store does not know")),
        };
        let tx = InTransaction {
            client: Some(self.client().await?),
        };
        let client = tx.client();
        let (lock, insert, update, find_user) = tokio::try_join!(
            client.prepare_cached(lock),
            client.prepare_cached(insert),
            client.prepare_cached(update),
            client.prepare_cached(crate::directory::FIND_USER),
        )
        .map_err(PostgresError::query)?;
        // Pipelined: all are sent before the first answer is read.
        let key_param: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&value];
        let user_by_key = with_user && matches!(key, RecordKey::User(_));
        let (begun, row, user_row) = tokio::join!(
            client.batch_execute("BEGIN"),
            client.query_opt(&lock, &key_param),
            async {
                if user_by_key {
                    client.query_opt(&find_user, &key_param).await
                } else {
                    Ok(None)
                }
            }
        );
        begun.map_err(PostgresError::query)?;
        let row = row.map_err(PostgresError::query)?;
        let user_row = user_row.map_err(PostgresError::query)?;
        let current = match &row {
            None => None,
            Some(row) => {
                let body: String = row.try_get(0).map_err(PostgresError::query)?;
                Some(decode(&body)?)
            }
        };
        let user: Option<UserEntry> = match (&user_row, &row) {
            (Some(u), _) => crate::directory::user_at(u, 0)?,
            (None, Some(r)) if with_user && !user_by_key => crate::directory::user_at(r, 1)?,
            _ => None,
        };
        let next: Option<(ProvisionRecord, Option<QueuedJob>)> = match step {
            Step::Record(step) => step(current.as_ref()).map(|r| (r, None)),
            Step::WithUser(step) => step(user.as_ref(), current.as_ref()).map(|r| (r, None)),
            Step::WithJob(step) => {
                step(user.as_ref(), current.as_ref()).map(|(r, job)| (r, Some(job)))
            }
        };
        let (next, job) = match next {
            Some(next) => next,
            None => {
                client
                    .batch_execute("ROLLBACK")
                    .await
                    .map_err(PostgresError::query)?;
                tx.finished();
                return Ok(Some(Updated::Kept));
            }
        };
        let checked = check_owner(key, current.as_ref(), &next).and_then(|()| match &job {
            Some(job) if job.username != next.username => Err(StoreError::backend(
                "an update step queued a job for another user",
            )),
            _ => Ok(()),
        });
        if let Err(e) = checked {
            client
                .batch_execute("ROLLBACK")
                .await
                .map_err(PostgresError::query)?;
            tx.finished();
            return Err(e);
        }
        let c = Columns::of(&next)?;
        let job = job.as_ref().map(JobColumns::of).transpose()?;
        let username = next.username.as_str();
        let expected = current
            .as_ref()
            .map(|cur| version_to_sql(cur.version).unwrap_or(i64::MAX));
        // INSERT: username, version, …; UPDATE: username, expected version, version, …;
        // then the job's columns, if any.
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&username];
        if let Some(expected) = &expected {
            params.push(expected);
        }
        params.extend([
            &c.version as &(dyn ToSql + Sync),
            &c.body,
            &c.device,
            &c.expires,
        ]);
        if let Some(job) = &job {
            params.extend(job.params());
        }
        let statement = if current.is_some() { &update } else { &insert };
        let write = async {
            if with_job {
                // Returns the count of records written; the job rides on that row.
                let row = client.query_one(statement, &params).await?;
                row.try_get::<_, i64>(0).map(|n| n.unsigned_abs())
            } else {
                client.execute(statement, &params).await
            }
        };
        // Pipelined; after a failed write the server answers COMMIT with a rollback.
        let (written, committed) = tokio::join!(write, client.batch_execute("COMMIT"));
        committed.map_err(PostgresError::query)?;
        tx.finished();
        match written {
            Ok(1) => Ok(Some(Updated::Written)),
            // The row is locked, so only an insert can miss: another insert came first.
            Ok(_) => Ok(None),
            // Another user's record holds this device Id hash.
            Err(e)
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    && e.as_db_error().and_then(|d| d.constraint()) != Some(JOBS_PRIMARY_KEY) =>
            {
                Ok(Some(Updated::Conflict))
            }
            Err(e) => Err(PostgresError::query(e).into()),
        }
    }

    async fn cas(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, PostgresError> {
        let version = version_to_sql(record.version)?;
        let json = record.to_json();
        let body =
            std::str::from_utf8(&json).map_err(|_| PostgresError::OutOfRange("record JSON"))?;
        let device = record.device_id_hash().map(|h| h.to_hex());
        let expires = record.purge_due_at();
        let username = record.username.as_str();
        let client = self.client().await?;
        let result = match expected_version {
            None => {
                let stmt = client
                    .prepare_cached(INSERT)
                    .await
                    .map_err(PostgresError::query)?;
                client
                    .execute(&stmt, &[&username, &version, &body, &device, &expires])
                    .await
            }
            Some(expected) => {
                let expected = version_to_sql(expected)?;
                let stmt = client
                    .prepare_cached(UPDATE)
                    .await
                    .map_err(PostgresError::query)?;
                client
                    .execute(
                        &stmt,
                        &[&username, &expected, &version, &body, &device, &expires],
                    )
                    .await
            }
        };
        match result {
            Ok(rows) => Ok(rows == 1),
            // Another user's record holds this device Id hash.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
            Err(e) => Err(PostgresError::query(e)),
        }
    }

    async fn load_one(
        &self,
        sql: &str,
        key: &str,
    ) -> Result<Option<ProvisionRecord>, PostgresError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(PostgresError::query)?;
        let row = client
            .query_opt(&stmt, &[&key])
            .await
            .map_err(PostgresError::query)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let body: String = row.try_get(0).map_err(PostgresError::query)?;
                decode(&body).map(Some)
            }
        }
    }

    async fn delete_record(
        &self,
        username: &Username,
        expected: u64,
    ) -> Result<bool, PostgresError> {
        let expected = version_to_sql(expected)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(DELETE)
            .await
            .map_err(PostgresError::query)?;
        let rows = client
            .execute(&stmt, &[&username.as_str(), &expected])
            .await
            .map_err(PostgresError::query)?;
        Ok(rows == 1)
    }

    async fn expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, PostgresError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(LIST_EXPIRED)
            .await
            .map_err(PostgresError::query)?;
        let rows = client
            .query(&stmt, &[&now, &limit])
            .await
            .map_err(PostgresError::query)?;
        let mut listed = Vec::with_capacity(rows.len());
        let mut boundary = Vec::new();
        for row in rows {
            let name: String = row.try_get(0).map_err(PostgresError::query)?;
            let username = decode_username(&name)?;
            let body: Option<String> = row.try_get(1).map_err(PostgresError::query)?;
            match body {
                None => listed.push(username),
                Some(body) => {
                    if let Some(at) = decode(&body)?.purge_due_at().filter(|t| *t <= now) {
                        boundary.push((at, username));
                    }
                }
            }
        }
        // Boundary rows come last in the query's order; sort them by their exact expiry.
        boundary.sort();
        listed.extend(boundary.into_iter().map(|(_, u)| u));
        Ok(listed)
    }
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError> {
        Ok(self.load_one(LOAD, username.as_str()).await?)
    }

    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError> {
        Ok(self.cas(expected_version, record).await?)
    }

    async fn update(&self, key: RecordKey, mut step: UpdateStep) -> Result<Updated, StoreError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            if let Some(updated) = self.update_once(&key, Step::Record(&mut step)).await? {
                return Ok(updated);
            }
        }
        Ok(Updated::Conflict)
    }

    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError> {
        Ok(self.delete_record(username, expected_version).await?)
    }

    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError> {
        Ok(self.load_one(FIND_BY_ID, &id_hash.to_hex()).await?)
    }

    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError> {
        Ok(self.expired(now, limit).await?)
    }
}

/// The user is read in the update's own first round trip (see the module docs).
#[async_trait]
impl UserRecordStore for PostgresStore {
    async fn update_with_user(
        &self,
        key: RecordKey,
        mut step: UserUpdateStep,
    ) -> Result<Updated, StoreError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            if let Some(updated) = self.update_once(&key, Step::WithUser(&mut step)).await? {
                return Ok(updated);
            }
        }
        Ok(Updated::Conflict)
    }
}
