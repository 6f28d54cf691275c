//! [`SettingsStore`]: small named values a host keeps beside the provisioning records (the
//! policy, a console password hash, encrypted PINs), so that every server instance sharing a
//! store sees the same ones.

use async_trait::async_trait;

use crate::error::StoreError;

/// Named text values. Keys are at most 256 bytes; values at most 1 MiB.
///
/// # What an implementer must guarantee
/// `put_setting` is durable before it returns and replaces any value under the key.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    /// The value under `key`, if any.
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` under `key`.
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Removes the value under `key`. Returns whether there was one.
    async fn delete_setting(&self, key: &str) -> Result<bool, StoreError>;
}
