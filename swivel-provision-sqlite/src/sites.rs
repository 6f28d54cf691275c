//! [`SiteDirectory`] and [`SiteAdmin`] for [`SqliteStore`].

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use swivel_provision::{ServerSettings, SiteAdmin, SiteDirectory, SiteId, StoreError};

use crate::error::SqliteError;
use crate::store::SqliteStore;

impl SqliteStore {
    fn settings_of(&self, json: &str) -> Result<ServerSettings, StoreError> {
        serde_json::from_str(json)
            .map_err(|e| SqliteError::invalid_row(self.path(), "sites", &e).into())
    }
}

#[async_trait]
impl SiteDirectory for SqliteStore {
    async fn find_site(&self, site: &SiteId) -> Result<Option<ServerSettings>, StoreError> {
        let id = site.as_str().to_owned();
        let json = self
            .db
            .run(false, move |conn, path| {
                conn.prepare_cached("SELECT settings FROM sites WHERE site_id = ?1")
                    .and_then(|mut s| s.query_row([&id], |r| r.get::<_, String>(0)).optional())
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?;
        json.map(|j| self.settings_of(&j)).transpose()
    }
}

#[async_trait]
impl SiteAdmin for SqliteStore {
    async fn put_site(&self, site: &SiteId, settings: &ServerSettings) -> Result<(), StoreError> {
        let id = site.as_str().to_owned();
        let json = serde_json::to_string(settings).map_err(StoreError::backend)?;
        self.db
            .run(true, move |conn, path| {
                conn.prepare_cached(
                    "INSERT INTO sites (site_id, settings) VALUES (?1, ?2)
                     ON CONFLICT (site_id) DO UPDATE SET settings = excluded.settings",
                )
                .and_then(|mut s| s.execute(params![id, json]))
                .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?;
        Ok(())
    }

    async fn remove_site(&self, site: &SiteId) -> Result<bool, StoreError> {
        let id = site.as_str().to_owned();
        Ok(self
            .db
            .run(true, move |conn, path| {
                conn.prepare_cached("DELETE FROM sites WHERE site_id = ?1")
                    .and_then(|mut s| s.execute([&id]))
                    .map(|n| n > 0)
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }

    async fn list_sites(&self) -> Result<Vec<(SiteId, ServerSettings)>, StoreError> {
        let rows = self
            .db
            .run(false, move |conn, path| {
                let sql = |e| SqliteError::from_sqlite(path, e);
                let mut stmt = conn
                    .prepare_cached("SELECT site_id, settings FROM sites ORDER BY site_id")
                    .map_err(sql)?;
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(sql)
            })
            .await?;
        rows.iter()
            .map(|(id, json)| {
                let id = SiteId::parse(id).map_err(StoreError::backend)?;
                Ok((id, self.settings_of(json)?))
            })
            .collect()
    }
}
