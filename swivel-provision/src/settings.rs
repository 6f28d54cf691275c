//! [`SettingsStore`]: small named values a host keeps beside the provisioning records (the
//! policy, a console password hash, encrypted PINs), so that every server instance sharing a
//! store sees the same ones.

use async_trait::async_trait;

use crate::error::StoreError;

/// Longest settings key, in bytes: every store accepts keys up to this long (and may
/// refuse longer ones).
pub const MAX_SETTING_KEY_BYTES: usize = 256;

/// Longest settings value, in bytes: every store accepts values up to this long.
pub const MAX_SETTING_VALUE_BYTES: usize = 1024 * 1024;

/// Named text values. Keys are at most [`MAX_SETTING_KEY_BYTES`] (256) bytes; values at
/// most [`MAX_SETTING_VALUE_BYTES`] (1 MiB). A key made from a username (`pin/<name>`) fits
/// whatever the username: see [`crate::MAX_USERNAME_BYTES`].
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
