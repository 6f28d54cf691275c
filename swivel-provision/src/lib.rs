//! # swivel-provision
//!
//! Bind **one mobile device per user** with a **single-use, short-lived provision code**
//! sent over the user's own transport, then hand that device its **security strings**: the
//! one-time-code material the user combines with a PIN. A Rust reproduction of Swivel's
//! *Mobile Provision Code* feature, for authentication servers that embed it.
//!
//! Storage, transports, the user directory, the clock and randomness are traits
//! ([`CodeStore`], [`UserRepository`], [`Transport`], [`StringGenerator`],
//! [`SiteDirectory`], [`Clock`], [`EventSink`], [`EventStore`], [`CounterStore`] for
//! throttles shared by a cluster, and [`JobStore`] for the durable delivery queue); the
//! [`Provisioner`] owns every rule of the state machine (see [`state`]) and of the queue
//! (`Delivery::Durable`), so every store behaves the same.
//!
//! After each successful redeem the user is told that a new device was bound
//! ([`DeviceNotice`], policy [`Policy::notify_device_bound`], default on), the way provision
//! messages go.
//!
//! (The end-to-end example lives in the crate README and in `Provisioner`'s docs.)
//!
//! # Security
//! - Codes come from ChaCha20 seeded by the operating system (one generator per thread,
//!   seeded again after every 1,024 codes or Ids), are compared in constant time
//!   and are stored only as HMAC-SHA256 under the [`ServerKey`]. Provision Ids likewise.
//!   Security strings are derived from the key, never stored.
//! - Nothing secret reaches a log, a `Debug` output or an error message: secrets are
//!   `secrecy` types reached only through `expose` methods.
//! - Keep the [`ServerKey`] out of the database; share it between the instances of a
//!   cluster.
//!
//! # What this crate does not do
//! - It does not serve HTTP or parse URLs: hosts do (see `examples/provision-server`).
//! - It does not authenticate administrators or throttle clients: it limits self-service
//!   requests per user and failures per account (see [`Policy`]); throttles per client
//!   address belong to the host, which can count them across a cluster in a
//!   [`CounterStore`].
//! - It does not store PINs: hosts pass the PIN to [`Provisioner::verify_otc`].

pub mod agentxml;
pub mod clock;
pub mod code;
pub mod counter;
pub mod error;
pub mod event_log;
pub mod events;
pub mod joint;
pub mod memory;
pub mod policy;
mod provisioner;
#[cfg(feature = "qr")]
pub mod qr;
pub mod queue;
pub mod record;
pub mod settings;
pub mod site;
pub mod ssd;
pub mod state;
pub mod store;
pub mod strings;
pub mod transport;
pub mod types;
pub mod users;

mod delivery;
#[cfg(feature = "tokio")]
mod durable;
#[cfg(feature = "tokio")]
mod seal;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{Clock, SystemClock};
pub use code::{CodeHash, IdHash, ProvisionCode, ProvisionId, ServerKey};
pub use counter::{CounterStore, MAX_COUNTER_KEY_BYTES, Window};
pub use delivery::QueueConfig;
#[cfg(feature = "tokio")]
pub use durable::DurableConfig;
pub use error::{BoxError, Error, PolicyError, Result, StoreError, TransportError};
pub use event_log::{EventQuery, EventStore, MAX_EVENT_LIMIT, StoredEvent};
pub use events::{EventSink, ProvisionEvent, RedeemFailure, TracingSink};
pub use joint::{UserRecordStore, UserUpdateStep};
pub use memory::{
    MemoryCounters, MemoryEvents, MemoryJobStore, MemorySettings, MemorySites, MemoryStore,
    MemoryUsers,
};
pub use policy::{
    CodeAlphabet, CodeFormat, DeliveryMode, DeviceErrors, LinkTemplates, MobilePolicy, Policy,
};
pub use provisioner::{
    Delivery, DeviceStatus, DownloadedStrings, PendingStatus, ProvisionStatus, Provisioner,
    ProvisionerBuilder, RequestReceipt,
};
pub use queue::{JobId, JobKind, JobStep, JobStore, QueueDepth, QueuedJob};
pub use record::{Device, Origin, PendingCode, ProvisionRecord};
pub use settings::{MAX_SETTING_KEY_BYTES, MAX_SETTING_VALUE_BYTES, SettingsStore};
pub use site::{CONTEXTS, ServerSettings, SiteAdmin, SiteDirectory};
pub use store::{CodeStore, RecordKey, UpdateStep, Updated};
pub use strings::{ChaChaStringGenerator, SecurityStrings, StringGenerator, one_time_code};
pub use transport::{DeviceNotice, ProvisionLinks, ProvisionMessage, QrImage, Transport};
pub use types::{
    Channel, Destination, DeviceInfo, MAX_USERNAME_BYTES, Pin, Purpose, SiteId,
    USERNAME_KEY_PREFIX_BYTES, Username, username_key,
};
pub use users::{MAX_USER_PAGE, UserAdmin, UserEntry, UserQuery, UserRepository};

/// mockall mocks of every trait (feature `mock`).
#[cfg(feature = "mock")]
pub mod mock {
    pub use crate::clock::MockClock;
    pub use crate::counter::MockCounterStore;
    pub use crate::event_log::MockEventStore;
    pub use crate::events::MockEventSink;
    pub use crate::settings::MockSettingsStore;
    pub use crate::site::{MockSiteAdmin, MockSiteDirectory};
    pub use crate::store::MockCodeStore;
    pub use crate::strings::MockStringGenerator;
    pub use crate::transport::MockTransport;
    pub use crate::users::{MockUserAdmin, MockUserRepository};
}
