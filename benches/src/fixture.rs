//! [`Fixture`]: a provisioner over the memory or the SQLite store, with users ready to
//! provision and a [`LastCodeTransport`] for their codes.

use std::path::Path;
use std::sync::Arc;

use swivel_provision::{
    Channel, CodeStore, Delivery, Destination, MemoryStore, MemoryUsers, Provisioner, ServerKey,
    UserEntry, UserRecordStore, UserRepository, Username,
};
use swivel_provision_sqlite::{Durability, SqliteOptions, SqliteStore};

use crate::error::BenchError;
use crate::prep::{prepare_users_db, prepared_username};
use crate::transport::LastCodeTransport;

/// The fixed server key of the benches (a bench measures speed, not secrecy).
pub fn bench_key() -> ServerKey {
    ServerKey::from_bytes([0x5a; 32])
}

/// A username of the benches: `bench-<i>`.
pub fn username(i: usize) -> Username {
    Username::parse(&format!("bench-{i}")).expect("a valid username")
}

/// A user in the mobile group with one email destination (`<name>@example.invalid`).
pub fn email_user(name: &Username) -> UserEntry {
    let destination =
        Destination::email(&format!("{name}@example.invalid")).expect("a valid address");
    UserEntry::new(name.clone())
        .with_destination(destination)
        .with_mobile_group(true)
}

/// A provisioner with direct delivery to a [`LastCodeTransport`], and the users the
/// benches cycle through.
#[derive(Debug)]
pub struct Fixture {
    /// The provisioner (default policy, direct delivery, [`bench_key`]).
    pub provisioner: Provisioner,
    /// Where codes go.
    pub transport: Arc<LastCodeTransport>,
    /// Users that exist in the directory, in the order benches should use them.
    pub users: Vec<Username>,
    /// The SQLite store, when the fixture uses one.
    pub sqlite: Option<SqliteStore>,
}

/// Where a fixture's provisioner keeps records and reads users.
enum Storage {
    /// A code store and a separate directory.
    Separate(Arc<dyn CodeStore>, Arc<dyn UserRepository>),
    /// One store that is also the directory (one store call per transition).
    Joint(Arc<dyn UserRecordStore>),
}

fn provisioner(
    storage: Storage,
    transport: Arc<LastCodeTransport>,
) -> Result<Provisioner, BenchError> {
    let builder = match storage {
        Storage::Separate(store, users) => Provisioner::builder().store(store).users(users),
        Storage::Joint(store) => Provisioner::builder().store_with_users(store),
    };
    Ok(builder
        .transport(Channel::Email, transport)
        .server_key(bench_key())
        .delivery(Delivery::Direct)
        .build()?)
}

impl Fixture {
    /// A provisioner over [`MemoryStore`] and [`MemoryUsers`] with `users` users
    /// (`bench-0` ...).
    pub fn memory(users: usize) -> Result<Fixture, BenchError> {
        let directory = Arc::new(MemoryUsers::new());
        let names: Vec<Username> = (0..users).map(username).collect();
        for name in &names {
            directory.insert(email_user(name));
        }
        let transport = Arc::new(LastCodeTransport::new());
        Ok(Fixture {
            provisioner: provisioner(
                Storage::Separate(Arc::new(MemoryStore::new()), directory),
                transport.clone(),
            )?,
            transport,
            users: names,
            sqlite: None,
        })
    }

    /// A provisioner over a SQLite file with `total` users already in it (each with a
    /// provisioned device; prepared in bulk by [`prepare_users_db`], reused when the file
    /// already holds them), of which `sample` are spread over the whole range for the
    /// bench to cycle through in a pseudo-random order.
    pub async fn sqlite(
        path: &Path,
        durability: Durability,
        total: usize,
        sample: usize,
    ) -> Result<Fixture, BenchError> {
        prepare_users_db(path, total).await?;
        let store = SqliteStore::open_with(
            path,
            SqliteOptions {
                durability,
                ..SqliteOptions::default()
            },
        )
        .await?;
        let transport = Arc::new(LastCodeTransport::new());
        Ok(Fixture {
            provisioner: provisioner(Storage::Joint(Arc::new(store.clone())), transport.clone())?,
            transport,
            users: spread(total, sample),
            sqlite: Some(store),
        })
    }

    /// Splits the users into `parts` disjoint, equal slices (one per concurrent task).
    pub fn partition(&self, parts: usize) -> Vec<Vec<Username>> {
        let parts = parts.max(1);
        let mut out = vec![Vec::new(); parts];
        for (i, u) in self.users.iter().enumerate() {
            out[i % parts].push(u.clone());
        }
        out
    }
}

/// `sample` distinct users of the `total` prepared ones, in a pseudo-random order (a
/// multiplicative walk modulo `total` with a stride coprime to it).
fn spread(total: usize, sample: usize) -> Vec<Username> {
    let total = total.max(1);
    let sample = sample.clamp(1, total);
    let mut stride = (total as f64 * 0.618_033_988_7) as usize | 1;
    while gcd(stride, total) != 1 {
        stride += 2;
    }
    (0..sample)
        .map(|j| prepared_username((j * stride + 7) % total))
        .collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_distinct_and_in_range() {
        for (total, sample) in [(1000, 1000), (1000, 10), (1, 5), (100_000, 4096)] {
            let users = spread(total, sample);
            let set: std::collections::HashSet<_> = users.iter().collect();
            assert_eq!(set.len(), users.len(), "{total}/{sample}");
            assert_eq!(users.len(), sample.min(total));
        }
    }

    #[test]
    fn partition_is_disjoint_and_complete() {
        let f = Fixture::memory(10).unwrap();
        let parts = f.partition(3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 10);
        let all: std::collections::HashSet<_> = parts.iter().flatten().collect();
        assert_eq!(all.len(), 10);
    }
}
