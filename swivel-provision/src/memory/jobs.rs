//! [`MemoryJobStore`]: a [`JobStore`] in memory, for tests of the durable queue's rules and
//! of hosts that use it. Nothing survives the process: it is not durable.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{MemoryStore, MemoryUsers, lock};
use crate::code::IdHash;
use crate::error::StoreError;
use crate::joint::UserRecordStore;
use crate::queue::{JobId, JobKind, JobStep, JobStore, QueueDepth, QueuedJob};
use crate::record::ProvisionRecord;
use crate::store::{CodeStore, RecordKey, UpdateStep, Updated, check_owner};
use crate::types::Username;
use crate::users::{UserAdmin, UserEntry, UserQuery, UserRepository};

/// A job and the worker that holds it (`None`: nobody).
type Held = (QueuedJob, Option<String>);

/// Records, users and the delivery queue in memory: a [`MemoryStore`] and a
/// [`MemoryUsers`] with a queue beside them, each transition with its job under one lock.
#[derive(Default)]
pub struct MemoryJobStore {
    records: MemoryStore,
    users: Arc<MemoryUsers>,
    jobs: Mutex<BTreeMap<JobId, Held>>,
}

impl std::fmt::Debug for MemoryJobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MemoryJobStore({} records, {} jobs)",
            self.records.len(),
            lock(&self.jobs).len()
        )
    }
}

impl MemoryJobStore {
    /// An empty store over a user directory.
    pub fn new(users: Arc<MemoryUsers>) -> Self {
        Self {
            records: MemoryStore::new(),
            users,
            jobs: Mutex::new(BTreeMap::new()),
        }
    }

    /// The user directory.
    pub fn users(&self) -> &Arc<MemoryUsers> {
        &self.users
    }

    /// Every job as stored (sealed), in Id order: what a test reads "raw".
    pub fn jobs(&self) -> Vec<QueuedJob> {
        lock(&self.jobs).values().map(|(j, _)| j.clone()).collect()
    }
}

#[async_trait]
impl CodeStore for MemoryJobStore {
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError> {
        self.records.load(username).await
    }

    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError> {
        self.records
            .compare_and_swap(expected_version, record)
            .await
    }

    async fn update(&self, key: RecordKey, step: UpdateStep) -> Result<Updated, StoreError> {
        self.records.update(key, step).await
    }

    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError> {
        self.records.delete(username, expected_version).await
    }

    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError> {
        self.records.find_by_id_hash(id_hash).await
    }

    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError> {
        self.records.list_expired(now, limit).await
    }
}

#[async_trait]
impl UserRepository for MemoryJobStore {
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError> {
        self.users.find_user(username).await
    }
}

#[async_trait]
impl UserAdmin for MemoryJobStore {
    async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError> {
        self.users.put_user(user).await
    }

    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError> {
        self.users.remove_user(username).await
    }

    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError> {
        self.users.list_users().await
    }

    async fn list_users_page(&self, query: &UserQuery) -> Result<Vec<UserEntry>, StoreError> {
        self.users.list_users_page(query).await
    }
}

impl UserRecordStore for MemoryJobStore {}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn update_with_job(
        &self,
        key: RecordKey,
        mut step: JobStep,
    ) -> Result<Updated, StoreError> {
        // Records, then jobs: the one lock order of this store.
        let mut r = lock(&self.records.records);
        let current = match &key {
            RecordKey::User(username) => r.by_user.get(username),
            RecordKey::Device(id_hash) => r.by_device.get(id_hash).and_then(|u| r.by_user.get(u)),
        };
        let owner = match (&key, current) {
            (_, Some(c)) => Some(c.username.clone()),
            (RecordKey::User(username), None) => Some(username.clone()),
            (RecordKey::Device(_), None) => None,
        };
        let user = owner.and_then(|name| lock(&self.users.users).get(&name).cloned());
        let Some((next, job)) = step(user.as_ref(), current) else {
            return Ok(Updated::Kept);
        };
        check_owner(&key, current, &next)?;
        if job.username != next.username {
            return Err(StoreError::backend(
                "an update step queued a job for another user",
            ));
        }
        if current.is_none() && r.by_user.contains_key(&next.username) {
            return Ok(Updated::Conflict);
        }
        let mut jobs = lock(&self.jobs);
        if !r.write(next) {
            return Ok(Updated::Conflict);
        }
        jobs.retain(|_, (j, _)| j.username != job.username || j.kind != JobKind::Code);
        jobs.insert(job.id.clone(), (job, None));
        Ok(Updated::Written)
    }

    async fn add_job(&self, job: &QueuedJob) -> Result<(), StoreError> {
        lock(&self.jobs).insert(job.id.clone(), (job.clone(), None));
        Ok(())
    }

    async fn claim_jobs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<QueuedJob>, StoreError> {
        let mut jobs = lock(&self.jobs);
        let mut due: Vec<(OffsetDateTime, JobId)> = jobs
            .values()
            .filter(|(j, _)| j.due_at <= now)
            .map(|(j, _)| (j.due_at, j.id.clone()))
            .collect();
        due.sort();
        let mut claimed = Vec::new();
        for (_, id) in due.into_iter().take(limit) {
            if let Some((job, holder)) = jobs.get_mut(&id) {
                job.due_at = lease_until;
                *holder = Some(owner.to_owned());
                claimed.push(job.clone());
            }
        }
        Ok(claimed)
    }

    async fn finish_job(&self, id: &JobId) -> Result<bool, StoreError> {
        Ok(lock(&self.jobs).remove(id).is_some())
    }

    async fn retry_job(
        &self,
        id: &JobId,
        owner: &str,
        due_at: OffsetDateTime,
        attempts: u32,
    ) -> Result<bool, StoreError> {
        let mut jobs = lock(&self.jobs);
        match jobs.get_mut(id) {
            Some((job, holder)) if holder.as_deref() == Some(owner) => {
                job.due_at = due_at;
                job.attempts = attempts;
                *holder = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_jobs(&self, owner: &str, now: OffsetDateTime) -> Result<usize, StoreError> {
        let mut jobs = lock(&self.jobs);
        let mut released = 0;
        for (job, holder) in jobs.values_mut() {
            if holder.as_deref() == Some(owner) {
                job.due_at = now;
                *holder = None;
                released += 1;
            }
        }
        Ok(released)
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        let jobs = lock(&self.jobs);
        Ok(QueueDepth {
            jobs: jobs.len() as u64,
            oldest: jobs.values().map(|(j, _)| j.created_at).min(),
        })
    }
}
