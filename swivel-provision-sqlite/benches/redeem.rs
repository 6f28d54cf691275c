//! The full provisioning cycle on a temporary SQLite file, with FULL and with NORMAL
//! durability: request a code → deliver it (recording transport, direct) → redeem it →
//! download the security strings.
//!
//! `cargo bench -p swivel-provision-sqlite -- --warm-up-time 1 --measurement-time 5`

#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use swivel_provision::testing::RecordingTransport;
use swivel_provision::{
    Channel, Delivery, Destination, DeviceInfo, Origin, Provisioner, ServerKey, UserAdmin,
    UserEntry, Username,
};
use swivel_provision_sqlite::{Durability, SqliteOptions, SqliteStore};

fn cycle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("redeem_cycle");
    group.throughput(Throughput::Elements(1));
    for (name, durability) in [("full", Durability::Full), ("normal", Durability::Normal)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SqliteOptions {
            durability,
            ..SqliteOptions::default()
        };
        let store = rt
            .block_on(SqliteStore::open_with(dir.path().join("bench.db"), options))
            .expect("open");
        let user = Username::parse("bench-user").expect("valid");
        rt.block_on(
            store.put_user(
                &UserEntry::new(user.clone())
                    .with_destination(Destination::email("bench@example.com").expect("valid"))
                    .with_mobile_group(true),
            ),
        )
        .expect("user");
        let outbox = Arc::new(RecordingTransport::new());
        let p = Provisioner::builder()
            .store(Arc::new(store.clone()))
            .users(Arc::new(store.clone()))
            .transport(Channel::Email, outbox.clone())
            .server_key(ServerKey::generate())
            .delivery(Delivery::Direct)
            .build()
            .expect("provisioner");
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                p.request_provision(&user, Origin::Admin)
                    .await
                    .expect("request");
                let code = outbox.last_code_for(&user).expect("code");
                let id = p
                    .redeem(&user, &code, DeviceInfo::default())
                    .await
                    .expect("redeem");
                p.download_strings(&id).await.expect("strings")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, cycle);
criterion_main!(benches);
