//! [`SettingsStore`] on the `settings` table.

use async_trait::async_trait;
use swivel_provision::{SettingsStore, StoreError};

use crate::error::PostgresError;
use crate::store::PostgresStore;

/// Longest setting key, in bytes (the trait's limit, [`swivel_provision::MAX_SETTING_KEY_BYTES`]).
pub const MAX_SETTING_KEY_BYTES: usize = swivel_provision::MAX_SETTING_KEY_BYTES;
/// Longest setting value, in bytes (the trait's limit,
/// [`swivel_provision::MAX_SETTING_VALUE_BYTES`]).
pub const MAX_SETTING_VALUE_BYTES: usize = swivel_provision::MAX_SETTING_VALUE_BYTES;

const GET: &str = "SELECT value FROM settings WHERE key = $1";
const PUT: &str = "INSERT INTO settings (key, value) VALUES ($1, $2)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
const DELETE: &str = "DELETE FROM settings WHERE key = $1";

fn check_key(key: &str) -> Result<(), PostgresError> {
    if key.len() > MAX_SETTING_KEY_BYTES {
        return Err(PostgresError::OutOfRange("setting key"));
    }
    Ok(())
}

#[async_trait]
impl SettingsStore for PostgresStore {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        check_key(key)?;
        let rows = self.rows(GET, &[&key]).await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => Ok(Some(row.try_get(0).map_err(PostgresError::query)?)),
        }
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        check_key(key)?;
        if value.len() > MAX_SETTING_VALUE_BYTES {
            return Err(PostgresError::OutOfRange("setting value").into());
        }
        self.exec(PUT, &[&key, &value]).await?;
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        Ok(self.exec(DELETE, &[&key]).await? == 1)
    }
}
