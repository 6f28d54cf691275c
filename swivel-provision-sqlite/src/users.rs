//! [`UserRepository`] and [`UserAdmin`] for [`SqliteStore`].

use std::path::Path;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use swivel_provision::{Destination, StoreError, UserAdmin, UserEntry, UserRepository, Username};

use crate::error::SqliteError;
use crate::store::SqliteStore;

fn entry(
    path: &Path,
    username: &str,
    destinations: &str,
    mobile_group: bool,
) -> Result<UserEntry, StoreError> {
    let username = Username::parse(username).map_err(StoreError::backend)?;
    let destinations: Vec<Destination> = serde_json::from_str(destinations)
        .map_err(|e| SqliteError::invalid_row(path, "users", &e))?;
    Ok(UserEntry {
        username,
        destinations,
        mobile_group,
    })
}

/// The user `name`, read with `conn` (a reader's, or the writer's inside an update).
pub(crate) fn read_user(
    conn: &rusqlite::Connection,
    path: &Path,
    name: &str,
) -> Result<Option<UserEntry>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT username, destinations, mobile_group FROM users WHERE username = ?1",
        )
        .and_then(|mut s| {
            s.query_row([name], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(|e| SqliteError::from_sqlite(path, e))?;
    row.map(|(u, d, m)| entry(path, &u, &d, m)).transpose()
}

#[async_trait]
impl UserRepository for SqliteStore {
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError> {
        let name = username.as_str().to_owned();
        self.db
            .run(false, move |conn, path| Ok(read_user(conn, path, &name)))
            .await?
    }
}

#[async_trait]
impl UserAdmin for SqliteStore {
    async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError> {
        let name = user.username.as_str().to_owned();
        let destinations =
            serde_json::to_string(&user.destinations).map_err(StoreError::backend)?;
        let mobile_group = user.mobile_group;
        self.db
            .run(true, move |conn, path| {
                conn.prepare_cached(
                    "INSERT INTO users (username, destinations, mobile_group) VALUES (?1, ?2, ?3)
                     ON CONFLICT (username) DO UPDATE
                     SET destinations = excluded.destinations, mobile_group = excluded.mobile_group",
                )
                .and_then(|mut s| s.execute(params![name, destinations, mobile_group]))
                .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?;
        Ok(())
    }

    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError> {
        let name = username.as_str().to_owned();
        Ok(self
            .db
            .run(true, move |conn, path| {
                conn.prepare_cached("DELETE FROM users WHERE username = ?1")
                    .and_then(|mut s| s.execute([&name]))
                    .map(|n| n > 0)
                    .map_err(|e| SqliteError::from_sqlite(path, e))
            })
            .await?)
    }

    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError> {
        let rows = self
            .db
            .run(false, move |conn, path| {
                let sql = |e| SqliteError::from_sqlite(path, e);
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT username, destinations, mobile_group FROM users ORDER BY username",
                    )
                    .map_err(sql)?;
                stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                    ))
                })
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(sql)
            })
            .await?;
        rows.iter()
            .map(|(u, d, m)| entry(self.path(), u, d, *m))
            .collect()
    }
}
