//! [`UserRepository`] and [`UserAdmin`] for [`SqliteStore`].

use std::path::Path;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};
use swivel_provision::{
    Destination, StoreError, UserAdmin, UserEntry, UserQuery, UserRepository, Username,
};

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

/// The statement and parameters of one users page: a range scan of the users' primary key
/// (cursor, prefix), or of the destination index's `(address, username)` key.
fn page_sql(query: &UserQuery) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let mut sql = String::new();
    let name = if let Some(address) = &query.destination {
        sql.push_str(
            "SELECT u.username, u.destinations, u.mobile_group FROM user_destinations d
             JOIN users u ON u.username = d.username WHERE d.address = ?",
        );
        params.push(Value::Text(address.clone()));
        "d.username"
    } else {
        sql.push_str("SELECT username, destinations, mobile_group FROM users WHERE 1");
        "username"
    };
    if let Some(after) = &query.after {
        sql.push_str(&format!(" AND {name} > ?"));
        params.push(Value::Text(after.as_str().to_owned()));
    }
    if let Some(prefix) = query.prefix() {
        sql.push_str(&format!(" AND {name} >= ?"));
        params.push(Value::Text(prefix.to_owned()));
        if let Some(end) = query.prefix_end() {
            sql.push_str(&format!(" AND {name} < ?"));
            params.push(Value::Text(end));
        }
    }
    sql.push_str(&format!(" ORDER BY {name} LIMIT ?"));
    params.push(Value::Integer(
        i64::try_from(query.limit).unwrap_or(i64::MAX),
    ));
    (sql, params)
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

    async fn list_users_page(&self, query: &UserQuery) -> Result<Vec<UserEntry>, StoreError> {
        query.validate()?;
        let (sql, params) = page_sql(query);
        let rows = self
            .db
            .run(false, move |conn, path| {
                let fail = |e| SqliteError::from_sqlite(path, e);
                let mut stmt = conn.prepare_cached(&sql).map_err(fail)?;
                stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, bool>(2)?,
                    ))
                })
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(fail)
            })
            .await?;
        rows.iter()
            .map(|(u, d, m)| entry(self.path(), u, d, *m))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of users page is a range scan of an index, ordered by it: no full scan,
    /// no sort (what keeps a page fast with a million users).
    #[test]
    fn every_users_page_is_an_index_range_scan() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        crate::schema::migrate(&mut conn, Path::new(":memory:")).expect("schema");
        let name = Username::parse("user-0000042").expect("valid");
        let queries = [
            UserQuery::first(50),
            UserQuery {
                after: Some(name.clone()),
                ..UserQuery::first(50)
            },
            UserQuery {
                prefix: Some("user-00001".into()),
                after: Some(name.clone()),
                ..UserQuery::first(50)
            },
            UserQuery {
                destination: Some("a@example.com".into()),
                prefix: Some("user".into()),
                after: Some(name),
                ..UserQuery::first(50)
            },
        ];
        for query in queries {
            let (sql, params) = page_sql(&query);
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .and_then(|mut s| {
                    s.query_map(rusqlite::params_from_iter(params), |r| r.get(3))?
                        .collect::<Result<_, _>>()
                })
                .expect("plan");
            let plan = plan.join("; ");
            assert!(!plan.contains("TEMP B-TREE"), "{query:?}: {plan}");
            let first = plan.split("; ").next().unwrap_or_default();
            assert!(
                first.contains("USING INDEX") || first.contains("USING PRIMARY KEY"),
                "{query:?}: {plan}"
            );
            if query.after.is_some() {
                assert!(
                    first.contains('>') || first.contains('<'),
                    "a range: {plan}"
                );
            }
        }
    }
}
