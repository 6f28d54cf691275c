//! The conformance suite against the in-memory store, and against a store that offers only
//! load and compare-and-swap (so `CodeStore::update` is the trait's default); the users
//! page of the memory directory and of the trait's default.

use std::sync::Arc;

use async_trait::async_trait;
use swivel_provision::{
    CodeStore, IdHash, MemoryStore, MemoryUsers, ProvisionRecord, StoreError, UserAdmin, UserEntry,
    UserRepository, Username,
};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    swivel_provision::testing::conformance::run(Arc::new(MemoryStore::new())).await;
}

/// A third-party store: every method but `update`, which stays the default.
struct CasOnly(MemoryStore);

#[async_trait]
impl CodeStore for CasOnly {
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError> {
        self.0.load(username).await
    }

    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError> {
        // Yield between the load and the swap so that concurrent updates really interleave.
        tokio::task::yield_now().await;
        self.0.compare_and_swap(expected_version, record).await
    }

    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError> {
        self.0.delete(username, expected_version).await
    }

    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError> {
        self.0.find_by_id_hash(id_hash).await
    }

    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError> {
        self.0.list_expired(now, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_update_over_compare_and_swap_conforms() {
    swivel_provision::testing::conformance::run(Arc::new(CasOnly(MemoryStore::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_event_log_passes_the_event_checks() {
    swivel_provision::testing::conformance::events_run(Arc::new(
        swivel_provision::MemoryEvents::new(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_job_store_passes_the_queue_suite() {
    let store = Arc::new(swivel_provision::MemoryJobStore::new(Arc::new(
        MemoryUsers::new(),
    )));
    swivel_provision::testing::conformance::run_with_users(store.clone()).await;
    swivel_provision::testing::conformance::queue_run(store).await;
}

/// A directory that implements only what `UserAdmin` requires, as a third-party store
/// might: it gets the default `list_users_page` (over `list_users`).
struct ListOnly(MemoryUsers);

#[async_trait]
impl UserRepository for ListOnly {
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError> {
        self.0.find_user(username).await
    }
}

#[async_trait]
impl UserAdmin for ListOnly {
    async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError> {
        self.0.put_user(user).await
    }

    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError> {
        self.0.remove_user(username).await
    }

    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError> {
        self.0.list_users().await
    }
}

#[tokio::test]
async fn users_pages_of_memory_and_of_the_default_implementation() {
    use swivel_provision::testing::conformance::users_page;
    users_page(&MemoryUsers::new()).await;
    users_page(&ListOnly(MemoryUsers::new())).await;
}
