//! Administrator actions shared by the console, the JSON API and the command line: each
//! of the three calls the same function here, so a rule (which user may be acted on, what
//! counts as done) is written once. Each done action emits one
//! [`ProvisionEvent::AdministratorAction`] naming who did it ([`Actor`]), beside the
//! core's events (which name the user, not the administrator): it reaches the Log page,
//! `GET /api/v1/events` and the `tracing` output like every event.

use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use swivel_provision::{
    Destination, EventSink, Origin, Pin, Policy, ProvisionEvent, RequestReceipt, ServerSettings,
    SiteId, UserEntry, Username,
};

use crate::error::{AppError, error_chain};
use crate::routes::show_time;
use crate::state::AppState;

/// Who asks for an action: the console (there is one console password, so the session's
/// client address names it), the JSON API (its bearer token) or the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A console session, from this client address.
    Console(IpAddr),
    /// The JSON API.
    Api,
    /// The command line.
    Cli,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Console(ip) => write!(f, "console ({ip})"),
            Actor::Api => f.write_str("api"),
            Actor::Cli => f.write_str("cli"),
        }
    }
}

/// Records a done action: what, on which user or site, by whom.
fn done(
    state: &AppState,
    actor: Actor,
    action: &'static str,
    username: Option<&Username>,
    site: Option<&SiteId>,
) {
    state.log().emit(&ProvisionEvent::AdministratorAction {
        administrator: actor.to_string(),
        action,
        username: username.cloned(),
        site: site.cloned(),
    });
}

/// Checks `name` and that the user is in the directory (`Invalid Username` otherwise).
pub async fn existing_user(state: &AppState, name: &str) -> Result<Username, AppError> {
    let username = Username::parse(name)?;
    if state.backend().users.find_user(&username).await?.is_none() {
        return Err(swivel_provision::Error::UnknownUser {
            username: name.to_owned(),
        }
        .into());
    }
    Ok(username)
}

/// What [`unlock`] did. `Display` is the line the console and the command line show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlocked {
    /// The user.
    pub username: Username,
    /// Whether there was a lock or a run of failures to clear.
    pub cleared: bool,
}

impl std::fmt::Display for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cleared {
            write!(f, "User \"{}\" unlocked.", self.username)
        } else {
            write!(f, "User \"{}\" was not locked.", self.username)
        }
    }
}

/// Unlocks an account locked after too many failed attempts in a row (console Unlock,
/// `POST /api/v1/users/{username}/unlock`, `provision-server users unlock`).
pub async fn unlock(state: &AppState, actor: Actor, name: &str) -> Result<Unlocked, AppError> {
    let username = existing_user(state, name).await?;
    let cleared = state.provisioner().unlock(&username).await?;
    done(state, actor, "unlock", Some(&username), None);
    Ok(Unlocked { username, cleared })
}

/// What [`reprovision`] did. `Display` is the line the console and the command line show.
#[derive(Debug, Clone)]
pub struct Reprovisioned(pub RequestReceipt);

impl std::fmt::Display for Reprovisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Provision code created for user \"{}\"; it goes to {} and is valid until {}.",
            self.0.username,
            self.0.destination.address,
            show_time(self.0.expires_at)
        )
    }
}

/// Sends the user a new provision code (console Reprovision,
/// `POST /api/v1/users/{username}/reprovision`, `provision-server reprovision`).
pub async fn reprovision(
    state: &AppState,
    actor: Actor,
    name: &str,
) -> Result<Reprovisioned, AppError> {
    let username = Username::parse(name)?;
    let receipt = state
        .provisioner()
        .request_provision(&username, Origin::Admin)
        .await?;
    done(state, actor, "reprovision", Some(&username), None);
    Ok(Reprovisioned(receipt))
}

/// What [`revoke`] did. `Display` is the line the console and the command line show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The user.
    pub username: Username,
    /// Whether there was a device or a pending code to revoke.
    pub revoked: bool,
}

impl std::fmt::Display for Revoked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.revoked {
            write!(
                f,
                "The device and pending code of user \"{}\" were revoked.",
                self.username
            )
        } else {
            write!(
                f,
                "User \"{}\" had no device or pending code.",
                self.username
            )
        }
    }
}

/// Revokes the user's device and pending code (console Revoke,
/// `POST /api/v1/users/{username}/revoke`, `provision-server users revoke`).
pub async fn revoke(state: &AppState, actor: Actor, name: &str) -> Result<Revoked, AppError> {
    let username = existing_user(state, name).await?;
    let revoked = state.provisioner().revoke(&username).await?;
    done(state, actor, "revoke", Some(&username), None);
    Ok(Revoked { username, revoked })
}

/// What [`cancel_code`] did. `Display` is the line the console and the command line show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// The user.
    pub username: Username,
    /// Whether there was a pending code to cancel.
    pub cancelled: bool,
}

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cancelled {
            write!(
                f,
                "The pending provision code of user \"{}\" was cancelled.",
                self.username
            )
        } else {
            write!(f, "User \"{}\" had no pending code.", self.username)
        }
    }
}

/// Cancels the user's pending provision code; the device, if any, keeps working (console
/// Cancel pending code, `POST /api/v1/users/{username}/cancel`, `provision-server users
/// cancel`). A message of the code still queued is dropped unsent.
pub async fn cancel_code(
    state: &AppState,
    actor: Actor,
    name: &str,
) -> Result<Cancelled, AppError> {
    let username = existing_user(state, name).await?;
    let cancelled = state.provisioner().cancel_code(&username).await?;
    done(state, actor, "cancel_code", Some(&username), None);
    Ok(Cancelled {
        username,
        cancelled,
    })
}

/// What [`delete_user`] did. `Display` is the line the console and the command line show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The user.
    pub username: Username,
}

impl std::fmt::Display for Deleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User \"{}\" deleted.", self.username)
    }
}

/// Deletes a user: first revokes the device and pending code (so that a user added again
/// under the same name does not inherit them), then removes the user and the PIN (console
/// Delete, `DELETE /api/v1/users/{username}`, `provision-server users delete`).
pub async fn delete_user(state: &AppState, actor: Actor, name: &str) -> Result<Deleted, AppError> {
    let username = existing_user(state, name).await?;
    state.provisioner().revoke(&username).await?;
    let existed = state.backend().user_admin.remove_user(&username).await?;
    state.pins().remove(&username).await?;
    if !existed {
        return Err(swivel_provision::Error::UnknownUser {
            username: name.to_owned(),
        }
        .into());
    }
    done(state, actor, "delete_user", Some(&username), None);
    Ok(Deleted { username })
}

/// A user's destinations, group and PIN, as `users add` flags and as the JSON body of
/// `PUT /api/v1/users/{username}` (every field optional; unknown fields are refused).
#[derive(Clone, Default, clap::Args, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserFields {
    /// Email address.
    #[arg(long)]
    pub email: Option<String>,
    /// Phone number (E.164, e.g. +15555550100).
    #[arg(long)]
    pub phone: Option<String>,
    /// Email address of the security-string transport (gets the provision code when the
    /// policy's `provision_code_as_security_string` is Yes).
    #[arg(long)]
    pub strings_email: Option<String>,
    /// Phone number of the security-string transport (as --strings-email).
    #[arg(long)]
    pub strings_phone: Option<String>,
    /// Member of a group with mobile-client authentication (may download strings).
    #[arg(long)]
    #[serde(default)]
    pub mobile_group: bool,
    /// The user's PIN (4 to 10 digits), stored encrypted; for `/login`.
    #[arg(long)]
    #[schema(pattern = "^[0-9]{4,10}$")]
    pub pin: Option<String>,
}

impl std::fmt::Debug for UserFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserFields")
            .field("email", &self.email)
            .field("phone", &self.phone)
            .field("strings_email", &self.strings_email)
            .field("strings_phone", &self.strings_phone)
            .field("mobile_group", &self.mobile_group)
            .field("pin", &self.pin.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// What [`save_user`] did. `Display` is the line the command line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The user.
    pub username: Username,
}

impl std::fmt::Display for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "User \"{}\" saved.", self.username)
    }
}

/// Adds a user, or replaces an existing user's destinations and group, and sets the PIN
/// when one is given (console Add user and Edit, `provision-server users add`,
/// `PUT /api/v1/users/{username}`). Every field is checked before anything is written. A
/// user added (not one changed) starts clean: whatever provisioning record was left under
/// the name (failures counted while it did not exist) is dropped
/// ([`Provisioner::user_added`](swivel_provision::Provisioner::user_added)).
pub async fn save_user(
    state: &AppState,
    actor: Actor,
    name: &str,
    fields: &UserFields,
) -> Result<Saved, AppError> {
    let username = Username::parse(name)?;
    let mut user = UserEntry::new(username.clone()).with_mobile_group(fields.mobile_group);
    if let Some(email) = &fields.email {
        user = user.with_destination(Destination::email(email)?);
    }
    if let Some(phone) = &fields.phone {
        user = user.with_destination(Destination::sms(phone)?);
    }
    if let Some(email) = &fields.strings_email {
        user = user.with_destination(Destination::email(email)?.for_security_strings());
    }
    if let Some(phone) = &fields.strings_phone {
        user = user.with_destination(Destination::sms(phone)?.for_security_strings());
    }
    let pin = fields
        .pin
        .as_deref()
        .map(Pin::parse)
        .transpose()
        .map_err(|_| AppError::BadRequest("PIN must be 4 to 10 digits".into()))?;
    let added = state.backend().users.find_user(&username).await?.is_none();
    match pin {
        None => state.backend().user_admin.put_user(&user).await?,
        Some(pin) => save_with_pin(state, &user, &pin).await?,
    }
    if added {
        state.provisioner().user_added(&username).await?;
    }
    done(state, actor, "save_user", Some(&username), None);
    Ok(Saved { username })
}

/// Saves `user` and their PIN together, or neither: the PIN first (a PIN that fails to
/// save leaves everything as it was), then the user; a user that fails to save puts the
/// PIN that was there before back. The settings store and the user directory may be
/// different stores, so this is the order plus an undo, not one transaction: only a crash
/// between the two writes leaves the new PIN without the user's new entry (a PIN nobody
/// can use without the user, and the request was not answered `200`).
async fn save_with_pin(state: &AppState, user: &UserEntry, pin: &Pin) -> Result<(), AppError> {
    let pins = state.pins();
    let before = pins.stored(&user.username).await?;
    pins.set(&user.username, pin).await?;
    if let Err(e) = state.backend().user_admin.put_user(user).await {
        if let Err(undo) = pins.restore(&user.username, before).await {
            tracing::error!(
                user = %user.username,
                error = %error_chain(&undo),
                "the user was not saved, and the PIN saved with it could not be taken back"
            );
        }
        return Err(e.into());
    }
    Ok(())
}

/// What [`save_site`] did. `Display` is the line the command line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSite {
    /// The Site ID.
    pub site: SiteId,
    /// What is now advertised for it.
    pub settings: ServerSettings,
}

impl std::fmt::Display for SavedSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Site {} saved: {}", self.site, show_site(&self.settings))
    }
}

/// A site as one line: its URL and the five SSD flags as SSD answers them (`YES`/`NO`).
pub fn show_site(s: &ServerSettings) -> String {
    let yes_no = |b: bool| if b { "YES" } else { "NO" };
    format!(
        "{}://{}:{}/{} usingSSL={} pushSupport={} local={} pin={} oath={}",
        if s.using_ssl { "https" } else { "http" },
        s.hostname,
        s.port,
        s.connection_type,
        yes_no(s.using_ssl),
        yes_no(s.push_support),
        yes_no(s.local),
        yes_no(s.pin),
        yes_no(s.oath)
    )
}

/// Adds or replaces a site: what server settings discovery answers for `site` (console
/// Sites, `provision-server sites add`, `PUT /api/v1/sites/{site}`). The settings are
/// checked (a served context, a usable host name) before anything is written.
pub async fn save_site(
    state: &AppState,
    actor: Actor,
    site: &str,
    settings: ServerSettings,
) -> Result<SavedSite, AppError> {
    let site = SiteId::parse(site)?;
    settings.check()?;
    state
        .backend()
        .site_admin
        .put_site(&site, &settings)
        .await?;
    done(state, actor, "save_site", None, Some(&site));
    Ok(SavedSite { site, settings })
}

/// What [`delete_site`] did. `Display` is the line the console and the command line show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSite {
    /// The Site ID.
    pub site: SiteId,
}

impl std::fmt::Display for DeletedSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Site {} deleted.", self.site)
    }
}

/// Deletes a site: server settings discovery no longer answers for it (console Sites,
/// `provision-server sites delete`, `DELETE /api/v1/sites/{site}`). An unknown site is
/// an error (`404` in the API).
pub async fn delete_site(
    state: &AppState,
    actor: Actor,
    site: &str,
) -> Result<DeletedSite, AppError> {
    let site = SiteId::parse(site)?;
    if !state.backend().site_admin.remove_site(&site).await? {
        return Err(swivel_provision::Error::UnknownServerId.into());
    }
    done(state, actor, "delete_site", None, Some(&site));
    Ok(DeletedSite { site })
}

/// Changes the settings named in `values` (names and values as `provision-server policy
/// show` prints them; a value equal to the current one is left alone), then checks,
/// applies and saves the policy for every instance (console Policy, `PUT /api/v1/policy`,
/// `provision-server policy set`). The outer error is a failure to save; the inner one
/// lists every refused value (a name that is not a setting too), and then nothing changed.
pub async fn change_policy(
    state: &AppState,
    actor: Actor,
    values: &[(&str, &str)],
) -> Result<Result<Policy, Vec<String>>, AppError> {
    let mut next = state.provisioner().policy();
    let mut refused = Vec::new();
    for (key, value) in values {
        if !Policy::KEYS.contains(key) {
            refused.push(format!(
                "{:?} is not a setting; the settings are {}",
                crate::event_query::truncated(key),
                Policy::KEYS.join(", ")
            ));
        } else if next.get(key).as_deref() != Some(*value)
            && let Err(e) = next.set(key, value)
        {
            refused.push(e.to_string());
        }
    }
    if !refused.is_empty() {
        return Ok(Err(refused));
    }
    state.save_policy(next).await?;
    done(state, actor, "save_policy", None, None);
    Ok(Ok(state.provisioner().policy()))
}

/// Sets the console password and ends every console session (each must log in again
/// with the new password). From the console, `current` is the password now in use and is
/// checked first (a wrong one changes nothing); the command line (`provision-server admin
/// password`) gives `None`.
pub async fn set_console_password(
    state: &AppState,
    actor: Actor,
    current: Option<&SecretString>,
    new: &SecretString,
) -> Result<(), AppError> {
    let right = match current {
        Some(current) => {
            state
                .credentials()
                .check_password(current.expose_secret())
                .await?
        }
        None => true,
    };
    if !right {
        return Err(AppError::BadRequest(
            "the current password is not right".into(),
        ));
    }
    state.credentials().set_password(new).await?;
    state.sessions().end_all().await?;
    done(state, actor, "console_password", None, None);
    Ok(())
}
