//! [`SmsTransport`]: the core [`Transport`] over the configured backend.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use swivel_provision::{Channel, ProvisionMessage, Transport, TransportError};

use crate::config::{SmsConfig, SmsConfigError};
use crate::http::{Twilio, Webhook, client};
use crate::phone::check_destination;
use crate::segments::segments;
use crate::smpp::{Smpp, SmppSettings};
use crate::text::{check_text_template, render};

enum Backend {
    Twilio(Twilio),
    Webhook(Webhook),
    Smpp(Smpp),
}

/// Sends provision messages by SMS through a Twilio-compatible REST API, a generic HTTP
/// webhook or an SMPP 3.4 SMSC.
///
/// Before anything is sent it checks that the destination is an SMS one and an E.164
/// number (a permanent error naming the number otherwise). Errors say whether a retry can
/// help and never contain the code or the links.
pub struct SmsTransport {
    backend: Backend,
    text: Option<String>,
}

impl fmt::Debug for SmsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsTransport")
            .field("backend", &self.backend_name())
            .field("custom_text", &self.text.is_some())
            .finish_non_exhaustive()
    }
}

impl SmsTransport {
    /// Checks the configuration and builds the transport. It connects to nothing yet (an
    /// SMPP bind happens with the first message).
    pub fn new(config: SmsConfig) -> Result<Self, SmsConfigError> {
        let options = config.options().clone();
        if !(1..=300).contains(&options.timeout_secs) {
            return Err(SmsConfigError::new(
                "timeout_secs",
                format!("must be between 1 and 300, got {}", options.timeout_secs),
            ));
        }
        if let Some(t) = &options.text {
            check_text_template(t)?;
        }
        let timeout = Duration::from_secs(options.timeout_secs);
        let backend = match config {
            SmsConfig::Twilio {
                base_url,
                account_sid,
                auth_token,
                from,
                ..
            } => Backend::Twilio(Twilio::new(
                client(timeout)?,
                &base_url,
                &account_sid,
                auth_token,
                &from,
            )?),
            SmsConfig::Webhook {
                url,
                method,
                headers,
                body,
                ..
            } => Backend::Webhook(Webhook::new(
                client(timeout)?,
                &url,
                method,
                &headers,
                body,
            )?),
            SmsConfig::Smpp {
                host,
                port,
                system_id,
                password,
                system_type,
                source_addr,
                source_addr_ton,
                source_addr_npi,
                ..
            } => Backend::Smpp(Smpp::new(SmppSettings {
                host,
                port,
                system_id,
                password,
                system_type,
                source_addr,
                source_addr_ton,
                source_addr_npi,
                timeout,
            })?),
        };
        Ok(Self {
            backend,
            text: options.text,
        })
    }

    /// `twilio`, `webhook` or `smpp`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Twilio(_) => "twilio",
            Backend::Webhook(_) => "webhook",
            Backend::Smpp(_) => "smpp",
        }
    }

    /// The text this transport would send for `message` (it contains the code and/or the
    /// link: treat it as secret).
    pub fn render_text(&self, message: &ProvisionMessage) -> Result<String, TransportError> {
        render(self.text.as_deref(), message)
    }

    /// Ends an open SMPP session with `unbind` (nothing for the HTTP backends). The
    /// transport stays usable: the next message binds again.
    pub async fn close(&self) {
        if let Backend::Smpp(smpp) = &self.backend {
            smpp.close().await;
        }
    }
}

#[async_trait]
impl Transport for SmsTransport {
    async fn deliver(&self, message: &ProvisionMessage) -> Result<(), TransportError> {
        let to = message.destination.address.as_str();
        if message.destination.channel != Channel::Sms {
            return Err(TransportError::permanent(
                format!(
                    "destination \"{}\" is a {} destination, not an SMS one",
                    to.escape_default(),
                    message.destination.channel
                ),
                None,
            ));
        }
        check_destination(to)?;
        let text = self.render_text(message)?;
        let s = segments(&text);
        match &self.backend {
            Backend::Twilio(b) => b.send(to, &text).await?,
            Backend::Webhook(b) => b.send(to, &text).await?,
            Backend::Smpp(b) => b.send(to, &text).await?,
        }
        tracing::debug!(
            user = %message.username,
            to,
            backend = self.backend_name(),
            encoding = ?s.encoding,
            segments = s.count,
            "SMS accepted by the gateway"
        );
        Ok(())
    }
}
