//! [`Timed`]: a store that times each call the provisioner makes to it
//! (`swivel_store_call_duration_seconds{op, result}`).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use swivel_provision::{
    CodeStore, CounterStore, IdHash, JobId, JobStep, JobStore, ProvisionRecord, QueueDepth,
    QueuedJob, RecordKey, StoreError, UpdateStep, Updated, UserEntry, UserRecordStore,
    UserRepository, UserUpdateStep, Username, Window,
};
use time::OffsetDateTime;

use super::Metrics;

/// A store (`T`: a [`CodeStore`], a [`UserRepository`] or both) whose calls are timed into
/// [`Metrics`]. Only the outer call is timed: what the inner store does inside an update
/// is its own affair.
pub struct Timed<T: ?Sized> {
    inner: Arc<T>,
    metrics: Arc<Metrics>,
}

impl<T: ?Sized> Timed<T> {
    /// Times the calls to `inner`.
    pub fn new(inner: Arc<T>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    async fn time<R>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<R, StoreError>>,
    ) -> Result<R, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .observe_store(op, result.is_ok(), started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl<T: CodeStore + ?Sized> CodeStore for Timed<T> {
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError> {
        self.time("load", self.inner.load(username)).await
    }

    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError> {
        self.time(
            "compare_and_swap",
            self.inner.compare_and_swap(expected_version, record),
        )
        .await
    }

    async fn update(&self, key: RecordKey, step: UpdateStep) -> Result<Updated, StoreError> {
        self.time("update", self.inner.update(key, step)).await
    }

    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError> {
        self.time("delete", self.inner.delete(username, expected_version))
            .await
    }

    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError> {
        self.time("find_by_id_hash", self.inner.find_by_id_hash(id_hash))
            .await
    }

    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError> {
        self.time("list_expired", self.inner.list_expired(now, limit))
            .await
    }
}

#[async_trait]
impl<T: UserRepository + ?Sized> UserRepository for Timed<T> {
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError> {
        self.time("find_user", self.inner.find_user(username)).await
    }
}

#[async_trait]
impl<T: UserRecordStore + ?Sized> UserRecordStore for Timed<T> {
    async fn update_with_user(
        &self,
        key: RecordKey,
        step: UserUpdateStep,
    ) -> Result<Updated, StoreError> {
        self.time("update_with_user", self.inner.update_with_user(key, step))
            .await
    }
}

#[async_trait]
impl<T: JobStore + ?Sized> JobStore for Timed<T> {
    async fn update_with_job(&self, key: RecordKey, step: JobStep) -> Result<Updated, StoreError> {
        self.time("update_with_job", self.inner.update_with_job(key, step))
            .await
    }

    async fn add_job(&self, job: &QueuedJob) -> Result<(), StoreError> {
        self.time("add_job", self.inner.add_job(job)).await
    }

    async fn claim_jobs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<QueuedJob>, StoreError> {
        self.time(
            "claim_jobs",
            self.inner.claim_jobs(now, lease_until, owner, limit),
        )
        .await
    }

    async fn finish_job(&self, id: &JobId) -> Result<bool, StoreError> {
        self.time("finish_job", self.inner.finish_job(id)).await
    }

    async fn retry_job(
        &self,
        id: &JobId,
        owner: &str,
        due_at: OffsetDateTime,
        attempts: u32,
    ) -> Result<bool, StoreError> {
        self.time(
            "retry_job",
            self.inner.retry_job(id, owner, due_at, attempts),
        )
        .await
    }

    async fn release_jobs(&self, owner: &str, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.time("release_jobs", self.inner.release_jobs(owner, now))
            .await
    }

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError> {
        self.time("queue_depth", self.inner.queue_depth()).await
    }
}

/// The throttles' counts (`op` `counter_hit`, `purge_counters`): what a shared limit costs
/// per request, and whether the store fails it.
#[async_trait]
impl<T: CounterStore + ?Sized> CounterStore for Timed<T> {
    async fn hit(&self, key: &str, window: Window) -> Result<u64, StoreError> {
        self.time("counter_hit", self.inner.hit(key, window)).await
    }

    async fn purge_counters(&self, t: OffsetDateTime) -> Result<u64, StoreError> {
        self.time("purge_counters", self.inner.purge_counters(t))
            .await
    }
}
