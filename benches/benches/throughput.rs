//! Throughput: full cycles on distinct users by 1, 8 and 64 concurrent tasks on a
//! multi-thread runtime with one worker per core, with the memory store and with SQLite
//! (NORMAL durability). Criterion reports cycles per second (elements/s).

use std::time::Instant;

use criterion::{Criterion, SamplingMode, Throughput};
use swivel_provision_benches::{Fixture, bench_data_dir, full_cycle};
use swivel_provision_sqlite::Durability;

/// Users per task: each task cycles through its own users only.
const USERS_PER_TASK: usize = 16;
const TASKS: [usize; 3] = [1, 8, 64];

fn runtime() -> tokio::runtime::Runtime {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn bench_store(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    store: &str,
    f: &Fixture,
    slow: bool,
) {
    let mut g = c.benchmark_group(format!("throughput/{store}"));
    if slow {
        // About a thousand cycles per second: keep a run within the measurement time.
        g.sample_size(10).sampling_mode(SamplingMode::Flat);
    }
    for tasks in TASKS {
        // Criterion's elements/s is cycles/s: each iteration is one cycle in every task.
        g.throughput(Throughput::Elements(tasks as u64));
        let parts = f.partition(tasks);
        g.bench_function(format!("{tasks}_tasks"), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let parts = parts.clone();
                async move {
                    let started = Instant::now();
                    let mut handles = Vec::new();
                    for users in parts {
                        let (p, t) = (f.provisioner.clone(), f.transport.clone());
                        handles.push(tokio::spawn(async move {
                            for k in 0..iters as usize {
                                let user = &users[k % users.len()];
                                full_cycle(&p, &t, user).await.expect("cycle");
                            }
                        }));
                    }
                    for h in handles {
                        h.await.expect("task");
                    }
                    started.elapsed()
                }
            });
        });
    }
    g.finish();
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let users = USERS_PER_TASK * TASKS[TASKS.len() - 1];
    let memory = Fixture::memory(users).expect("fixture");
    bench_store(c, &rt, "memory", &memory, false);
    drop(memory);
    let sqlite = rt
        .block_on(Fixture::sqlite(
            &bench_data_dir().join("throughput-normal.sqlite"),
            Durability::Normal,
            users,
            users,
        ))
        .expect("sqlite fixture");
    bench_store(c, &rt, "sqlite_normal", &sqlite, true);
}

fn main() {
    // What criterion_group!/criterion_main! expand to, without an undocumented `pub fn`.
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
