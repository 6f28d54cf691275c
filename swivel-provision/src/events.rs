//! [`ProvisionEvent`]s and the [`EventSink`] that receives them. `Display` of an event is
//! the exact log line of the Swivel documentation where there is one.

use std::fmt;

use crate::record::Origin;
use crate::types::{Destination, DeviceInfo, SiteId, Username};

/// Something that happened. None carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvisionEvent {
    /// `Provision code created for user "{u}"`
    CodeCreated {
        /// The user.
        username: Username,
        /// Who asked for the code (not in the line).
        origin: Origin,
    },
    /// `Message added to message queue for user: {u}, destination: {d}.`
    MessageQueued {
        /// The user.
        username: Username,
        /// The destination.
        destination: Destination,
    },
    /// `Message sent to user: {u}, destination: {d}.`
    MessageSent {
        /// The user.
        username: Username,
        /// The destination.
        destination: Destination,
    },
    /// A transient delivery error; the queue will try again.
    DeliveryRetry {
        /// The user.
        username: Username,
        /// The destination.
        destination: Destination,
        /// Attempt number that failed (1 = first).
        attempt: u32,
        /// The transport's error (no secret).
        error: String,
    },
    /// Delivery failed for good; the code was revoked.
    DeliveryFailed {
        /// The user.
        username: Username,
        /// The destination.
        destination: Destination,
        /// The transport's error (no secret).
        error: String,
    },
    /// A queued message was dropped unsent: its code expired before it could be delivered.
    MessageExpired {
        /// The user.
        username: Username,
        /// The destination.
        destination: Destination,
    },
    /// A queued message was dropped unsent: its code was replaced, redeemed or revoked
    /// meanwhile.
    MessageCancelled {
        /// The user.
        username: Username,
        /// The destination.
        destination: Destination,
    },
    /// A queued message was dropped: it does not open with this server's key (sealed under
    /// another key, or altered), so its code would not redeem either.
    MessageUnreadable {
        /// The user.
        username: Username,
    },
    /// A device-bound notice could not be delivered (failed for good, or not within a
    /// day).
    NoticeFailed {
        /// The user.
        username: Username,
        /// The destination.
        destination: Destination,
        /// Why (no secret).
        error: String,
    },
    /// `User "{u}" can now reprovision their mobile device.`
    CanReprovision {
        /// The user.
        username: Username,
    },
    /// `User "{u}" provisioned successfully` (with the device when the policy logs it).
    Provisioned {
        /// The user.
        username: Username,
        /// The device, only when the policy's `log_device_info` is on.
        device: Option<DeviceInfo>,
    },
    /// `User "{u}" provision failed, A valid session could not be loaded or created for the user.`
    ProvisionFailed {
        /// The user.
        username: Username,
        /// Why, for the operator (not in the line; the device is told what the policy's
        /// `device_errors` allows).
        reason: RedeemFailure,
    },
    /// The code was burned after too many wrong attempts.
    CodeBurned {
        /// The user.
        username: Username,
    },
    /// `Mobile request from unknown user; the user needs to reprovision`
    UnknownMobileUser,
    /// `AgentXML request failed, error: No suitable authentication method for the user "{u}" was found.`
    NoAuthMethod {
        /// The user.
        username: Username,
    },
    /// Security strings were downloaded.
    StringsDownloaded {
        /// The user.
        username: Username,
        /// The new generation.
        generation: u32,
    },
    /// A self-service request was refused (policy says No, or rate limit).
    SelfServiceRefused {
        /// The user.
        username: Username,
        /// Why.
        reason: &'static str,
    },
    /// The user's device and pending code were revoked by an administrator.
    Revoked {
        /// The user.
        username: Username,
    },
    /// A one-time code was accepted.
    OtcAccepted {
        /// The user.
        username: Username,
    },
    /// A one-time code was rejected.
    OtcRejected {
        /// The user.
        username: Username,
    },
    /// The account was locked after too many failed redeems or one-time codes in a row.
    AccountLocked {
        /// The user.
        username: Username,
    },
    /// An administrator unlocked the account.
    AccountUnlocked {
        /// The user.
        username: Username,
    },
    /// An administrator cancelled the user's pending code (the device, if any, stays).
    CodeCancelled {
        /// The user.
        username: Username,
    },
    /// An administrator did something: the host names who (console, API, command line)
    /// and what. The core's other events name the user only; a host emits this one beside
    /// them ([`EventSink::emit`]) so that the log says who acted.
    AdministratorAction {
        /// Who, in the host's words (e.g. `console (192.0.2.1)`, `api`, `cli`).
        administrator: String,
        /// What, a `snake_case` name (e.g. `reprovision`, `delete_site`).
        action: &'static str,
        /// The user acted on, if any.
        username: Option<Username>,
        /// The site acted on, if any.
        site: Option<SiteId>,
    },
}

/// Why a redeem failed, in the operator's words ([`ProvisionEvent::ProvisionFailed`]).
/// Never told to the device beyond what the policy's `device_errors` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedeemFailure {
    /// The user is not in the directory (the event is then
    /// [`ProvisionEvent::UnknownMobileUser`]).
    UnknownUser,
    /// The account is locked.
    Locked,
    /// No code is pending (never asked for, used, revoked or burned earlier).
    NoCode,
    /// The code expired (or was created in the future: the clock was set back).
    Expired,
    /// The presented code does not have the policy's length or alphabet.
    Malformed,
    /// A wrong code; attempts are left.
    WrongCode,
    /// The code is burned: this wrong attempt used its last try.
    Burned,
}

impl RedeemFailure {
    /// A stable `snake_case` name (`wrong_code`, `expired`, ...), e.g. for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RedeemFailure::UnknownUser => "unknown_user",
            RedeemFailure::Locked => "locked",
            RedeemFailure::NoCode => "no_code",
            RedeemFailure::Expired => "expired",
            RedeemFailure::Malformed => "malformed",
            RedeemFailure::WrongCode => "wrong_code",
            RedeemFailure::Burned => "burned",
        }
    }
}

/// A user-controlled value (a username, an address) in an event line: as it is, or escaped
/// for a log where a `"` or a backslash must not forge a field.
struct Value<'a> {
    text: &'a str,
    escaped: bool,
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.escaped {
            return f.write_str(self.text);
        }
        for c in self.text.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() || crate::types::is_bidi_or_separator(c) => {
                    write!(f, "\\u{{{:x}}}", c as u32)?
                }
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

fn val(escaped: bool, text: &str) -> Value<'_> {
    Value { text, escaped }
}

/// An event line with its user-controlled values escaped ([`ProvisionEvent::log_line`]).
struct LogLine<'a>(&'a ProvisionEvent);

impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.render(f, true)
    }
}

impl fmt::Display for ProvisionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(f, false)
    }
}

impl ProvisionEvent {
    /// The event's line with every username and address escaped (`"` as `\"`, `\` as
    /// `\\`, control, bidirectional and separator characters as `\u{..}`), so that a
    /// value cannot forge a field or a line in a log. [`TracingSink`] logs this form;
    /// `Display` gives the plain line (the seed's exact words).
    pub fn log_line(&self) -> String {
        LogLine(self).to_string()
    }

    fn render(&self, f: &mut fmt::Formatter<'_>, escaped: bool) -> fmt::Result {
        use ProvisionEvent::*;
        match self {
            CodeCreated { username, .. } => write!(
                f,
                "Provision code created for user \"{}\"",
                val(escaped, username.as_str())
            ),
            MessageQueued {
                username,
                destination,
            } => write!(
                f,
                "Message added to message queue for user: {}, destination: {}.",
                val(escaped, username.as_str()),
                val(escaped, &destination.address)
            ),
            MessageSent {
                username,
                destination,
            } => {
                write!(
                    f,
                    "Message sent to user: {}, destination: {}.",
                    val(escaped, username.as_str()),
                    val(escaped, &destination.address)
                )
            }
            DeliveryRetry {
                username,
                destination,
                attempt,
                error,
            } => write!(
                f,
                "Message to user: {}, destination: {} failed (attempt {}), will retry: {}",
                val(escaped, username.as_str()),
                val(escaped, &destination.address),
                attempt,
                error
            ),
            DeliveryFailed {
                username,
                destination,
                error,
            } => write!(
                f,
                "Message to user: {}, destination: {} could not be delivered, provision code revoked: {}",
                val(escaped, username.as_str()),
                val(escaped, &destination.address),
                error
            ),
            MessageExpired {
                username,
                destination,
            } => write!(
                f,
                "Message to user: {}, destination: {} not sent: the provision code expired first.",
                val(escaped, username.as_str()),
                val(escaped, &destination.address)
            ),
            MessageCancelled {
                username,
                destination,
            } => write!(
                f,
                "Message to user: {}, destination: {} not sent: the provision code was replaced, used or revoked.",
                val(escaped, username.as_str()),
                val(escaped, &destination.address)
            ),
            MessageUnreadable { username } => write!(
                f,
                "Message to user: {} dropped: it does not open with this server key.",
                val(escaped, username.as_str())
            ),
            NoticeFailed {
                username,
                destination,
                error,
            } => write!(
                f,
                "Device notice to user: {}, destination: {} could not be delivered: {}",
                val(escaped, username.as_str()),
                val(escaped, &destination.address),
                error
            ),
            CanReprovision { username } => {
                write!(
                    f,
                    "User \"{}\" can now reprovision their mobile device.",
                    val(escaped, username.as_str())
                )
            }
            Provisioned {
                username,
                device: None,
            } => {
                write!(
                    f,
                    "User \"{}\" provisioned successfully",
                    val(escaped, username.as_str())
                )
            }
            Provisioned {
                username,
                device: Some(d),
            } => {
                write!(
                    f,
                    "User \"{}\" provisioned successfully, device: {}",
                    val(escaped, username.as_str()),
                    d
                )
            }
            ProvisionFailed { username, .. } => write!(
                f,
                "User \"{}\" provision failed, A valid session could not be loaded or created for the user.",
                val(escaped, username.as_str())
            ),
            CodeBurned { username } => write!(
                f,
                "Provision code for user \"{}\" burned after too many wrong attempts",
                val(escaped, username.as_str())
            ),
            UnknownMobileUser => {
                f.write_str("Mobile request from unknown user; the user needs to reprovision")
            }
            NoAuthMethod { username } => write!(
                f,
                "AgentXML request failed, error: No suitable authentication method for the user \"{}\" was found.",
                val(escaped, username.as_str())
            ),
            StringsDownloaded {
                username,
                generation,
            } => write!(
                f,
                "Security strings downloaded for user \"{}\" (generation {})",
                val(escaped, username.as_str()),
                generation
            ),
            SelfServiceRefused { username, reason } => {
                write!(
                    f,
                    "Self-service provision request for user \"{}\" refused: {}",
                    val(escaped, username.as_str()),
                    reason
                )
            }
            Revoked { username } => {
                write!(
                    f,
                    "Mobile device and provision code of user \"{}\" revoked",
                    val(escaped, username.as_str())
                )
            }
            OtcAccepted { username } => write!(
                f,
                "One-time code accepted for user \"{}\"",
                val(escaped, username.as_str())
            ),
            OtcRejected { username } => write!(
                f,
                "One-time code rejected for user \"{}\"",
                val(escaped, username.as_str())
            ),
            AccountLocked { username } => write!(
                f,
                "Account of user \"{}\" locked after too many failed attempts",
                val(escaped, username.as_str())
            ),
            AccountUnlocked { username } => {
                write!(
                    f,
                    "Account of user \"{}\" unlocked",
                    val(escaped, username.as_str())
                )
            }
            CodeCancelled { username } => write!(
                f,
                "Provision code of user \"{}\" cancelled",
                val(escaped, username.as_str())
            ),
            AdministratorAction {
                administrator,
                action,
                username,
                site,
            } => {
                write!(f, "Administrator {}: {action}", val(escaped, administrator))?;
                if let Some(u) = username {
                    write!(f, ", user \"{}\"", val(escaped, u.as_str()))?;
                }
                if let Some(s) = site {
                    write!(f, ", site \"{}\"", val(escaped, s.as_str()))?;
                }
                Ok(())
            }
        }
    }
}

impl ProvisionEvent {
    /// Whether the event reports a failure (logged at `warn` by [`TracingSink`]).
    pub fn is_failure(&self) -> bool {
        use ProvisionEvent::*;
        matches!(
            self,
            DeliveryRetry { .. }
                | DeliveryFailed { .. }
                | MessageExpired { .. }
                | MessageUnreadable { .. }
                | NoticeFailed { .. }
                | ProvisionFailed { .. }
                | CodeBurned { .. }
                | UnknownMobileUser
                | NoAuthMethod { .. }
                | SelfServiceRefused { .. }
                | OtcRejected { .. }
                | AccountLocked { .. }
        )
    }
}

impl ProvisionEvent {
    /// A stable `snake_case` name of the event's kind (`code_created`, `provisioned`, ...),
    /// as the shared event log keeps it.
    pub fn kind(&self) -> &'static str {
        use ProvisionEvent::*;
        match self {
            CodeCreated { .. } => "code_created",
            MessageQueued { .. } => "message_queued",
            MessageSent { .. } => "message_sent",
            DeliveryRetry { .. } => "delivery_retry",
            DeliveryFailed { .. } => "delivery_failed",
            MessageExpired { .. } => "message_expired",
            MessageCancelled { .. } => "message_cancelled",
            MessageUnreadable { .. } => "message_unreadable",
            NoticeFailed { .. } => "notice_failed",
            CanReprovision { .. } => "can_reprovision",
            Provisioned { .. } => "provisioned",
            ProvisionFailed { .. } => "provision_failed",
            CodeBurned { .. } => "code_burned",
            UnknownMobileUser => "unknown_mobile_user",
            NoAuthMethod { .. } => "no_auth_method",
            StringsDownloaded { .. } => "strings_downloaded",
            SelfServiceRefused { .. } => "self_service_refused",
            Revoked { .. } => "revoked",
            OtcAccepted { .. } => "otc_accepted",
            OtcRejected { .. } => "otc_rejected",
            AccountLocked { .. } => "account_locked",
            AccountUnlocked { .. } => "account_unlocked",
            CodeCancelled { .. } => "code_cancelled",
            AdministratorAction { .. } => "administrator_action",
        }
    }

    /// Every [`kind`](ProvisionEvent::kind) there is, e.g. for a filter's choices.
    pub const KINDS: &'static [&'static str] = &[
        "code_created",
        "message_queued",
        "message_sent",
        "delivery_retry",
        "delivery_failed",
        "message_expired",
        "message_cancelled",
        "message_unreadable",
        "notice_failed",
        "can_reprovision",
        "provisioned",
        "provision_failed",
        "code_burned",
        "unknown_mobile_user",
        "no_auth_method",
        "strings_downloaded",
        "self_service_refused",
        "revoked",
        "otc_accepted",
        "otc_rejected",
        "account_locked",
        "account_unlocked",
        "code_cancelled",
        "administrator_action",
    ];

    /// The user the event concerns (every event but [`ProvisionEvent::UnknownMobileUser`]).
    pub fn username(&self) -> Option<&Username> {
        use ProvisionEvent::*;
        match self {
            CodeCreated { username, .. }
            | MessageQueued { username, .. }
            | MessageSent { username, .. }
            | DeliveryRetry { username, .. }
            | DeliveryFailed { username, .. }
            | MessageExpired { username, .. }
            | MessageCancelled { username, .. }
            | MessageUnreadable { username }
            | NoticeFailed { username, .. }
            | CanReprovision { username }
            | Provisioned { username, .. }
            | ProvisionFailed { username, .. }
            | CodeBurned { username }
            | NoAuthMethod { username }
            | StringsDownloaded { username, .. }
            | SelfServiceRefused { username, .. }
            | Revoked { username }
            | OtcAccepted { username }
            | OtcRejected { username }
            | AccountLocked { username }
            | AccountUnlocked { username }
            | CodeCancelled { username } => Some(username),
            AdministratorAction { username, .. } => username.as_ref(),
            UnknownMobileUser => None,
        }
    }
}

/// Receives events. Must not block: a slow sink slows every request.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait EventSink: Send + Sync + 'static {
    /// Records one event.
    fn emit(&self, event: &ProvisionEvent);
}

/// The default sink: each event as one `tracing` line, target `swivel_provision`, at `info`
/// (failures at `warn`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, event: &ProvisionEvent) {
        // The line with usernames and addresses escaped, so that a name cannot forge a
        // field or a line (see `ProvisionEvent::log_line`).
        let line = LogLine(event);
        if event.is_failure() {
            tracing::warn!(target: "swivel_provision", "{line}");
        } else {
            tracing::info!(target: "swivel_provision", "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Destination;

    #[test]
    fn seed_lines_are_exact() {
        let u = Username::parse("gfield").unwrap();
        let d = Destination::email("gfield@example.com").unwrap();
        let cases = [
            (
                ProvisionEvent::CodeCreated {
                    username: u.clone(),
                    origin: Origin::Admin,
                },
                "Provision code created for user \"gfield\"",
            ),
            (
                ProvisionEvent::MessageQueued {
                    username: u.clone(),
                    destination: d.clone(),
                },
                "Message added to message queue for user: gfield, destination: gfield@example.com.",
            ),
            (
                ProvisionEvent::MessageSent {
                    username: u.clone(),
                    destination: d.clone(),
                },
                "Message sent to user: gfield, destination: gfield@example.com.",
            ),
            (
                ProvisionEvent::CanReprovision {
                    username: u.clone(),
                },
                "User \"gfield\" can now reprovision their mobile device.",
            ),
            (
                ProvisionEvent::Provisioned {
                    username: u.clone(),
                    device: None,
                },
                "User \"gfield\" provisioned successfully",
            ),
            (
                ProvisionEvent::ProvisionFailed {
                    username: u.clone(),
                    reason: RedeemFailure::WrongCode,
                },
                "User \"gfield\" provision failed, A valid session could not be loaded or created for the user.",
            ),
            (
                ProvisionEvent::UnknownMobileUser,
                "Mobile request from unknown user; the user needs to reprovision",
            ),
        ];
        for (event, line) in cases {
            assert_eq!(event.to_string(), line);
            assert_eq!(event.log_line(), line, "nothing to escape in a plain name");
        }
    }

    #[test]
    fn log_lines_escape_what_could_forge_a_field() {
        let u = Username::parse(r#"eve" admin="yes\"#).unwrap();
        let d = Destination::email("a\"b@example.com").unwrap();
        let e = ProvisionEvent::MessageSent {
            username: u.clone(),
            destination: d,
        };
        assert_eq!(
            e.log_line(),
            r#"Message sent to user: eve\" admin=\"yes\\, destination: a\"b@example.com."#
        );
        // Display keeps the plain words (for pages that escape on their own).
        assert!(e.to_string().contains(r#"eve" admin="yes\"#));
        let locked = ProvisionEvent::AccountLocked { username: u };
        assert!(locked.is_failure());
        assert_eq!(
            locked.log_line(),
            r#"Account of user "eve\" admin=\"yes\\" locked after too many failed attempts"#
        );
    }

    #[test]
    fn kinds_are_distinct_snake_case_names() {
        let u = Username::parse("gfield").unwrap();
        let events = [
            ProvisionEvent::CodeCreated {
                username: u.clone(),
                origin: Origin::SelfService,
            },
            ProvisionEvent::Provisioned {
                username: u.clone(),
                device: None,
            },
            ProvisionEvent::UnknownMobileUser,
            ProvisionEvent::AccountUnlocked {
                username: u.clone(),
            },
        ];
        let kinds: Vec<&str> = events.iter().map(ProvisionEvent::kind).collect();
        assert_eq!(
            kinds,
            [
                "code_created",
                "provisioned",
                "unknown_mobile_user",
                "account_unlocked"
            ]
        );
        assert_eq!(events[0].username(), Some(&u));
        assert_eq!(events[2].username(), None);
    }

    /// One event of every variant (the match makes a new variant a compile error here).
    fn one_of_each() -> Vec<ProvisionEvent> {
        use ProvisionEvent::*;
        let u = Username::parse("gfield").unwrap();
        let d = Destination::email("gfield@example.com").unwrap();
        let all = vec![
            CodeCreated {
                username: u.clone(),
                origin: Origin::Admin,
            },
            MessageQueued {
                username: u.clone(),
                destination: d.clone(),
            },
            MessageSent {
                username: u.clone(),
                destination: d.clone(),
            },
            DeliveryRetry {
                username: u.clone(),
                destination: d.clone(),
                attempt: 1,
                error: "e".into(),
            },
            DeliveryFailed {
                username: u.clone(),
                destination: d.clone(),
                error: "e".into(),
            },
            MessageExpired {
                username: u.clone(),
                destination: d.clone(),
            },
            MessageCancelled {
                username: u.clone(),
                destination: d.clone(),
            },
            MessageUnreadable {
                username: u.clone(),
            },
            NoticeFailed {
                username: u.clone(),
                destination: d.clone(),
                error: "e".into(),
            },
            CanReprovision {
                username: u.clone(),
            },
            Provisioned {
                username: u.clone(),
                device: None,
            },
            ProvisionFailed {
                username: u.clone(),
                reason: RedeemFailure::Expired,
            },
            CodeBurned {
                username: u.clone(),
            },
            UnknownMobileUser,
            NoAuthMethod {
                username: u.clone(),
            },
            StringsDownloaded {
                username: u.clone(),
                generation: 1,
            },
            SelfServiceRefused {
                username: u.clone(),
                reason: "r",
            },
            Revoked {
                username: u.clone(),
            },
            OtcAccepted {
                username: u.clone(),
            },
            OtcRejected {
                username: u.clone(),
            },
            AccountLocked {
                username: u.clone(),
            },
            AccountUnlocked {
                username: u.clone(),
            },
            CodeCancelled {
                username: u.clone(),
            },
            AdministratorAction {
                administrator: "cli".into(),
                action: "revoke",
                username: None,
                site: None,
            },
        ];
        for e in &all {
            match e {
                CodeCreated { .. }
                | MessageQueued { .. }
                | MessageSent { .. }
                | DeliveryRetry { .. }
                | DeliveryFailed { .. }
                | MessageExpired { .. }
                | MessageCancelled { .. }
                | MessageUnreadable { .. }
                | NoticeFailed { .. }
                | CanReprovision { .. }
                | Provisioned { .. }
                | ProvisionFailed { .. }
                | CodeBurned { .. }
                | UnknownMobileUser
                | NoAuthMethod { .. }
                | StringsDownloaded { .. }
                | SelfServiceRefused { .. }
                | Revoked { .. }
                | OtcAccepted { .. }
                | OtcRejected { .. }
                | AccountLocked { .. }
                | AccountUnlocked { .. }
                | CodeCancelled { .. }
                | AdministratorAction { .. } => {}
            }
        }
        all
    }

    #[test]
    fn kinds_lists_the_kind_of_every_variant_once() {
        let kinds: Vec<&str> = one_of_each().iter().map(ProvisionEvent::kind).collect();
        assert_eq!(kinds, ProvisionEvent::KINDS);
        let distinct: std::collections::BTreeSet<&str> = kinds.iter().copied().collect();
        assert_eq!(distinct.len(), kinds.len(), "kinds are distinct");
    }

    #[test]
    fn an_administrator_action_names_who_and_escapes_values() {
        let e = ProvisionEvent::AdministratorAction {
            administrator: "console (192.0.2.1)".into(),
            action: "delete_user",
            username: Some(Username::parse(r#"eve" x="1"#).unwrap()),
            site: None,
        };
        assert_eq!(
            e.log_line(),
            r#"Administrator console (192.0.2.1): delete_user, user "eve\" x=\"1""#
        );
        assert_eq!(e.username().map(Username::as_str), Some(r#"eve" x="1"#));
        let site = ProvisionEvent::AdministratorAction {
            administrator: "api".into(),
            action: "delete_site",
            username: None,
            site: Some(SiteId::parse("main").unwrap()),
        };
        assert_eq!(
            site.to_string(),
            r#"Administrator api: delete_site, site "main""#
        );
        assert!(!site.is_failure());
        assert_eq!(site.username(), None);
    }
}
