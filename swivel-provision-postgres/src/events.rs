//! [`EventStore`] for [`PostgresStore`] on the `events` table: a batch is one
//! multi-row `INSERT` (one statement, so whole or not at all).

use async_trait::async_trait;
use swivel_provision::{EventQuery, EventStore, StoreError, StoredEvent, Username};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use crate::error::PostgresError;
use crate::store::PostgresStore;

// One row per element of the arrays: a batch of any size is one prepared statement.
const APPEND: &str = "INSERT INTO events (at, instance, kind, username, failure, line)
     SELECT at, instance, kind, username, failure, line FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[],
                          $5::boolean[], $6::text[])
     WITH ORDINALITY AS batch(at, instance, kind, username, failure, line, n)
     ORDER BY n";
// Every filter is optional: a NULL parameter lets every row through.
const LIST: &str = "SELECT id, at, instance, kind, username, failure, line FROM events
     WHERE ($1::text IS NULL OR username = $1) AND ($2::timestamptz IS NULL OR at >= $2)
       AND ($3::bigint IS NULL OR id < $3) AND ($5::text IS NULL OR kind = $5)
       AND ($6::timestamptz IS NULL OR at < $6)
     ORDER BY id DESC LIMIT $4";
const PURGE: &str = "DELETE FROM events WHERE at < $1";

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, events: &[StoredEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let at: Vec<OffsetDateTime> = events.iter().map(|e| e.at).collect();
        let instance: Vec<&str> = events.iter().map(|e| e.instance.as_str()).collect();
        let kind: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        let username: Vec<Option<&str>> = events
            .iter()
            .map(|e| e.username.as_ref().map(Username::as_str))
            .collect();
        let failure: Vec<bool> = events.iter().map(|e| e.failure).collect();
        let line: Vec<&str> = events.iter().map(|e| e.line.as_str()).collect();
        let params: [&(dyn ToSql + Sync); 6] = [&at, &instance, &kind, &username, &failure, &line];
        self.exec(APPEND, &params).await?;
        Ok(())
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        query.validate()?;
        let user = query.user.as_ref().map(Username::as_str);
        // Ids are positive bigints: a cursor above i64::MAX lets every row through.
        let before = query
            .before_id
            .map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = query.limit as i64;
        let rows = self
            .rows(
                LIST,
                &[
                    &user,
                    &query.since,
                    &before,
                    &limit,
                    &query.kind,
                    &query.until,
                ],
            )
            .await?;
        rows.iter()
            .map(|row| -> Result<StoredEvent, StoreError> {
                let id: i64 = row.try_get(0).map_err(PostgresError::query)?;
                let username: Option<String> = row.try_get(4).map_err(PostgresError::query)?;
                Ok(StoredEvent {
                    id: u64::try_from(id).map_err(|_| PostgresError::OutOfRange("event id"))?,
                    at: row.try_get(1).map_err(PostgresError::query)?,
                    instance: row.try_get(2).map_err(PostgresError::query)?,
                    kind: row.try_get(3).map_err(PostgresError::query)?,
                    username: username
                        .map(|u| Username::parse(&u))
                        .transpose()
                        .map_err(StoreError::backend)?,
                    failure: row.try_get(5).map_err(PostgresError::query)?,
                    line: row.try_get(6).map_err(PostgresError::query)?,
                })
            })
            .collect()
    }

    async fn purge_before(&self, t: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.exec(PURGE, &[&t]).await?)
    }
}
