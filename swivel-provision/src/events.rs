//! [`ProvisionEvent`]s and the [`EventSink`] that receives them. `Display` of an event is
//! the exact log line of the Swivel documentation where there is one.

use std::fmt;

use crate::types::{Destination, DeviceInfo, Username};

/// Something that happened. None carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvisionEvent {
    /// `Provision code created for user "{u}"`
    CodeCreated {
        /// The user.
        username: Username,
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
}

impl fmt::Display for ProvisionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProvisionEvent::*;
        match self {
            CodeCreated { username } => write!(f, "Provision code created for user \"{username}\""),
            MessageQueued {
                username,
                destination,
            } => write!(
                f,
                "Message added to message queue for user: {username}, destination: {destination}."
            ),
            MessageSent {
                username,
                destination,
            } => {
                write!(
                    f,
                    "Message sent to user: {username}, destination: {destination}."
                )
            }
            DeliveryRetry {
                username,
                destination,
                attempt,
                error,
            } => write!(
                f,
                "Message to user: {username}, destination: {destination} failed (attempt {attempt}), will retry: {error}"
            ),
            DeliveryFailed {
                username,
                destination,
                error,
            } => write!(
                f,
                "Message to user: {username}, destination: {destination} could not be delivered, provision code revoked: {error}"
            ),
            CanReprovision { username } => {
                write!(
                    f,
                    "User \"{username}\" can now reprovision their mobile device."
                )
            }
            Provisioned {
                username,
                device: None,
            } => {
                write!(f, "User \"{username}\" provisioned successfully")
            }
            Provisioned {
                username,
                device: Some(d),
            } => {
                write!(
                    f,
                    "User \"{username}\" provisioned successfully, device: {d}"
                )
            }
            ProvisionFailed { username } => write!(
                f,
                "User \"{username}\" provision failed, A valid session could not be loaded or created for the user."
            ),
            CodeBurned { username } => write!(
                f,
                "Provision code for user \"{username}\" burned after too many wrong attempts"
            ),
            UnknownMobileUser => {
                f.write_str("Mobile request from unknown user; the user needs to reprovision")
            }
            NoAuthMethod { username } => write!(
                f,
                "AgentXML request failed, error: No suitable authentication method for the user \"{username}\" was found."
            ),
            StringsDownloaded {
                username,
                generation,
            } => write!(
                f,
                "Security strings downloaded for user \"{username}\" (generation {generation})"
            ),
            SelfServiceRefused { username, reason } => {
                write!(
                    f,
                    "Self-service provision request for user \"{username}\" refused: {reason}"
                )
            }
            Revoked { username } => {
                write!(
                    f,
                    "Mobile device and provision code of user \"{username}\" revoked"
                )
            }
            OtcAccepted { username } => write!(f, "One-time code accepted for user \"{username}\""),
            OtcRejected { username } => write!(f, "One-time code rejected for user \"{username}\""),
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
                | ProvisionFailed { .. }
                | CodeBurned { .. }
                | UnknownMobileUser
                | NoAuthMethod { .. }
                | SelfServiceRefused { .. }
                | OtcRejected { .. }
        )
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
        if event.is_failure() {
            tracing::warn!(target: "swivel_provision", "{event}");
        } else {
            tracing::info!(target: "swivel_provision", "{event}");
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
        }
    }
}
