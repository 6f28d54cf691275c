//! [`SmtpTransport`]: the core [`Transport`] over SMTP.

use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use swivel_provision::{Channel, ProvisionMessage, Transport, TransportError};

use crate::config::{SmtpAuthMechanism, SmtpConfig, SmtpSecurity};
use crate::error::{Secrets, SmtpConfigError, classify};
use crate::message::{Templates, build};
use crate::template::Template;

/// Delivers provision messages by email over SMTP (lettre, tokio, rustls with *ring*).
///
/// Built from an [`SmtpConfig`] without connecting; connections are opened on the first
/// delivery and pooled (at most `pool_size`). Use one `SmtpTransport` within one tokio
/// runtime: its pool lives on the runtime of the first delivery.
///
/// Errors say whether a retry can help ([`TransportError::is_transient`]): 4xx replies,
/// timeouts and unreachable servers are transient; 5xx replies (such as `535`
/// authentication failed), TLS certificate failures and invalid addresses are permanent.
/// Invalid sender or recipient addresses are refused before any connection is made, with
/// a message naming the address. No error and no log line contains the code, the links
/// or the password.
pub struct SmtpTransport {
    builder: AsyncSmtpTransportBuilder,
    inner: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    templates: Templates,
    host: String,
    port: u16,
    security: SmtpSecurity,
}

impl SmtpTransport {
    /// Checks `config` (addresses, host, credentials, CA file, templates) and builds the
    /// transport. Makes no connection.
    pub fn new(config: SmtpConfig) -> Result<Self, SmtpConfigError> {
        let from: Mailbox =
            config
                .from
                .trim()
                .parse()
                .map_err(
                    |e: lettre::address::AddressError| SmtpConfigError::InvalidFrom {
                        address: config.from.clone(),
                        reason: e.to_string(),
                    },
                )?;
        let host = config.host.trim().to_owned();
        if !valid_host(&host) {
            return Err(SmtpConfigError::InvalidHost(config.host.clone()));
        }
        if config.pool_size == 0 {
            return Err(SmtpConfigError::Zero {
                setting: "pool_size",
            });
        }
        if config.timeout_secs == 0 {
            return Err(SmtpConfigError::Zero {
                setting: "timeout_secs",
            });
        }

        let tls = match config.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(&host, &config)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&host, &config)?),
        };

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(config.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            .pool_config(PoolConfig::new().max_size(config.pool_size));
        if let Some(name) = &config.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        match (&config.username, &config.password) {
            (None, None) => {}
            (Some(user), Some(password)) => {
                if config.security == SmtpSecurity::None && !is_loopback(&host) {
                    return Err(SmtpConfigError::CredentialsWithoutTls(host));
                }
                if config.auth_mechanisms.is_empty() {
                    return Err(SmtpConfigError::NoAuthMechanism);
                }
                let mechanisms = config
                    .auth_mechanisms
                    .iter()
                    .map(|m| match m {
                        SmtpAuthMechanism::Plain => Mechanism::Plain,
                        SmtpAuthMechanism::Login => Mechanism::Login,
                    })
                    .collect();
                builder = builder
                    .credentials(Credentials::new(
                        user.clone(),
                        password.expose_secret().to_owned(),
                    ))
                    .authentication(mechanisms);
            }
            _ => return Err(SmtpConfigError::IncompleteCredentials),
        }

        let templates = Templates {
            subject: parse_opt("subject", config.subject.as_deref(), false)?,
            text: parse_opt("text_template", config.text_template.as_deref(), false)?,
            html: parse_opt("html_template", config.html_template.as_deref(), true)?,
        };

        Ok(Self {
            builder,
            inner: OnceLock::new(),
            from,
            templates,
            host,
            port: config.port,
            security: config.security,
        })
    }

    /// Opens a connection (and logs in, when configured) to check the settings, e.g. at
    /// startup. Errors are classified as for [`Transport::deliver`].
    pub async fn test_connection(&self) -> Result<(), TransportError> {
        match self.transport().test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(TransportError::transient(
                "SMTP server did not answer NOOP",
                None,
            )),
            Err(e) => Err(classify(e, &Secrets(Vec::new()))),
        }
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.inner.get_or_init(|| self.builder.clone().build())
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn deliver(&self, message: &ProvisionMessage) -> Result<(), TransportError> {
        let destination = &message.destination;
        if destination.channel != Channel::Email {
            return Err(TransportError::permanent(
                format!(
                    "SmtpTransport delivers email only, not {} (destination {})",
                    destination.channel, destination.address
                ),
                None,
            ));
        }
        let address = destination.address.trim();
        let to: Address = address
            .parse()
            .map_err(|e: lettre::address::AddressError| {
                TransportError::permanent(
                    format!("invalid recipient address \"{address}\": {e}"),
                    None,
                )
            })?;
        let email = build(&self.from, Mailbox::new(None, to), &self.templates, message)?;

        let mut secrets = vec![
            message.links().provision().unwrap_or(""),
            message.links().complete().unwrap_or(""),
        ];
        if let Some(code) = message.code() {
            secrets.push(code.expose());
        }
        match self.transport().send(email).await {
            Ok(_) => {
                tracing::debug!(
                    user = %message.username,
                    destination = %address,
                    server = %self.host,
                    "provision email accepted by the SMTP server"
                );
                Ok(())
            }
            Err(e) => {
                let err = classify(e, &Secrets(secrets));
                tracing::debug!(
                    user = %message.username,
                    destination = %address,
                    server = %self.host,
                    transient = err.is_transient(),
                    "provision email not delivered: {err}"
                );
                Err(err)
            }
        }
    }
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

fn parse_opt(
    name: &'static str,
    source: Option<&str>,
    html: bool,
) -> Result<Option<Template>, SmtpConfigError> {
    Ok(source.map(|s| Template::parse(name, s, html)).transpose()?)
}

fn tls_parameters(host: &str, config: &SmtpConfig) -> Result<TlsParameters, SmtpConfigError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = &config.extra_root_ca_pem {
        let pem = std::fs::read(path).map_err(|source| SmtpConfigError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let invalid = |source| SmtpConfigError::InvalidCa {
            path: path.clone(),
            source,
        };
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(invalid(None));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| invalid(Some(e)))?;
        builder = builder.add_root_certificate(cert);
        return builder.build_rustls().map_err(|e| invalid(Some(e)));
    }
    builder.build_rustls().map_err(SmtpConfigError::Tls)
}

fn valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SmtpConfig {
        SmtpConfig {
            from: "Provisioning <provision@example.com>".into(),
            ..SmtpConfig::default()
        }
    }

    #[test]
    fn builds_without_connecting() {
        let t = SmtpTransport::new(config()).unwrap();
        let debug = format!("{t:?}");
        assert!(debug.contains("localhost"), "{debug}");
    }

    #[test]
    fn refuses_a_bad_from_address_and_names_it() {
        let err = SmtpTransport::new(SmtpConfig {
            from: "not an address".into(),
            ..config()
        })
        .unwrap_err();
        assert!(matches!(err, SmtpConfigError::InvalidFrom { .. }));
        assert!(err.to_string().contains("\"not an address\""), "{err}");
    }

    #[test]
    fn refuses_bad_hosts_and_zero_settings() {
        for host in ["", "bad host", "a..b", "-x.example"] {
            let err = SmtpTransport::new(SmtpConfig {
                host: host.into(),
                ..config()
            })
            .unwrap_err();
            assert!(
                matches!(err, SmtpConfigError::InvalidHost(_)),
                "{host}: {err}"
            );
        }
        assert!(
            SmtpTransport::new(SmtpConfig {
                host: "::1".into(),
                ..config()
            })
            .is_ok()
        );
        let err = SmtpTransport::new(SmtpConfig {
            pool_size: 0,
            ..config()
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "pool_size must be at least 1");
        assert!(
            SmtpTransport::new(SmtpConfig {
                timeout_secs: 0,
                ..config()
            })
            .is_err()
        );
    }

    #[test]
    fn credentials_rules() {
        let err = SmtpTransport::new(SmtpConfig {
            username: Some("u".into()),
            ..config()
        })
        .unwrap_err();
        assert!(matches!(err, SmtpConfigError::IncompleteCredentials));

        let with_creds = |host: &str, security| SmtpConfig {
            host: host.into(),
            security,
            username: Some("u".into()),
            password: Some("pw-secret-value".to_owned().into()),
            ..config()
        };
        let err =
            SmtpTransport::new(with_creds("smtp.example.com", SmtpSecurity::None)).unwrap_err();
        assert!(matches!(err, SmtpConfigError::CredentialsWithoutTls(_)));
        assert!(!err.to_string().contains("pw-secret-value"));
        assert!(SmtpTransport::new(with_creds("127.0.0.1", SmtpSecurity::None)).is_ok());
        assert!(SmtpTransport::new(with_creds("smtp.example.com", SmtpSecurity::StartTls)).is_ok());

        let err = SmtpTransport::new(SmtpConfig {
            auth_mechanisms: vec![],
            ..with_creds("smtp.example.com", SmtpSecurity::Tls)
        })
        .unwrap_err();
        assert!(matches!(err, SmtpConfigError::NoAuthMechanism));
    }

    #[test]
    fn refuses_missing_or_empty_ca_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = SmtpTransport::new(SmtpConfig {
            extra_root_ca_pem: Some(missing),
            ..config()
        })
        .unwrap_err();
        assert!(matches!(err, SmtpConfigError::ReadCa { .. }), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here").unwrap();
        let err = SmtpTransport::new(SmtpConfig {
            extra_root_ca_pem: Some(empty),
            ..config()
        })
        .unwrap_err();
        assert!(matches!(err, SmtpConfigError::InvalidCa { .. }), "{err}");
    }

    #[test]
    fn refuses_bad_templates() {
        let err = SmtpTransport::new(SmtpConfig {
            html_template: Some("<p>{nope}</p>".into()),
            ..config()
        })
        .unwrap_err();
        assert!(err.to_string().contains("html_template"), "{err}");
    }
}
