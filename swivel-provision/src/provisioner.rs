//! The [`Provisioner`]: loads a record, applies one rule of [`state`](crate::state), swaps
//! the result into the store by version (retrying on conflict), and reports events.

use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::code::{CodeHash, ProvisionCode, ProvisionId, ServerKey, with_thread_rng};
use crate::delivery::Job;
#[cfg(feature = "tokio")]
use crate::delivery::{Queue, QueueConfig};
use crate::error::{Error, PolicyError, Result};
use crate::events::{EventSink, ProvisionEvent, TracingSink};
use crate::policy::{DeliveryMode, MobilePolicy, Policy};
use crate::record::{Origin, ProvisionRecord};
use crate::site::{ServerSettings, SiteDirectory};
use crate::state::{self, Purge, Redeem};
use crate::store::CodeStore;
use crate::strings::{ChaChaStringGenerator, SecurityStrings, StringGenerator, otc_eq, split_otc};
use crate::transport::{ProvisionLinks, ProvisionMessage, Transport};
use crate::types::{Channel, Destination, DeviceInfo, Pin, Purpose, SiteId, Username};
use crate::users::{UserEntry, UserRepository};

/// Compare-and-swap attempts before [`Error::Contention`].
const MAX_CAS_ATTEMPTS: usize = 100;
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
    sites: Option<Arc<dyn SiteDirectory>>,
    transports: Vec<(Channel, Arc<dyn Transport>)>,
    policy: RwLock<Policy>,
    key: ServerKey,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    strings: Arc<dyn StringGenerator>,
    #[cfg(feature = "tokio")]
    queue: Option<Queue>,
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
    sites: Option<Arc<dyn SiteDirectory>>,
    transports: Vec<(Channel, Arc<dyn Transport>)>,
    policy: Policy,
    key: Option<ServerKey>,
    clock: Arc<dyn Clock>,
    events: Arc<dyn EventSink>,
    strings: Arc<dyn StringGenerator>,
    delivery: Delivery,
}

impl ProvisionerBuilder {
    /// The code store (required).
    pub fn store(mut self, store: Arc<dyn CodeStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The user directory (required).
    pub fn users(mut self, users: Arc<dyn UserRepository>) -> Self {
        self.users = Some(users);
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
        let queue = match self.delivery {
            Delivery::Direct => None,
            Delivery::Queued(config) => {
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|_| Error::Missing("tokio runtime for the delivery queue"))?;
                let store = store.clone();
                let events = self.events.clone();
                let on_failure: crate::delivery::OnFailure =
                    Arc::new(move |message: ProvisionMessage, code_hash: CodeHash| {
                        let store = store.clone();
                        Box::pin(async move {
                            // Best effort: the failure was reported already.
                            let _ =
                                cancel_pending(store.as_ref(), &message.username, &code_hash).await;
                        })
                    });
                Some(Queue::start(config, events, on_failure, runtime))
            }
        };
        #[cfg(not(feature = "tokio"))]
        let Delivery::Direct = self.delivery;
        Ok(Provisioner {
            inner: Arc::new(Inner {
                store,
                users,
                sites: self.sites,
                transports: self.transports,
                policy: RwLock::new(self.policy),
                key,
                clock: self.clock,
                events: self.events,
                strings: self.strings,
                #[cfg(feature = "tokio")]
                queue,
            }),
        })
    }
}

/// Loads, applies `step`, and swaps, retrying on conflict. `step` returns the record to
/// store (or `None` to store nothing) and the value to return.
async fn update<T>(
    store: &dyn CodeStore,
    username: &Username,
    mut step: impl FnMut(Option<&ProvisionRecord>) -> Result<(Option<ProvisionRecord>, T)>,
) -> Result<T> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let current = store.load(username).await?;
        let (next, out) = step(current.as_ref())?;
        let Some(next) = next else { return Ok(out) };
        if store
            .compare_and_swap(current.as_ref().map(|c| c.version), &next)
            .await?
        {
            return Ok(out);
        }
    }
    Err(Error::Contention)
}

async fn cancel_pending(
    store: &dyn CodeStore,
    username: &Username,
    code_hash: &CodeHash,
) -> Result<()> {
    update(store, username, |cur| {
        Ok((cur.and_then(|c| state::cancel_pending(c, code_hash)), ()))
    })
    .await
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

    async fn user(&self, username: &Username) -> Result<Option<UserEntry>> {
        Ok(self.inner.users.find_user(username).await?)
    }

    /// Where the provision code goes: the user's first destination with a transport whose
    /// purpose is the one the policy names (`provision_code_as_security_string`: the
    /// security-string transport, else the alert transport), and failing that the first
    /// other one with a transport.
    fn route(
        &self,
        user: &UserEntry,
        policy: &Policy,
    ) -> Option<(Destination, Arc<dyn Transport>)> {
        let wanted = if policy.provision_code_as_security_string {
            Purpose::SecurityString
        } else {
            Purpose::Alert
        };
        let with_transport = |d: &Destination| {
            self.inner
                .transports
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
        &self,
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
        #[cfg(feature = "qr")]
        let qr = links.best().and_then(crate::qr::render);
        #[cfg(not(feature = "qr"))]
        let qr = None;
        ProvisionMessage {
            username: username.clone(),
            destination,
            expires_at,
            validity_secs: policy.validity_secs(),
            code,
            links,
            qr,
        }
    }

    /// Creates a provision code for the user and sends it to the user's own transport.
    ///
    /// Replaces any pending code. The user's device keeps working until the new code is
    /// redeemed. Self-service requests need the policy's consent and are rate-limited per
    /// user.
    ///
    /// # Errors
    /// [`Error::SelfProvisionDisabled`], [`Error::UnknownUser`], [`Error::RateLimited`],
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
        let Some(user) = self.user(username).await? else {
            return Err(Error::UnknownUser {
                username: username.to_string(),
            });
        };
        let Some((destination, transport)) = self.route(&user, &policy) else {
            return Err(Error::NoSuitableTransport {
                username: username.to_string(),
            });
        };
        let code = with_thread_rng(|rng| ProvisionCode::generate(&policy.code, rng));
        let code_hash = self.inner.key.code_hash(username.as_str(), &code);
        let now = self.now();
        let record = update(self.inner.store.as_ref(), username, |cur| {
            let next = state::request(cur, username, code_hash, origin, now, &policy)?;
            Ok((Some(next.clone()), next))
        })
        .await;
        let record = match record {
            Err(e @ Error::RateLimited { .. }) => {
                self.emit(ProvisionEvent::SelfServiceRefused {
                    username: username.clone(),
                    reason: "rate limit",
                });
                return Err(e);
            }
            other => other?,
        };
        let expires_at = record.pending_expires_at().unwrap_or(now);
        self.emit(ProvisionEvent::CodeCreated {
            username: username.clone(),
        });
        let message = self.message(&policy, username, destination.clone(), &code, expires_at);
        drop(code);
        let job = Job {
            message,
            transport,
            code_hash,
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
                Err(code_hash) => {
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
    }

    /// Redeems a code from a device: on success the user's device is replaced by this one
    /// (the old device and its strings stop working) and its provision Id is returned.
    ///
    /// Exactly once: of many concurrent redeems of one code, one succeeds.
    ///
    /// # Errors
    /// [`Error::UnknownUser`] (`Invalid Username`), [`Error::InvalidProvisionCode`] (no
    /// code, used or burned), [`Error::ProvisionFailure`] (wrong code or expired; a wrong
    /// code costs one attempt and never touches the working device).
    pub async fn redeem(
        &self,
        username: &Username,
        code: &ProvisionCode,
        device: DeviceInfo,
    ) -> Result<ProvisionId> {
        if self.user(username).await?.is_none() {
            self.emit(ProvisionEvent::UnknownMobileUser);
            return Err(Error::UnknownUser {
                username: username.to_string(),
            });
        }
        let policy = self.policy();
        let presented = self.inner.key.code_hash(username.as_str(), code);
        let well_formed = code.fits(&policy.code);
        let id = with_thread_rng(ProvisionId::generate);
        let id_hash = self.inner.key.id_hash(&id);
        // The push Id is always kept (a push transport needs it); the rest only when the
        // policy logs device information.
        let kept = if policy.log_device_info {
            device
        } else {
            device.push_only()
        };
        let info = (!kept.is_empty()).then_some(kept);
        let now = self.now();
        enum Outcome {
            Ok(Option<DeviceInfo>),
            Wrong(bool),
        }
        let outcome = update(
            self.inner.store.as_ref(),
            username,
            |cur| match state::redeem(cur, &presented, well_formed, id_hash, info.clone(), now) {
                Redeem::Provisioned(next) => Ok((Some(next), Outcome::Ok(info.clone()))),
                Redeem::WrongCode { next, burned } => Ok((Some(next), Outcome::Wrong(burned))),
                Redeem::Refused(e) => Err(e),
            },
        )
        .await;
        match outcome {
            Ok(Outcome::Ok(device)) => {
                let device = device.filter(|_| policy.log_device_info);
                self.emit(ProvisionEvent::Provisioned {
                    username: username.clone(),
                    device,
                });
                Ok(id)
            }
            Ok(Outcome::Wrong(burned)) => {
                self.emit(ProvisionEvent::ProvisionFailed {
                    username: username.clone(),
                });
                if burned {
                    self.emit(ProvisionEvent::CodeBurned {
                        username: username.clone(),
                    });
                }
                Err(Error::ProvisionFailure)
            }
            Err(e @ (Error::ProvisionFailure | Error::InvalidProvisionCode)) => {
                self.emit(ProvisionEvent::ProvisionFailed {
                    username: username.clone(),
                });
                Err(e)
            }
            Err(e) => Err(e),
        }
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
        let Some(found) = self.inner.store.find_by_id_hash(&id_hash).await? else {
            self.emit(ProvisionEvent::UnknownMobileUser);
            return Err(Error::UnknownProvisionId);
        };
        let username = found.username.clone();
        let Some(user) = self.user(&username).await? else {
            self.emit(ProvisionEvent::NoAuthMethod {
                username: username.clone(),
            });
            return Err(Error::NoAuthMethod {
                username: username.to_string(),
            });
        };
        if !user.mobile_group {
            return Err(Error::NotInMobileGroup {
                username: username.to_string(),
            });
        }
        let generation = update(self.inner.store.as_ref(), &username, |cur| {
            let device_matches = cur
                .and_then(|c| c.device.as_ref())
                .is_some_and(|d| d.id_hash.ct_eq(&id_hash));
            if !device_matches {
                return Err(Error::UnknownProvisionId);
            }
            let next = cur
                .and_then(state::download)
                .ok_or(Error::UnknownProvisionId)?;
            let generation = next
                .device
                .as_ref()
                .map(|d| d.generation)
                .unwrap_or_default();
            Ok((Some(next), generation))
        })
        .await
        .inspect_err(|e| {
            if matches!(e, Error::UnknownProvisionId) {
                self.emit(ProvisionEvent::UnknownMobileUser);
            }
        })?;
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
    /// against the user's current strings. Each index is accepted once per generation.
    ///
    /// # Errors
    /// [`Error::OtcRejected`] for a wrong, malformed or reused code, or a user without
    /// downloaded strings.
    pub async fn verify_otc(&self, username: &Username, otc: &str, pin: &Pin) -> Result<()> {
        let reject = || {
            self.emit(ProvisionEvent::OtcRejected {
                username: username.clone(),
            });
            Err(Error::OtcRejected)
        };
        let Some((digits, index)) = split_otc(otc, pin.expose().len()) else {
            return reject();
        };
        let max_failures = self.policy().max_otc_failures();
        let result = update(self.inner.store.as_ref(), username, |cur| {
            let Some(cur) = cur else {
                return Err(Error::OtcRejected);
            };
            let Some(device) = cur
                .device
                .as_ref()
                .filter(|_| state::otc_allowed(cur, index, max_failures))
            else {
                return Err(Error::OtcRejected);
            };
            let seed = self
                .inner
                .key
                .strings_seed(&device.id_hash, device.generation);
            let strings = self.inner.strings.generate(seed, device.generation);
            let string = strings.get(index).ok_or(Error::OtcRejected)?;
            let expected = crate::strings::one_time_code(string, pin, index)?;
            let correct = otc_eq(&expected[..digits.len()], digits);
            Ok((state::record_otc(cur, index, correct), correct))
        })
        .await;
        match result {
            Ok(false) => reject(),
            Ok(true) => {
                self.emit(ProvisionEvent::OtcAccepted {
                    username: username.clone(),
                });
                Ok(())
            }
            Err(Error::OtcRejected) => reject(),
            Err(e) => Err(e),
        }
    }

    /// The index (1–99) the user's device should use next (Swivel's `TokenIndex`): the
    /// lowest unused one of the current generation ([`state::next_index`]). `None` when
    /// the policy's `token_index` is off.
    ///
    /// No enumeration: for an unknown user, a user without a device or strings, or a spent
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
        })
    }

    /// Revokes the user's pending code and device. Returns whether there was anything to
    /// revoke.
    pub async fn revoke(&self, username: &Username) -> Result<bool> {
        let revoked = update(self.inner.store.as_ref(), username, |cur| {
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
