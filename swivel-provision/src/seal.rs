//! Sealing a queued message into a [`QueuedJob`] and opening it again
//! (XChaCha20-Poly1305; see [`queue`](crate::queue) for what is sealed and why).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_chacha::rand_core::RngCore;
use secrecy::zeroize::Zeroize;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::code::{CodeHash, ProvisionCode, ServerKey, with_thread_rng};
use crate::queue::JobKind;
use crate::queue::{JobId, QueuedJob};
use crate::transport::DeviceNotice;
use crate::transport::{ProvisionLinks, ProvisionMessage};
use crate::types::{Destination, DeviceInfo, Username};

/// How long a device-bound notice may wait in the queue before it is dropped.
const NOTICE_TTL: time::Duration = time::Duration::days(1);

/// What a sealed job holds: the message without its user (associated data) and its times
/// (in clear on the job).
#[derive(Serialize, Deserialize)]
struct Sealed {
    destination: Destination,
    code: Option<String>,
    provision: Option<String>,
    getsettings: Option<String>,
    complete: Option<String>,
    code_hash: Option<CodeHash>,
    validity_secs: u32,
    /// A device-bound notice: when, and the device logged.
    #[serde(default)]
    notice: Option<(i64, Option<DeviceInfo>)>,
}

/// Seals messages into [`QueuedJob`]s and opens them again; the key derives from the
/// [`ServerKey`], so every instance sharing that key opens every job.
pub(crate) struct JobSealer {
    cipher: XChaCha20Poly1305,
}

/// Associated data: the username and the job Id, each length-prefixed.
fn associated(username: &Username, id: &JobId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + username.as_str().len() + id.as_str().len());
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

    /// A new job for `message` (a code's, with its hash, or a notice), due at `now`.
    pub(crate) fn seal(
        &self,
        message: &ProvisionMessage,
        code_hash: Option<CodeHash>,
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
            notice: message
                .notice()
                .map(|n| (n.at.unix_timestamp(), n.device.clone())),
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
            kind: if message.notice().is_some() {
                JobKind::Notice
            } else {
                JobKind::Code
            },
            created_at: now,
            due_at: now,
            expires_at: if message.notice().is_some() {
                now + NOTICE_TTL
            } else {
                message.expires_at
            },
            attempts: 0,
            sealed: bytes,
        }
    }

    /// The message a job carries and its code's hash (`None` for a notice), or `None` when
    /// it does not open (another server key, or the row was altered).
    pub(crate) fn open(&self, job: &QueuedJob) -> Option<(ProvisionMessage, Option<CodeHash>)> {
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
        let is_notice = body.notice.is_some();
        if body.destination.channel != job.channel || is_notice != (job.kind == JobKind::Notice) {
            return None;
        }
        let code_hash = body.code_hash;
        let message = match &body.notice {
            Some((at, device)) => ProvisionMessage::device_notice(
                job.username.clone(),
                body.destination.clone(),
                DeviceNotice {
                    at: OffsetDateTime::from_unix_timestamp(*at).ok()?,
                    device: device.clone(),
                },
            ),
            None => ProvisionMessage {
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
                job_id: None,
                notice: None,
            },
        }
        .with_job_id(job.id.clone());
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
        let job = JobSealer::new(&key).seal(&message("alice"), Some(CodeHash([1; 32])), now);
        let (opened, hash) = JobSealer::new(&key).open(&job).expect("opens");
        assert_eq!(opened.code().map(|c| c.expose()), Some("1234567890"));
        assert_eq!(hash, Some(CodeHash([1; 32])));
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
            Some(CodeHash([1; 32])),
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
            Some(CodeHash([1; 32])),
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
