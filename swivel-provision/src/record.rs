//! The per-user provisioning record that a [`CodeStore`](crate::CodeStore) keeps.
//!
//! The core owns every change to it (see [`state`](crate::state)); stores only load it and
//! swap it by version. It holds no secret in clear: the pending code and the provision Id
//! are kept as keyed hashes and the security strings are derived, never stored.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::code::{CodeHash, IdHash};
use crate::types::{DeviceInfo, Username};

/// Who asked for a provision code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// An administrator (console "Reprovision", API, command line).
    Admin,
    /// The user, on the self-service page (only when the policy allows it).
    SelfService,
}

/// A provision code waiting to be redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// Keyed hash of the code.
    pub code_hash: CodeHash,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Wrong attempts left before it is burned.
    pub attempts_left: u8,
    /// Who asked for it.
    pub origin: Origin,
}

/// The user's one provisioned device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Keyed hash of the device's provision Id.
    pub id_hash: IdHash,
    /// When it was provisioned.
    #[serde(with = "time::serde::rfc3339")]
    pub provisioned_at: OffsetDateTime,
    /// What the device said about itself (only when the policy logs device information).
    pub info: Option<DeviceInfo>,
    /// Generation of the security strings last downloaded; 0 until the first download.
    pub generation: u32,
    /// Indices (1–99) of the current generation spent by a right one-time code, as bits (a
    /// wrong code spends none).
    pub used_indices: u128,
    /// No longer counted: always 0 in records written now, kept so that records of earlier
    /// versions read back. A limit on the device's wrong codes let a stranger block the
    /// user's right code; wrong one-time codes are limited per account and client address
    /// by the host ([`Policy::max_otc_failures`](crate::Policy::max_otc_failures)) and on
    /// the account ([`Policy::max_account_failures`](crate::Policy::max_account_failures)).
    #[serde(default)]
    pub otc_failures: u8,
}

/// One user's provisioning state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionRecord {
    /// The user.
    pub username: Username,
    /// Incremented by every change; stores swap only when the version they hold matches.
    pub version: u64,
    /// The code waiting to be redeemed, if any.
    pub pending: Option<PendingCode>,
    /// The provisioned device, if any.
    pub device: Option<Device>,
    /// When the user last asked for a code on the self-service page (rate limit).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_self_request: Option<OffsetDateTime>,
    /// Failed redeems and one-time codes in a row, across codes (a success resets it).
    #[serde(default)]
    pub failures: u32,
    /// When the last of those failures happened.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_failure_at: Option<OffsetDateTime>,
    /// When the account was locked for too many failures in a row; it stays locked (no new
    /// codes, no redeems) until an administrator unlocks it.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub locked_at: Option<OffsetDateTime>,
}

/// How long a record that holds nothing but a count of failures (no device, no pending
/// code, not locked) is kept after its last failure before purging drops it. Such records
/// are made for every username a device or `/login` names, known or not, so that an unknown
/// name costs the same work as a known one; a name the directory does not know never
/// locks, so this bounds what they take up.
pub const FAILURE_RECORD_TTL: time::Duration = time::Duration::days(1);

impl ProvisionRecord {
    /// A new, empty record (version 0: not yet stored).
    pub fn new(username: Username) -> Self {
        Self {
            username,
            version: 0,
            pending: None,
            device: None,
            last_self_request: None,
            failures: 0,
            last_failure_at: None,
            locked_at: None,
        }
    }

    /// Whether the account is locked (too many failures in a row).
    pub fn is_locked(&self) -> bool {
        self.locked_at.is_some()
    }

    /// When [`Provisioner::purge_expired`](crate::Provisioner::purge_expired) should next
    /// look at this record: when its pending code expires, or, for a record holding only a
    /// count of failures, [`FAILURE_RECORD_TTL`] after the last one. Stores index this for
    /// [`CodeStore::list_expired`](crate::CodeStore::list_expired).
    pub fn purge_due_at(&self) -> Option<OffsetDateTime> {
        if let Some(p) = &self.pending {
            return Some(p.expires_at);
        }
        if self.device.is_none() && self.locked_at.is_none() {
            return self.last_failure_at.map(|t| t + FAILURE_RECORD_TTL);
        }
        None
    }

    /// When the pending code expires, if there is one.
    pub fn pending_expires_at(&self) -> Option<OffsetDateTime> {
        self.pending.as_ref().map(|p| p.expires_at)
    }

    /// The device's provision Id hash, if there is a device (stores index this, uniquely,
    /// for [`CodeStore::find_by_id_hash`](crate::CodeStore::find_by_id_hash)).
    pub fn device_id_hash(&self) -> Option<IdHash> {
        self.device.as_ref().map(|d| d.id_hash)
    }

    /// The record as JSON bytes, the form the bundled stores keep.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serialises")
    }

    /// A record from the JSON bytes of [`ProvisionRecord::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
