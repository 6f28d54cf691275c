//! Where the server keeps its data: one object that is the code store, the user and site
//! directories, the settings store, the shared event log and the throttles' counters. SQLite (one file) by default; PostgreSQL for several
//! instances sharing one database; memory for tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use swivel_provision::{
    CodeStore, CounterStore, EventStore, JobStore, MemoryCounters, MemoryEvents, MemorySettings,
    MemorySites, MemoryStore, MemoryUsers, SettingsStore, SiteAdmin, SiteDirectory, UserAdmin,
    UserRecordStore, UserRepository,
};

use swivel_provision_sqlite::{Durability, SqliteOptions};

use crate::error::AppError;

/// The storage parts, as the provisioner and the console use them.
#[derive(Clone)]
pub struct Backend {
    /// Provisioning records.
    pub codes: Arc<dyn CodeStore>,
    /// The user directory, as the core reads it.
    pub users: Arc<dyn UserRepository>,
    /// The code store when it is also the user directory (SQLite, PostgreSQL): each
    /// transition then reads the user and updates the record in one store call.
    pub joint: Option<Arc<dyn UserRecordStore>>,
    /// The user directory, as the console and the command line change it.
    pub user_admin: Arc<dyn UserAdmin>,
    /// The site directory, as the core reads it (SSD).
    pub sites: Arc<dyn SiteDirectory>,
    /// The site directory, as the command line changes it.
    pub site_admin: Arc<dyn SiteAdmin>,
    /// Named values: the policy, credentials hashes, encrypted PINs.
    pub settings: Arc<dyn SettingsStore>,
    /// The shared event log (the console's Log page, `GET /api/v1/events`).
    pub events: Arc<dyn EventStore>,
    /// Hit counters: the throttles count here, so that their limits hold across every
    /// instance sharing the store ([`crate::throttle::shared`]).
    pub counters: Arc<dyn CounterStore>,
    /// The durable delivery queue, where the store keeps one (SQLite, PostgreSQL): queued
    /// messages survive a restart and any instance delivers them. `None`: the in-process
    /// queue (memory).
    pub jobs: Option<Arc<dyn JobStore>>,
    /// What it is, for the start-up line (`sqlite:PATH`, `postgres`, `memory`).
    pub description: String,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Backend({})", self.description)
    }
}

impl Backend {
    /// All parts from one store that implements every trait.
    pub fn from_store<S>(store: S, description: impl Into<String>) -> Self
    where
        S: UserRecordStore
            + UserAdmin
            + SiteAdmin
            + SettingsStore
            + EventStore
            + CounterStore
            + Clone,
    {
        Self {
            codes: Arc::new(store.clone()),
            users: Arc::new(store.clone()),
            joint: Some(Arc::new(store.clone())),
            user_admin: Arc::new(store.clone()),
            sites: Arc::new(store.clone()),
            site_admin: Arc::new(store.clone()),
            settings: Arc::new(store.clone()),
            events: Arc::new(store.clone()),
            counters: Arc::new(store),
            jobs: None,
            description: description.into(),
        }
    }

    /// The store also keeps the durable delivery queue.
    pub fn with_jobs(mut self, jobs: Arc<dyn JobStore>) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Everything in memory (tests; lost on exit).
    pub fn memory() -> Self {
        let users = Arc::new(MemoryUsers::new());
        let sites = Arc::new(MemorySites::new());
        Self {
            codes: Arc::new(MemoryStore::new()),
            users: users.clone(),
            joint: None,
            user_admin: users,
            sites: sites.clone(),
            site_admin: sites,
            settings: Arc::new(MemorySettings::new()),
            events: Arc::new(MemoryEvents::new()),
            counters: Arc::new(MemoryCounters::new()),
            jobs: None,
            description: "memory".into(),
        }
    }

    /// The SQLite file at `path` (created if missing), durable (`synchronous=FULL`).
    pub async fn sqlite(path: &Path) -> Result<Self, AppError> {
        Self::sqlite_with(path, Durability::Full).await
    }

    /// The SQLite file at `path` (created if missing, mode 0600; an existing file and its
    /// `-wal`/`-shm` files are tightened to 0600) with the given durability.
    pub async fn sqlite_with(path: &Path, durability: Durability) -> Result<Self, AppError> {
        let on_disk = path != Path::new(":memory:");
        if on_disk {
            crate::files::private_file(path)?;
        }
        let options = SqliteOptions {
            durability,
            ..SqliteOptions::default()
        };
        let store = swivel_provision_sqlite::SqliteStore::open_with(path, options)
            .await
            .map_err(|e| {
                AppError::Setup(format!(
                    "cannot open the SQLite database {}: {}",
                    path.display(),
                    crate::error::error_chain(&e)
                ))
            })?;
        for companion in crate::files::sqlite_companions(path) {
            crate::files::tighten(&companion, crate::files::FILE_MODE)?;
        }
        Ok(
            Self::from_store(store.clone(), format!("sqlite:{}", path.display()))
                .with_jobs(Arc::new(store)),
        )
    }

    /// The SQLite file `database` names ([`Backend::open`]'s rules), or `None` for
    /// PostgreSQL and memory.
    pub fn sqlite_path(database: &str) -> Option<PathBuf> {
        if database.starts_with("postgres://")
            || database.starts_with("postgresql://")
            || database == "memory"
        {
            return None;
        }
        let path = database.strip_prefix("sqlite:").unwrap_or(database);
        Some(PathBuf::from(path))
    }

    /// A PostgreSQL database (`postgres://...`), for several instances sharing one
    /// database, with the pool `options` describe.
    pub async fn postgres(
        url: &str,
        options: swivel_provision_postgres::PostgresOptions,
    ) -> Result<Self, AppError> {
        let store = swivel_provision_postgres::PostgresStore::connect_with(url, options)
            .await
            .map_err(|e| {
                AppError::Setup(format!(
                    "cannot connect to PostgreSQL: {}",
                    crate::error::error_chain(&e)
                ))
            })?;
        Ok(Self::from_store(store.clone(), "postgres").with_jobs(Arc::new(store)))
    }

    /// Opens `database`: a `postgres://` or `postgresql://` URL (with the pool `postgres`
    /// describes), `memory`, or a SQLite path (opened with `durability`).
    pub async fn open(
        database: &str,
        durability: Durability,
        postgres: &crate::config::PostgresConfig,
    ) -> Result<Self, AppError> {
        match Self::sqlite_path(database) {
            Some(path) => Self::sqlite_with(&path, durability).await,
            None if database == "memory" => Ok(Self::memory()),
            None => Self::postgres(database, postgres.options()).await,
        }
    }
}
