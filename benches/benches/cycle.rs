//! The full cycle (request → deliver → redeem → download strings) with the memory store
//! and with SQLite (FULL and NORMAL durability), and `verify_otc`. One cycle at a time on a
//! current-thread runtime ("one core"; SQLite work runs on tokio's blocking pool).

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use swivel_provision::{Pin, Username, one_time_code};
use swivel_provision_benches::{Fixture, bench_data_dir, full_cycle};
use swivel_provision_sqlite::Durability;

/// Users in the cycle databases (all cycled through).
const USERS: usize = 1024;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn sqlite_fixture(rt: &tokio::runtime::Runtime, durability: Durability) -> Fixture {
    let name = match durability {
        Durability::Full => "cycle-full.sqlite",
        _ => "cycle-normal.sqlite",
    };
    rt.block_on(Fixture::sqlite(
        &bench_data_dir().join(name),
        durability,
        USERS,
        USERS,
    ))
    .expect("sqlite fixture")
}

fn bench_cycle(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    f: &Fixture,
    slow: bool,
) {
    let mut g = c.benchmark_group("full_cycle");
    g.throughput(Throughput::Elements(1));
    if slow {
        // fsync-bound: a few hundred cycles per second at most.
        g.sample_size(10).sampling_mode(SamplingMode::Flat);
    }
    let next = Cell::new(0usize);
    g.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let i = next.get();
            next.set((i + 1) % f.users.len());
            let user = &f.users[i];
            async move {
                black_box(
                    full_cycle(&f.provisioner, &f.transport, user)
                        .await
                        .expect("cycle"),
                );
            }
        });
    });
    g.finish();
}

/// `verify_otc` on fresh indices: each user's strings allow 99 one-time codes per
/// generation; new strings are downloaded (untimed) when a user's indices run out.
fn bench_verify(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    f: &Fixture,
    slow: bool,
) {
    let pin = Pin::parse("2468").expect("pin");
    let users: Vec<Username> = f.users.iter().take(64).cloned().collect();
    let mut g = c.benchmark_group("verify_otc");
    g.throughput(Throughput::Elements(1));
    if slow {
        g.sample_size(10).sampling_mode(SamplingMode::Flat);
    }
    g.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let (users, pin) = (&users, &pin);
            async move {
                // Current strings and next index per user.
                let mut state = Vec::new();
                for user in users {
                    let s = full_cycle(&f.provisioner, &f.transport, user)
                        .await
                        .expect("cycle");
                    state.push((s.strings, 1u8));
                }
                let mut total = Duration::ZERO;
                for k in 0..iters as usize {
                    let u = k % users.len();
                    if state[u].1 > 99 {
                        let s = full_cycle(&f.provisioner, &f.transport, &users[u])
                            .await
                            .expect("cycle");
                        state[u] = (s.strings, 1);
                    }
                    let index = state[u].1;
                    state[u].1 += 1;
                    let otc = one_time_code(state[u].0.get(index).expect("index"), pin, index)
                        .expect("otc");
                    let started = Instant::now();
                    f.provisioner
                        .verify_otc(&users[u], &otc, pin)
                        .await
                        .expect("accepted");
                    total += started.elapsed();
                }
                total
            }
        });
    });
    g.finish();
}

fn cycles(c: &mut Criterion) {
    let rt = runtime();
    let memory = Fixture::memory(USERS).expect("fixture");
    bench_cycle(c, &rt, "memory", &memory, false);
    bench_verify(c, &rt, "memory", &memory, false);
    drop(memory);
    let normal = sqlite_fixture(&rt, Durability::Normal);
    bench_cycle(c, &rt, "sqlite_normal", &normal, false);
    bench_verify(c, &rt, "sqlite_normal", &normal, false);
    drop(normal);
    let full = sqlite_fixture(&rt, Durability::Full);
    bench_cycle(c, &rt, "sqlite_full", &full, true);
    bench_verify(c, &rt, "sqlite_full", &full, true);
}

fn main() {
    // What criterion_group!/criterion_main! expand to, without an undocumented `pub fn`.
    let mut c = Criterion::default().configure_from_args();
    cycles(&mut c);
    c.final_summary();
}
