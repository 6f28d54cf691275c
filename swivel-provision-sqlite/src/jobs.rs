//! [`JobStore`] for [`SqliteStore`] on the `delivery_jobs` table. A job is written inside
//! the group commit of the record update that queues it (on the writer thread); added
//! jobs, claims, retries, releases and deletes are grouped writes too (a savepoint each in
//! the writer's next group commit, answered after it); the depth is a read.

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use swivel_provision::{
    Channel, JobId, JobKind, JobStep, JobStore, QueueDepth, QueuedJob, RecordKey, StoreError,
    Updated, Username,
};
use time::OffsetDateTime;

use crate::codes::{Step, unix_nanos};
use crate::error::SqliteError;
use crate::store::SqliteStore;

const COLUMNS: &str =
    "id, username, channel, created_ns, due_ns, expires_ns, attempts, sealed, kind";

fn from_nanos(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|_| StoreError::backend("a delivery job time is out of range"))
}

/// The columns of one job row, as read.
type RawJob = (String, String, String, i64, i64, i64, i64, Vec<u8>, String);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn to_job(raw: RawJob) -> Result<QueuedJob, StoreError> {
    let (id, username, channel, created, due, expires, attempts, sealed, kind) = raw;
    Ok(QueuedJob {
        id: JobId::parse(&id)?,
        username: Username::parse(&username).map_err(StoreError::backend)?,
        channel: channel
            .parse::<Channel>()
            .map_err(|_| StoreError::backend("a delivery job has an unknown channel"))?,
        kind: JobKind::parse(&kind)?,
        created_at: from_nanos(created)?,
        due_at: from_nanos(due)?,
        expires_at: from_nanos(expires)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::backend("a delivery job's attempts are out of range"))?,
        sealed,
    })
}

/// Inside the update that queues `job`: deletes the user's other code jobs (notices stay)
/// and inserts this one.
pub(crate) fn replace_jobs(
    conn: &Connection,
    path: &Path,
    job: &QueuedJob,
) -> Result<(), SqliteError> {
    conn.prepare_cached("DELETE FROM delivery_jobs WHERE username = ?1 AND kind = 'code'")
        .and_then(|mut s| s.execute([job.username.as_str()]))
        .map_err(|e| SqliteError::from_sqlite(path, e))?;
    insert_job(conn, path, job)
}

/// Inserts one job.
fn insert_job(conn: &Connection, path: &Path, job: &QueuedJob) -> Result<(), SqliteError> {
    conn.prepare_cached(
        "INSERT INTO delivery_jobs (id, username, channel, kind, created_ns, due_ns,
                                    expires_ns, attempts, lease_owner, sealed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            job.id.as_str(),
            job.username.as_str(),
            job.channel.as_str(),
            job.kind.as_str(),
            unix_nanos(job.created_at),
            unix_nanos(job.due_at),
            unix_nanos(job.expires_at),
            i64::from(job.attempts),
            job.sealed,
        ])
    })
    .map_err(|e| SqliteError::from_sqlite(path, e))?;
    Ok(())
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn update_with_job(&self, key: RecordKey, step: JobStep) -> Result<Updated, StoreError> {
        self.db.update(key, Step::WithJob(step)).await
    }

    async fn add_job(&self, job: &QueuedJob) -> Result<(), StoreError> {
        let job = job.clone();
        Ok(self
            .db
            .grouped(move |conn, path| insert_job(conn, path, &job))
            .await?)
    }

    async fn claim_jobs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<QueuedJob>, StoreError> {
        let (now, lease) = (unix_nanos(now), unix_nanos(lease_until));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let owner = owner.to_owned();
        let raw = self
            .db
            .grouped(move |conn, path| {
                // Inside the group's IMMEDIATE transaction: the select and the lease are one
                // step for every process.
                conn.prepare_cached(&format!(
                    "UPDATE delivery_jobs SET due_ns = ?2, lease_owner = ?3
                     WHERE id IN (SELECT id FROM delivery_jobs WHERE due_ns <= ?1
                                  ORDER BY due_ns, id LIMIT ?4)
                     RETURNING {COLUMNS}"
                ))
                .and_then(|mut s| {
                    s.query_map(params![now, lease, owner, limit], read_row)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?;
        let mut jobs = raw.into_iter().map(to_job).collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        Ok(jobs)
    }

    async fn finish_job(&self, id: &JobId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        Ok(self
            .db
            .grouped(move |conn, path| {
                conn.prepare_cached("DELETE FROM delivery_jobs WHERE id = ?1")
                    .and_then(|mut s| s.execute([&id]))
                    .map(|n| n == 1)
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }

    async fn retry_job(
        &self,
        id: &JobId,
        owner: &str,
        due_at: OffsetDateTime,
        attempts: u32,
    ) -> Result<bool, StoreError> {
        let (id, owner, due) = (id.as_str().to_owned(), owner.to_owned(), unix_nanos(due_at));
        Ok(self
            .db
            .grouped(move |conn, path| {
                conn.prepare_cached(
                    "UPDATE delivery_jobs SET due_ns = ?3, attempts = ?4, lease_owner = NULL
                     WHERE id = ?1 AND lease_owner = ?2",
                )
                .and_then(|mut s| s.execute(params![id, owner, due, i64::from(attempts)]))
                .map(|n| n == 1)
                .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }

    async fn release_jobs(&self, owner: &str, now: OffsetDateTime) -> Result<usize, StoreError> {
        let (owner, now) = (owner.to_owned(), unix_nanos(now));
        Ok(self
            .db
            .grouped(move |conn, path| {
                conn.prepare_cached(
                    "UPDATE delivery_jobs SET due_ns = ?2, lease_owner = NULL
                     WHERE lease_owner = ?1",
                )
                .and_then(|mut s| s.execute(params![owner, now]))
                .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let (jobs, oldest) = self
            .db
            .run(false, move |conn, path| {
                conn.prepare_cached("SELECT count(*), min(created_ns) FROM delivery_jobs")
                    .and_then(|mut s| {
                        s.query_row([], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
                        })
                    })
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?;
        Ok(QueueDepth {
            jobs: u64::try_from(jobs).unwrap_or(0),
            oldest: oldest.map(from_nanos).transpose()?,
        })
    }
}
