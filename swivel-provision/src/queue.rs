//! [`JobStore`]: the durable delivery queue, kept in the store beside the records.
//!
//! # Why
//! With queued delivery in process memory, a message queued when the process dies is never
//! sent. A [`JobStore`] keeps each queued message as a row (a [`QueuedJob`]) written in the
//! same transaction as the record whose code it carries
//! ([`JobStore::update_with_job`]): a code exists exactly when its message is queued.
//! Workers of every server instance sharing the store claim jobs with a lease
//! ([`JobStore::claim_jobs`]); a crashed worker's jobs are claimed again once their lease
//! ran out. Delivery is at least once (a worker may die after sending and before
//! [`finish_job`](JobStore::finish_job)); each message carries its [`JobId`] so that a
//! receiver can drop a duplicate.
//!
//! # Secrecy
//! The message holds the code, so a job stores it sealed: XChaCha20-Poly1305 under a key
//! derived from the [`ServerKey`](crate::ServerKey) (purpose `delivery-queue`), with the username and the job
//! Id as associated data (a sealed message moved to another user's or another job's row
//! does not open). The columns a store keeps in clear (user, channel, times, attempts)
//! are the ones it needs to schedule; the destination address, code and links are inside
//! the seal. A job is deleted once delivered, failed for good, or past its code's expiry.
//!
//! The rules of when to send, retry or drop live in the worker (feature `tokio`); a store
//! knows none of them.

use std::fmt;

use async_trait::async_trait;
use rand_chacha::rand_core::RngCore;
use time::OffsetDateTime;

use crate::code::with_thread_rng;
use crate::error::StoreError;
use crate::joint::UserRecordStore;
use crate::record::ProvisionRecord;
use crate::store::{RecordKey, Updated};
use crate::types::{Channel, Username};
use crate::users::UserEntry;

/// A job's Id: 128 random bits as 32 lowercase hex digits. Not secret: it names the job in
/// message headers (an SMTP `Message-ID`, an SMS reference) so that a receiver can drop a
/// message delivered twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    /// A new random Id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        with_thread_rng(|rng| rng.fill_bytes(&mut bytes));
        Self(hex::encode(bytes))
    }

    /// Reads an Id a store kept.
    ///
    /// # Errors
    /// [`StoreError::Backend`] unless it is 32 lowercase hex digits.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let ok = text.len() == 32
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(StoreError::backend(
                "a delivery job Id is not 32 hex digits",
            ))
        }
    }

    /// The Id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a job carries, in clear for the store: a provision code's message (one per user:
/// a new code's message replaces it), or a notice (kept beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobKind {
    /// The message of a provision code.
    Code,
    /// A device-bound notice ([`Policy::notify_device_bound`](crate::Policy::notify_device_bound)).
    Notice,
}

impl JobKind {
    /// `code` or `notice`, as stores keep it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Code => "code",
            JobKind::Notice => "notice",
        }
    }

    /// Reads what [`JobKind::as_str`] wrote.
    ///
    /// # Errors
    /// [`StoreError::Backend`] for anything else.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "code" => Ok(JobKind::Code),
            "notice" => Ok(JobKind::Notice),
            _ => Err(StoreError::backend("a delivery job has an unknown kind")),
        }
    }
}

/// A queued message as a [`JobStore`] keeps it: what scheduling needs in clear, the
/// message sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct QueuedJob {
    /// The job.
    pub id: JobId,
    /// Whose code it carries.
    pub username: Username,
    /// Which transport delivers it.
    pub channel: Channel,
    /// A code's message or a notice.
    pub kind: JobKind,
    /// When it was queued.
    pub created_at: OffsetDateTime,
    /// When it may be claimed next: the next attempt, or, while claimed, the end of the
    /// lease.
    pub due_at: OffsetDateTime,
    /// When its code expires; past it the job is dropped unsent.
    pub expires_at: OffsetDateTime,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// The sealed message: a 24-byte nonce, then the XChaCha20-Poly1305 ciphertext.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for QueuedJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedJob")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("channel", &self.channel)
            .field("kind", &self.kind)
            .field("created_at", &self.created_at)
            .field("due_at", &self.due_at)
            .field("expires_at", &self.expires_at)
            .field("attempts", &self.attempts)
            .field("sealed", &format_args!("{} bytes", self.sealed.len()))
            .finish()
    }
}

/// How many jobs wait, and since when (for readiness checks and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Jobs in the queue, claimed or not.
    pub jobs: u64,
    /// When the oldest of them was queued.
    pub oldest: Option<OffsetDateTime>,
}

/// The transition a [`JobStore::update_with_job`] applies: as a
/// [`UserUpdateStep`](crate::UserUpdateStep), and with the record to store, the job to
/// queue in the same transaction. The same contract otherwise (it may run more than once;
/// only the last call counts; it must not block).
pub type JobStep = Box<
    dyn FnMut(Option<&UserEntry>, Option<&ProvisionRecord>) -> Option<(ProvisionRecord, QueuedJob)>
        + Send,
>;

/// A [`UserRecordStore`] that also keeps the durable delivery queue.
///
/// The conformance suite (`swivel_provision::testing::conformance::queue_run`, feature
/// `testing`) checks an implementation.
///
/// # What an implementer must guarantee
/// - [`update_with_job`](JobStore::update_with_job) writes the step's record and its job in
///   one transaction, and in the same transaction deletes every other [`JobKind::Code`] job
///   of that user (a new code's message replaces the old code's unsent one; notices stay);
///   nothing at all when the step returns `None` or the record is not written.
/// - [`claim_jobs`](JobStore::claim_jobs) is atomic across every process and instance
///   sharing the store: a job due at `now` is handed to one claimer, and to another only
///   after its lease ran out.
/// - A job is kept as given: the sealed bytes unchanged. No error carries a job's contents.
#[async_trait]
pub trait JobStore: UserRecordStore {
    /// As [`UserRecordStore::update_with_user`]; when the step's record is written, its job
    /// is queued in the same transaction and every other [`JobKind::Code`] job of that user
    /// deleted.
    async fn update_with_job(&self, key: RecordKey, step: JobStep) -> Result<Updated, StoreError>;

    /// Queues one job on its own (a notice), deleting nothing.
    async fn add_job(&self, job: &QueuedJob) -> Result<(), StoreError>;

    /// Up to `limit` jobs due at `now` (`due_at <= now`), earliest first, each leased to
    /// `owner` until `lease_until` (their `due_at` becomes `lease_until`, which the returned
    /// jobs show). Expired jobs are claimed too: the worker drops them with an event.
    async fn claim_jobs(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        owner: &str,
        limit: usize,
    ) -> Result<Vec<QueuedJob>, StoreError>;

    /// Deletes the job (delivered, failed for good, expired, or replaced). Returns whether
    /// it was there.
    async fn finish_job(&self, id: &JobId) -> Result<bool, StoreError>;

    /// Gives a job `owner` holds back to the queue, due at `due_at` after `attempts`
    /// attempts. Returns `false`, changing nothing, when `owner` no longer holds it.
    async fn retry_job(
        &self,
        id: &JobId,
        owner: &str,
        due_at: OffsetDateTime,
        attempts: u32,
    ) -> Result<bool, StoreError>;

    /// Gives every job `owner` holds back to the queue, due at `now` (a worker that stops
    /// releases what it claimed). Returns how many.
    async fn release_jobs(&self, owner: &str, now: OffsetDateTime) -> Result<usize, StoreError>;

    /// How many jobs wait, and the oldest.
    async fn queue_depth(&self) -> Result<QueueDepth, StoreError>;
}
