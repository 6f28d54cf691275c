//! [`SmtpConfigError`], and how SMTP failures become transient or permanent
//! [`TransportError`]s.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

use swivel_provision::TransportError;

use crate::template::TemplateError;

/// Why an [`SmtpConfig`](crate::SmtpConfig) was refused by
/// [`SmtpTransport::new`](crate::SmtpTransport::new). Never contains the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpConfigError {
    /// The sender address does not parse.
    #[error("invalid from address \"{address}\": {reason}")]
    InvalidFrom {
        /// The address as configured.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host is empty or not a valid host name / IP address.
    #[error("invalid SMTP host \"{0}\"")]
    InvalidHost(String),
    /// A username without a password or the other way round.
    #[error("SMTP username and password must be given together")]
    IncompleteCredentials,
    /// Credentials with `security = "none"` towards a host that is not loopback.
    #[error(
        "refusing to send SMTP credentials without TLS to \"{0}\": use security = \"starttls\" or \"tls\""
    )]
    CredentialsWithoutTls(String),
    /// Credentials but no authentication mechanism allowed.
    #[error("auth_mechanisms is empty but credentials are configured")]
    NoAuthMechanism,
    /// `pool_size` is 0 or `timeout_secs` is 0.
    #[error("{setting} must be at least 1")]
    Zero {
        /// The setting's name.
        setting: &'static str,
    },
    /// The extra root CA file could not be read.
    #[error("cannot read extra_root_ca_pem \"{}\"", path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The extra root CA file holds no usable PEM certificate.
    #[error("extra_root_ca_pem \"{}\" holds no usable PEM certificate", path.display())]
    InvalidCa {
        /// The file.
        path: PathBuf,
        /// What the TLS library said.
        #[source]
        source: Option<lettre::transport::smtp::Error>,
    },
    /// The TLS settings could not be built.
    #[error("invalid TLS settings")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// A template override is malformed.
    #[error("invalid template: {0}")]
    Template(#[from] TemplateError),
}

/// Secret texts of one message that must not appear in an error.
pub(crate) struct Secrets<'a>(pub(crate) Vec<&'a str>);

impl Secrets<'_> {
    fn leak_in(&self, text: &str) -> bool {
        self.0.iter().any(|s| !s.is_empty() && text.contains(s))
    }
}

/// Turns a lettre SMTP error into a [`TransportError`]:
///
/// - 4xx replies, timeouts, refused / reset / lost connections and other network errors are
///   transient: a retry may help.
/// - 5xx replies (including `535` authentication failed), TLS certificate or protocol
///   failures and client-side errors (no common authentication mechanism, server without
///   STARTTLS while it is required) are permanent.
///
/// The server's reply text is kept in the source unless it repeats a secret of the
/// message (code or link); then only the reply code is kept.
pub(crate) fn classify(
    err: lettre::transport::smtp::Error,
    secrets: &Secrets<'_>,
) -> TransportError {
    let transient = is_transient(&err);
    let what = if let Some(code) = err.status() {
        format!("SMTP server replied {code}")
    } else if err.is_timeout() {
        "SMTP server timed out".to_owned()
    } else if err.is_client() {
        "SMTP client refused to continue".to_owned()
    } else if err.is_tls() || io_kind(&err) == Some(io::ErrorKind::InvalidData) {
        "TLS negotiation with the SMTP server failed".to_owned()
    } else {
        "cannot reach the SMTP server".to_owned()
    };
    let message = format!(
        "{what} ({})",
        if transient { "transient" } else { "permanent" }
    );
    let source: swivel_provision::BoxError = if secrets.leak_in(&full_text(&err)) {
        format!("{what}: server reply withheld (it repeats message content)").into()
    } else {
        Box::new(err)
    };
    if transient {
        TransportError::transient(message, Some(source))
    } else {
        TransportError::permanent(message, Some(source))
    }
}

fn is_transient(err: &lettre::transport::smtp::Error) -> bool {
    if err.is_transient() || err.is_timeout() {
        return true;
    }
    if err.is_permanent() || err.is_client() || err.is_tls() {
        return false;
    }
    match io_kind(err) {
        // rustls reports certificate and protocol errors as InvalidData.
        Some(io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput) => false,
        // Refused, reset, aborted, unreachable, timed out, unexpected EOF, ...
        _ => true,
    }
}

fn io_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io_err) = e.downcast_ref::<io::Error>() {
            return Some(io_err.kind());
        }
        cur = e.source();
    }
    None
}

fn full_text(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
