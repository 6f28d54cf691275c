//! [`SiteDirectory`]: Site ID → server settings, for server settings discovery (SSD).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
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
