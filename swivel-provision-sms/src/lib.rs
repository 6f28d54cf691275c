//! # swivel-provision-sms
//!
//! An SMS [`Transport`](swivel_provision::Transport) for swivel-provision: it sends the
//! provision code and/or the Provision URL to the user's phone through one of three
//! backends chosen by configuration ([`SmsConfig`]):
//!
//! - **Twilio-compatible REST**: a form POST to
//!   `{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json` with basic auth and the
//!   fields `To`, `From`, `Body`.
//! - **Generic HTTP webhook**: URL, method, secret headers and a JSON or form body template
//!   with `{to}`, `{to_digits}` and `{text}` placeholders.
//! - **SMPP 3.4** (via `rusmppc`): `bind_transmitter`, `submit_sm`, `unbind`; one cached
//!   bind, re-established when the SMSC dropped it. GSM-7 text goes as `data_coding` 0
//!   (GSM 03.38 septets, one per octet), anything else as UCS-2 (`data_coding` 8).
//!
//! ```no_run
//! # async fn run(message: swivel_provision::ProvisionMessage) -> Result<(), Box<dyn std::error::Error>> {
//! use swivel_provision::Transport;
//! use swivel_provision_sms::{SmsConfig, SmsTransport};
//!
//! #[derive(serde::Deserialize)]
//! struct Host { sms: SmsConfig }
//! let host: Host = toml::from_str(r#"
//!     [sms]
//!     backend = "twilio"
//!     account_sid = "AC0123456789abcdef0123456789abcdef"
//!     auth_token = "secret"
//!     from = "+15005550006"
//! "#)?;
//! let sms = SmsTransport::new(host.sms)?;
//! sms.deliver(&message).await?;
//! # Ok(()) }
//! ```
//!
//! # The text
//! By default `Provision code: {code} {link} Valid {n} min.`, which fits one GSM-7 segment
//! with a typical link; when it would not, the link is left out (the code alone
//! provisions). A message with only a link is `Provision: {link} Valid {n} min.`. The
//! `text` option overrides it (placeholders `{code}`, `{link}`, `{validity_minutes}`,
//! `{username}`). [`segments`] counts the parts any text takes.
//!
//! # Errors
//! Every failure is a [`TransportError`](swivel_provision::TransportError) that says whether
//! a retry can help: HTTP 408, 429 and 5xx, timeouts, refused or lost connections, SMPP
//! throttling (`ESME_RTHROTTLED`, `ESME_RMSGQFUL`) and SMSC system errors are transient;
//! other HTTP 4xx, SMPP bind refusals (`ESME_RBINDFAIL`, `ESME_RINVPASWD`,
//! `ESME_RINVSYSID`), an invalid destination (`ESME_RINVDSTADR`) and a number that is not
//! E.164 are permanent. Messages name the number and the gateway, never the code, the
//! links or a credential.
//!
//! # Security
//! Credentials are `secrecy` strings (`[REDACTED]` in `Debug`). The HTTP client is rustls
//! with the ring provider and the platform's trust store, and follows no redirects.
//! rusmpp logs whole PDUs at debug level, so the SMPP connection task runs with no tracing
//! subscriber.

mod config;
mod http;
mod phone;
mod segments;
mod smpp;
mod text;
mod transport;

pub use config::{
    DEFAULT_TIMEOUT_SECS, SMPP_PORT, SmsConfig, SmsConfigError, SmsOptions, TWILIO_BASE_URL,
    WebhookBody, WebhookMethod,
};
pub use phone::is_e164;
pub use segments::{
    GSM7_MULTI, GSM7_SINGLE, Segments, SmsEncoding, UCS2_MULTI, UCS2_SINGLE, is_gsm7, segments,
};
pub use transport::SmsTransport;
