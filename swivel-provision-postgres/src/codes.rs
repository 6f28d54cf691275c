//! [`CodeStore`] on the `records` table: one row per user, swapped by version.
//!
//! Compare-and-swap is a single statement: `INSERT … ON CONFLICT DO NOTHING` when no record
//! is expected, `UPDATE … WHERE username = $1 AND version = $2` otherwise. Row-level
//! locking makes it atomic across every connection and server instance: of concurrent
//! swaps from one version, the first commits and the others re-check the `WHERE` clause
//! against the new row and change nothing.

use async_trait::async_trait;
use swivel_provision::{CodeStore, IdHash, ProvisionRecord, StoreError, Username};
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;

use crate::error::PostgresError;
use crate::store::PostgresStore;

const LOAD: &str = "SELECT body::text FROM records WHERE username = $1";
const INSERT: &str =
    "INSERT INTO records (username, version, body, device_id_hash, pending_expires_at)
     VALUES ($1, $2, $3::text::jsonb, $4, $5)
     ON CONFLICT DO NOTHING";
const UPDATE: &str = "UPDATE records
     SET version = $3, body = $4::text::jsonb, device_id_hash = $5, pending_expires_at = $6
     WHERE username = $1 AND version = $2";
const DELETE: &str = "DELETE FROM records WHERE username = $1 AND version = $2";
const FIND_BY_ID: &str = "SELECT body::text FROM records WHERE device_id_hash = $1";
// Timestamps are kept to the microsecond: rows in the same microsecond as `now` also bring
// their body, whose exact expiry decides.
const LIST_EXPIRED: &str = "SELECT username, CASE WHEN pending_expires_at = $1 THEN body::text END
     FROM records
     WHERE pending_expires_at <= $1
     ORDER BY pending_expires_at, username
     LIMIT $2";

fn version_to_sql(v: u64) -> Result<i64, PostgresError> {
    i64::try_from(v).map_err(|_| PostgresError::OutOfRange("record version"))
}

fn decode(body: &str) -> Result<ProvisionRecord, PostgresError> {
    ProvisionRecord::from_json(body.as_bytes()).map_err(|e| PostgresError::corrupt("record", &e))
}

fn decode_username(name: &str) -> Result<Username, PostgresError> {
    Username::parse(name).map_err(|_| PostgresError::Corrupt {
        what: "username",
        line: 0,
        column: 0,
    })
}

impl PostgresStore {
    async fn cas(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, PostgresError> {
        let version = version_to_sql(record.version)?;
        let json = record.to_json();
        let body =
            std::str::from_utf8(&json).map_err(|_| PostgresError::OutOfRange("record JSON"))?;
        let device = record.device_id_hash().map(|h| h.to_hex());
        let expires = record.purge_due_at();
        let username = record.username.as_str();
        let client = self.client().await?;
        let result = match expected_version {
            None => {
                let stmt = client
                    .prepare_cached(INSERT)
                    .await
                    .map_err(PostgresError::query)?;
                client
                    .execute(&stmt, &[&username, &version, &body, &device, &expires])
                    .await
            }
            Some(expected) => {
                let expected = version_to_sql(expected)?;
                let stmt = client
                    .prepare_cached(UPDATE)
                    .await
                    .map_err(PostgresError::query)?;
                client
                    .execute(
                        &stmt,
                        &[&username, &expected, &version, &body, &device, &expires],
                    )
                    .await
            }
        };
        match result {
            Ok(rows) => Ok(rows == 1),
            // Another user's record holds this device Id hash.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
            Err(e) => Err(PostgresError::query(e)),
        }
    }

    async fn load_one(
        &self,
        sql: &str,
        key: &str,
    ) -> Result<Option<ProvisionRecord>, PostgresError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(PostgresError::query)?;
        let row = client
            .query_opt(&stmt, &[&key])
            .await
            .map_err(PostgresError::query)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let body: String = row.try_get(0).map_err(PostgresError::query)?;
                decode(&body).map(Some)
            }
        }
    }

    async fn delete_record(
        &self,
        username: &Username,
        expected: u64,
    ) -> Result<bool, PostgresError> {
        let expected = version_to_sql(expected)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(DELETE)
            .await
            .map_err(PostgresError::query)?;
        let rows = client
            .execute(&stmt, &[&username.as_str(), &expected])
            .await
            .map_err(PostgresError::query)?;
        Ok(rows == 1)
    }

    async fn expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, PostgresError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(LIST_EXPIRED)
            .await
            .map_err(PostgresError::query)?;
        let rows = client
            .query(&stmt, &[&now, &limit])
            .await
            .map_err(PostgresError::query)?;
        let mut listed = Vec::with_capacity(rows.len());
        let mut boundary = Vec::new();
        for row in rows {
            let name: String = row.try_get(0).map_err(PostgresError::query)?;
            let username = decode_username(&name)?;
            let body: Option<String> = row.try_get(1).map_err(PostgresError::query)?;
            match body {
                None => listed.push(username),
                Some(body) => {
                    if let Some(at) = decode(&body)?.purge_due_at().filter(|t| *t <= now) {
                        boundary.push((at, username));
                    }
                }
            }
        }
        // Boundary rows come last in the query's order; sort them by their exact expiry.
        boundary.sort();
        listed.extend(boundary.into_iter().map(|(_, u)| u));
        Ok(listed)
    }
}

#[async_trait]
impl CodeStore for PostgresStore {
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError> {
        Ok(self.load_one(LOAD, username.as_str()).await?)
    }

    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError> {
        Ok(self.cas(expected_version, record).await?)
    }

    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError> {
        Ok(self.delete_record(username, expected_version).await?)
    }

    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError> {
        Ok(self.load_one(FIND_BY_ID, &id_hash.to_hex()).await?)
    }

    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError> {
        Ok(self.expired(now, limit).await?)
    }
}
