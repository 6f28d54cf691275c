//! [`SmtpConfig`]: where and how to send mail.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain TCP, no TLS. Only for a relay on the same host or a trusted local network;
    /// credentials are refused with this setting (they would cross the network in clear).
    None,
    /// Plain TCP, then `STARTTLS`, which the server **must** offer (usually port 587).
    #[default]
    StartTls,
    /// TLS from the first byte ("implicit TLS", usually port 465).
    Tls,
}

impl SmtpSecurity {
    /// The usual port for this setting: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// A SASL mechanism the transport may use to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpAuthMechanism {
    /// `AUTH PLAIN` (RFC 4616).
    Plain,
    /// `AUTH LOGIN` (needed by some providers).
    Login,
}

/// Configuration of an [`SmtpTransport`](crate::SmtpTransport).
///
/// Deserializes from any serde format; every field but `from` has a default:
///
/// ```toml
/// host = "smtp.example.com"
/// port = 587                     # 25 / 587 / 465 are usual for none / starttls / tls
/// security = "starttls"          # "none" | "starttls" | "tls"
/// username = "provision@example.com"
/// password = "…"
/// from = "Swivel <provision@example.com>"
/// timeout_secs = 30
/// pool_size = 4
/// extra_root_ca_pem = "/etc/ssl/private-ca.pem"
/// ```
///
/// Template overrides (`subject`, `text_template`, `html_template`) may use the
/// placeholders `{username}`, `{code}`, `{link}`, `{getsettings_link}` and
/// `{validity_minutes}`; see [`crate::template`].
///
/// `Debug` never shows the password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server host name or IP address (also the name its TLS certificate must carry).
    pub host: String,
    /// SMTP server port (default 587; see [`SmtpSecurity::default_port`]).
    pub port: u16,
    /// Plain, STARTTLS (required) or implicit TLS.
    pub security: SmtpSecurity,
    /// Login name, if the server requires authentication.
    pub username: Option<String>,
    /// Password for `username`. Held as a secret; serializes as the plain value only
    /// because configuration files need it.
    #[serde(serialize_with = "serialize_secret_opt")]
    pub password: Option<SecretString>,
    /// Mechanisms allowed for login, in order of preference.
    pub auth_mechanisms: Vec<SmtpAuthMechanism>,
    /// Sender address (`provision@example.com` or `Name <provision@example.com>`).
    pub from: String,
    /// Name sent in `EHLO`. Absent: the address literal `[127.0.0.1]`.
    pub hello_name: Option<String>,
    /// Timeout of each network operation (connect, each SMTP command), in seconds.
    pub timeout_secs: u64,
    /// Most pooled connections kept open to the server (at least 1).
    pub pool_size: u32,
    /// PEM file with extra root certificate(s) to trust, for servers under a private CA.
    /// The public web PKI roots stay trusted as well.
    pub extra_root_ca_pem: Option<PathBuf>,
    /// Subject template. Absent: [`swivel_provision::ProvisionMessage::SUBJECT`].
    pub subject: Option<String>,
    /// Plain-text body template. Absent: the core's
    /// [`text_body`](swivel_provision::ProvisionMessage::text_body).
    pub text_template: Option<String>,
    /// HTML body template. Values are HTML-escaped before they are inserted.
    /// Absent: [`crate::template::default_html`].
    pub html_template: Option<String>,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".to_owned(),
            port: 587,
            security: SmtpSecurity::StartTls,
            username: None,
            password: None,
            auth_mechanisms: vec![SmtpAuthMechanism::Plain, SmtpAuthMechanism::Login],
            from: String::new(),
            hello_name: None,
            timeout_secs: 30,
            pool_size: 4,
            extra_root_ca_pem: None,
            subject: None,
            text_template: None,
            html_template: None,
        }
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("auth_mechanisms", &self.auth_mechanisms)
            .field("from", &self.from)
            .field("hello_name", &self.hello_name)
            .field("timeout_secs", &self.timeout_secs)
            .field("pool_size", &self.pool_size)
            .field("extra_root_ca_pem", &self.extra_root_ca_pem)
            .field("subject", &self.subject)
            .field(
                "text_template",
                &self.text_template.as_ref().map(|_| "[custom]"),
            )
            .field(
                "html_template",
                &self.html_template.as_ref().map(|_| "[custom]"),
            )
            .finish()
    }
}

fn serialize_secret_opt<S: serde::Serializer>(
    value: &Option<SecretString>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    match value {
        Some(secret) => serializer.serialize_some(secret.expose_secret()),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_uses_lowercase_names() {
        #[derive(Deserialize)]
        struct W {
            s: SmtpSecurity,
        }
        for (text, want) in [
            ("none", SmtpSecurity::None),
            ("starttls", SmtpSecurity::StartTls),
            ("tls", SmtpSecurity::Tls),
        ] {
            let w: W = serde_json::from_str(&format!("{{\"s\":\"{text}\"}}")).unwrap();
            assert_eq!(w.s, want);
            assert_eq!(serde_json::to_string(&want).unwrap(), format!("\"{text}\""));
        }
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let c: SmtpConfig = serde_json::from_str(r#"{"from":"a@example.com"}"#).unwrap();
        assert_eq!(c.port, 587);
        assert_eq!(c.security, SmtpSecurity::StartTls);
        assert_eq!(c.pool_size, 4);
        assert_eq!(c.host, "localhost");
        let c: SmtpConfig = serde_json::from_str(r#"{"port":2525,"security":"tls"}"#).unwrap();
        assert_eq!(c.port, 2525);
        assert_eq!(c.security, SmtpSecurity::Tls);
    }

    #[test]
    fn debug_hides_the_password_and_serde_keeps_it() {
        let c: SmtpConfig =
            serde_json::from_str(r#"{"username":"u","password":"hunter2-secret"}"#).unwrap();
        assert!(!format!("{c:?}").contains("hunter2-secret"));
        assert!(
            serde_json::to_string(&c)
                .unwrap()
                .contains("hunter2-secret")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<SmtpConfig>(r#"{"hots":"x"}"#).is_err());
    }
}
