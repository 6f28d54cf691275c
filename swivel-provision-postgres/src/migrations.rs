//! Embedded, versioned migrations, recorded in a `schema_version` table.
//!
//! Every instance runs them at connect; an advisory lock makes concurrent starts take turns.
//! A database migrated by a newer build (a version above [`SCHEMA_VERSION`]) is refused.

use deadpool_postgres::Object;

use crate::error::PostgresError;

/// The newest schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = 6;

/// Advisory lock key held while migrating ("swivelpg" in ASCII).
const MIGRATION_LOCK: i64 = 0x7377_6976_656c_7067;

/// `(version, SQL)`, in order. Never edit a released entry: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE records (
         username           TEXT PRIMARY KEY,
         version            BIGINT NOT NULL CHECK (version > 0),
         body               JSONB NOT NULL,
         device_id_hash     TEXT UNIQUE,
         pending_expires_at TIMESTAMPTZ
     );
     CREATE INDEX records_pending_expires_at ON records (pending_expires_at)
         WHERE pending_expires_at IS NOT NULL;
     CREATE TABLE users (
         username     TEXT PRIMARY KEY,
         destinations JSONB NOT NULL,
         mobile_group BOOLEAN NOT NULL
     );
     CREATE TABLE sites (
         site_id  TEXT PRIMARY KEY,
         settings JSONB NOT NULL
     );
     CREATE TABLE settings (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );",
    ),
    (
        2,
        // The shared event log (swivel_provision::EventStore).
        "CREATE TABLE events (
             id       BIGSERIAL PRIMARY KEY,
             at       TIMESTAMPTZ NOT NULL,
             instance TEXT NOT NULL,
             kind     TEXT NOT NULL,
             username TEXT,
             failure  BOOLEAN NOT NULL,
             line     TEXT NOT NULL
         );
         CREATE INDEX events_username_id ON events (username, id);
         CREATE INDEX events_at ON events (at);",
    ),
    (
        3,
        // The durable delivery queue (swivel_provision::JobStore): one row per queued
        // message, the message itself sealed (nonce + XChaCha20-Poly1305 ciphertext).
        // `due_at` is the next attempt or, while `lease_owner` holds it, the lease's end.
        "CREATE TABLE delivery_jobs (
             id          TEXT PRIMARY KEY,
             username    TEXT NOT NULL,
             channel     TEXT NOT NULL,
             kind        TEXT NOT NULL CHECK (kind IN ('code', 'notice')),
             created_at  TIMESTAMPTZ NOT NULL,
             due_at      TIMESTAMPTZ NOT NULL,
             expires_at  TIMESTAMPTZ NOT NULL,
             attempts    INTEGER NOT NULL CHECK (attempts >= 0),
             lease_owner TEXT,
             sealed      BYTEA NOT NULL
         );
         CREATE INDEX delivery_jobs_username ON delivery_jobs (username);
         CREATE INDEX delivery_jobs_due_at ON delivery_jobs (due_at, id);",
    ),
    (
        4,
        // Hit counters per key and fixed window (swivel_provision::CounterStore). Unlogged:
        // counts need not survive a crash (nor reach a standby), and skipping the WAL
        // makes a hit cheaper.
        "CREATE UNLOGGED TABLE counters (
             key          TEXT NOT NULL,
             window_start TIMESTAMPTZ NOT NULL,
             window_end   TIMESTAMPTZ NOT NULL,
             hits         BIGINT NOT NULL,
             PRIMARY KEY (key, window_start)
         );
         CREATE INDEX counters_window_end ON counters (window_end);",
    ),
    (
        5,
        // The users page (swivel_provision::UserAdmin::list_users_page): usernames in byte
        // order whatever the database's collation (keyset cursor and prefix as range
        // scans), and the destination addresses (`destinations @> '[{"address": ...}]'`).
        "CREATE INDEX users_username_c ON users (username COLLATE \"C\");
         CREATE INDEX users_destinations ON users USING GIN (destinations jsonb_path_ops);",
    ),
    (
        6,
        // The Log page's filter by event kind (swivel_provision::EventQuery::kind).
        "CREATE INDEX events_kind_id ON events (kind, id);",
    ),
];

/// Creates the schema if asked, then applies the missing migrations in one transaction.
pub(crate) async fn migrate(
    client: &mut Object,
    schema: Option<&str>,
) -> Result<(), PostgresError> {
    let tx = client.transaction().await.map_err(PostgresError::query)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(PostgresError::query)?;
    if let Some(schema) = schema {
        // The name is checked to be a plain identifier (options::check_schema_name).
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}; SET LOCAL search_path TO {schema}"
        ))
        .await
        .map_err(PostgresError::query)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(PostgresError::query)?;
    let found: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(PostgresError::query)?
        .try_get(0)
        .map_err(PostgresError::query)?;
    if found > SCHEMA_VERSION {
        return Err(PostgresError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql).await.map_err(PostgresError::query)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(PostgresError::query)?;
    }
    tx.commit().await.map_err(PostgresError::query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_up_to_the_current_version() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }
}
