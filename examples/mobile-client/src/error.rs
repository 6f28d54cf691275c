//! What can go wrong, in the words the Swivel documentation uses.

/// A failure, displayed with the mobile client's wording.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The SSD does not know the Site ID.
    #[error("Error Server, Unknown Server ID")]
    UnknownServerId,
    /// The server could not be reached, or answered something that is not the protocol.
    #[error("Error Server Connection")]
    Connection(#[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    /// No username was given.
    #[error("User not set")]
    UserNotSet,
    /// The server does not know the user.
    #[error("Invalid Username")]
    InvalidUsername,
    /// The code is not valid or has already been used.
    #[error("Invalid Provision Code")]
    InvalidProvisionCode,
    /// The server refused the provision request (wrong code, time exceeded, ...).
    #[error("Failure Please check your settings or try again later. Message: {0}")]
    ProvisionFailure(String),
    /// The strings could not be downloaded; with the server's message when it said more.
    #[error("Error Downloading Security Strings{}", .0.as_ref().map(|m| format!(". Message: {m}")).unwrap_or_default())]
    Strings(Option<String>),
    /// The device has not been provisioned yet (no state file).
    #[error("Device not provisioned: run `mobile-client provision` first ({0})")]
    NotProvisioned(String),
    /// Every usable string was used.
    #[error("No security strings left: run `mobile-client strings`")]
    NoStringsLeft,
    /// The PIN is not 4 to 10 digits.
    #[error("PIN must be 4 to 10 digits")]
    InvalidPin,
    /// The arguments do not make sense.
    #[error("{0}")]
    Usage(String),
    /// The state file could not be read or written.
    #[error("state file {path}: {message}")]
    State {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// A connection error with its cause.
    pub fn connection(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Connection(Some(Box::new(e)))
    }

    /// The error for a `FAIL` answer to a provision request.
    pub fn from_provision_fail(error: &str) -> Self {
        match error.trim() {
            "User not set" => Self::UserNotSet,
            "Invalid Username" => Self::InvalidUsername,
            "Invalid Provision Code" => Self::InvalidProvisionCode,
            other => Self::ProvisionFailure(other.to_owned()),
        }
    }

    /// The error for a `FAIL` answer to a strings request.
    pub fn from_strings_fail(error: &str) -> Self {
        match error.trim() {
            "Error Downloading Security Strings" | "" => Self::Strings(None),
            other => Self::Strings(Some(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_words() {
        assert_eq!(
            ClientError::UnknownServerId.to_string(),
            "Error Server, Unknown Server ID"
        );
        assert_eq!(
            ClientError::Connection(None).to_string(),
            "Error Server Connection"
        );
        assert_eq!(
            ClientError::from_provision_fail("User not set").to_string(),
            "User not set"
        );
        assert_eq!(
            ClientError::from_provision_fail("Invalid Username").to_string(),
            "Invalid Username"
        );
        assert_eq!(
            ClientError::from_provision_fail("Invalid Provision Code").to_string(),
            "Invalid Provision Code"
        );
        assert_eq!(
            ClientError::from_provision_fail("Provision Failure").to_string(),
            "Failure Please check your settings or try again later. Message: Provision Failure"
        );
        assert_eq!(
            ClientError::from_strings_fail("Error Downloading Security Strings").to_string(),
            "Error Downloading Security Strings"
        );
        assert_eq!(
            ClientError::from_strings_fail(
                "Mobile request from unknown user; the user needs to reprovision"
            )
            .to_string(),
            "Error Downloading Security Strings. Message: Mobile request from unknown user; the user needs to reprovision"
        );
    }
}
