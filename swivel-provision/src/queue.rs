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
//! derived from the [`ServerKey`] (purpose `delivery-queue`), with the username and the job
//! Id as associated data (a sealed message moved to another user's or another job's row
//! does not open). The columns a store keeps in clear (user, channel, times, attempts)
//! are the ones it needs to schedule; the destination address, code and links are inside
//! the seal. A job is deleted once delivered, failed for good, or past its code's expiry.
//!
//! The rules of when to send, retry or drop live in the worker (feature `tokio`); a store
//! knows none of them.

use std::fmt;

use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_chacha::rand_core::RngCore;
use secrecy::zeroize::Zeroize;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::code::{CodeHash, ProvisionCode, ServerKey, with_thread_rng};
use crate::error::StoreError;
use crate::joint::UserRecordStore;
use crate::record::ProvisionRecord;
use crate::store::{RecordKey, Updated};
use crate::transport::{ProvisionLinks, ProvisionMessage};
use crate::types::{Channel, Destination, Username};
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
///   one transaction, and in the same transaction deletes every other job of that user (a
///   new code's message replaces the old code's unsent one); nothing at all when the step
///   returns `None` or the record is not written.
/// - [`claim_jobs`](JobStore::claim_jobs) is atomic across every process and instance
///   sharing the store: a job due at `now` is handed to one claimer, and to another only
///   after its lease ran out.
/// - A job is kept as given: the sealed bytes unchanged. No error carries a job's contents.
#[async_trait]
pub trait JobStore: UserRecordStore {
    /// As [`UserRecordStore::update_with_user`]; when the step's record is written, its job
    /// is queued in the same transaction and every other job of that user deleted.
    async fn update_with_job(&self, key: RecordKey, step: JobStep) -> Result<Updated, StoreError>;

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

/// What a sealed job holds: the message without its user (associated data) and its times
/// (in clear on the job).
#[derive(Serialize, Deserialize)]
struct Sealed {
    destination: Destination,
    code: Option<String>,
    provision: Option<String>,
    getsettings: Option<String>,
    complete: Option<String>,
    code_hash: CodeHash,
    validity_secs: u32,
}

/// Seals messages into [`QueuedJob`]s and opens them again; the key derives from the
/// [`ServerKey`], so every instance sharing that key opens every job.
pub(crate) struct JobSealer {
    cipher: XChaCha20Poly1305,
}

/// Associated data: the username and the job Id, each length-prefixed.
fn associated(username: &Username, id: &JobId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + username.as_str().len() + id.0.len());
    for part in [username.as_str(), id.as_str()] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

impl JobSealer {
    pub(crate) fn new(key: &ServerKey) -> Self {
        let mut derived = key.derive("delivery-queue", &[]);
        let cipher = XChaCha20Poly1305::new((&derived).into());
        derived.zeroize();
        Self { cipher }
    }

    /// A new job for `message`, due at `now`.
    pub(crate) fn seal(
        &self,
        message: &ProvisionMessage,
        code_hash: CodeHash,
        now: OffsetDateTime,
    ) -> QueuedJob {
        let id = JobId::generate();
        let links = &message.links;
        let body = Sealed {
            destination: message.destination.clone(),
            code: message.code.as_ref().map(|c| c.expose().to_owned()),
            provision: links.provision().map(str::to_owned),
            getsettings: links.getsettings().map(str::to_owned),
            complete: links.complete().map(str::to_owned),
            code_hash,
            validity_secs: message.validity_secs,
        };
        let mut plain = serde_json::to_vec(&body).expect("a message serialises");
        drop_secrets(body);
        let mut nonce = [0u8; 24];
        with_thread_rng(|rng| rng.fill_bytes(&mut nonce));
        let aad = associated(&message.username, &id);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any length a message has");
        plain.zeroize();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        QueuedJob {
            id,
            username: message.username.clone(),
            channel: message.destination.channel.clone(),
            created_at: now,
            due_at: now,
            expires_at: message.expires_at,
            attempts: 0,
            sealed: bytes,
        }
    }

    /// The message a job carries and its code's hash, or `None` when it does not open
    /// (another server key, or the row was altered).
    pub(crate) fn open(&self, job: &QueuedJob) -> Option<(ProvisionMessage, CodeHash)> {
        if job.sealed.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = job.sealed.split_at(24);
        let aad = associated(&job.username, &job.id);
        let mut plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?;
        let body: Option<Sealed> = serde_json::from_slice(&plain).ok();
        plain.zeroize();
        let body = body?;
        if body.destination.channel != job.channel {
            return None;
        }
        let code_hash = body.code_hash;
        let message = ProvisionMessage {
            username: job.username.clone(),
            destination: body.destination.clone(),
            expires_at: job.expires_at,
            validity_secs: body.validity_secs,
            code: body.code.as_deref().map(ProvisionCode::new),
            links: ProvisionLinks {
                provision: body.provision.clone().map(Into::into),
                getsettings: body.getsettings.clone(),
                complete: body.complete.clone().map(Into::into),
            },
            qr: std::sync::OnceLock::new(),
            render_qr: cfg!(feature = "qr"),
            job_id: Some(job.id.clone()),
        };
        drop_secrets(body);
        Some((message, code_hash))
    }
}

/// Zeroes the secret strings of a sealed body before it is dropped.
fn drop_secrets(mut body: Sealed) {
    for s in [&mut body.code, &mut body.provision, &mut body.complete]
        .into_iter()
        .flatten()
    {
        s.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(user: &str) -> ProvisionMessage {
        ProvisionMessage::new(
            Username::parse(user).unwrap(),
            Destination::email("a@example.com").unwrap(),
            Some(ProvisionCode::new("1234567890")),
            ProvisionMessage::links_for_test(
                Some("https://example.com/provision?code=1234567890"),
                None,
                None,
            ),
            OffsetDateTime::now_utc() + time::Duration::minutes(10),
            600,
        )
    }

    #[test]
    fn a_job_opens_with_the_same_key_only() {
        let key = ServerKey::from_bytes([7; 32]);
        let now = OffsetDateTime::now_utc();
        let job = JobSealer::new(&key).seal(&message("alice"), CodeHash([1; 32]), now);
        let (opened, hash) = JobSealer::new(&key).open(&job).expect("opens");
        assert_eq!(opened.code().map(|c| c.expose()), Some("1234567890"));
        assert_eq!(hash, CodeHash([1; 32]));
        assert_eq!(opened.job_id(), Some(&job.id));
        assert_eq!(
            opened.links().provision(),
            Some("https://example.com/provision?code=1234567890")
        );
        assert_eq!(opened.destination.address, "a@example.com");
        let other = JobSealer::new(&ServerKey::from_bytes([8; 32]));
        assert!(other.open(&job).is_none(), "another key does not open it");
    }

    #[test]
    fn a_sealed_message_moved_to_another_user_or_job_does_not_open() {
        let key = ServerKey::from_bytes([7; 32]);
        let sealer = JobSealer::new(&key);
        let job = sealer.seal(
            &message("alice"),
            CodeHash([1; 32]),
            OffsetDateTime::now_utc(),
        );
        let mut moved = job.clone();
        moved.username = Username::parse("mallory").unwrap();
        assert!(sealer.open(&moved).is_none());
        let mut renamed = job.clone();
        renamed.id = JobId::generate();
        assert!(sealer.open(&renamed).is_none());
        let mut flipped = job;
        let last = flipped.sealed.len() - 1;
        flipped.sealed[last] ^= 1;
        assert!(sealer.open(&flipped).is_none());
    }

    #[test]
    fn the_sealed_bytes_and_debug_hold_no_code_or_address() {
        let key = ServerKey::from_bytes([7; 32]);
        let job = JobSealer::new(&key).seal(
            &message("alice"),
            CodeHash([1; 32]),
            OffsetDateTime::now_utc(),
        );
        let raw = String::from_utf8_lossy(&job.sealed);
        assert!(!raw.contains("1234567890"));
        assert!(!raw.contains("a@example.com"));
        let shown = format!("{job:?}");
        assert!(!shown.contains("1234567890") && !shown.contains("a@example.com"));
    }

    #[test]
    fn job_ids_are_random_hex_and_parse_back() {
        let (a, b) = (JobId::generate(), JobId::generate());
        assert_ne!(a, b);
        assert_eq!(JobId::parse(a.as_str()).unwrap(), a);
        assert!(JobId::parse("not-an-id").is_err());
        assert!(JobId::parse(&"A".repeat(32)).is_err());
    }
}
