//! The schema and its embedded, versioned migrations (`PRAGMA user_version`).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::SqliteError;

/// `PRAGMA application_id` of a swivel-provision database ("SWPV").
pub(crate) const APPLICATION_ID: i32 = 0x5357_5056;

/// Migration `i` takes the schema from version `i` to `i + 1`. Append only: never edit a
/// migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the first schema.
    "
    CREATE TABLE records (
        username           TEXT PRIMARY KEY NOT NULL,
        version            INTEGER NOT NULL,
        body               BLOB NOT NULL,      -- ProvisionRecord::to_json
        device_id_hash     TEXT UNIQUE,        -- hex of the device's provision Id hash
        pending_expires_ns INTEGER             -- unix nanoseconds; NULL: no pending code
    );
    CREATE INDEX records_pending_expires ON records (pending_expires_ns);
    CREATE TABLE users (
        username     TEXT PRIMARY KEY NOT NULL,
        destinations TEXT NOT NULL,            -- JSON array of destinations
        mobile_group INTEGER NOT NULL
    );
    CREATE TABLE sites (
        site_id  TEXT PRIMARY KEY NOT NULL,
        settings TEXT NOT NULL                 -- JSON ServerSettings
    );
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    );
    ",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`] in one immediate transaction, so that
/// processes opening the same new file at once migrate it once. Refuses a newer schema and
/// a database of another application.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), SqliteError> {
    let sql = |e| SqliteError::from_sqlite(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(SqliteError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let app: i32 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(sql)?;
    if app != 0 && app != APPLICATION_ID {
        return Err(SqliteError::ForeignDatabase {
            path: path.to_path_buf(),
            why: format!("application id {app:#x}"),
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version == 0 {
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(sql)?;
        if objects > 0 {
            return Err(SqliteError::ForeignDatabase {
                path: path.to_path_buf(),
                why: format!("{objects} tables or indexes and no swivel-provision schema"),
            });
        }
    }
    for step in &MIGRATIONS[version as usize..] {
        tx.execute_batch(step).map_err(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sql)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(sql)?;
    tx.commit().map_err(sql)
}
