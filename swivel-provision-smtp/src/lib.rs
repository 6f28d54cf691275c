//! # swivel-provision-smtp
//!
//! [`SmtpTransport`] delivers swivel-provision's provision messages by email: it implements
//! the core [`Transport`](swivel_provision::Transport) on [lettre] (async, tokio, rustls
//! with the *ring* provider).
//!
//! - Configuration ([`SmtpConfig`], serde): host, port, plain / STARTTLS (required) /
//!   implicit TLS, optional credentials held as secrets, sender address, timeout, pool size,
//!   an extra root CA for servers under a private CA, and template overrides.
//! - The email: a subject, a plain-text part and an HTML part with the Provision URL as a
//!   link and the QR code as an inline PNG (`multipart/related`, Content-ID). See
//!   [`template`] for the placeholders and the defaults.
//! - Errors say whether a retry can help: 4xx replies, timeouts and refused connections are
//!   transient; 5xx replies (such as `535` authentication failed) and invalid addresses are
//!   permanent. Invalid addresses are refused before any connection is made.
//!
//! ```no_run
//! use swivel_provision_smtp::{SmtpConfig, SmtpSecurity, SmtpTransport};
//!
//! let config: SmtpConfig = toml::from_str(r#"
//!     host = "smtp.example.com"
//!     port = 587
//!     security = "starttls"
//!     username = "provision@example.com"
//!     password = "change-me"
//!     from = "Mobile Provisioning <provision@example.com>"
//! "#).unwrap();
//! assert_eq!(config.security, SmtpSecurity::StartTls);
//! let transport = SmtpTransport::new(config).unwrap();
//! // Hand `Arc::new(transport)` to the Provisioner as the email transport.
//! # drop(transport);
//! ```
//!
//! # Security
//! - The code, the links and the QR code are never logged and never put into an error; a
//!   server reply that repeats them is withheld from the error's source.
//! - The password is a [`secrecy::SecretString`]; `Debug` shows neither it nor the
//!   templates' output.
//! - Credentials are refused with `security = "none"` unless the server is on loopback.
//! - Server certificates are checked against the web PKI roots (webpki-roots) plus the
//!   optional `extra_root_ca_pem`; there is no switch to accept invalid certificates.
//!
//! # What this crate does not do
//! - It does not queue or retry: the core's delivery queue retries transient errors.
//! - It does not resolve MX records: it hands every message to one configured server.
//! - It does not support client certificates, OAuth2 (XOAUTH2) or DKIM signing.
//! - It does not check that a recipient mailbox exists beyond what the server answers.

mod config;
mod error;
mod message;
pub mod template;
mod transport;

pub use config::{SmtpAuthMechanism, SmtpConfig, SmtpSecurity};
pub use error::SmtpConfigError;
pub use template::TemplateError;
pub use transport::SmtpTransport;
