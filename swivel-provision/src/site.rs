//! [`SiteDirectory`]: Site ID → server settings, for server settings discovery (SSD).
//!
//! # Contexts
//! A site's `connectionType` is the context path a device puts before `/AgentXML` and
//! `/TokenIndex`. The contexts are a fixed set, [`CONTEXTS`]: Swivel's own `pinsafe`
//! (software install), `proxy` (appliance) and `sentry`. A host serves every one of them, so
//! every context a site can advertise is served; custom contexts are refused
//! ([`ServerSettings::check`]) rather than advertised and left unanswered.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, StoreError};
use crate::types::SiteId;

/// What a device needs to reach its server, as Swivel's SSD answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// Host name or address of the server.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Context path of the AgentXML endpoint (`pinsafe`, `sentry`).
    #[serde(rename = "connectionType")]
    pub connection_type: String,
    /// Whether the device must use TLS.
    #[serde(rename = "usingSSL")]
    pub using_ssl: bool,
    /// Whether push authentication is supported.
    #[serde(rename = "pushSupport")]
    pub push_support: bool,
    /// Whether the server is on the local network.
    pub local: bool,
    /// Whether the client asks for a PIN.
    pub pin: bool,
    /// Whether OATH tokens are used.
    pub oath: bool,
}

/// The contexts a host serves AgentXML and TokenIndex on, and so the only ones a site may
/// advertise.
pub const CONTEXTS: &[&str] = &["pinsafe", "sentry", "proxy"];

/// Whether `context` is one of [`CONTEXTS`] (exact, lower case, no slashes).
pub fn is_served_context(context: &str) -> bool {
    CONTEXTS.contains(&context)
}

impl ServerSettings {
    /// Checks what a site may advertise: a non-blank host name without blanks or control
    /// characters and a context of [`CONTEXTS`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field (`context`, `hostname`).
    pub fn check(&self) -> Result<(), Error> {
        if !is_served_context(&self.connection_type) {
            return Err(Error::InvalidInput {
                field: "context",
                reason: "must be pinsafe, sentry or proxy (the contexts this server serves)",
            });
        }
        let host = &self.hostname;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::InvalidInput {
                field: "hostname",
                reason: "must be a host name or address",
            });
        }
        Ok(())
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            port: 8080,
            connection_type: "pinsafe".into(),
            using_ssl: false,
            push_support: false,
            local: false,
            pin: true,
            oath: false,
        }
    }
}

/// Site ID → server settings.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SiteDirectory: Send + Sync + 'static {
    /// The settings of the site, or `None` when the Site ID is unknown.
    async fn find_site(&self, site: &SiteId) -> Result<Option<ServerSettings>, StoreError>;
}

/// Manages sites.
#[async_trait]
pub trait SiteAdmin: SiteDirectory {
    /// Adds or replaces a site.
    async fn put_site(&self, site: &SiteId, settings: &ServerSettings) -> Result<(), StoreError>;
    /// Removes a site. Returns whether it existed.
    async fn remove_site(&self, site: &SiteId) -> Result<bool, StoreError>;
    /// Every site, ordered by Site ID.
    async fn list_sites(&self) -> Result<Vec<(SiteId, ServerSettings)>, StoreError>;
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall mock of [`SiteAdmin`] (and so of [`SiteDirectory`]) (feature `mock`).
    pub SiteAdmin {}
    #[async_trait]
    impl SiteDirectory for SiteAdmin {
        async fn find_site(&self, site: &SiteId) -> Result<Option<ServerSettings>, StoreError>;
    }
    #[async_trait]
    impl SiteAdmin for SiteAdmin {
        async fn put_site(&self, site: &SiteId, settings: &ServerSettings) -> Result<(), StoreError>;
        async fn remove_site(&self, site: &SiteId) -> Result<bool, StoreError>;
        async fn list_sites(&self) -> Result<Vec<(SiteId, ServerSettings)>, StoreError>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_contexts_pass() {
        for ctx in CONTEXTS {
            let s = ServerSettings {
                connection_type: (*ctx).into(),
                ..ServerSettings::default()
            };
            assert!(s.check().is_ok(), "{ctx}");
        }
        for ctx in ["", "custom", "Proxy", "/proxy", "proxy/x"] {
            let s = ServerSettings {
                connection_type: ctx.into(),
                ..ServerSettings::default()
            };
            let e = s.check().unwrap_err();
            assert!(
                e.to_string().contains("pinsafe, sentry or proxy"),
                "{ctx}: {e}"
            );
        }
        let s = ServerSettings {
            hostname: "a b".into(),
            ..ServerSettings::default()
        };
        assert!(s.check().is_err());
        assert!(ServerSettings::default().check().is_ok());
    }
}
