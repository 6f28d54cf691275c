//! Configuration of the SMS transport: which backend, its credentials, and the options all
//! backends share. Read from TOML (or any serde format); secrets are [`SecretString`]s,
//! shown as `[REDACTED]` by `Debug`.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::SecretString;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The default Twilio API base URL.
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com";
/// The default SMPP port.
pub const SMPP_PORT: u16 = 2775;
/// The default timeout for one delivery attempt, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// Which SMS backend to use, and how to reach it. The `backend` key picks the variant.
///
/// ```toml
/// [sms]
/// backend = "twilio"
/// account_sid = "AC0123456789abcdef0123456789abcdef"
/// auth_token = "…"
/// from = "+15005550006"
/// ```
///
/// See the crate README for the webhook and SMPP shapes and the shared options.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum SmsConfig {
    /// A Twilio-compatible REST API: a form POST to
    /// `{base_url}/2010-04-01/Accounts/{account_sid}/Messages.json` with basic auth
    /// (`account_sid`, `auth_token`) and the fields `To`, `From`, `Body`.
    Twilio {
        /// Base URL (default `https://api.twilio.com`; any compatible gateway).
        #[serde(default = "default_twilio_base")]
        base_url: String,
        /// Account SID (the basic-auth user and part of the path).
        account_sid: String,
        /// Auth token (the basic-auth password).
        auth_token: SecretString,
        /// Sender: a phone number or an alphanumeric sender id.
        from: String,
        /// Options shared by all backends.
        #[serde(flatten)]
        options: SmsOptions,
    },
    /// A generic HTTP gateway: a request to `url` with configured headers and a JSON or form
    /// body built from a template (placeholders `{to}`, `{to_digits}`, `{text}`).
    Webhook {
        /// The gateway's URL (http or https).
        url: String,
        /// The HTTP method (default `POST`).
        #[serde(default)]
        method: WebhookMethod,
        /// Extra headers, e.g. `Authorization`; values are secret.
        #[serde(default)]
        headers: BTreeMap<String, SecretString>,
        /// The body template.
        body: WebhookBody,
        /// Options shared by all backends.
        #[serde(flatten)]
        options: SmsOptions,
    },
    /// An SMSC over SMPP 3.4 (plain TCP): `bind_transmitter`, `submit_sm`, `unbind`.
    Smpp {
        /// SMSC host name or address.
        host: String,
        /// SMSC port (default 2775).
        #[serde(default = "default_smpp_port")]
        port: u16,
        /// The ESME's system id (at most 15 characters).
        system_id: String,
        /// The ESME's password (at most 8 characters, as SMPP 3.4 allows).
        password: SecretString,
        /// `system_type` sent in the bind (default empty; at most 12 characters).
        #[serde(default)]
        system_type: String,
        /// Sender address: `+` and digits (international), digits (national / short
        /// code), or up to 11 letters and digits (alphanumeric sender id).
        source_addr: String,
        /// Overrides the type of number derived from `source_addr`.
        #[serde(default)]
        source_addr_ton: Option<u8>,
        /// Overrides the numbering plan derived from `source_addr`.
        #[serde(default)]
        source_addr_npi: Option<u8>,
        /// Options shared by all backends.
        #[serde(flatten)]
        options: SmsOptions,
    },
}

impl SmsConfig {
    /// The options shared by all backends.
    pub fn options(&self) -> &SmsOptions {
        match self {
            SmsConfig::Twilio { options, .. }
            | SmsConfig::Webhook { options, .. }
            | SmsConfig::Smpp { options, .. } => options,
        }
    }

    /// `twilio`, `webhook` or `smpp`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            SmsConfig::Twilio { .. } => "twilio",
            SmsConfig::Webhook { .. } => "webhook",
            SmsConfig::Smpp { .. } => "smpp",
        }
    }
}

/// Options every backend takes (flattened into the backend's table).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct SmsOptions {
    /// Seconds one delivery attempt may take (HTTP request; SMPP connect and each
    /// response). 1 to 300; default 10.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Overrides the text. Placeholders: `{code}`, `{link}`, `{validity_minutes}`,
    /// `{username}`; it must hold `{code}` or `{link}`. Unset: a short text that fits one
    /// GSM-7 segment (see the crate docs).
    #[serde(default)]
    pub text: Option<String>,
}

impl Default for SmsOptions {
    fn default() -> Self {
        Self {
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            text: None,
        }
    }
}

/// The HTTP method of a webhook request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// `POST` (the default).
    #[default]
    #[serde(alias = "post")]
    Post,
    /// `PUT`.
    #[serde(alias = "put")]
    Put,
    /// `PATCH`.
    #[serde(alias = "patch")]
    Patch,
}

/// The body of a webhook request: a template whose string values may hold the placeholders
/// `{to}` (E.164 with `+`), `{to_digits}` (without `+`) and `{text}` (the SMS text). It must
/// hold `{text}` and one of `{to}` / `{to_digits}`.
///
/// In TOML: `body = { json = { to = "{to}", text = "{text}" } }` or
/// `body = { form = { To = "{to}", Body = "{text}" } }` (a TOML table has no order: its
/// fields are sent sorted by name) or `body = { form = [["To", "{to}"], ["Body", "{text}"]] }`
/// (sent in this order).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookBody {
    /// A JSON document (`Content-Type: application/json`); placeholders are replaced in
    /// every string value, keys are left alone.
    Json(serde_json::Value),
    /// Form fields (`application/x-www-form-urlencoded`), sent in this order; placeholders
    /// are replaced in the values.
    Form(#[serde(deserialize_with = "form_pairs")] Vec<(String, String)>),
}

/// A configuration the transport cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sms.{setting}: {problem}")]
pub struct SmsConfigError {
    /// The setting's name, as in the configuration (`account_sid`, `body`, ...).
    pub setting: String,
    /// What is wrong with it.
    pub problem: String,
}

impl SmsConfigError {
    pub(crate) fn new(setting: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }
}

fn default_twilio_base() -> String {
    TWILIO_BASE_URL.to_owned()
}

fn default_smpp_port() -> u16 {
    SMPP_PORT
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// Form fields from a table (in document order) or from a list of `[name, value]` pairs.
fn form_pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of form fields or a list of [name, value] pairs")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                out.push((k, v));
            }
            Ok(out)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(pair) = seq.next_element::<(String, String)>()? {
                out.push(pair);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Pairs).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[derive(Deserialize)]
    struct Host {
        sms: SmsConfig,
    }

    fn parse(s: &str) -> SmsConfig {
        toml::from_str::<Host>(s).expect("config parses").sms
    }

    #[test]
    fn twilio_from_toml_with_defaults() {
        let cfg = parse(
            r#"
            [sms]
            backend = "twilio"
            account_sid = "AC123"
            auth_token = "tok-secret"
            from = "+15005550006"
            "#,
        );
        let SmsConfig::Twilio {
            base_url,
            account_sid,
            auth_token,
            from,
            options,
        } = cfg
        else {
            panic!("not twilio")
        };
        assert_eq!(base_url, TWILIO_BASE_URL);
        assert_eq!(account_sid, "AC123");
        assert_eq!(auth_token.expose_secret(), "tok-secret");
        assert_eq!(from, "+15005550006");
        assert_eq!(options, SmsOptions::default());
    }

    #[test]
    fn webhook_from_toml_with_form_and_options() {
        let cfg = parse(
            r#"
            [sms]
            backend = "webhook"
            url = "https://sms.example.com/send"
            method = "put"
            timeout_secs = 3
            text = "Code {code}"
            body = { form = { to = "{to}", message = "{text}", account = "main" } }
            [sms.headers]
            Authorization = "Bearer hdr-secret"
            "#,
        );
        assert_eq!(cfg.backend_name(), "webhook");
        assert_eq!(cfg.options().timeout_secs, 3);
        assert_eq!(cfg.options().text.as_deref(), Some("Code {code}"));
        let SmsConfig::Webhook {
            method,
            headers,
            body,
            ..
        } = cfg
        else {
            panic!("not webhook")
        };
        assert_eq!(method, WebhookMethod::Put);
        assert_eq!(
            headers["Authorization"].expose_secret(),
            "Bearer hdr-secret"
        );
        assert_eq!(
            body,
            // A TOML table carries no order: its fields come sorted by name.
            WebhookBody::Form(vec![
                ("account".into(), "main".into()),
                ("message".into(), "{text}".into()),
                ("to".into(), "{to}".into()),
            ])
        );
    }

    #[test]
    fn webhook_json_body_and_pair_list_in_order() {
        let cfg = parse(
            r#"
            [sms]
            backend = "webhook"
            url = "http://127.0.0.1:9/send"
            body = { json = { to = "{to}", content = { text = "{text}" } } }
            "#,
        );
        let SmsConfig::Webhook { body, method, .. } = cfg else {
            panic!("not webhook")
        };
        assert_eq!(method, WebhookMethod::Post);
        assert_eq!(
            body,
            WebhookBody::Json(serde_json::json!({"to": "{to}", "content": {"text": "{text}"}}))
        );
        let cfg = parse(
            r#"
            [sms]
            backend = "webhook"
            url = "http://127.0.0.1:9/send"
            body = { form = [["b", "{text}"], ["a", "{to}"]] }
            "#,
        );
        let SmsConfig::Webhook { body, .. } = cfg else {
            panic!("not webhook")
        };
        assert_eq!(
            body,
            WebhookBody::Form(vec![
                ("b".into(), "{text}".into()),
                ("a".into(), "{to}".into())
            ])
        );
    }

    #[test]
    fn smpp_from_toml_with_defaults() {
        let cfg = parse(
            r#"
            [sms]
            backend = "smpp"
            host = "smsc.example.net"
            system_id = "swivel"
            password = "pw-secret"
            source_addr = "Swivel"
            "#,
        );
        let SmsConfig::Smpp {
            port,
            system_type,
            source_addr_ton,
            password,
            ..
        } = &cfg
        else {
            panic!("not smpp")
        };
        assert_eq!(*port, SMPP_PORT);
        assert_eq!(system_type, "");
        assert_eq!(*source_addr_ton, None);
        assert_eq!(password.expose_secret(), "pw-secret");
        assert_eq!(cfg.options().timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn unknown_backend_is_rejected() {
        let err = toml::from_str::<Host>("[sms]\nbackend = \"pigeon\"\n")
            .err()
            .expect("rejected");
        assert!(err.to_string().contains("pigeon"), "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let cfg = parse(
            r#"
            [sms]
            backend = "webhook"
            url = "https://sms.example.com/send"
            body = { json = { to = "{to}", text = "{text}" } }
            [sms.headers]
            X-Api-Key = "hdr-secret"
            "#,
        );
        let dbg = format!("{cfg:?}");
        assert!(dbg.contains("X-Api-Key"), "{dbg}");
        assert!(!dbg.contains("hdr-secret"), "{dbg}");
        let cfg = parse(
            r#"
            [sms]
            backend = "smpp"
            host = "h"
            system_id = "s"
            password = "pw-secret"
            source_addr = "S"
            "#,
        );
        assert!(!format!("{cfg:?}").contains("pw-secret"));
    }
}
