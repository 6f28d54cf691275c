//! [`SettingsStore`] for [`SqliteStore`].

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use swivel_provision::{SettingsStore, StoreError};

use crate::error::SqliteError;
use crate::store::SqliteStore;

/// Longest key, in bytes (the trait's limit, [`swivel_provision::MAX_SETTING_KEY_BYTES`]).
pub const MAX_KEY_BYTES: usize = swivel_provision::MAX_SETTING_KEY_BYTES;
/// Longest value, in bytes (the trait's limit, [`swivel_provision::MAX_SETTING_VALUE_BYTES`]).
pub const MAX_VALUE_BYTES: usize = swivel_provision::MAX_SETTING_VALUE_BYTES;

impl SqliteStore {
    fn check_key(&self, key: &str) -> Result<(), StoreError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(SqliteError::TooLarge {
                path: self.path().to_path_buf(),
                what: "setting key",
                limit: MAX_KEY_BYTES,
            }
            .into());
        }
        Ok(())
    }
}

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.check_key(key)?;
        let key = key.to_owned();
        Ok(self
            .db
            .run(false, move |conn, path| {
                conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")
                    .and_then(|mut s| s.query_row([&key], |r| r.get(0)).optional())
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(SqliteError::TooLarge {
                path: self.path().to_path_buf(),
                what: "setting value",
                limit: MAX_VALUE_BYTES,
            }
            .into());
        }
        let (key, value) = (key.to_owned(), value.to_owned());
        self.db
            .run(true, move |conn, path| {
                conn.prepare_cached(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![key, value]))
                .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?;
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        self.check_key(key)?;
        let key = key.to_owned();
        Ok(self
            .db
            .run(true, move |conn, path| {
                conn.prepare_cached("DELETE FROM settings WHERE key = ?1")
                    .and_then(|mut s| s.execute([&key]))
                    .map(|n| n > 0)
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }
}
