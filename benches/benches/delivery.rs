//! What a provision request costs with each delivery, on one SQLite file (NORMAL and FULL):
//! direct (the transport answers inside the request), the in-process queue, and the
//! durable queue (the sealed message written in the request's transaction, then claimed
//! and deleted by the worker). One iteration is 64 concurrent requests for 64 users, then
//! a wait until every message was delivered, so each figure includes the delivery's own
//! store work. Variants are measured one after the other in one run.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use swivel_provision::{
    Channel, Delivery, DurableConfig, Origin, Provisioner, QueueConfig, Username,
};
use swivel_provision_benches::{Fixture, LastCodeTransport, bench_data_dir, bench_key};
use swivel_provision_sqlite::Durability;

/// Requests per iteration, all at once.
const BATCH: usize = 64;
/// Users in the database (cycled through, `BATCH` at a time).
const USERS: usize = 4096;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn provisioner(f: &Fixture, delivery: Delivery, transport: Arc<LastCodeTransport>) -> Provisioner {
    let store = Arc::new(f.sqlite.clone().expect("a SQLite fixture"));
    Provisioner::builder()
        .job_store(store)
        .transport(Channel::Email, transport)
        .server_key(bench_key())
        .delivery(delivery)
        .build()
        .expect("a provisioner")
}

fn bench(c: &mut Criterion, durability: Durability, label: &str, file: &str) {
    let rt = runtime();
    let f = rt
        .block_on(Fixture::sqlite(
            &bench_data_dir().join(file),
            durability,
            USERS,
            USERS,
        ))
        .expect("sqlite fixture");
    let mut durable = DurableConfig::new("bench");
    durable.poll_interval = Duration::from_millis(50);
    durable.concurrency = BATCH;
    let variants = [
        ("direct", Delivery::Direct),
        (
            "queued",
            Delivery::Queued(QueueConfig {
                concurrency: BATCH,
                ..QueueConfig::default()
            }),
        ),
        ("durable", Delivery::Durable(durable)),
    ];
    let mut g = c.benchmark_group(format!("request_delivery_{label}"));
    g.throughput(Throughput::Elements(BATCH as u64))
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat);
    for (name, delivery) in variants {
        let transport = Arc::new(LastCodeTransport::new());
        let p = rt.block_on(async { provisioner(&f, delivery, transport.clone()) });
        let next = Cell::new(0usize);
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let start = next.get();
                next.set((start + BATCH) % f.users.len());
                let users: Vec<Username> = (0..BATCH)
                    .map(|i| f.users[(start + i) % f.users.len()].clone())
                    .collect();
                let p = p.clone();
                async move {
                    let tasks: Vec<_> = users
                        .into_iter()
                        .map(|u| {
                            let p = p.clone();
                            tokio::spawn(async move {
                                p.request_provision(&u, Origin::Admin)
                                    .await
                                    .expect("request")
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                    p.deliveries_idle().await;
                }
            })
        });
        rt.block_on(async { p.stop_deliveries().await.expect("stop") });
        assert!(transport.pending() > 0, "{name}: messages were delivered");
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(
        &mut c,
        Durability::Normal,
        "normal",
        "delivery-normal.sqlite",
    );
    bench(&mut c, Durability::Full, "full", "delivery-full.sqlite");
    c.final_summary();
}
