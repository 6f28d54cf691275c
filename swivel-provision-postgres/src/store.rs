//! [`PostgresStore`]: the pool, connecting, and migrating.

use std::fmt;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::PostgresError;
use crate::migrations;
use crate::options::{PostgresOptions, check_schema_name};

/// Provisioning records, users, sites, settings and the event log in one PostgreSQL
/// database, shared by every server instance that connects to it.
///
/// Implements [`CodeStore`](swivel_provision::CodeStore),
/// [`UserRepository`](swivel_provision::UserRepository) +
/// [`UserAdmin`](swivel_provision::UserAdmin),
/// [`SiteDirectory`](swivel_provision::SiteDirectory) +
/// [`SiteAdmin`](swivel_provision::SiteAdmin),
/// [`SettingsStore`](swivel_provision::SettingsStore),
/// [`EventStore`](swivel_provision::EventStore) and
/// [`JobStore`](swivel_provision::JobStore) (the durable delivery queue). Cheap to clone:
/// clones share one pool. Every call is one statement, or one transaction
/// ([`update`](swivel_provision::CodeStore::update)), on a pooled connection, so a call
/// either happened whole or not at all.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    schema: Option<Arc<str>>,
}

impl fmt::Debug for PostgresStore {
    // The URL (and its password) is never kept here; only the schema and pool counters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("pool_size", &status.size)
            .field("pool_available", &status.available)
            .field("pool_max", &status.max_size)
            .finish()
    }
}

impl PostgresStore {
    /// Connects with [`PostgresOptions::default`]: builds the pool, opens one connection,
    /// and brings the schema up to date.
    ///
    /// `url` is a libpq-style URL or key/value string
    /// (`postgres://user:password@127.0.0.1:5432/db`). It is never shown in an error or a
    /// `Debug` output. The connection is not encrypted (`NoTls`): use a loopback or
    /// otherwise private network, or a Unix socket (`host=/var/run/postgresql`).
    ///
    /// # Errors
    /// [`PostgresError::InvalidUrl`], [`PostgresError::Connect`] (server unreachable or
    /// credentials rejected), [`PostgresError::SchemaTooNew`] (the database was migrated by a
    /// newer build), or a failed migration.
    pub async fn connect(url: &str) -> Result<Self, PostgresError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// Connects with the given pool size, connect timeout and schema.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`], plus [`PostgresError::InvalidSchemaName`] and
    /// [`PostgresError::PoolSetup`] (a pool size of 0).
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self, PostgresError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| PostgresError::InvalidUrl(Box::new(e)))?;
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
            let search_path = format!("-c search_path={schema}");
            let startup = match config.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{o} {search_path}"),
                _ => search_path,
            };
            config.options(&startup);
        }
        if config.get_application_name().is_none() {
            config.application_name("swivel-provision");
        }
        config.connect_timeout(options.connect_timeout);
        if options.pool_size == 0 {
            return Err(PostgresError::PoolSetup(
                "pool_size must be at least 1".into(),
            ));
        }

        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // Every checkout runs an empty statement first, so a connection the server
                // dropped is replaced instead of failing the caller's statement.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let timeout = Some(options.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(timeout)
            .create_timeout(timeout)
            .recycle_timeout(timeout)
            .build()
            .map_err(|e| PostgresError::PoolSetup(e.to_string().into()))?;

        let store = Self {
            pool,
            schema: options.schema.map(Arc::from),
        };
        let mut client = store.client().await?;
        migrations::migrate(&mut client, store.schema()).await?;
        Ok(store)
    }

    /// The PostgreSQL schema holding the tables, if one was chosen.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// The schema version recorded in the database (see [`SCHEMA_VERSION`](crate::SCHEMA_VERSION)).
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn schema_version(&self) -> Result<i64, PostgresError> {
        let client = self.client().await?;
        client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(PostgresError::query)
    }

    /// Closes the pool: later calls fail with [`PostgresError::PoolClosed`].
    pub fn close(&self) {
        self.pool.close();
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, PostgresError> {
        self.pool.get().await.map_err(PostgresError::pool)
    }
}

#[cfg(test)]
mod tests {
    use swivel_provision::{CodeStore, SettingsStore, SiteAdmin, UserAdmin};

    use super::*;

    /// What a host such as `provision-server` needs to build every part from one store.
    fn host_can_use<S>()
    where
        S: CodeStore + UserAdmin + SiteAdmin + SettingsStore + Clone + Send + Sync + 'static,
    {
    }

    #[test]
    fn one_store_is_every_part() {
        host_can_use::<PostgresStore>();
    }

    #[tokio::test]
    async fn invalid_url_is_refused_before_any_connection() {
        let err = PostgresStore::connect("postgres://u:pw@127.0.0.1:5432/db?connect_timeout=x")
            .await
            .unwrap_err();
        assert!(matches!(err, PostgresError::InvalidUrl(_)), "{err:?}");
    }
}
