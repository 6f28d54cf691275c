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
    // 1 → 2: the shared event log (swivel_provision::EventStore).
    "
    CREATE TABLE events (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused, even after a purge
        at_ns    INTEGER NOT NULL,                    -- unix nanoseconds
        instance TEXT NOT NULL,
        kind     TEXT NOT NULL,
        username TEXT,                                -- NULL: the event names no user
        failure  INTEGER NOT NULL,
        line     TEXT NOT NULL                        -- ProvisionEvent::log_line (escaped)
    );
    CREATE INDEX events_username_id ON events (username, id);
    CREATE INDEX events_at ON events (at_ns);
    ",
    // 2 → 3: the durable delivery queue (swivel_provision::JobStore).
    "
    CREATE TABLE delivery_jobs (
        id          TEXT PRIMARY KEY NOT NULL,   -- JobId: 32 hex digits
        username    TEXT NOT NULL,
        channel     TEXT NOT NULL,
        kind        TEXT NOT NULL,               -- code (one per user) or notice
        created_ns  INTEGER NOT NULL,            -- unix nanoseconds
        due_ns      INTEGER NOT NULL,            -- next attempt, or the end of the lease
        expires_ns  INTEGER NOT NULL,            -- the code's expiry
        attempts    INTEGER NOT NULL,
        lease_owner TEXT,                        -- NULL: nobody holds it
        sealed      BLOB NOT NULL                -- nonce + XChaCha20-Poly1305 ciphertext
    );
    CREATE INDEX delivery_jobs_username ON delivery_jobs (username);
    CREATE INDEX delivery_jobs_due ON delivery_jobs (due_ns);
    ",
    // 3 → 4: hit counters per key and fixed window (swivel_provision::CounterStore).
    "
    CREATE TABLE counters (
        key      TEXT NOT NULL,
        start_ns INTEGER NOT NULL,               -- the window's start, unix nanoseconds
        end_ns   INTEGER NOT NULL,               -- its end
        hits     INTEGER NOT NULL,
        PRIMARY KEY (key, start_ns)
    ) WITHOUT ROWID;
    CREATE INDEX counters_end ON counters (end_ns);
    ",
    // 4 → 5: the destination addresses of every user, indexed, for the users page's search
    // by destination (swivel_provision::UserAdmin::list_users_page). Kept by triggers on
    // the users table, so that every write of a user (the store's, or plain SQL) keeps it.
    "
    CREATE TABLE user_destinations (
        address  TEXT NOT NULL,
        username TEXT NOT NULL,
        PRIMARY KEY (address, username)
    ) WITHOUT ROWID;
    CREATE INDEX user_destinations_username ON user_destinations (username);
    INSERT OR IGNORE INTO user_destinations (address, username)
        SELECT json_extract(d.value, '$.address'), u.username
        FROM users u, json_each(u.destinations) d
        WHERE json_extract(d.value, '$.address') IS NOT NULL;
    CREATE TRIGGER users_destinations_insert AFTER INSERT ON users BEGIN
        INSERT OR IGNORE INTO user_destinations (address, username)
            SELECT json_extract(value, '$.address'), NEW.username
            FROM json_each(NEW.destinations)
            WHERE json_extract(value, '$.address') IS NOT NULL;
    END;
    CREATE TRIGGER users_destinations_update AFTER UPDATE ON users BEGIN
        DELETE FROM user_destinations WHERE username = OLD.username;
        INSERT OR IGNORE INTO user_destinations (address, username)
            SELECT json_extract(value, '$.address'), NEW.username
            FROM json_each(NEW.destinations)
            WHERE json_extract(value, '$.address') IS NOT NULL;
    END;
    CREATE TRIGGER users_destinations_delete AFTER DELETE ON users BEGIN
        DELETE FROM user_destinations WHERE username = OLD.username;
    END;
    ",
    // 5 → 6: the Log page's filter by event kind (swivel_provision::EventQuery::kind).
    "
    CREATE INDEX events_kind_id ON events (kind, id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_3_database_gains_the_destination_index_of_its_users() {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().expect("open");
        for step in &MIGRATIONS[..3] {
            conn.execute_batch(step).expect("schema 3");
        }
        let email = |a: &str| format!(r#"{{"channel":"email","address":"{a}"}}"#);
        conn.execute(
            "INSERT INTO users (username, destinations, mobile_group) VALUES
             ('a', ?1, 0), ('b', ?2, 1), ('c', '[]', 0)",
            [
                format!(
                    r#"[{},{{"channel":"sms","address":"+15555550100"}}]"#,
                    email("x@example.com")
                ),
                format!("[{}]", email("x@example.com")),
            ],
        )
        .expect("users");
        conn.pragma_update(None, "user_version", 3)
            .expect("version");
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("application id");
        migrate(&mut conn, path).expect("migrate");
        let rows = |conn: &Connection| -> Vec<(String, String)> {
            conn.prepare("SELECT address, username FROM user_destinations ORDER BY 1, 2")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()
                })
                .expect("read")
        };
        let pair = |a: &str, u: &str| (a.to_owned(), u.to_owned());
        assert_eq!(
            rows(&conn),
            [
                pair("+15555550100", "a"),
                pair("x@example.com", "a"),
                pair("x@example.com", "b")
            ]
        );
        // The triggers keep it from then on.
        conn.execute(
            "UPDATE users SET destinations = ?1 WHERE username = 'a'",
            [format!("[{}]", email("y@example.com"))],
        )
        .expect("update");
        conn.execute("DELETE FROM users WHERE username = 'b'", [])
            .expect("delete");
        conn.execute(
            "INSERT INTO users (username, destinations, mobile_group) VALUES ('d', ?1, 0)",
            [format!("[{}]", email("x@example.com"))],
        )
        .expect("insert");
        assert_eq!(
            rows(&conn),
            [pair("x@example.com", "d"), pair("y@example.com", "a")]
        );
    }

    #[test]
    fn a_version_1_database_gains_the_event_log_and_keeps_its_rows() {
        let path = Path::new(":memory:");
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("first schema");
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('policy', '{}')",
            [],
        )
        .expect("a row");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("application id");
        migrate(&mut conn, path).expect("migrate");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(SCHEMA_VERSION, 6);
        let kept: String = conn
            .query_row("SELECT value FROM settings WHERE key = 'policy'", [], |r| {
                r.get(0)
            })
            .expect("the row is kept");
        assert_eq!(kept, "{}");
        let events: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .expect("the events table exists");
        assert_eq!(events, 0);
        let counters: i64 = conn
            .query_row("SELECT count(*) FROM counters", [], |r| r.get(0))
            .expect("the counters table exists");
        assert_eq!(counters, 0);
    }
}
