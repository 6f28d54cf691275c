//! The configuration file (`--config FILE`, TOML). Every part is optional:
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! public_url = "https://auth.example.com"   # what links and QR codes point at
//! site_id = "DEMO"                          # put into the getsettings/complete links
//! database = "postgres://user@db/provision" # default: <data-dir>/provision.sqlite
//! log_lines = 1000                          # lines kept for the console's Log page
//!
//! [tls]
//! cert = "cert.pem"
//! key = "key.pem"
//!
//! [policy]                                  # used at first start; later the console's
//! allow_self_provision = true               # saved policy wins
//! validity_secs = 600
//!
//! [smtp]                                    # see swivel-provision-smtp
//! [sms]                                     # see swivel-provision-sms
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use swivel_provision::Policy;

use crate::error::AppError;

/// Certificate and key files (PEM) for HTTPS.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
}

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Base URL of this server as users reach it (links, QR codes).
    pub public_url: Option<String>,
    /// The Site ID of this server (links; SSD).
    pub site_id: Option<String>,
    /// `postgres://...`, `memory`, or a SQLite file path.
    pub database: Option<String>,
    /// Lines kept for the Log page.
    pub log_lines: Option<usize>,
    /// HTTPS.
    pub tls: Option<TlsFiles>,
    /// The initial policy (checked: an out-of-range value is an error naming the setting).
    pub policy: Option<Policy>,
    /// SMTP transport settings (`swivel-provision-smtp`).
    pub smtp: Option<toml::Table>,
    /// SMS transport settings (`swivel-provision-sms`).
    pub sms: Option<toml::Table>,
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, AppError> {
        toml::from_str(text).map_err(|e| AppError::Setup(format!("invalid configuration: {e}")))
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AppError::Setup(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| AppError::Setup(format!("{}: {e}", path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_the_policy() {
        let c = FileConfig::parse(
            "listen = \"127.0.0.1:9000\"\n[policy]\nallow_self_provision = true\nvalidity_secs = 120\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:9000"));
        let p = c.policy.unwrap();
        assert!(p.allow_self_provision);
        assert_eq!(p.validity_secs(), 120);
        assert_eq!(c.tls.unwrap().key, PathBuf::from("k.pem"));
        let e = FileConfig::parse("[policy]\nvalidity_secs = 5\n").unwrap_err();
        assert!(e.to_string().contains("validity_secs"), "{e}");
        assert!(FileConfig::parse("lisen = 1").is_err());
    }
}
