//! [`UserRecordStore`]: a code store that also holds the user directory, so that the user
//! lookup of a transition rides in the same store call as its update.
//!
//! # Why
//! Each transition needs the user's directory entry (does the user exist, where does the
//! code go, may this device download strings) and then updates the user's record. With
//! the directory and the records in one database, the store can read both and write the
//! result in one call and one transaction ([`UserRecordStore::update_with_user`]): a
//! request, a redeem and a strings download each make one store call instead of two or
//! three (for stores whose calls are each a hop to another thread or a round trip, most of
//! their cost).
//!
//! The provisioner uses it when it is built with
//! [`ProvisionerBuilder::store_with_users`](crate::ProvisionerBuilder::store_with_users);
//! with a separate directory it makes the same calls one after the other
//! ([`update_with_user_via`]). The step still holds every rule; the store holds none.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::record::ProvisionRecord;
use crate::store::{CodeStore, MAX_UPDATE_ATTEMPTS, RecordKey, Updated};
use crate::users::{UserEntry, UserRepository};

/// The pure transition an [`update_with_user`](UserRecordStore::update_with_user) applies:
/// given the user's directory entry (`None`: no such user) and the current record (`None`:
/// there is none), the record to store, or `None` to store nothing. The same contract as
/// [`UpdateStep`](crate::UpdateStep) otherwise (it may run more than once; only the last
/// call counts; it must not block).
///
/// The user is the one the key names ([`RecordKey::User`]), or the owner of the record
/// found ([`RecordKey::Device`]; no user when no record was found).
pub type UserUpdateStep =
    Box<dyn FnMut(Option<&UserEntry>, Option<&ProvisionRecord>) -> Option<ProvisionRecord> + Send>;

/// A [`CodeStore`] that is also the [`UserRepository`] (one database for both).
///
/// # What an implementer must guarantee
/// Everything [`CodeStore::update`] guarantees, and that the user entry the step sees is
/// the one [`UserRepository::find_user`] would have answered at the time of the read (the
/// same transaction's read, for stores that override the default).
#[async_trait]
pub trait UserRecordStore: CodeStore + UserRepository {
    /// Reads the user's directory entry and the record `key` names, hands both to `step`,
    /// and stores what `step` returns — one call. The default makes the calls one after the
    /// other ([`update_with_user_via`]); stores that hold both in one database should read
    /// the user inside the update's own transaction.
    async fn update_with_user(
        &self,
        key: RecordKey,
        step: UserUpdateStep,
    ) -> Result<Updated, StoreError> {
        update_with_user_via(self, self, key, step).await
    }
}

/// [`UserRecordStore::update_with_user`] over a code store and a separate directory: the
/// user is looked up first ([`RecordKey::Device`]: the owner of the record found, whose
/// owner is checked again inside the update; a record that changed owner in between is
/// read again), then [`CodeStore::update`] runs the step.
///
/// # Errors
/// The store's and the directory's errors.
pub async fn update_with_user_via(
    store: &(impl CodeStore + ?Sized),
    users: &(impl UserRepository + ?Sized),
    key: RecordKey,
    step: UserUpdateStep,
) -> Result<Updated, StoreError> {
    let step = Arc::new(Mutex::new(step));
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let owner = match &key {
            RecordKey::User(username) => Some(username.clone()),
            RecordKey::Device(id_hash) => store.find_by_id_hash(id_hash).await?.map(|r| r.username),
        };
        let user = match &owner {
            Some(name) => users.find_user(name).await?,
            None => None,
        };
        let by_device = matches!(key, RecordKey::Device(_));
        let moved = Arc::new(AtomicBool::new(false));
        let (inner, seen) = (Arc::clone(&step), Arc::clone(&moved));
        let updated = store
            .update(
                key.clone(),
                Box::new(move |current| {
                    if by_device && current.map(|c| &c.username) != owner.as_ref() {
                        // The record under this Id appeared, went or changed hands since
                        // the lookup: look again.
                        seen.store(true, Ordering::Relaxed);
                        return None;
                    }
                    let mut step = inner.lock().unwrap_or_else(|e| e.into_inner());
                    (*step)(user.as_ref(), current)
                }),
            )
            .await?;
        if !moved.load(Ordering::Relaxed) {
            return Ok(updated);
        }
    }
    Ok(Updated::Conflict)
}
