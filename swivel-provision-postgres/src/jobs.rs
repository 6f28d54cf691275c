//! [`JobStore`] for [`PostgresStore`] on the `delivery_jobs` table: the durable delivery
//! queue, one row per queued message, the message sealed by the core.
//!
//! [`JobStore::update_with_job`] is [`UserRecordStore::update_with_user`]'s transaction
//! (see `codes.rs`) whose write is one statement: the record's `INSERT` or `UPDATE` in a
//! `WITH` clause, and, for the row it wrote, the user's other jobs deleted and the new job
//! inserted. A write that changed nothing queues nothing, and the transition still takes
//! two round trips.
//!
//! [`JobStore::claim_jobs`] is one statement: the due rows are picked with
//! `FOR UPDATE SKIP LOCKED` and leased in the same statement, so claimers on any number of
//! connections and instances never wait for each other and never get the same job while
//! its lease holds.
//!
//! [`UserRecordStore::update_with_user`]: swivel_provision::UserRecordStore::update_with_user

use async_trait::async_trait;
use swivel_provision::store::MAX_UPDATE_ATTEMPTS;
use swivel_provision::{
    Channel, JobId, JobKind, JobStep, JobStore, QueueDepth, QueuedJob, RecordKey, StoreError,
    Updated,
};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::codes::{Step, decode_username};
use crate::error::PostgresError;
use crate::store::PostgresStore;

/// The record's insert (parameters 1–5 as `codes::INSERT`) with its job (6–13,
/// [`JobColumns::params`]); returns how many records it wrote (0 or 1).
pub(crate) const INSERT_WITH_JOB: &str = "WITH written AS (
         INSERT INTO records (username, version, body, device_id_hash, pending_expires_at)
         VALUES ($1, $2, $3::text::jsonb, $4, $5)
         ON CONFLICT DO NOTHING
         RETURNING username),
     replaced AS (
         DELETE FROM delivery_jobs
         WHERE username IN (SELECT username FROM written) AND kind = 'code'),
     queued AS (
         INSERT INTO delivery_jobs
             (id, username, channel, created_at, due_at, expires_at, attempts, sealed, kind)
         SELECT $6::text, username, $7::text, $8::timestamptz, $9::timestamptz,
                $10::timestamptz, $11::integer, $12::bytea, $13::text
         FROM written)
     SELECT count(*) FROM written";

/// The record's update (parameters 1–6 as `codes::UPDATE`) with its job (7–14,
/// [`JobColumns::params`]); returns how many records it wrote (0 or 1).
pub(crate) const UPDATE_WITH_JOB: &str = "WITH written AS (
         UPDATE records
         SET version = $3, body = $4::text::jsonb, device_id_hash = $5, pending_expires_at = $6
         WHERE username = $1 AND version = $2
         RETURNING username),
     replaced AS (
         DELETE FROM delivery_jobs
         WHERE username IN (SELECT username FROM written) AND kind = 'code'),
     queued AS (
         INSERT INTO delivery_jobs
             (id, username, channel, created_at, due_at, expires_at, attempts, sealed, kind)
         SELECT $7::text, username, $8::text, $9::timestamptz, $10::timestamptz,
                $11::timestamptz, $12::integer, $13::bytea, $14::text
         FROM written)
     SELECT count(*) FROM written";

/// The primary key of `delivery_jobs`: a unique violation on it is not a record conflict.
pub(crate) const JOBS_PRIMARY_KEY: &str = "delivery_jobs_pkey";

// The picked rows are materialised, so the locking subquery runs exactly once; `due_at`
// before the lease comes back too, to hand the jobs out earliest first.
const CLAIM: &str = "WITH due AS MATERIALIZED (
         SELECT id, due_at FROM delivery_jobs
         WHERE due_at <= $1
         ORDER BY due_at, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED)
     UPDATE delivery_jobs j SET due_at = $3, lease_owner = $4
     FROM due WHERE j.id = due.id
     RETURNING j.id, j.username, j.channel, j.created_at, j.due_at, j.expires_at,
               j.attempts, j.sealed, due.due_at, j.kind";
const ADD: &str = "INSERT INTO delivery_jobs
         (id, username, channel, created_at, due_at, expires_at, attempts, sealed, kind)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const FINISH: &str = "DELETE FROM delivery_jobs WHERE id = $1";
const RETRY: &str = "UPDATE delivery_jobs SET due_at = $3, attempts = $4, lease_owner = NULL
     WHERE id = $1 AND lease_owner = $2";
const RELEASE: &str = "UPDATE delivery_jobs SET due_at = $2, lease_owner = NULL
     WHERE lease_owner = $1";
const DEPTH: &str = "SELECT count(*), min(created_at) FROM delivery_jobs";

fn attempts_to_sql(attempts: u32) -> Result<i32, PostgresError> {
    i32::try_from(attempts).map_err(|_| PostgresError::OutOfRange("delivery attempts"))
}

/// A job's columns as the write statements take them (the username comes from the
/// record's row).
pub(crate) struct JobColumns<'a> {
    id: &'a str,
    channel: &'static str,
    created_at: OffsetDateTime,
    due_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    attempts: i32,
    sealed: &'a [u8],
    kind: &'static str,
}

impl<'a> JobColumns<'a> {
    pub(crate) fn of(job: &'a QueuedJob) -> Result<Self, PostgresError> {
        Ok(Self {
            id: job.id.as_str(),
            channel: job.channel.as_str(),
            created_at: job.created_at,
            due_at: job.due_at,
            expires_at: job.expires_at,
            attempts: attempts_to_sql(job.attempts)?,
            sealed: &job.sealed,
            kind: job.kind.as_str(),
        })
    }

    /// The parameters after the record's, in the statements' order.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.id,
            &self.channel,
            &self.created_at,
            &self.due_at,
            &self.expires_at,
            &self.attempts,
            &self.sealed,
            &self.kind,
        ]
    }
}

/// A claimed row: the job, and when it was due before the lease.
fn claimed(row: &Row) -> Result<(OffsetDateTime, QueuedJob), StoreError> {
    let get = |e| PostgresError::query(e);
    let id: String = row.try_get(0).map_err(get)?;
    let username: String = row.try_get(1).map_err(get)?;
    let channel: String = row.try_get(2).map_err(get)?;
    let attempts: i32 = row.try_get(6).map_err(get)?;
    let job = QueuedJob {
        id: JobId::parse(&id)?,
        username: decode_username(&username)?,
        channel: channel
            .parse::<Channel>()
            .map_err(|_| StoreError::backend("a stored delivery job has an unknown channel"))?,
        created_at: row.try_get(3).map_err(get)?,
        due_at: row.try_get(4).map_err(get)?,
        expires_at: row.try_get(5).map_err(get)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| PostgresError::OutOfRange("delivery attempts"))?,
        sealed: row.try_get(7).map_err(get)?,
        kind: JobKind::parse(row.try_get::<_, &str>(9).map_err(get)?)?,
    };
    Ok((row.try_get(8).map_err(get)?, job))
}

#[async_trait]
impl JobStore for PostgresStore {
    async fn update_with_job(
        &self,
        key: RecordKey,
        mut step: JobStep,
    ) -> Result<Updated, StoreError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            if let Some(updated) = self.update_once(&key, Step::WithJob(&mut step)).await? {
                return Ok(updated);
            }
        }
        Ok(Updated::Conflict)
    }

    async fn claim_jobs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<QueuedJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .rows(CLAIM, &[&now, &limit, &lease_until, &owner])
            .await?;
        let mut jobs = rows.iter().map(claimed).collect::<Result<Vec<_>, _>>()?;
        // RETURNING keeps no order: earliest first, as the rows were picked.
        jobs.sort_by(|(a_due, a), (b_due, b)| (a_due, &a.id).cmp(&(b_due, &b.id)));
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    async fn add_job(&self, job: &QueuedJob) -> Result<(), StoreError> {
        let c = JobColumns::of(job)?;
        let username = job.username.as_str();
        self.exec(
            ADD,
            &[
                &c.id,
                &username,
                &c.channel,
                &c.created_at,
                &c.due_at,
                &c.expires_at,
                &c.attempts,
                &c.sealed,
                &c.kind,
            ],
        )
        .await?;
        Ok(())
    }

    async fn finish_job(&self, id: &JobId) -> Result<bool, StoreError> {
        Ok(self.exec(FINISH, &[&id.as_str()]).await? == 1)
    }

    async fn retry_job(
        &self,
        id: &JobId,
        owner: &str,
        due_at: OffsetDateTime,
        attempts: u32,
    ) -> Result<bool, StoreError> {
        let attempts = attempts_to_sql(attempts)?;
        let changed = self
            .exec(RETRY, &[&id.as_str(), &owner, &due_at, &attempts])
            .await?;
        Ok(changed == 1)
    }

    async fn release_jobs(&self, owner: &str, now: OffsetDateTime) -> Result<usize, StoreError> {
        let released = self.exec(RELEASE, &[&owner, &now]).await?;
        Ok(usize::try_from(released).unwrap_or(usize::MAX))
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let rows = self.rows(DEPTH, &[]).await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::backend("the queue depth query returned no row"))?;
        let jobs: i64 = row.try_get(0).map_err(PostgresError::query)?;
        Ok(QueueDepth {
            jobs: u64::try_from(jobs).unwrap_or(0),
            oldest: row.try_get(1).map_err(PostgresError::query)?,
        })
    }
}
