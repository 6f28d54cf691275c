//! The core error type and the words a device or user sees.

use std::error::Error as StdError;

/// A boxed error from a backend (database, transport, ...), kept as the source of a core error.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error from a storage backend ([`CodeStore`](crate::CodeStore),
/// [`UserRepository`](crate::UserRepository), [`SiteDirectory`](crate::SiteDirectory)).
///
/// Implementations must never put a secret (code, provision Id, key) into the source error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or was busy; the same call may succeed later
    /// (connection refused or lost, pool timeout, database locked).
    #[error("storage backend temporarily unavailable")]
    Unavailable(#[source] BoxError),
    /// The backend answered with an error that a retry will not fix
    /// (corrupt data, schema mismatch, constraint violation).
    #[error("storage backend failed")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps an error that a retry may fix.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }

    /// Wraps an error that a retry will not fix.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend(source.into())
    }

    /// Whether retrying the same call later can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Why a [`Transport`](crate::Transport) could not deliver a message.
///
/// Like lettre's errors, it says whether a retry can help: the delivery queue retries
/// transient errors with backoff and gives up at once on permanent ones.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    transient: bool,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl TransportError {
    /// A failure that may go away (timeout, connection refused, 4xx SMTP reply, HTTP 429/5xx).
    ///
    /// `message` is shown to administrators: it must not contain the code or the links.
    pub fn transient(message: impl Into<String>, source: Option<BoxError>) -> Self {
        Self {
            transient: true,
            message: message.into(),
            source,
        }
    }

    /// A failure that a retry will not fix (bad address, rejected credentials, 5xx SMTP reply).
    ///
    /// `message` is shown to administrators: it must not contain the code or the links.
    pub fn permanent(message: impl Into<String>, source: Option<BoxError>) -> Self {
        Self {
            transient: false,
            message: message.into(),
            source,
        }
    }

    /// Whether a retry can help.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// A policy setting out of its range, or a malformed setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct PolicyError {
    /// The setting's name, as in the configuration (`validity_secs`, ...).
    pub setting: &'static str,
    /// What is wrong with it, including the allowed range.
    pub problem: String,
}

impl PolicyError {
    pub(crate) fn range(
        setting: &'static str,
        min: u64,
        max: u64,
        got: impl std::fmt::Display,
    ) -> Self {
        Self {
            setting,
            problem: format!("must be between {min} and {max}, got {got}"),
        }
    }
}

/// Everything that can go wrong in the core.
///
/// [`Error::public_message`] gives the words a device or user may see (the Swivel
/// wording); `Display` gives a fuller message for administrators. Neither ever contains a
/// code, a provision Id, a key or a security string.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No username was given (empty or blank).
    #[error("User not set")]
    UserNotSet,
    /// The username is malformed (too long or with control characters).
    #[error("Invalid Username: {reason}")]
    InvalidUsername {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The user is not in the user repository.
    #[error("Invalid Username: user \"{username}\" is not in the user repository")]
    UnknownUser {
        /// The username as given.
        username: String,
    },
    /// The code is not valid for this user or has already been used (or burned).
    #[error("Invalid Provision Code")]
    InvalidProvisionCode,
    /// The code was wrong, or the time allowed for provisioning has been exceeded.
    #[error("Provision Failure")]
    ProvisionFailure,
    /// The provision Id belongs to no current device (never issued, or replaced by a newer
    /// provision, or revoked).
    #[error("Mobile request from unknown user; the user needs to reprovision")]
    UnknownProvisionId,
    /// The Site ID is not known to the site directory.
    #[error("Error Server, Unknown Server ID")]
    UnknownServerId,
    /// The user is not in a group with mobile-client authentication.
    #[error(
        "Error Downloading Security Strings: user \"{username}\" is not in a group with mobile-client authentication"
    )]
    NotInMobileGroup {
        /// The user.
        username: String,
    },
    /// A device request names a user that is no longer in the user repository.
    #[error("No suitable authentication method for the user \"{username}\" was found")]
    NoAuthMethod {
        /// The user.
        username: String,
    },
    /// None of the user's destinations has a configured transport.
    #[error("No suitable transport for the user \"{username}\" was found")]
    NoSuitableTransport {
        /// The user.
        username: String,
    },
    /// Self-service provisioning is switched off by the policy.
    #[error("self-provisioning of the mobile client is not allowed by the policy")]
    SelfProvisionDisabled,
    /// A self-service request came too soon after the previous one for this user.
    #[error("too many provision requests for this user; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a new request is accepted.
        retry_after_secs: u64,
    },
    /// The account is locked after too many failed redeems or one-time codes in a row; an
    /// administrator must unlock it ([`Provisioner::unlock`](crate::Provisioner::unlock)).
    #[error("the account of user \"{username}\" is locked after too many failed attempts")]
    AccountLocked {
        /// The user.
        username: String,
    },
    /// A self-service request while a code an administrator issued is still pending: it is
    /// not replaced.
    #[error("a provision code issued by an administrator is still pending for this user")]
    AdminCodePending,
    /// The one-time code was wrong, malformed, already used, or the user has no strings.
    #[error("one-time code rejected")]
    OtcRejected,
    /// The PIN is not 4 to 10 digits.
    #[error("PIN must be 4 to 10 digits")]
    InvalidPin,
    /// A malformed input that is not a username, code or PIN (a Site ID, a device field, ...).
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which input.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A policy setting is out of range.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// The transport failed to deliver the provision message.
    #[error("delivery failed: {0}")]
    Transport(#[source] TransportError),
    /// A storage backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The record kept changing under concurrent updates; the operation gave up.
    #[error("too much contention on the provisioning record; try again")]
    Contention,
    /// The provisioner was built without a required part.
    #[error("provisioner is missing its {0}")]
    Missing(&'static str),
}

impl Error {
    /// The words a device or a user may see, as in the Swivel documentation.
    ///
    /// Errors that are none of the user's business (backend failures) answer with a generic
    /// `Provision Failure`-style wording and carry no detail.
    pub fn public_message(&self) -> String {
        match self {
            Error::UserNotSet => "User not set".into(),
            Error::InvalidUsername { .. } | Error::UnknownUser { .. } => "Invalid Username".into(),
            Error::InvalidProvisionCode => "Invalid Provision Code".into(),
            Error::ProvisionFailure => "Provision Failure".into(),
            Error::UnknownProvisionId => {
                "Mobile request from unknown user; the user needs to reprovision".into()
            }
            Error::UnknownServerId => "Error Server, Unknown Server ID".into(),
            Error::NotInMobileGroup { .. } => "Error Downloading Security Strings".into(),
            Error::NoAuthMethod { username } => {
                format!("No suitable authentication method for the user \"{username}\" was found")
            }
            Error::NoSuitableTransport { username } => {
                format!("No suitable transport for the user \"{username}\" was found")
            }
            Error::SelfProvisionDisabled => "Self provisioning is not allowed".into(),
            Error::RateLimited { .. } => "Too many requests, please try again later".into(),
            Error::AccountLocked { .. } => "Account locked, contact your administrator".into(),
            Error::AdminCodePending => "A provision code has already been sent".into(),
            Error::OtcRejected | Error::InvalidPin => "Authentication failed".into(),
            Error::InvalidInput { field, reason } => format!("Invalid {field}: {reason}"),
            Error::Policy(e) => e.to_string(),
            Error::Transport(_) | Error::Store(_) | Error::Contention | Error::Missing(_) => {
                "Server error, please try again later".into()
            }
        }
    }

    /// Whether the same call may succeed if retried later (backend or transport unavailable,
    /// contention, rate limit).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Store(e) => e.is_transient(),
            Error::Transport(e) => e.is_transient(),
            Error::Contention | Error::RateLimited { .. } => true,
            _ => false,
        }
    }
}

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
