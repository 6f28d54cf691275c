//! [`CodeStore`]: where the per-user provisioning records live.
//!
//! # One store call per transition
//! Every change of a record goes through [`CodeStore::update`]: the store finds the record
//! (by [`RecordKey`]), hands it to the core's pure transition (an [`UpdateStep`]), and
//! writes what the step returns — in one call and one transaction, with no lost update.
//! The step holds every rule; the store holds none. Stores that can only load and
//! compare-and-swap keep the default implementation, which retries on conflict; the SQLite
//! and PostgreSQL stores override it (one transaction, concurrent updates sharing one
//! commit where they can). An update is acknowledged only once it is durable. A store that
//! is also the user directory implements [`UserRecordStore`](crate::UserRecordStore) too,
//! so that the user lookup of a transition rides in the same call.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::code::IdHash;
use crate::error::StoreError;
use crate::record::ProvisionRecord;
use crate::types::Username;

/// Load-and-swap attempts of the default [`CodeStore::update`] before it gives up with
/// [`Updated::Conflict`] (the provisioner then answers
/// [`Error::Contention`](crate::Error::Contention)).
pub const MAX_UPDATE_ATTEMPTS: usize = 100;

/// Which record an [`update`](CodeStore::update) works on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKey {
    /// The user's record.
    User(Username),
    /// The record whose device has this provision Id hash (a device's `SecurityStrings`
    /// request carries only the Id).
    Device(IdHash),
}

/// The pure transition an [`update`](CodeStore::update) applies: given the current record
/// (`None`: there is none), the record to store (its `version` greater than the current
/// one's, and the same user), or `None` to store nothing.
///
/// It may be called more than once (a store that retries on conflict calls it again with
/// the newer record); only the last call counts. It must not block: stores may run it on a
/// writer thread that serves other updates. A step passes its own answer (an error, a
/// value) back to its caller through state it captured.
pub type UpdateStep = Box<dyn FnMut(Option<&ProvisionRecord>) -> Option<ProvisionRecord> + Send>;

/// What an [`update`](CodeStore::update) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Updated {
    /// The step returned `None`: nothing was written.
    Kept,
    /// The step's record was written (and is durable).
    Written,
    /// Nothing was written: the record kept changing under a retrying store
    /// ([`MAX_UPDATE_ATTEMPTS`]), or the step's record would give a device Id hash that
    /// another user's record holds.
    Conflict,
}

/// Keeps one [`ProvisionRecord`] per user and swaps it by version.
///
/// Every rule of provisioning lives in the core; a store only has to keep records and make
/// [`compare_and_swap`](CodeStore::compare_and_swap) atomic (and may override
/// [`update`](CodeStore::update) to apply a transition in one transaction). The conformance suite
/// (`swivel_provision::testing::conformance`, feature `testing`) checks an implementation.
///
/// # What an implementer must guarantee
/// - `compare_and_swap` is atomic and linearisable across every process and server instance
///   that shares the store: of many concurrent swaps from the same expected version, exactly
///   one returns `Ok(true)`.
/// - A swap that returned `Ok(true)` is durable (survives a crash) before it returns.
/// - [`update`](CodeStore::update) is one atomic read-transition-write: no other write of
///   the same record comes between the read the step sees and the write of its result.
///   Concurrent updates may share one commit (group commit), but each is acknowledged only
///   after the commit that holds it returned.
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

    /// Loads the record `key` names, hands it to `step`, and stores what `step` returns, as
    /// one atomic operation (see [`UpdateStep`] and the contract above). The step's record
    /// must belong to the same user as the key (or, for [`RecordKey::Device`] with no
    /// record found, to any user that has none yet); a record of another user is refused
    /// with [`StoreError::Backend`].
    ///
    /// The default implementation loads ([`load`](CodeStore::load) or
    /// [`find_by_id_hash`](CodeStore::find_by_id_hash)), calls the step and
    /// [`compare_and_swap`](CodeStore::compare_and_swap)s, retrying up to
    /// [`MAX_UPDATE_ATTEMPTS`] times. Stores that can do it in one transaction should
    /// override it.
    async fn update(&self, key: RecordKey, mut step: UpdateStep) -> Result<Updated, StoreError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let current = match &key {
                RecordKey::User(username) => self.load(username).await?,
                RecordKey::Device(id_hash) => self.find_by_id_hash(id_hash).await?,
            };
            let Some(next) = step(current.as_ref()) else {
                return Ok(Updated::Kept);
            };
            check_owner(&key, current.as_ref(), &next)?;
            if self
                .compare_and_swap(current.as_ref().map(|c| c.version), &next)
                .await?
            {
                return Ok(Updated::Written);
            }
        }
        Ok(Updated::Conflict)
    }

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

/// Refuses a step's record that belongs to another user than the one `key` and `current`
/// name (the check every [`CodeStore::update`] makes before it writes).
///
/// # Errors
/// [`StoreError::Backend`] when the users differ.
pub fn check_owner(
    key: &RecordKey,
    current: Option<&ProvisionRecord>,
    next: &ProvisionRecord,
) -> Result<(), StoreError> {
    let expected = match (key, current) {
        (_, Some(current)) => Some(&current.username),
        (RecordKey::User(username), None) => Some(username),
        (RecordKey::Device(_), None) => None,
    };
    match expected {
        Some(user) if *user != next.username => Err(StoreError::backend(
            "an update step returned a record of another user",
        )),
        _ => Ok(()),
    }
}

impl From<&Username> for RecordKey {
    fn from(username: &Username) -> Self {
        RecordKey::User(username.clone())
    }
}

impl From<Username> for RecordKey {
    fn from(username: Username) -> Self {
        RecordKey::User(username)
    }
}

impl From<IdHash> for RecordKey {
    fn from(id_hash: IdHash) -> Self {
        RecordKey::Device(id_hash)
    }
}
