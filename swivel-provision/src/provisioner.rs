//! The [`Provisioner`]: applies one rule of [`state`](crate::state) to a record in one
//! [`CodeStore::update`] call (the store loads, the rule decides, the store writes), and
//! reports events.
//!
//! User lookups are not cached: each transition reads the directory once (request, redeem)
//! or twice with the record (download: the record by Id hash, then its user), on the
//! store's read connections; only the transition itself is a write.

use std::sync::{Arc, Mutex, RwLock};

use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::code::{CodeHash, ProvisionCode, ProvisionId, ServerKey, with_thread_rng};
use crate::delivery::Job;
#[cfg(feature = "tokio")]
use crate::delivery::{Queue, QueueConfig};
#[cfg(feature = "tokio")]
use crate::durable::{DurableConfig, DurableQueue};
use crate::error::{Error, PolicyError, Result};
use crate::events::{EventSink, ProvisionEvent, TracingSink};
use crate::joint::{UserRecordStore, UserUpdateStep, update_with_user_via};
use crate::policy::{DeliveryMode, DeviceErrors, MobilePolicy, Policy};
#[cfg(feature = "tokio")]
use crate::queue::{JobStep, JobStore};
use crate::record::{Origin, ProvisionRecord};
use crate::site::{ServerSettings, SiteDirectory};
use crate::state::{self, Purge, Redeem};
use crate::store::{CodeStore, RecordKey, UpdateStep, Updated};
use crate::strings::{ChaChaStringGenerator, SecurityStrings, StringGenerator, otc_eq, split_otc};
use crate::transport::{DeviceNotice, ProvisionLinks, ProvisionMessage, Transport};
use crate::types::{Channel, Destination, DeviceInfo, Pin, Purpose, SiteId, Username};
use crate::users::{UserEntry, UserRepository};

/// Compare-and-swap attempts before [`Error::Contention`] (purging).
const MAX_CAS_ATTEMPTS: usize = crate::store::MAX_UPDATE_ATTEMPTS;
/// Records cleared per [`CodeStore::list_expired`] call while purging.
const PURGE_BATCH: usize = 500;

/// How provision messages are delivered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Delivery {
    /// In the request: `request_provision` returns after the transport answered; a failure
    /// revokes the code and is returned. For tests and simple hosts.
    Direct,
    /// Through the in-process queue (feature `tokio`): `request_provision` returns once the
    /// message is queued; transient errors are retried with backoff; a permanent failure
    /// revokes the code and is reported as an event.
    #[cfg(feature = "tokio")]
    Queued(QueueConfig),
    /// Through the durable queue in the store (feature `tokio`; needs
    /// [`ProvisionerBuilder::job_store`]): `request_provision` writes the code and its
    /// sealed message in one transaction and returns; workers of every instance sharing
    /// the store deliver it at least once, retrying transient errors with backoff, and the
    /// message survives a restart. See [`JobStore`](crate::JobStore).
    #[cfg(feature = "tokio")]
    Durable(DurableConfig),
}

/// What [`Provisioner::request_provision`] did.
#[derive(Debug, Clone)]
pub struct RequestReceipt {
    /// The user.
    pub username: Username,
    /// Where the code goes.
    pub destination: Destination,
    /// When the code stops working.
    pub expires_at: OffsetDateTime,
    /// Whether the message was queued (`true`) or already delivered (`false`).
    pub queued: bool,
}

/// A pending code, as [`Provisioner::status`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStatus {
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Wrong attempts left.
    pub attempts_left: u8,
    /// Who asked for it.
    pub origin: Origin,
}

/// A device, as [`Provisioner::status`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStatus {
    /// When it was provisioned.
    pub provisioned_at: OffsetDateTime,
    /// Device information (only when the policy logs it).
    pub info: Option<DeviceInfo>,
    /// Generation of the strings last downloaded (0: none yet).
    pub generation: u32,
}

/// A user's provisioning status: nothing, pending until T, provisioned at T, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvisionStatus {
    /// A code waiting to be redeemed (not shown once expired).
    pub pending: Option<PendingStatus>,
    /// The provisioned device.
    pub device: Option<DeviceStatus>,
    /// Failed redeems and one-time codes in a row.
    pub failures: u32,
    /// When the account was locked for too many failures (until an administrator unlocks
    /// it).
    pub locked_at: Option<OffsetDateTime>,
}

/// What a device receives from [`Provisioner::download_strings`].
#[derive(Debug, Clone)]
pub struct DownloadedStrings {
    /// Whose strings they are.
    pub username: Username,
    /// The strings (secret).
    pub strings: SecurityStrings,
    /// The mobile-client policies to send with them.
    pub policies: Vec<MobilePolicy>,
}

struct Inner {
    store: Arc<dyn CodeStore>,
    users: Arc<dyn UserRepository>,
    /// The store, when it is also the directory: a transition's user lookup rides in its
    /// update ([`UserRecordStore::update_with_user`]).
    joint: Option<Arc<dyn UserRecordStore>>,
    sites: Option<Arc<dyn SiteDirectory>>,
    transports: Vec<(Channel, Arc<dyn Transport>)>,
    policy: RwLock<Policy>,
    key: ServerKey,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    strings: Arc<dyn StringGenerator>,
    #[cfg(feature = "tokio")]
    queue: Option<Queue>,
    /// The durable queue's store and worker ([`Delivery::Durable`]).
    #[cfg(feature = "tokio")]
    durable: Option<(Arc<dyn JobStore>, DurableQueue)>,
}

/// Provisions mobile devices: one per user, with single-use codes sent over the user's own
/// transport. Cheap to clone (an `Arc` inside); share one per process.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), swivel_provision::Error> {
/// use std::sync::Arc;
/// use swivel_provision::testing::RecordingTransport;
/// use swivel_provision::*;
///
/// // The parts: a user directory, a store, a transport that records what it sends.
/// let users = Arc::new(MemoryUsers::new());
/// let alice = Username::parse("alice")?;
/// users.insert(
///     UserEntry::new(alice.clone())
///         .with_destination(Destination::email("alice@example.com")?)
///         .with_mobile_group(true),
/// );
/// let outbox = Arc::new(RecordingTransport::new());
/// let provisioner = Provisioner::builder()
///     .store(Arc::new(MemoryStore::new()))
///     .users(users)
///     .transport(Channel::Email, outbox.clone())
///     .server_key(ServerKey::generate())
///     .delivery(Delivery::Direct)
///     .build()?;
///
/// // An administrator asks for a code; it goes to alice's email.
/// provisioner.request_provision(&alice, Origin::Admin).await?;
/// let code = outbox.last_code_for(&alice).expect("a code was sent");
///
/// // The device redeems it, gets its provision Id, and downloads its strings.
/// let id = provisioner.redeem(&alice, &code, DeviceInfo::default()).await?;
/// let downloaded = provisioner.download_strings(&id).await?;
///
/// // Alice makes a one-time code from string 06 and her PIN.
/// let pin = Pin::parse("9132")?;
/// let otc = one_time_code(downloaded.strings.get(6).unwrap(), &pin, 6)?;
/// provisioner.verify_otc(&alice, &otc, &pin).await?;
/// // A code is single-use.
/// assert!(provisioner.redeem(&alice, &code, DeviceInfo::default()).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Provisioner {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field(
                "transports",
                &self
                    .inner
                    .transports
                    .iter()
                    .map(|(c, _)| c)
                    .collect::<Vec<_>>(),
            )
            .field(
                "policy",
                &*self.inner.policy.read().unwrap_or_else(|e| e.into_inner()),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`Provisioner`]. `store`, `users` and `server_key` are required.
#[must_use]
pub struct ProvisionerBuilder {
    store: Option<Arc<dyn CodeStore>>,
    users: Option<Arc<dyn UserRepository>>,
    joint: Option<Arc<dyn UserRecordStore>>,
    sites: Option<Arc<dyn SiteDirectory>>,
    transports: Vec<(Channel, Arc<dyn Transport>)>,
    policy: Policy,
    key: Option<ServerKey>,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    strings: Arc<dyn StringGenerator>,
    delivery: Delivery,
    #[cfg(feature = "tokio")]
    jobs: Option<Arc<dyn JobStore>>,
}

impl ProvisionerBuilder {
    /// The code store (required, here or with [`store_with_users`](Self::store_with_users)).
    pub fn store(mut self, store: Arc<dyn CodeStore>) -> Self {
        self.store = Some(store);
        self.joint = None;
        #[cfg(feature = "tokio")]
        {
            self.jobs = None;
        }
        self
    }

    /// The user directory (required, here or with
    /// [`store_with_users`](Self::store_with_users)).
    pub fn users(mut self, users: Arc<dyn UserRepository>) -> Self {
        self.users = Some(users);
        self.joint = None;
        #[cfg(feature = "tokio")]
        {
            self.jobs = None;
        }
        self
    }

    /// One store that is both the code store and the user directory: each transition then
    /// reads the user and updates the record in one store call
    /// ([`UserRecordStore::update_with_user`]) instead of two or three.
    pub fn store_with_users(mut self, store: Arc<dyn UserRecordStore>) -> Self {
        self.store = Some(store.clone());
        self.users = Some(store.clone());
        self.joint = Some(store);
        #[cfg(feature = "tokio")]
        {
            self.jobs = None;
        }
        self
    }

    /// One store that is the code store, the user directory and the durable delivery
    /// queue (as [`store_with_users`](Self::store_with_users), and what
    /// [`Delivery::Durable`] delivers from).
    #[cfg(feature = "tokio")]
    pub fn job_store(mut self, store: Arc<dyn JobStore>) -> Self {
        self.store = Some(store.clone());
        self.users = Some(store.clone());
        self.joint = Some(store.clone());
        self.jobs = Some(store);
        self
    }

    /// The site directory, for SSD ([`Provisioner::server_details`]).
    pub fn sites(mut self, sites: Arc<dyn SiteDirectory>) -> Self {
        self.sites = Some(sites);
        self
    }

    /// A transport for destinations on `channel`. A user's destinations are tried in their
    /// order; the first with a transport gets the message.
    pub fn transport(mut self, channel: Channel, transport: Arc<dyn Transport>) -> Self {
        self.transports.push((channel, transport));
        self
    }

    /// The policy (default: [`Policy::default`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The server key (required).
    pub fn server_key(mut self, key: ServerKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where events go (default: [`TracingSink`]).
    pub fn events(mut self, events: Arc<dyn EventSink>) -> Self {
        self.events = events;
        self
    }

    /// The security-string generator (default: [`ChaChaStringGenerator`]).
    pub fn strings(mut self, strings: Arc<dyn StringGenerator>) -> Self {
        self.strings = strings;
        self
    }

    /// How messages are delivered (default: queued with [`QueueConfig::default`] when the
    /// `tokio` feature is on, else direct).
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Builds the provisioner. With queued delivery it must be called inside a tokio
    /// runtime, which runs the queue's worker.
    pub fn build(self) -> Result<Provisioner> {
        self.policy.validate()?;
        let store = self.store.ok_or(Error::Missing("code store"))?;
        let users = self.users.ok_or(Error::Missing("user repository"))?;
        let key = self.key.ok_or(Error::Missing("server key"))?;
        #[cfg(feature = "tokio")]
        let mut durable = None;
        #[cfg(feature = "tokio")]
        let queue = match self.delivery {
            Delivery::Direct => None,
            Delivery::Durable(config) => {
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|_| Error::Missing("tokio runtime for the delivery queue"))?;
                let jobs = self
                    .jobs
                    .ok_or(Error::Missing("job store for durable delivery"))?;
                let worker = DurableQueue::start(
                    jobs.clone(),
                    self.transports.clone(),
                    &key,
                    self.clock.clone(),
                    self.events.clone(),
                    config,
                    &runtime,
                );
                durable = Some((jobs, worker));
                None
            }
            Delivery::Queued(config) => {
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|_| Error::Missing("tokio runtime for the delivery queue"))?;
                let store = store.clone();
                let events = self.events.clone();
                let on_failure: crate::delivery::OnFailure = Arc::new(
                    move |message: ProvisionMessage, code_hash: Option<CodeHash>| {
                        let store = store.clone();
                        Box::pin(async move {
                            // Best effort: the failure was reported already. A notice has
                            // no code to revoke.
                            if let Some(code_hash) = code_hash {
                                let _ =
                                    cancel_pending(store.as_ref(), &message.username, &code_hash)
                                        .await;
                            }
                        })
                    },
                );
                Some(Queue::start(config, events, on_failure, runtime))
            }
        };
        #[cfg(not(feature = "tokio"))]
        let Delivery::Direct = self.delivery;
        Ok(Provisioner {
            inner: Arc::new(Inner {
                store,
                users,
                joint: self.joint,
                sites: self.sites,
                transports: self.transports,
                policy: RwLock::new(self.policy),
                key,
                clock: self.clock,
                events: self.events,
                strings: self.strings,
                #[cfg(feature = "tokio")]
                queue,
                #[cfg(feature = "tokio")]
                durable,
            }),
        })
    }
}

/// Where a step leaves its answer for the caller (a step may run more than once; the last
/// run's answer counts).
struct Answer<T>(Arc<Mutex<Option<Result<T>>>>);

impl<T> Answer<T> {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }

    fn share(&self) -> Self {
        Self(Arc::clone(&self.0))
    }

    /// Keeps the step's value (or error) and returns what to store (nothing on error).
    fn keep<N>(&self, out: Result<(Option<N>, T)>) -> Option<N> {
        let (next, out) = match out {
            Ok((next, value)) => (next, Ok(value)),
            Err(e) => (None, Err(e)),
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(out);
        next
    }

    /// The answer once the store is done: contention when it gave up.
    fn take(self, updated: Updated) -> Result<T> {
        if updated == Updated::Conflict {
            return Err(Error::Contention);
        }
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or(Err(Error::Contention))
    }
}

/// Applies `step` to the record `key` names in one [`CodeStore::update`] call. `step`
/// returns the record to store (or `None` to store nothing) and the value to return; an
/// error from it stores nothing and is returned. It may run more than once (stores that
/// retry on conflict); the last run's answer counts.
async fn update<T: Send + 'static>(
    store: &dyn CodeStore,
    key: impl Into<RecordKey>,
    mut step: impl FnMut(Option<&ProvisionRecord>) -> Result<(Option<ProvisionRecord>, T)>
    + Send
    + 'static,
) -> Result<T> {
    let answer = Answer::new();
    let slot = answer.share();
    let boxed: UpdateStep = Box::new(move |cur| slot.keep(step(cur)));
    let updated = store.update(key.into(), boxed).await?;
    answer.take(updated)
}

/// Applies `step` to the user's directory entry and the record `key` names: in one
/// [`UserRecordStore::update_with_user`] call when the store is also the directory, else a
/// lookup and an update ([`update_with_user_via`]). Otherwise as [`update`].
async fn update_with_user<T: Send + 'static>(
    inner: &Inner,
    key: impl Into<RecordKey>,
    mut step: impl FnMut(
        Option<&UserEntry>,
        Option<&ProvisionRecord>,
    ) -> Result<(Option<ProvisionRecord>, T)>
    + Send
    + 'static,
) -> Result<T> {
    let answer = Answer::new();
    let slot = answer.share();
    let boxed: UserUpdateStep = Box::new(move |user, cur| slot.keep(step(user, cur)));
    let key = key.into();
    let updated = match &inner.joint {
        Some(joint) => joint.update_with_user(key, boxed).await?,
        None => {
            update_with_user_via(inner.store.as_ref(), inner.users.as_ref(), key, boxed).await?
        }
    };
    answer.take(updated)
}

pub(crate) async fn cancel_pending(
    store: &dyn CodeStore,
    username: &Username,
    code_hash: &CodeHash,
) -> Result<()> {
    let code_hash = *code_hash;
    update(store, username, move |cur| {
        Ok((cur.and_then(|c| state::cancel_pending(c, &code_hash)), ()))
    })
    .await
}

/// The Id hash whose strings stand in when a one-time code names a user without a device,
/// so that the check costs the same.
const NO_DEVICE: crate::code::IdHash = crate::code::IdHash([0; 32]);

/// What a device is told of a failed redeem, by the policy's `device_errors`.
pub(crate) fn device_error(policy: &Policy, cause: Error) -> Error {
    match policy.device_errors {
        DeviceErrors::Detailed => cause,
        DeviceErrors::Uniform => Error::ProvisionFailure,
    }
}

fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Fills a link template: placeholders replaced, or the values appended when the template
/// has none of them.
fn fill(
    template: &str,
    site: Option<&SiteId>,
    user: &Username,
    code: Option<&ProvisionCode>,
) -> String {
    let site = site
        .map(|s| encode_component(s.as_str()))
        .unwrap_or_default();
    let code = code
        .map(|c| encode_component(c.expose()))
        .unwrap_or_default();
    if ["{code}", "{site}", "{user}"]
        .iter()
        .any(|p| template.contains(p))
    {
        template
            .replace("{site}", &site)
            .replace("{user}", &encode_component(user.as_str()))
            .replace("{code}", &code)
    } else {
        format!("{template}{site}{code}")
    }
}

impl Provisioner {
    /// A builder.
    pub fn builder() -> ProvisionerBuilder {
        ProvisionerBuilder {
            store: None,
            users: None,
            joint: None,
            sites: None,
            transports: Vec::new(),
            policy: Policy::default(),
            key: None,
            clock: Arc::new(SystemClock),
            events: Arc::new(TracingSink),
            strings: Arc::new(ChaChaStringGenerator),
            #[cfg(feature = "tokio")]
            delivery: Delivery::Queued(QueueConfig::default()),
            #[cfg(not(feature = "tokio"))]
            delivery: Delivery::Direct,
            #[cfg(feature = "tokio")]
            jobs: None,
        }
    }

    /// The current policy.
    pub fn policy(&self) -> Policy {
        self.inner
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the policy (checked first; nothing changes when it is refused). Applies to
    /// codes requested from now on.
    pub fn set_policy(&self, policy: Policy) -> std::result::Result<(), PolicyError> {
        policy.validate()?;
        *self.inner.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
        Ok(())
    }

    /// The server key (for hosts that derive keys of their own from it).
    pub fn server_key(&self) -> &ServerKey {
        &self.inner.key
    }

    /// Now, by the provisioner's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn emit(&self, event: ProvisionEvent) {
        self.inner.events.emit(&event);
    }

    /// Where the provision code goes: the user's first destination with a transport whose
    /// purpose is the one the policy names (`provision_code_as_security_string`: the
    /// security-string transport, else the alert transport), and failing that the first
    /// other one with a transport.
    fn route(
        transports: &[(Channel, Arc<dyn Transport>)],
        user: &UserEntry,
        policy: &Policy,
    ) -> Option<(Destination, Arc<dyn Transport>)> {
        let wanted = if policy.provision_code_as_security_string {
            Purpose::SecurityString
        } else {
            Purpose::Alert
        };
        let with_transport = |d: &Destination| {
            transports
                .iter()
                .find(|(c, _)| *c == d.channel)
                .map(|(_, t)| (d.clone(), t.clone()))
        };
        let mut ordered = user
            .destinations
            .iter()
            .filter(|d| d.purpose == wanted)
            .chain(user.destinations.iter().filter(|d| d.purpose != wanted));
        ordered.find_map(with_transport)
    }

    fn message(
        policy: &Policy,
        username: &Username,
        destination: Destination,
        code: &ProvisionCode,
        expires_at: OffsetDateTime,
    ) -> ProvisionMessage {
        let site = policy.site_id.as_ref();
        let t = &policy.links;
        let mut links = ProvisionLinks {
            provision: t
                .provision
                .as_deref()
                .map(|x| fill(x, None, username, Some(code)).into()),
            // A link that names the site is left out while no Site ID is set (it would end
            // in an empty `site=`).
            getsettings: t
                .getsettings
                .as_deref()
                .filter(|x| site.is_some() || !x.contains("{site}"))
                .map(|x| fill(x, site, username, None)),
            complete: t
                .complete
                .as_deref()
                .filter(|_| site.is_some())
                .map(|x| fill(x, site, username, Some(code)).into()),
        };
        let has_link = links.best().is_some();
        let code = match policy.delivery {
            DeliveryMode::UrlOnly if has_link => None,
            _ => Some(code.clone()),
        };
        if policy.delivery == DeliveryMode::CodeOnly {
            links = ProvisionLinks::default();
        }
        ProvisionMessage {
            username: username.clone(),
            destination,
            expires_at,
            validity_secs: policy.validity_secs(),
            code,
            links,
            qr: std::sync::OnceLock::new(),
            render_qr: cfg!(feature = "qr"),
            job_id: None,
            notice: None,
        }
    }

    /// Where a device-bound notice goes: the user's destination with a transport other
    /// than the one provision codes go to, else that same one.
    fn notice_route(
        transports: &[(Channel, Arc<dyn Transport>)],
        user: &UserEntry,
        policy: &Policy,
    ) -> Option<(Destination, Arc<dyn Transport>)> {
        let (code_destination, code_transport) = Self::route(transports, user, policy)?;
        user.destinations
            .iter()
            .filter(|d| **d != code_destination)
            .find_map(|d| {
                transports
                    .iter()
                    .find(|(c, _)| *c == d.channel)
                    .map(|(_, t)| (d.clone(), t.clone()))
            })
            .or(Some((code_destination, code_transport)))
    }

    /// Sends a device-bound notice the way provision messages go (queued durably, queued in
    /// the process, or at once). Its failure is reported as an event; the redeem stands.
    async fn send_notice(
        &self,
        username: &Username,
        destination: Destination,
        transport: Arc<dyn Transport>,
        notice: DeviceNotice,
    ) {
        let message =
            ProvisionMessage::device_notice(username.clone(), destination.clone(), notice);
        let failed = |error: &str| ProvisionEvent::NoticeFailed {
            username: username.clone(),
            destination: destination.clone(),
            error: error.to_owned(),
        };
        #[cfg(feature = "tokio")]
        let queued = ProvisionEvent::MessageQueued {
            username: username.clone(),
            destination: destination.clone(),
        };
        #[cfg(feature = "tokio")]
        if let Some((jobs, worker)) = &self.inner.durable {
            let job = worker.sealer().seal(&message, None, self.now());
            match jobs.add_job(&job).await {
                Ok(()) => {
                    self.emit(queued);
                    worker.wake();
                }
                Err(e) => self.emit(failed(&format!("could not be queued: {e}"))),
            }
            return;
        }
        #[cfg(feature = "tokio")]
        if let Some(queue) = &self.inner.queue {
            let job = Job {
                message,
                transport,
                code_hash: None,
            };
            match queue.push(job) {
                Ok(()) => self.emit(queued),
                Err(_) => self.emit(failed("delivery queue is full")),
            }
            return;
        }
        match transport.deliver(&message).await {
            Ok(()) => self.emit(ProvisionEvent::MessageSent {
                username: username.clone(),
                destination,
            }),
            Err(e) => self.emit(failed(&e.to_string())),
        }
    }

    /// Reports a self-service request the rules refused (rate limit, an administrator's code
    /// pending) as an event; passes every outcome on.
    fn refusal_reported<T>(
        &self,
        out: Result<T>,
        username: &Username,
        origin: Origin,
    ) -> Result<T> {
        if origin == Origin::SelfService {
            let reason = match &out {
                Err(Error::AdminCodePending) => Some("a code from an administrator is pending"),
                Err(Error::RateLimited { .. }) => Some("rate limit"),
                _ => None,
            };
            if let Some(reason) = reason {
                self.emit(ProvisionEvent::SelfServiceRefused {
                    username: username.clone(),
                    reason,
                });
            }
        }
        out
    }

    /// The request's transition with [`Delivery::Durable`]: the new record and its sealed
    /// message written in one [`JobStore::update_with_job`] call. Returns when the code
    /// expires and where its message goes.
    #[cfg(feature = "tokio")]
    #[allow(clippy::too_many_arguments)]
    async fn request_durably(
        &self,
        jobs: &dyn JobStore,
        username: &Username,
        origin: Origin,
        policy: &Policy,
        code: ProvisionCode,
        code_hash: CodeHash,
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, Destination)> {
        let (user_key, step_policy, inner) =
            (username.clone(), policy.clone(), Arc::clone(&self.inner));
        let answer = Answer::new();
        let slot = answer.share();
        let step: JobStep = Box::new(move |user, cur| {
            slot.keep((|| {
                let Some(user) = user else {
                    return Err(Error::UnknownUser {
                        username: user_key.to_string(),
                    });
                };
                let Some((destination, _)) = Self::route(&inner.transports, user, &step_policy)
                else {
                    return Err(Error::NoSuitableTransport {
                        username: user_key.to_string(),
                    });
                };
                let next = state::request(cur, &user_key, code_hash, origin, now, &step_policy)?;
                let expires_at = next.pending_expires_at().unwrap_or(now);
                let message = Self::message(
                    &step_policy,
                    &user_key,
                    destination.clone(),
                    &code,
                    expires_at,
                );
                let (_, worker) = inner.durable.as_ref().expect("durable delivery");
                let job = worker.sealer().seal(&message, Some(code_hash), now);
                Ok((Some((next, job)), (expires_at, destination)))
            })())
        });
        let updated = jobs.update_with_job(username.into(), step).await?;
        answer.take(updated)
    }

    /// Creates a provision code for the user and sends it to the user's own transport.
    ///
    /// Replaces any pending code. The user's device keeps working until the new code is
    /// redeemed. Self-service requests need the policy's consent and are rate-limited per
    /// user.
    ///
    /// # Errors
    /// [`Error::SelfProvisionDisabled`], [`Error::UnknownUser`], [`Error::RateLimited`],
    /// [`Error::AdminCodePending`] (self-service while an administrator's code is pending),
    /// [`Error::AccountLocked`],
    /// [`Error::NoSuitableTransport`], [`Error::Transport`] (direct delivery; the code is
    /// revoked), store errors.
    ///
    /// # Security
    /// A self-service page must answer the same whatever the error, so that it does not tell
    /// who has an account.
    pub async fn request_provision(
        &self,
        username: &Username,
        origin: Origin,
    ) -> Result<RequestReceipt> {
        let policy = self.policy();
        if origin == Origin::SelfService && !policy.allow_self_provision {
            self.emit(ProvisionEvent::SelfServiceRefused {
                username: username.clone(),
                reason: "self-provisioning is not allowed by the policy",
            });
            return Err(Error::SelfProvisionDisabled);
        }
        let code = with_thread_rng(|rng| ProvisionCode::generate(&policy.code, rng));
        let code_hash = self.inner.key.code_hash(username.as_str(), &code);
        let now = self.now();
        #[cfg(feature = "tokio")]
        if let Some((jobs, worker)) = &self.inner.durable {
            let stored = self
                .request_durably(
                    jobs.as_ref(),
                    username,
                    origin,
                    &policy,
                    code,
                    code_hash,
                    now,
                )
                .await;
            let (expires_at, destination) = self.refusal_reported(stored, username, origin)?;
            worker.wake();
            for event in [
                ProvisionEvent::CodeCreated {
                    username: username.clone(),
                    origin,
                },
                ProvisionEvent::MessageQueued {
                    username: username.clone(),
                    destination: destination.clone(),
                },
                ProvisionEvent::CanReprovision {
                    username: username.clone(),
                },
            ] {
                self.emit(event);
            }
            return Ok(RequestReceipt {
                username: username.clone(),
                destination,
                expires_at,
                queued: true,
            });
        }
        let (user_key, step_policy, inner) =
            (username.clone(), policy.clone(), Arc::clone(&self.inner));
        // The user's entry (does the user exist, where does the code go) and the record, in
        // one store call where the store is also the directory.
        let record = update_with_user(&self.inner, username, move |user, cur| {
            let Some(user) = user else {
                return Err(Error::UnknownUser {
                    username: user_key.to_string(),
                });
            };
            let Some(route) = Self::route(&inner.transports, user, &step_policy) else {
                return Err(Error::NoSuitableTransport {
                    username: user_key.to_string(),
                });
            };
            let next = state::request(cur, &user_key, code_hash, origin, now, &step_policy)?;
            Ok((Some(next.clone()), (next, route)))
        })
        .await;
        let (record, (destination, transport)) = self.refusal_reported(record, username, origin)?;
        let expires_at = record.pending_expires_at().unwrap_or(now);
        self.emit(ProvisionEvent::CodeCreated {
            username: username.clone(),
            origin,
        });
        let message = Self::message(&policy, username, destination.clone(), &code, expires_at);
        drop(code);
        let job = Job {
            message,
            transport,
            code_hash: Some(code_hash),
        };
        let receipt = |queued| RequestReceipt {
            username: username.clone(),
            destination: destination.clone(),
            expires_at,
            queued,
        };
        #[cfg(feature = "tokio")]
        if let Some(queue) = &self.inner.queue {
            return match queue.push(job) {
                Ok(()) => {
                    self.emit(ProvisionEvent::MessageQueued {
                        username: username.clone(),
                        destination: destination.clone(),
                    });
                    self.emit(ProvisionEvent::CanReprovision {
                        username: username.clone(),
                    });
                    Ok(receipt(true))
                }
                Err(_) => {
                    cancel_pending(self.inner.store.as_ref(), username, &code_hash).await?;
                    Err(Error::Transport(crate::error::TransportError::transient(
                        "delivery queue is full",
                        None,
                    )))
                }
            };
        }
        match job.transport.deliver(&job.message).await {
            Ok(()) => {
                self.emit(ProvisionEvent::MessageSent {
                    username: username.clone(),
                    destination: destination.clone(),
                });
                self.emit(ProvisionEvent::CanReprovision {
                    username: username.clone(),
                });
                Ok(receipt(false))
            }
            Err(e) => {
                self.emit(ProvisionEvent::DeliveryFailed {
                    username: username.clone(),
                    destination: destination.clone(),
                    error: e.to_string(),
                });
                cancel_pending(self.inner.store.as_ref(), username, &code_hash).await?;
                Err(Error::Transport(e))
            }
        }
    }

    /// Waits until the delivery queue has nothing queued or in flight (returns at once with
    /// direct delivery). For tests and graceful shutdown.
    pub async fn deliveries_idle(&self) {
        #[cfg(feature = "tokio")]
        if let Some(queue) = &self.inner.queue {
            queue.idle().await;
        }
        #[cfg(feature = "tokio")]
        if let Some((_, worker)) = &self.inner.durable {
            worker.idle().await;
        }
    }

    /// Stops delivering, for a graceful shutdown: with the in-process queue, waits until it
    /// has delivered what it holds; with [`Delivery::Durable`], stops claiming jobs, waits
    /// for the deliveries under way and gives the jobs it still holds back to the store
    /// (another instance, or this one after a restart, delivers them). Bound the wait with a
    /// deadline. Returns the jobs given back.
    ///
    /// # Errors
    /// Store errors while giving jobs back (they are then claimed again once their lease
    /// ran out).
    pub async fn stop_deliveries(&self) -> Result<usize> {
        #[cfg(feature = "tokio")]
        if let Some(queue) = &self.inner.queue {
            queue.idle().await;
        }
        #[cfg(feature = "tokio")]
        if let Some((_, worker)) = &self.inner.durable {
            return Ok(worker.stop().await?);
        }
        Ok(0)
    }

    /// Whether messages can be delivered: `true` with direct delivery, and with queued
    /// delivery while the queue's worker is running (it stops only with the tokio runtime
    /// it was started on, or if it panicked). While it is `false`,
    /// [`Provisioner::request_provision`] fails with a transient error and revokes the code.
    /// For readiness checks.
    pub fn deliveries_running(&self) -> bool {
        #[cfg(feature = "tokio")]
        if let Some(queue) = &self.inner.queue {
            return queue.is_running();
        }
        #[cfg(feature = "tokio")]
        if let Some((_, worker)) = &self.inner.durable {
            return worker.is_running();
        }
        true
    }

    /// Redeems a code from a device: on success the user's device is replaced by this one
    /// (the old device and its strings stop working) and its provision Id is returned.
    ///
    /// Exactly once: of many concurrent redeems of one code, one succeeds. Every failure
    /// is counted on the account (see [`Policy::max_account_failures`]); at the limit the
    /// account locks until [`Provisioner::unlock`].
    ///
    /// # Errors
    /// With the policy's `device_errors` at `uniform` (the default), every failure is
    /// [`Error::ProvisionFailure`]. With `detailed`: [`Error::UnknownUser`] (`Invalid
    /// Username`), [`Error::InvalidProvisionCode`] (no code, used, burned or malformed),
    /// [`Error::ProvisionFailure`] (wrong code, expired, or created in the future),
    /// [`Error::AccountLocked`]. A wrong code costs one attempt and never touches the
    /// working device. Store errors either way.
    ///
    /// # Security
    /// An unknown user, a user without a pending code and a wrong code cost the same work
    /// (a record is written for the name in each case), so neither the answer nor the time
    /// tells them apart.
    pub async fn redeem(
        &self,
        username: &Username,
        code: &ProvisionCode,
        device: DeviceInfo,
    ) -> Result<ProvisionId> {
        // The same work whoever asks: a directory lookup, a store read, a keyed hash, a
        // constant-time compare and a write (the failure is counted on the name's record);
        // the lookup rides in the update where the store is also the directory.
        let policy = self.policy();
        let id = with_thread_rng(ProvisionId::generate);
        let presented = state::Presented {
            known_user: false,
            code_hash: self.inner.key.code_hash(username.as_str(), code),
            well_formed: code.fits(&policy.code),
            new_device: self.inner.key.id_hash(&id),
            info: {
                // The push Id is always kept (a push transport needs it); the rest only when
                // the policy logs device information.
                let kept = if policy.log_device_info {
                    device
                } else {
                    device.push_only()
                };
                (!kept.is_empty()).then_some(kept)
            },
        };
        let now = self.now();
        let (name, step_presented, step_policy, inner) = (
            username.clone(),
            presented.clone(),
            policy.clone(),
            Arc::clone(&self.inner),
        );
        let (known_user, outcome) = update_with_user(&self.inner, username, move |user, cur| {
            let presented = state::Presented {
                known_user: user.is_some(),
                ..step_presented.clone()
            };
            let known_user = presented.known_user;
            Ok(
                match state::redeem(cur, &name, presented, now, &step_policy) {
                    Redeem::Provisioned(next) => {
                        // Where the device-bound notice goes, read with the user.
                        let notice = user
                            .filter(|_| step_policy.notify_device_bound)
                            .and_then(|u| Self::notice_route(&inner.transports, u, &step_policy));
                        (Some(next), (known_user, Err(notice)))
                    }
                    Redeem::Failed {
                        next,
                        cause,
                        reason,
                        burned,
                        locked,
                    } => (
                        Some(next),
                        (known_user, Ok((cause, reason, burned, locked))),
                    ),
                },
            )
        })
        .await?;
        let (cause, reason, burned, locked) = match outcome {
            Ok(failure) => failure,
            Err(notice) => {
                let logged = presented.info.filter(|_| policy.log_device_info);
                self.emit(ProvisionEvent::Provisioned {
                    username: username.clone(),
                    device: logged.clone(),
                });
                if let Some((destination, transport)) = notice {
                    let notice = DeviceNotice {
                        at: now,
                        device: logged,
                    };
                    self.send_notice(username, destination, transport, notice)
                        .await;
                }
                return Ok(id);
            }
        };
        if known_user {
            self.emit(ProvisionEvent::ProvisionFailed {
                username: username.clone(),
                reason,
            });
        } else {
            self.emit(ProvisionEvent::UnknownMobileUser);
        }
        if burned {
            self.emit(ProvisionEvent::CodeBurned {
                username: username.clone(),
            });
        }
        if locked {
            self.emit(ProvisionEvent::AccountLocked {
                username: username.clone(),
            });
        }
        Err(device_error(&policy, cause))
    }

    /// Downloads a new generation of security strings for the device with this provision
    /// Id, with the mobile-client policies.
    ///
    /// # Errors
    /// [`Error::UnknownProvisionId`] (`Mobile request from unknown user; the user needs to
    /// reprovision`) when the Id belongs to no current device; [`Error::NoAuthMethod`] when
    /// the user left the directory; [`Error::NotInMobileGroup`] (`Error Downloading Security
    /// Strings`).
    pub async fn download_strings(&self, id: &ProvisionId) -> Result<DownloadedStrings> {
        let id_hash = self.inner.key.id_hash(id);
        // The record holding this device and its owner's entry, in one store call where
        // the store is also the directory.
        let outcome = update_with_user(&self.inner, id_hash, move |user, cur| {
            let device_matches = cur
                .and_then(|c| c.device.as_ref())
                .is_some_and(|d| d.id_hash.ct_eq(&id_hash));
            let Some(cur) = cur.filter(|_| device_matches) else {
                return Err(Error::UnknownProvisionId);
            };
            let username = cur.username.clone();
            let Some(user) = user else {
                // The owner left the directory: nothing is written.
                return Ok((None, Err(username)));
            };
            if !user.mobile_group {
                return Err(Error::NotInMobileGroup {
                    username: username.to_string(),
                });
            }
            let next = state::download(cur).ok_or(Error::UnknownProvisionId)?;
            let generation = next
                .device
                .as_ref()
                .map(|d| d.generation)
                .unwrap_or_default();
            Ok((Some(next), Ok((username, generation))))
        })
        .await
        .inspect_err(|e| {
            if matches!(e, Error::UnknownProvisionId) {
                self.emit(ProvisionEvent::UnknownMobileUser);
            }
        })?;
        let (username, generation) = match outcome {
            Ok(done) => done,
            Err(username) => {
                self.emit(ProvisionEvent::NoAuthMethod {
                    username: username.clone(),
                });
                return Err(Error::NoAuthMethod {
                    username: username.to_string(),
                });
            }
        };
        let seed = self.inner.key.strings_seed(&id_hash, generation);
        let strings = self.inner.strings.generate(seed, generation);
        self.emit(ProvisionEvent::StringsDownloaded {
            username: username.clone(),
            generation,
        });
        Ok(DownloadedStrings {
            username,
            strings,
            policies: self.policy().mobile_policies,
        })
    }

    /// Checks a one-time code (the PIN's digits of one string, then its two-digit index)
    /// against the user's current strings ([`state::record_otc`]). Each index is accepted
    /// once per generation, and only while the user is in the mobile group (leaving the
    /// group ends one-time-code logins with the strings the device holds) and the account
    /// is not locked.
    ///
    /// # Security
    /// A rejected code spends no index and counts against the account like a failed
    /// redeem. Every name costs the same work, whatever the code's length, whether the
    /// user exists, has a device or is in the group: a directory lookup, a store read, the
    /// strings of the device or of a stand-in, a one-time code and a constant-time compare,
    /// and a write (a record is kept for the name). Wrong codes are not limited per device
    /// (a stranger could block the user's right code): limit them per account and client
    /// address in the host (the policy's [`Policy::max_otc_failures`]); the account's
    /// ceiling ([`Policy::max_account_failures`]) locks a known user.
    ///
    /// # Errors
    /// [`Error::OtcRejected`] for a wrong, malformed or reused code, or a user without
    /// downloaded strings or outside the mobile group.
    pub async fn verify_otc(&self, username: &Username, otc: &str, pin: &Pin) -> Result<()> {
        let policy = self.policy();
        let now = self.now();
        let pin_len = pin.expose().len();
        // A malformed code is checked like a well-formed one: a stand-in of the PIN's
        // length on string 1.
        let (digits, index, well_formed) = match split_otc(otc, pin_len) {
            Some((digits, index)) => (digits.to_owned(), index, true),
            None => ("0".repeat(pin_len), 1, false),
        };
        let inner = Arc::clone(&self.inner);
        let (name, pin) = (username.clone(), pin.clone());
        let (accepted, locked) = update_with_user(&self.inner, username, move |user, cur| {
            let key = &inner.key;
            let mobile_group = user.is_some_and(|u| u.mobile_group);
            let device = cur.and_then(|c| state::otc_device(c, index, mobile_group));
            // The same work with and without a device: strings of a stand-in device when
            // there is none, then a constant-time compare.
            let (seed, generation) = match device {
                Some(d) => (key.strings_seed(&d.id_hash, d.generation), d.generation),
                None => (key.strings_seed(&NO_DEVICE, 1), 1),
            };
            let strings = inner.strings.generate(seed, generation);
            let matched = strings
                .get(index)
                .and_then(|string| crate::strings::one_time_code(string, &pin, index).ok())
                .is_some_and(|expected| otc_eq(&expected[..pin_len], &digits));
            let attempt = state::OtcAttempt {
                known_user: user.is_some(),
                mobile_group,
                index: if well_formed { index } else { 0 },
                matched: matched && well_formed,
            };
            let out = state::record_otc(cur, &name, &attempt, now, &policy);
            Ok((Some(out.next), (out.accepted, out.locked)))
        })
        .await?;
        if locked {
            self.emit(ProvisionEvent::AccountLocked {
                username: username.clone(),
            });
        }
        if accepted {
            self.emit(ProvisionEvent::OtcAccepted {
                username: username.clone(),
            });
            Ok(())
        } else {
            self.emit(ProvisionEvent::OtcRejected {
                username: username.clone(),
            });
            Err(Error::OtcRejected)
        }
    }

    /// The index (1–99) the user's device should use next (Swivel's `TokenIndex`): the
    /// lowest unused one of the current generation ([`state::next_index`]). `None` when
    /// the policy's `token_index` is off.
    ///
    /// No enumeration: a wrong one-time code never moves the index ([`state::record_otc`]),
    /// and for an unknown user, a user without a device or strings, or a spent
    /// generation, the answer is a well-formed index derived from a keyed hash of the
    /// username (the same one every time), after the same store read and hash, so the
    /// answer's shape does not tell who exists. A blank or malformed username gets the same
    /// kind of answer without the store read.
    ///
    /// # Errors
    /// A store error.
    pub async fn token_index(&self, username: &str) -> Result<Option<u8>> {
        if !self.policy().token_index {
            return Ok(None);
        }
        let mac = self
            .inner
            .key
            .derive("token-index decoy v1", &[username.as_bytes()]);
        let decoy = (u16::from_be_bytes([mac[0], mac[1]]) % 99) as u8 + 1;
        let record = match Username::parse(username) {
            Ok(user) => self.inner.store.load(&user).await?,
            Err(_) => None,
        };
        Ok(Some(
            record.as_ref().and_then(state::next_index).unwrap_or(decoy),
        ))
    }

    /// The user's status: nothing, a pending code until T, a device provisioned at T, or
    /// both.
    pub async fn status(&self, username: &Username) -> Result<ProvisionStatus> {
        let now = self.now();
        let Some(record) = self.inner.store.load(username).await? else {
            return Ok(ProvisionStatus::default());
        };
        Ok(ProvisionStatus {
            pending: record
                .pending
                .filter(|p| p.expires_at > now && p.attempts_left > 0)
                .map(|p| PendingStatus {
                    expires_at: p.expires_at,
                    attempts_left: p.attempts_left,
                    origin: p.origin,
                }),
            device: record.device.map(|d| DeviceStatus {
                provisioned_at: d.provisioned_at,
                info: d.info,
                generation: d.generation,
            }),
            failures: record.failures,
            locked_at: record.locked_at,
        })
    }

    /// Revokes the user's pending code and device. Returns whether there was anything to
    /// revoke.
    pub async fn revoke(&self, username: &Username) -> Result<bool> {
        let revoked = update(self.inner.store.as_ref(), username, move |cur| {
            let next = cur.and_then(state::revoke);
            let some = next.is_some();
            Ok((next, some))
        })
        .await?;
        if revoked {
            self.emit(ProvisionEvent::Revoked {
                username: username.clone(),
            });
        }
        Ok(revoked)
    }

    /// Cancels the user's pending code; the device, if any, keeps working. Returns whether
    /// there was a code to cancel. A message of the code still queued is dropped unsent.
    /// For administrators (console, API, command line).
    pub async fn cancel_code(&self, username: &Username) -> Result<bool> {
        let cancelled = update(self.inner.store.as_ref(), username, move |cur| {
            let next = cur.and_then(state::cancel_code);
            let some = next.is_some();
            Ok((next, some))
        })
        .await?;
        if cancelled {
            self.emit(ProvisionEvent::CodeCancelled {
                username: username.clone(),
            });
        }
        Ok(cancelled)
    }

    /// Unlocks an account locked after too many failures in a row, and clears its run of
    /// failures. Returns whether there was anything to clear. For administrators (console,
    /// API, command line).
    pub async fn unlock(&self, username: &Username) -> Result<bool> {
        let unlocked = update(self.inner.store.as_ref(), username, move |cur| {
            let next = cur.and_then(state::unlock);
            let some = next.is_some();
            Ok((next, some))
        })
        .await?;
        if unlocked {
            self.emit(ProvisionEvent::AccountUnlocked {
                username: username.clone(),
            });
        }
        Ok(unlocked)
    }

    /// Starts a name that has just joined the user directory clean ([`state::joined`]):
    /// whatever record is left under it (failures counted while the name was unknown, a
    /// lock, the device of an earlier user of the same name) is deleted. Hosts call it when
    /// they add a user (not when they change one). Returns whether there was a record.
    ///
    /// # Errors
    /// A store error; [`Error::Contention`] when the record kept changing.
    pub async fn user_added(&self, username: &Username) -> Result<bool> {
        let store = self.inner.store.as_ref();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let cur = store.load(username).await?;
            match (state::joined(cur.as_ref()), cur) {
                (Purge::Delete, Some(cur)) => {
                    if store.delete(username, cur.version).await? {
                        return Ok(true);
                    }
                }
                _ => return Ok(false),
            }
        }
        Err(Error::Contention)
    }

    /// Clears every expired pending code (deleting records with nothing else in them).
    /// Returns how many records were changed or deleted. Run it now and then (the example
    /// server does, every minute).
    pub async fn purge_expired(&self) -> Result<usize> {
        let store = self.inner.store.as_ref();
        let mut purged = 0;
        loop {
            let now = self.now();
            let policy = self.policy();
            let batch = store.list_expired(now, PURGE_BATCH).await?;
            let full = batch.len() == PURGE_BATCH;
            let mut progress = 0;
            for username in batch {
                for _ in 0..MAX_CAS_ATTEMPTS {
                    let Some(cur) = store.load(&username).await? else {
                        break;
                    };
                    let done = match state::purge(&cur, now, &policy) {
                        Purge::Keep => break,
                        Purge::Update(next) => {
                            store.compare_and_swap(Some(cur.version), &next).await?
                        }
                        Purge::Delete => store.delete(&username, cur.version).await?,
                    };
                    if done {
                        progress += 1;
                        break;
                    }
                }
            }
            purged += progress;
            if !full || progress == 0 {
                return Ok(purged);
            }
        }
    }

    /// The server settings of a site (SSD).
    ///
    /// # Errors
    /// [`Error::UnknownServerId`] (`Error Server, Unknown Server ID`) when the Site ID is not
    /// known or no site directory is configured.
    pub async fn server_details(&self, site: &SiteId) -> Result<ServerSettings> {
        let Some(sites) = &self.inner.sites else {
            return Err(Error::UnknownServerId);
        };
        sites.find_site(site).await?.ok_or(Error::UnknownServerId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ProvisionerBuilder {
        Provisioner::builder()
            .store(Arc::new(crate::MemoryStore::new()))
            .users(Arc::new(crate::MemoryUsers::new()))
            .server_key(ServerKey::generate())
    }

    #[test]
    fn deliveries_run_directly_and_while_the_queue_worker_lives() {
        let direct = builder().delivery(Delivery::Direct).build().unwrap();
        assert!(direct.deliveries_running(), "direct delivery always runs");

        #[cfg(feature = "tokio")]
        {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let queued = runtime
                .block_on(async {
                    builder()
                        .delivery(Delivery::Queued(QueueConfig::default()))
                        .build()
                })
                .unwrap();
            assert!(queued.deliveries_running(), "the worker was just started");
            // Shutting the runtime down ends the worker task (and drops its receiver).
            drop(runtime);
            assert!(
                !queued.deliveries_running(),
                "the worker's runtime is gone, so nothing is delivered"
            );
        }
    }

    #[test]
    fn link_filling() {
        let u = Username::parse("al ice").unwrap();
        let c = ProvisionCode::new("1234567890");
        let s = SiteId::parse("DEMO").unwrap();
        assert_eq!(
            fill(
                "https://h/smc/complete/?site={site}&user={user}&code={code}",
                Some(&s),
                &u,
                Some(&c)
            ),
            "https://h/smc/complete/?site=DEMO&user=al%20ice&code=1234567890"
        );
        assert_eq!(
            fill("https://h/p?code=", None, &u, Some(&c)),
            "https://h/p?code=1234567890"
        );
    }
}
