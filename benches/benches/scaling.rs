//! How cost grows: the full cycle (SQLite, NORMAL durability) with 1k, 100k and 1M users
//! already in the database. The databases are prepared once under
//! `target/bench-data/users-<n>.sqlite` (bulk SQL, one transaction) and reused.
//!
//! `SWIVEL_BENCH_MAX_USERS` caps the sizes (for example `100000` to skip 1M). Outside
//! `cargo bench` (e.g. `cargo test --benches`) only the 1k database is used.

use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput};
use swivel_provision_benches::{Fixture, bench_data_dir, full_cycle};
use swivel_provision_sqlite::Durability;

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// Users cycled through, spread over the whole database.
const SAMPLE: usize = 4096;

fn scaling(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let benching = std::env::args().any(|a| a == "--bench");
    let cap: usize = std::env::var("SWIVEL_BENCH_MAX_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let mut g = c.benchmark_group("scaling/sqlite_normal");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        if n > cap || (!benching && n > SIZES[0]) {
            eprintln!("scaling: skipping {n} users");
            continue;
        }
        let path = bench_data_dir().join(format!("users-{n}.sqlite"));
        let started = Instant::now();
        let f = rt
            .block_on(Fixture::sqlite(&path, Durability::Normal, n, SAMPLE))
            .expect("sqlite fixture");
        eprintln!("scaling: {n} users ready in {:.1?}", started.elapsed());
        let next = Cell::new(0usize);
        g.bench_with_input(BenchmarkId::new("full_cycle", n), &n, |b, _| {
            b.to_async(&rt).iter(|| {
                let i = next.get();
                next.set((i + 1) % f.users.len());
                let user = &f.users[i];
                let f = &f;
                async move {
                    black_box(
                        full_cycle(&f.provisioner, &f.transport, user)
                            .await
                            .expect("cycle"),
                    );
                }
            });
        });
    }
    g.finish();
}

fn main() {
    // What criterion_group!/criterion_main! expand to, without an undocumented `pub fn`.
    let mut c = Criterion::default().configure_from_args();
    scaling(&mut c);
    c.final_summary();
}
