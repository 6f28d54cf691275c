//! [`CodeStore`]: where the per-user provisioning records live.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::code::IdHash;
use crate::error::StoreError;
use crate::record::ProvisionRecord;
use crate::types::Username;

/// Keeps one [`ProvisionRecord`] per user and swaps it by version.
///
/// Every rule of provisioning lives in the core; a store only has to keep records and make
/// [`compare_and_swap`](CodeStore::compare_and_swap) atomic. The conformance suite
/// (`swivel_provision::testing::conformance`, feature `testing`) checks an implementation.
///
/// # What an implementer must guarantee
/// - `compare_and_swap` is atomic and linearisable across every process and server instance
///   that shares the store: of many concurrent swaps from the same expected version, exactly
///   one returns `Ok(true)`.
/// - A swap that returned `Ok(true)` is durable (survives a crash) before it returns.
/// - At most one record holds a given device [`IdHash`].
/// - Errors are [`StoreError::Unavailable`] when a retry can help, else
///   [`StoreError::Backend`]; no error carries record contents.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
    /// The user's record, or `None` when there is none.
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError>;

    /// Stores `record` if the stored version is `expected_version`, where `None` means "no
    /// record yet" (insert). `record.version` is the new version, always greater than the
    /// expected one. Returns `Ok(false)`, changing nothing, when the stored version differs
    /// (or a record exists when inserting, or none exists when updating), or when another
    /// user's record already holds the same device Id hash.
    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError>;

    /// Deletes the user's record if its version is `expected_version`. Returns whether it
    /// was deleted.
    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError>;

    /// The record whose device has this provision Id hash, if any.
    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError>;

    /// Up to `limit` users whose pending code expired at or before `now`, oldest first. The
    /// core then clears them with `compare_and_swap`
    /// ([`Provisioner::purge_expired`](crate::Provisioner::purge_expired)).
    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError>;
}
