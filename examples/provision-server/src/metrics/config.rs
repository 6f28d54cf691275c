//! The `[metrics]` section of the configuration file, and [`MetricsEndpoint`], what
//! `GET /metrics` is served with.
//!
//! ```toml
//! [metrics]
//! enabled = true                # default; false removes GET /metrics
//! token_file = "metrics.token"  # or token = "..."; none: loopback clients only, not proxied
//! ```

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::AppError;

/// Shortest bearer token accepted for `/metrics`, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (default true).
    pub enabled: bool,
    /// The bearer token a scraper must send (`Authorization: Bearer ...`), at least
    /// [`MIN_TOKEN_BYTES`] bytes. Without one (and without `token_file`) the endpoint
    /// answers only clients on this host (loopback): its counters tell what happened to
    /// one's own request, which the uniform device errors hide from others.
    pub token: Option<SecretString>,
    /// A file holding the token (surrounding white space ignored), read at start. Not
    /// with `token`.
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            token: None,
            token_file: None,
        }
    }
}

fn check_token(token: &str, what: &str) -> Result<(), AppError> {
    if token.len() < MIN_TOKEN_BYTES {
        return Err(AppError::Setup(format!(
            "invalid configuration: {what} must be at least {MIN_TOKEN_BYTES} bytes, got {}",
            token.len()
        )));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AppError::Setup(format!(
            "invalid configuration: {what} must not contain white space or control characters"
        )));
    }
    Ok(())
}

impl MetricsConfig {
    /// Checks the section (the token file is read by [`MetricsConfig::endpoint`]).
    pub fn validate(&self) -> Result<(), AppError> {
        if self.token.is_some() && self.token_file.is_some() {
            return Err(AppError::Setup(
                "invalid configuration: metrics.token and metrics.token_file exclude each other"
                    .into(),
            ));
        }
        if let Some(token) = &self.token {
            check_token(token.expose_secret(), "metrics.token")?;
        }
        Ok(())
    }

    /// What `/metrics` is served with: the token from `token` or read from `token_file`
    /// (a relative path is taken from the working directory, like the TLS files).
    pub fn endpoint(&self) -> Result<MetricsEndpoint, AppError> {
        self.validate()?;
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(file)) => {
                let path = file;
                let text = std::fs::read_to_string(path).map_err(|e| {
                    AppError::Setup(format!(
                        "cannot read metrics.token_file {}: {e}",
                        path.display()
                    ))
                })?;
                let token = text.trim();
                check_token(token, &format!("metrics.token_file {}", path.display()))?;
                Some(SecretString::from(token))
            }
            (None, None) => None,
        };
        Ok(MetricsEndpoint {
            enabled: self.enabled,
            token,
        })
    }
}

/// Whether `GET /metrics` is served, and the bearer token it asks for, if any.
#[derive(Debug, Clone)]
pub struct MetricsEndpoint {
    /// Serve `GET /metrics`.
    pub enabled: bool,
    /// The bearer token; `None`: loopback clients only.
    pub token: Option<SecretString>,
}

impl Default for MetricsEndpoint {
    /// Served to loopback clients, no token.
    fn default() -> Self {
        Self {
            enabled: true,
            token: None,
        }
    }
}

impl MetricsEndpoint {
    /// Whether a request from `client` presenting `presented` (its bearer token, if any)
    /// may read the metrics: with a token configured, when it is the token (compared in
    /// constant time); without one, only from this host (a loopback client address) and
    /// not `forwarded` (carrying [`crate::client::FORWARDING_HEADERS`]).
    ///
    /// # Security
    /// Open counters tell a remote guesser what the uniform device errors hide (a redeem
    /// for an unknown name moves another counter than one for a known name), so without a
    /// token nobody else reads them. A reverse proxy on this host connects from loopback
    /// whoever its client is, so a forwarded request is never taken for a local one.
    pub fn allows(
        &self,
        presented: Option<&str>,
        client: std::net::IpAddr,
        forwarded: bool,
    ) -> bool {
        match (&self.token, presented) {
            (None, _) => client.is_loopback() && !forwarded,
            (Some(token), Some(presented)) => presented
                .as_bytes()
                .ct_eq(token.expose_secret().as_bytes())
                .into(),
            (Some(_), None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    #[test]
    fn defaults_tokens_and_bad_values() {
        let c = FileConfig::parse("").unwrap();
        let e = c.metrics.endpoint().unwrap();
        assert!(e.enabled && e.token.is_none());
        let (local, remote): (std::net::IpAddr, std::net::IpAddr) =
            ("127.0.0.1".parse().unwrap(), "192.0.2.1".parse().unwrap());
        assert!(e.allows(None, local, false) && !e.allows(None, remote, false));
        assert!(!e.allows(None, local, true));
        let c = FileConfig::parse("[metrics]\nenabled = false\n").unwrap();
        assert!(!c.metrics.enabled);
        let c = FileConfig::parse("[metrics]\ntoken = \"0123456789abcdef\"\n").unwrap();
        let e = c.metrics.endpoint().unwrap();
        assert!(e.allows(Some("0123456789abcdef"), remote, true));
        assert!(!e.allows(Some("0123456789abcdeF"), local, false) && !e.allows(None, local, false));
        assert!(!format!("{c:?}{e:?}").contains("0123456789abcdef"));
        for (bad, says) in [
            (
                "token = \"short\"",
                "metrics.token must be at least 16 bytes, got 5",
            ),
            (
                "token = \"0123456789 abcdef\"",
                "must not contain white space",
            ),
            (
                "token = \"0123456789abcdef\"\ntoken_file = \"t\"",
                "exclude each other",
            ),
            ("enabled = \"yes\"", "enabled"),
            ("tokens = \"x\"", "unknown field"),
        ] {
            let e = FileConfig::parse(&format!("[metrics]\n{bad}\n")).unwrap_err();
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_token_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.token");
        std::fs::write(&file, "  fedcba9876543210\n").unwrap();
        let c = MetricsConfig {
            token_file: Some(file.clone()),
            ..MetricsConfig::default()
        };
        let e = c.endpoint().unwrap();
        assert!(e.allows(
            Some("fedcba9876543210"),
            "192.0.2.1".parse().unwrap(),
            false
        ));
        std::fs::write(&file, "\n").unwrap();
        let err = c.endpoint().unwrap_err().to_string();
        assert!(err.contains("at least 16 bytes, got 0"), "{err}");
        let c = MetricsConfig {
            token_file: Some(dir.path().join("missing")),
            ..MetricsConfig::default()
        };
        let err = c.endpoint().unwrap_err().to_string();
        assert!(err.contains("cannot read metrics.token_file"), "{err}");
    }
}
