//! [`UserRepository`] + [`UserAdmin`] on the `users` table, [`SiteDirectory`] +
//! [`SiteAdmin`] on the `sites` table.

use async_trait::async_trait;
use swivel_provision::{
    Destination, ServerSettings, SiteAdmin, SiteDirectory, SiteId, StoreError, UserAdmin,
    UserEntry, UserQuery, UserRepository, Username,
};
use tokio_postgres::Row;

use crate::error::PostgresError;
use crate::store::PostgresStore;

pub(crate) const FIND_USER: &str =
    "SELECT username, destinations::text, mobile_group FROM users WHERE username = $1";
const PUT_USER: &str = "INSERT INTO users (username, destinations, mobile_group)
     VALUES ($1, $2::text::jsonb, $3)
     ON CONFLICT (username) DO UPDATE
     SET destinations = EXCLUDED.destinations, mobile_group = EXCLUDED.mobile_group";
const REMOVE_USER: &str = "DELETE FROM users WHERE username = $1";
// Byte order, as `Username`'s `Ord`, whatever the database's collation.
const LIST_USERS: &str =
    "SELECT username, destinations::text, mobile_group FROM users ORDER BY username COLLATE \"C\"";

const FIND_SITE: &str = "SELECT site_id, settings::text FROM sites WHERE site_id = $1";
const PUT_SITE: &str = "INSERT INTO sites (site_id, settings) VALUES ($1, $2::text::jsonb)
     ON CONFLICT (site_id) DO UPDATE SET settings = EXCLUDED.settings";
const REMOVE_SITE: &str = "DELETE FROM sites WHERE site_id = $1";
const LIST_SITES: &str = "SELECT site_id, settings::text FROM sites ORDER BY site_id COLLATE \"C\"";

/// The statement and parameters of one users page: range conditions on the username in
/// byte order (the `users_username_c` index), the destination through the GIN index of
/// `destinations`.
fn page_sql(query: &UserQuery) -> (String, Vec<String>, i64) {
    const NAME: &str = "username COLLATE \"C\"";
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    let mut add = |condition: &str, value: String| {
        params.push(value);
        conditions.push(condition.replace('?', &format!("${}", params.len())));
    };
    if let Some(address) = &query.destination {
        add(
            "destinations @> jsonb_build_array(jsonb_build_object('address', ?::text))",
            address.clone(),
        );
    }
    if let Some(after) = &query.after {
        add(&format!("{NAME} > ?"), after.as_str().to_owned());
    }
    if let Some(prefix) = query.prefix() {
        add(&format!("{NAME} >= ?"), prefix.to_owned());
        if let Some(end) = query.prefix_end() {
            add(&format!("{NAME} < ?"), end);
        }
    }
    let mut sql = String::from("SELECT username, destinations::text, mobile_group FROM users");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {NAME} LIMIT ${}", params.len() + 1));
    (sql, params, i64::try_from(query.limit).unwrap_or(i64::MAX))
}

fn corrupt(what: &'static str) -> PostgresError {
    PostgresError::Corrupt {
        what,
        line: 0,
        column: 0,
    }
}

/// The user in the columns `offset..offset + 3` of `row` (username, destinations,
/// mobile group), `None` when the username column is NULL (an outer join found none).
pub(crate) fn user_at(row: &Row, offset: usize) -> Result<Option<UserEntry>, PostgresError> {
    let name: Option<String> = row.try_get(offset).map_err(PostgresError::query)?;
    let Some(name) = name else {
        return Ok(None);
    };
    let destinations: String = row.try_get(offset + 1).map_err(PostgresError::query)?;
    let mobile_group: bool = row.try_get(offset + 2).map_err(PostgresError::query)?;
    Ok(Some(UserEntry {
        username: Username::parse(&name).map_err(|_| corrupt("username"))?,
        destinations: serde_json::from_str::<Vec<Destination>>(&destinations)
            .map_err(|e| PostgresError::corrupt("user destinations", &e))?,
        mobile_group,
    }))
}

fn user_from_row(row: &Row) -> Result<UserEntry, PostgresError> {
    user_at(row, 0)?.ok_or_else(|| corrupt("username"))
}

fn site_from_row(row: &Row) -> Result<(SiteId, ServerSettings), PostgresError> {
    let id: String = row.try_get(0).map_err(PostgresError::query)?;
    let settings: String = row.try_get(1).map_err(PostgresError::query)?;
    Ok((
        SiteId::parse(&id).map_err(|_| corrupt("site ID"))?,
        serde_json::from_str(&settings).map_err(|e| PostgresError::corrupt("site settings", &e))?,
    ))
}

impl PostgresStore {
    /// Runs a statement with parameters and returns the number of rows it changed.
    pub(crate) async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, PostgresError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(PostgresError::query)?;
        client
            .execute(&stmt, params)
            .await
            .map_err(PostgresError::query)
    }

    /// Runs a query with parameters and returns its rows.
    pub(crate) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, PostgresError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(PostgresError::query)?;
        client
            .query(&stmt, params)
            .await
            .map_err(PostgresError::query)
    }

    async fn user(&self, username: &Username) -> Result<Option<UserEntry>, PostgresError> {
        self.rows(FIND_USER, &[&username.as_str()])
            .await?
            .first()
            .map(user_from_row)
            .transpose()
    }

    async fn store_user(&self, user: &UserEntry) -> Result<(), PostgresError> {
        let destinations = serde_json::to_string(&user.destinations)
            .map_err(|e| PostgresError::corrupt("user destinations", &e))?;
        self.exec(
            PUT_USER,
            &[&user.username.as_str(), &destinations, &user.mobile_group],
        )
        .await
        .map(drop)
    }

    async fn site(&self, site: &SiteId) -> Result<Option<ServerSettings>, PostgresError> {
        self.rows(FIND_SITE, &[&site.as_str()])
            .await?
            .first()
            .map(|row| site_from_row(row).map(|(_, s)| s))
            .transpose()
    }

    async fn store_site(
        &self,
        site: &SiteId,
        settings: &ServerSettings,
    ) -> Result<(), PostgresError> {
        let json = serde_json::to_string(settings)
            .map_err(|e| PostgresError::corrupt("site settings", &e))?;
        self.exec(PUT_SITE, &[&site.as_str(), &json])
            .await
            .map(drop)
    }
}

#[async_trait]
impl UserRepository for PostgresStore {
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError> {
        Ok(self.user(username).await?)
    }
}

#[async_trait]
impl UserAdmin for PostgresStore {
    async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError> {
        Ok(self.store_user(user).await?)
    }

    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError> {
        Ok(self.exec(REMOVE_USER, &[&username.as_str()]).await? == 1)
    }

    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError> {
        let rows = self.rows(LIST_USERS, &[]).await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    async fn list_users_page(&self, query: &UserQuery) -> Result<Vec<UserEntry>, StoreError> {
        query.validate()?;
        let (sql, texts, limit) = page_sql(query);
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            texts.iter().map(|t| t as _).collect();
        params.push(&limit);
        let rows = self.rows(&sql, &params).await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl SiteDirectory for PostgresStore {
    async fn find_site(&self, site: &SiteId) -> Result<Option<ServerSettings>, StoreError> {
        Ok(self.site(site).await?)
    }
}

#[async_trait]
impl SiteAdmin for PostgresStore {
    async fn put_site(&self, site: &SiteId, settings: &ServerSettings) -> Result<(), StoreError> {
        Ok(self.store_site(site, settings).await?)
    }

    async fn remove_site(&self, site: &SiteId) -> Result<bool, StoreError> {
        Ok(self.exec(REMOVE_SITE, &[&site.as_str()]).await? == 1)
    }

    async fn list_sites(&self) -> Result<Vec<(SiteId, ServerSettings)>, StoreError> {
        let rows = self.rows(LIST_SITES, &[]).await?;
        Ok(rows.iter().map(site_from_row).collect::<Result<_, _>>()?)
    }
}
