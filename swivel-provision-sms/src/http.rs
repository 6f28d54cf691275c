//! The HTTP backends: Twilio-compatible REST and the generic webhook.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, StatusCode, Url};
use rustls_platform_verifier::BuilderVerifierExt;
use secrecy::{ExposeSecret, SecretString};
use swivel_provision::TransportError;

use crate::config::{SmsConfigError, WebhookBody, WebhookMethod};
use crate::text::{check_placeholders, fill};

/// Placeholders of a webhook body.
const BODY_PLACEHOLDERS: [&str; 3] = ["to", "to_digits", "text"];

/// Builds the HTTP client: rustls with the ring provider and the platform's trust store,
/// no redirects, the configured timeout for the whole request.
pub(crate) fn client(timeout: Duration) -> Result<Client, SmsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| SmsConfigError::new("tls", format!("cannot set up TLS: {e}")))?
        .with_no_client_auth();
    Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("swivel-provision-sms/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SmsConfigError::new("tls", format!("cannot build the HTTP client: {e}")))
}

/// Parses an http(s) URL setting.
pub(crate) fn parse_url(setting: &str, raw: &str) -> Result<Url, SmsConfigError> {
    let url = Url::parse(raw.trim())
        .map_err(|e| SmsConfigError::new(setting, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SmsConfigError::new(
            setting,
            "must be an http:// or https:// URL with a host",
        ));
    }
    Ok(url)
}

/// A Twilio-compatible REST gateway.
pub(crate) struct Twilio {
    client: Client,
    url: Url,
    account_sid: String,
    auth_token: SecretString,
    from: String,
}

impl Twilio {
    pub(crate) fn new(
        client: Client,
        base_url: &str,
        account_sid: &str,
        auth_token: SecretString,
        from: &str,
    ) -> Result<Self, SmsConfigError> {
        let account_sid = account_sid.trim();
        if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SmsConfigError::new(
                "account_sid",
                "must be letters and digits",
            ));
        }
        if auth_token.expose_secret().is_empty() {
            return Err(SmsConfigError::new("auth_token", "must not be empty"));
        }
        let from = from.trim();
        if from.is_empty() || from.chars().any(char::is_control) {
            return Err(SmsConfigError::new(
                "from",
                "must be a phone number or sender id",
            ));
        }
        let base = parse_url("base_url", base_url)?;
        let url = Url::parse(&format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            base.as_str().trim_end_matches('/')
        ))
        .map_err(|e| SmsConfigError::new("base_url", format!("not a URL: {e}")))?;
        Ok(Self {
            client,
            url,
            account_sid: account_sid.to_owned(),
            auth_token,
            from: from.to_owned(),
        })
    }

    pub(crate) async fn send(&self, to: &str, text: &str) -> Result<(), TransportError> {
        let request = self
            .client
            .post(self.url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&[("To", to), ("From", self.from.as_str()), ("Body", text)]);
        let response = request
            .send()
            .await
            .map_err(|e| send_error("twilio", to, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // Twilio's error document carries a numeric code (21211: invalid 'To' number, ...).
        // Only that number is kept: a gateway's message might echo the text.
        let code = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("code").and_then(serde_json::Value::as_u64));
        let detail = code
            .map(|c| format!(", error code {c}"))
            .unwrap_or_default();
        Err(status_error("twilio", to, status, &detail))
    }
}

/// A generic HTTP gateway.
pub(crate) struct Webhook {
    client: Client,
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: WebhookBody,
}

impl Webhook {
    pub(crate) fn new(
        client: Client,
        url: &str,
        method: WebhookMethod,
        headers: &std::collections::BTreeMap<String, SecretString>,
        body: WebhookBody,
    ) -> Result<Self, SmsConfigError> {
        let url = parse_url("url", url)?;
        let method = match method {
            WebhookMethod::Post => Method::POST,
            WebhookMethod::Put => Method::PUT,
            WebhookMethod::Patch => Method::PATCH,
        };
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                SmsConfigError::new(format!("headers.{name}"), "not a valid header name")
            })?;
            let mut value = HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                SmsConfigError::new(format!("headers.{name}"), "not a valid header value")
            })?;
            value.set_sensitive(true);
            map.insert(header, value);
        }
        let strings: Vec<&str> = match &body {
            WebhookBody::Json(v) => {
                let mut out = Vec::new();
                json_strings(v, &mut out);
                out
            }
            WebhookBody::Form(pairs) => pairs.iter().map(|(_, v)| v.as_str()).collect(),
        };
        for s in &strings {
            check_placeholders("body", s, &BODY_PLACEHOLDERS)?;
        }
        if !strings.iter().any(|s| s.contains("{text}")) {
            return Err(SmsConfigError::new(
                "body",
                "must contain {text} in a value",
            ));
        }
        if !strings
            .iter()
            .any(|s| s.contains("{to}") || s.contains("{to_digits}"))
        {
            return Err(SmsConfigError::new(
                "body",
                "must contain {to} or {to_digits} in a value",
            ));
        }
        Ok(Self {
            client,
            url,
            method,
            headers: map,
            body,
        })
    }

    pub(crate) async fn send(&self, to: &str, text: &str) -> Result<(), TransportError> {
        let values = [
            ("to", to),
            ("to_digits", to.trim_start_matches('+')),
            ("text", text),
        ];
        let request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        let request = match &self.body {
            WebhookBody::Json(template) => {
                let body = fill_json(template, &values);
                let bytes = serde_json::to_vec(&body).map_err(|e| {
                    TransportError::permanent("cannot encode the webhook JSON body", Some(e.into()))
                })?;
                request
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(bytes)
            }
            WebhookBody::Form(pairs) => {
                let filled: Vec<(&str, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), fill(v, &values)))
                    .collect();
                request.form(&filled)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| send_error("webhook", to, e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error("webhook", to, status, ""))
        }
    }
}

fn json_strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match v {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|i| json_strings(i, out)),
        serde_json::Value::Object(map) => map.values().for_each(|i| json_strings(i, out)),
        _ => {}
    }
}

fn fill_json(v: &serde_json::Value, values: &[(&str, &str)]) -> serde_json::Value {
    match v {
        serde_json::Value::String(s) => serde_json::Value::String(fill(s, values)),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|i| fill_json(i, values)).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), fill_json(i, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Classifies an HTTP status: 408, 429 and 5xx are transient, the rest permanent.
pub(crate) fn status_is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

fn status_error(backend: &str, to: &str, status: StatusCode, detail: &str) -> TransportError {
    let message = format!("SMS to {to} via {backend}: gateway answered HTTP {status}{detail}");
    if status_is_transient(status) {
        TransportError::transient(message, None)
    } else {
        TransportError::permanent(message, None)
    }
}

/// A request that got no answer: timeouts, refused or lost connections are transient; a
/// request reqwest could not even build is permanent. The URL is stripped from the source.
fn send_error(backend: &str, to: &str, e: reqwest::Error) -> TransportError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect to the gateway"
    } else if e.is_builder() {
        "could not build the request"
    } else {
        "request failed"
    };
    let message = format!("SMS to {to} via {backend}: {what}");
    let source = Some(Box::new(e.without_url()) as swivel_provision::BoxError);
    if what == "could not build the request" {
        TransportError::permanent(message, source)
    } else {
        TransportError::transient(message, source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        for s in [429, 408, 500, 502, 503, 504] {
            assert!(status_is_transient(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 422, 301] {
            assert!(
                !status_is_transient(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
    }

    #[test]
    fn json_template_is_filled_in_values_only() {
        let t = serde_json::json!({"{to}": ["{to}", 1, {"t": "{text}"}], "n": null});
        let v = fill_json(&t, &[("to", "+1555"), ("text", "hi")]);
        assert_eq!(
            v,
            serde_json::json!({"{to}": ["+1555", 1, {"t": "hi"}], "n": null})
        );
    }

    #[test]
    fn url_settings_must_be_http() {
        assert!(parse_url("url", "https://a.example/x").is_ok());
        assert_eq!(
            parse_url("url", "ftp://a.example").unwrap_err().setting,
            "url"
        );
        assert!(parse_url("url", "not a url").is_err());
    }
}
