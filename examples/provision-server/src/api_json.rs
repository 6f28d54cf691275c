//! The JSON bodies of the API (`/api/v1/`): what a request sends and what an answer holds,
//! typed, with the schemas the OpenAPI document ([`crate::openapi`]) shows. Times are
//! RFC 3339 in UTC.

use std::num::NonZeroU16;

use serde::{Deserialize, Serialize};
use swivel_provision::{
    Destination, Origin, ProvisionStatus, RequestReceipt, ServerSettings, SiteId, StoredEvent,
    UserEntry, Username,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A destination: where a user's messages go.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DestinationJson {
    /// `email` or `sms`.
    #[schema(pattern = "^(email|sms)$")]
    pub channel: &'static str,
    /// The email address or phone number.
    pub address: String,
}

impl From<&Destination> for DestinationJson {
    fn from(d: &Destination) -> Self {
        Self {
            channel: d.channel.as_str(),
            address: d.address.clone(),
        }
    }
}

/// Who asked for a pending code.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OriginJson {
    /// An administrator (console, API or command line).
    Admin,
    /// The user, on the self-service page.
    SelfService,
}

/// A provision code that is waiting to be used.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingJson {
    /// When the code stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Wrong attempts left.
    pub attempts_left: u8,
    /// Who asked for it.
    pub origin: OriginJson,
}

/// The user's provisioned device.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceJson {
    /// When it was provisioned.
    #[schema(format = DateTime)]
    pub provisioned_at: String,
    /// How many times the user has been provisioned.
    pub generation: u32,
    /// What the device said about itself (only when the policy logs it).
    pub info: Option<String>,
}

/// A user and their provisioning status (`GET /api/v1/users/{username}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserJson {
    /// The username.
    pub username: String,
    /// Member of a group with mobile-client authentication.
    pub mobile_group: bool,
    /// Where messages go.
    pub destinations: Vec<DestinationJson>,
    /// The pending provision code, if any.
    pub pending: Option<PendingJson>,
    /// The provisioned device, if any.
    pub device: Option<DeviceJson>,
    /// Failed attempts in a row.
    pub failures: u32,
    /// When the account was locked after too many failures (`null`: not locked).
    #[schema(format = DateTime)]
    pub locked_at: Option<String>,
}

impl UserJson {
    /// The user `username` with `destinations`, group and `status`.
    pub fn new(
        username: &Username,
        mobile_group: bool,
        destinations: &[Destination],
        status: ProvisionStatus,
    ) -> Self {
        Self {
            username: username.as_str().to_owned(),
            mobile_group,
            destinations: destinations.iter().map(DestinationJson::from).collect(),
            pending: status.pending.map(|p| PendingJson {
                expires_at: rfc3339(p.expires_at),
                attempts_left: p.attempts_left,
                origin: match p.origin {
                    Origin::Admin => OriginJson::Admin,
                    Origin::SelfService => OriginJson::SelfService,
                },
            }),
            device: status.device.map(|d| DeviceJson {
                provisioned_at: rfc3339(d.provisioned_at),
                generation: d.generation,
                info: d.info.map(|i| i.to_string()),
            }),
            failures: status.failures,
            locked_at: status.locked_at.map(rfc3339),
        }
    }
}

/// A provision code was made and sent (`POST /api/v1/users/{username}/reprovision`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReprovisionJson {
    /// The user.
    pub username: String,
    /// Where the code went.
    pub destination: DestinationJson,
    /// When the code stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Whether the message was queued (`true`) or already delivered (`false`).
    pub queued: bool,
}

impl From<&RequestReceipt> for ReprovisionJson {
    fn from(r: &RequestReceipt) -> Self {
        Self {
            username: r.username.as_str().to_owned(),
            destination: (&r.destination).into(),
            expires_at: rfc3339(r.expires_at),
            queued: r.queued,
        }
    }
}

/// An unlock (`POST /api/v1/users/{username}/unlock`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnlockJson {
    /// The user.
    pub username: String,
    /// Whether there was a lock (or a run of failures) to clear.
    pub unlocked: bool,
}

/// A revoke (`POST /api/v1/users/{username}/revoke`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevokeJson {
    /// The user.
    pub username: String,
    /// Whether there was a device or a pending code to revoke.
    pub revoked: bool,
}

/// What `POST /api/v1/users/{username}/cancel` did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CancelJson {
    /// The user.
    pub username: String,
    /// Whether there was a pending code to cancel.
    pub cancelled: bool,
}

/// A deleted site (`DELETE /api/v1/sites/{site}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletedSiteJson {
    /// The Site ID.
    pub site: String,
    /// Always `true`: discovery no longer answers for it.
    pub deleted: bool,
}

/// A deleted user (`DELETE /api/v1/users/{username}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletedJson {
    /// The user.
    pub username: String,
    /// Always `true`: the user, their PIN, device and pending code are gone.
    pub deleted: bool,
}

/// A user of a page of `GET /api/v1/users`: the directory entry, without the status
/// (`GET /api/v1/users/{username}` has it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserEntryJson {
    /// The username.
    pub username: String,
    /// Member of a group with mobile-client authentication.
    pub mobile_group: bool,
    /// Where messages go.
    pub destinations: Vec<DestinationJson>,
}

impl From<&UserEntry> for UserEntryJson {
    fn from(u: &UserEntry) -> Self {
        Self {
            username: u.username.as_str().to_owned(),
            mobile_group: u.mobile_group,
            destinations: u.destinations.iter().map(DestinationJson::from).collect(),
        }
    }
}

/// One page of users, ordered by username (`GET /api/v1/users`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsersJson {
    /// The users.
    pub users: Vec<UserEntryJson>,
    /// The `after` of the next page; `null` when there is none.
    pub next_after: Option<String>,
}

/// The body of `PUT /api/v1/sites/{site}`: where devices of the site connect, and the five
/// SSD flags. `hostname` and `port` are required; unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteFields {
    /// Host name devices connect to (no blanks or control characters).
    pub hostname: String,
    /// Port (1 to 65535).
    #[schema(value_type = u16, minimum = 1, maximum = 65535)]
    pub port: NonZeroU16,
    /// Context path of the AgentXML endpoint: `pinsafe` (default), `sentry` or `proxy`.
    #[serde(default = "default_context")]
    #[schema(default = "pinsafe", pattern = "^(pinsafe|sentry|proxy)$")]
    pub context: String,
    /// Devices use HTTPS (SSD `usingSSL`, default false).
    #[serde(default)]
    pub using_ssl: bool,
    /// Push authentication is supported (SSD `pushSupport`, default false).
    #[serde(default)]
    pub push_support: bool,
    /// The server is on the local network (SSD `local`, default false).
    #[serde(default)]
    pub local: bool,
    /// The client asks for a PIN (SSD `pin`, default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub pin: bool,
    /// OATH tokens are used (SSD `oath`, default false).
    #[serde(default)]
    pub oath: bool,
}

fn default_context() -> String {
    "pinsafe".into()
}

fn yes() -> bool {
    true
}

impl From<SiteFields> for ServerSettings {
    fn from(f: SiteFields) -> Self {
        ServerSettings {
            hostname: f.hostname,
            port: f.port.get(),
            connection_type: f.context,
            using_ssl: f.using_ssl,
            push_support: f.push_support,
            local: f.local,
            pin: f.pin,
            oath: f.oath,
        }
    }
}

/// A site: what server settings discovery answers for its Site ID
/// (`GET /api/v1/sites/{site}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SiteJson {
    /// The Site ID.
    pub site: String,
    /// Host name devices connect to.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Context path of the AgentXML endpoint.
    pub context: String,
    /// Devices use HTTPS (SSD `usingSSL`).
    pub using_ssl: bool,
    /// Push authentication is supported (SSD `pushSupport`).
    pub push_support: bool,
    /// The server is on the local network (SSD `local`).
    pub local: bool,
    /// The client asks for a PIN (SSD `pin`).
    pub pin: bool,
    /// OATH tokens are used (SSD `oath`).
    pub oath: bool,
}

impl SiteJson {
    /// Site `site` advertising `s`.
    pub fn new(site: &SiteId, s: &ServerSettings) -> Self {
        Self {
            site: site.as_str().to_owned(),
            hostname: s.hostname.clone(),
            port: s.port,
            context: s.connection_type.clone(),
            using_ssl: s.using_ssl,
            push_support: s.push_support,
            local: s.local,
            pin: s.pin,
            oath: s.oath,
        }
    }
}

/// An event of the shared event log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventJson {
    /// Its id (larger is newer).
    pub id: u64,
    /// When it happened.
    #[schema(format = DateTime)]
    pub at: String,
    /// The instance that logged it.
    pub instance: String,
    /// What happened, e.g. `code_created`.
    pub kind: String,
    /// The user it is about, if any.
    pub username: Option<String>,
    /// Whether it reports a failure.
    pub failure: bool,
    /// The log line (seed wording).
    pub line: String,
}

impl From<&StoredEvent> for EventJson {
    fn from(e: &StoredEvent) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            instance: e.instance.clone(),
            kind: e.kind.clone(),
            username: e.username.as_ref().map(|u| u.as_str().to_owned()),
            failure: e.failure,
            line: e.line.clone(),
        }
    }
}

/// One page of the shared event log, newest first (`GET /api/v1/events`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventsJson {
    /// The events.
    pub events: Vec<EventJson>,
    /// The `before` of the next (older) page; `null` when there is none.
    pub next_before: Option<u64>,
}

/// Every site (`GET /api/v1/sites`), in Site ID order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SitesJson {
    /// The sites.
    pub sites: Vec<SiteJson>,
}

/// The policy: every setting by the name `provision-server policy show` prints, with its
/// value as text (`Yes`/`No` for switches, seconds and counts as numbers written out)
/// (`GET` and `PUT /api/v1/policy`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"validity_secs": "600", "allow_self_provision": "No"}))]
pub struct PolicyJson(pub std::collections::BTreeMap<String, String>);
