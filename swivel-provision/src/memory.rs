//! In-memory parts: a [`CodeStore`], a user directory, a site directory, settings and an
//! event log held in the process. Good for tests and a single process; the state is lost on exit and is not shared
//! between server instances (use the SQLite or PostgreSQL store for that).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::code::IdHash;
use crate::error::StoreError;
use crate::event_log::{EventQuery, EventStore, StoredEvent};
use crate::record::ProvisionRecord;
use crate::settings::SettingsStore;
use crate::site::{ServerSettings, SiteAdmin, SiteDirectory};
use crate::store::{CodeStore, RecordKey, UpdateStep, Updated, check_owner};
use crate::types::{SiteId, Username};
use crate::users::{UserAdmin, UserEntry, UserQuery, UserRepository};

mod counters;
mod jobs;
pub use counters::MemoryCounters;
pub use jobs::MemoryJobStore;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every change is one insert).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Records {
    by_user: HashMap<Username, ProvisionRecord>,
    by_device: HashMap<IdHash, Username>,
}

impl Records {
    /// Replaces the user's record (the caller checked its version). Returns `false`,
    /// changing nothing, when another user's record holds the new device Id hash.
    fn write(&mut self, record: ProvisionRecord) -> bool {
        let new_device = record.device_id_hash();
        if let Some(h) = new_device {
            if self
                .by_device
                .get(&h)
                .is_some_and(|owner| *owner != record.username)
            {
                return false;
            }
        }
        let old_device = self
            .by_user
            .get(&record.username)
            .and_then(ProvisionRecord::device_id_hash);
        if let Some(h) = old_device {
            self.by_device.remove(&h);
        }
        if let Some(h) = new_device {
            self.by_device.insert(h, record.username.clone());
        }
        self.by_user.insert(record.username.clone(), record);
        true
    }
}

/// A [`CodeStore`] in memory.
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MemoryStore({} records)",
            lock(&self.records).by_user.len()
        )
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        lock(&self.records).by_user.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn load(&self, username: &Username) -> Result<Option<ProvisionRecord>, StoreError> {
        Ok(lock(&self.records).by_user.get(username).cloned())
    }

    async fn compare_and_swap(
        &self,
        expected_version: Option<u64>,
        record: &ProvisionRecord,
    ) -> Result<bool, StoreError> {
        let mut r = lock(&self.records);
        let current_version = r.by_user.get(&record.username).map(|c| c.version);
        if current_version != expected_version {
            return Ok(false);
        }
        Ok(r.write(record.clone()))
    }

    async fn update(&self, key: RecordKey, mut step: UpdateStep) -> Result<Updated, StoreError> {
        // The lock is held from the read to the write: one atomic transition.
        let mut r = lock(&self.records);
        let current = match &key {
            RecordKey::User(username) => r.by_user.get(username),
            RecordKey::Device(id_hash) => r.by_device.get(id_hash).and_then(|u| r.by_user.get(u)),
        };
        let Some(next) = step(current) else {
            return Ok(Updated::Kept);
        };
        check_owner(&key, current, &next)?;
        if current.is_none() && r.by_user.contains_key(&next.username) {
            // A device key found nothing, but the step's user has a record.
            return Ok(Updated::Conflict);
        }
        Ok(if r.write(next) {
            Updated::Written
        } else {
            Updated::Conflict
        })
    }

    async fn delete(&self, username: &Username, expected_version: u64) -> Result<bool, StoreError> {
        let mut r = lock(&self.records);
        match r.by_user.get(username) {
            Some(c) if c.version == expected_version => {
                if let Some(h) = c.device_id_hash() {
                    r.by_device.remove(&h);
                }
                r.by_user.remove(username);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn find_by_id_hash(
        &self,
        id_hash: &IdHash,
    ) -> Result<Option<ProvisionRecord>, StoreError> {
        let r = lock(&self.records);
        Ok(r.by_device
            .get(id_hash)
            .and_then(|u| r.by_user.get(u))
            .cloned())
    }

    async fn list_expired(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Username>, StoreError> {
        let r = lock(&self.records);
        let mut expired: Vec<(OffsetDateTime, Username)> = r
            .by_user
            .values()
            .filter_map(|rec| {
                rec.purge_due_at()
                    .filter(|t| *t <= now)
                    .map(|t| (t, rec.username.clone()))
            })
            .collect();
        expired.sort();
        Ok(expired.into_iter().take(limit).map(|(_, u)| u).collect())
    }
}

/// A user directory in memory.
#[derive(Debug, Default)]
pub struct MemoryUsers {
    users: Mutex<BTreeMap<Username, UserEntry>>,
}

impl MemoryUsers {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a user (synchronous convenience for tests and setup).
    pub fn insert(&self, user: UserEntry) {
        lock(&self.users).insert(user.username.clone(), user);
    }
}

#[async_trait]
impl UserRepository for MemoryUsers {
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError> {
        Ok(lock(&self.users).get(username).cloned())
    }
}

#[async_trait]
impl UserAdmin for MemoryUsers {
    async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError> {
        self.insert(user.clone());
        Ok(())
    }

    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError> {
        Ok(lock(&self.users).remove(username).is_some())
    }

    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError> {
        Ok(lock(&self.users).values().cloned().collect())
    }

    async fn list_users_page(&self, query: &UserQuery) -> Result<Vec<UserEntry>, StoreError> {
        query.validate()?;
        let users = lock(&self.users);
        let from = match &query.after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        let end = query.prefix_end();
        Ok(users
            .range::<Username, _>((from, Bound::Unbounded))
            .map(|(_, u)| u)
            .take_while(|u| end.as_deref().is_none_or(|e| u.username.as_str() < e))
            .filter(|u| query.matches(u))
            .take(query.limit)
            .cloned()
            .collect())
    }
}

/// A site directory in memory.
#[derive(Debug, Default)]
pub struct MemorySites {
    sites: Mutex<BTreeMap<SiteId, ServerSettings>>,
}

impl MemorySites {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a site (synchronous convenience).
    pub fn insert(&self, site: SiteId, settings: ServerSettings) {
        lock(&self.sites).insert(site, settings);
    }
}

#[async_trait]
impl SiteDirectory for MemorySites {
    async fn find_site(&self, site: &SiteId) -> Result<Option<ServerSettings>, StoreError> {
        Ok(lock(&self.sites).get(site).cloned())
    }
}

#[async_trait]
impl SiteAdmin for MemorySites {
    async fn put_site(&self, site: &SiteId, settings: &ServerSettings) -> Result<(), StoreError> {
        self.insert(site.clone(), settings.clone());
        Ok(())
    }

    async fn remove_site(&self, site: &SiteId) -> Result<bool, StoreError> {
        Ok(lock(&self.sites).remove(site).is_some())
    }

    async fn list_sites(&self) -> Result<Vec<(SiteId, ServerSettings)>, StoreError> {
        Ok(lock(&self.sites)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Settings in memory.
#[derive(Debug, Default)]
pub struct MemorySettings {
    values: Mutex<BTreeMap<String, String>>,
}

impl MemorySettings {
    /// No settings.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SettingsStore for MemorySettings {
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.values).get(key).cloned())
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        lock(&self.values).insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.values).remove(key).is_some())
    }
}

/// An event log in memory.
#[derive(Debug, Default)]
pub struct MemoryEvents {
    log: Mutex<EventRows>,
}

#[derive(Debug, Default)]
struct EventRows {
    /// The last id assigned.
    last_id: u64,
    /// Oldest first (increasing ids).
    events: Vec<StoredEvent>,
}

impl MemoryEvents {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventStore for MemoryEvents {
    async fn append(&self, events: &[StoredEvent]) -> Result<(), StoreError> {
        let mut log = lock(&self.log);
        for event in events {
            log.last_id += 1;
            let id = log.last_id;
            log.events.push(StoredEvent {
                id,
                ..event.clone()
            });
        }
        Ok(())
    }

    async fn list(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        query.validate()?;
        Ok(lock(&self.log)
            .events
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn purge_before(&self, t: OffsetDateTime) -> Result<u64, StoreError> {
        let mut log = lock(&self.log);
        let before = log.events.len();
        log.events.retain(|e| e.at >= t);
        Ok((before - log.events.len()) as u64)
    }
}
