//! [`PostgresOptions`]: pool size, connect timeout and the PostgreSQL schema to use.

use std::time::Duration;

use crate::error::PostgresError;

/// How [`PostgresStore::connect_with`](crate::PostgresStore::connect_with) sets up its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections the pool opens (default 16). Each server instance has its own pool:
    /// keep `instances × pool_size` under the server's `max_connections`.
    pub pool_size: usize,
    /// How long to wait for a new connection, and for a free pooled one (default 5 s).
    /// Past it the call fails with a transient error.
    pub connect_timeout: Duration,
    /// PostgreSQL schema holding the tables (created if missing), or `None` for the
    /// connection's default (`public`). Every instance of a cluster must use the same one;
    /// tests use a fresh one each for isolation. Lower-case letters, digits and `_`, not
    /// starting with a digit, at most 63 bytes.
    pub schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// Checks a schema name: a plain identifier that needs no quoting.
pub(crate) fn check_schema_name(name: &str) -> Result<(), PostgresError> {
    if name.is_empty() || name.len() > 63 {
        return Err(PostgresError::InvalidSchemaName("must be 1 to 63 bytes"));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(PostgresError::InvalidSchemaName(
            "must not start with a digit",
        ));
    }
    if name.starts_with("pg_") {
        return Err(PostgresError::InvalidSchemaName("must not start with pg_"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(PostgresError::InvalidSchemaName(
            "may hold only lower-case letters, digits and '_'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["swivel", "t_0123abc", "_x"] {
            assert!(check_schema_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Swivel",
            "a-b",
            "a;drop",
            "pg_x",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults() {
        let o = PostgresOptions::default();
        assert_eq!(o.pool_size, 16);
        assert_eq!(o.connect_timeout, Duration::from_secs(5));
        assert_eq!(o.schema, None);
    }
}
