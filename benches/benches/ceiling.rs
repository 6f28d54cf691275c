//! The store against the disk, in one run: the raw single-row WAL commit rate of the disk
//! (`synchronous=FULL` and `NORMAL`, one autocommit `UPDATE` after another on one
//! connection), then the SQLite store's full cycles per second (request → deliver → redeem
//! → download strings, distinct users) with 1, 8 and 64 concurrent tasks on a multi-thread
//! runtime, and the ratio of the two.
//!
//! Not a criterion bench: criterion measures one function at a time and cannot print the
//! ratio of two. Each figure is the median of `--rounds` runs of `--seconds` each
//! (defaults 3 × 3 s), rounds interleaved so that a noisy neighbour hits every figure
//! alike.
//!
//! ```sh
//! cargo bench -p swivel-provision-benches --bench ceiling -- --seconds 3 --rounds 3
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use swivel_provision_benches::{Fixture, bench_data_dir, full_cycle};
use swivel_provision_sqlite::Durability;

const TASKS: [usize; 3] = [1, 8, 64];
/// Users per task: each task cycles through its own users only.
const USERS_PER_TASK: usize = 16;

struct Args {
    seconds: f64,
    rounds: usize,
}

fn args() -> Args {
    let mut out = Args {
        seconds: 3.0,
        rounds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => out.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(3.0),
            "--rounds" => out.rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            // `cargo bench` passes `--bench`; ignore it and anything else.
            _ => {}
        }
    }
    out.rounds = out.rounds.max(1);
    out
}

fn pragma(durability: Durability) -> &'static str {
    match durability {
        Durability::Full => "FULL",
        _ => "NORMAL",
    }
}

/// Single-row autocommit updates per second on a WAL file: the disk's commit ceiling.
fn raw_commits(path: &Path, durability: Durability, seconds: f64) -> f64 {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).expect("open raw file");
    let _: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("WAL");
    conn.pragma_update(None, "synchronous", pragma(durability))
        .expect("synchronous");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
         INSERT OR IGNORE INTO t VALUES (1, 0);",
    )
    .expect("table");
    let mut stmt = conn
        .prepare("UPDATE t SET v = v + 1 WHERE id = 1")
        .expect("prepare");
    let limit = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < limit {
        stmt.execute([]).expect("update");
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// Full cycles per second of `tasks` concurrent tasks, for `seconds`.
async fn cycles(f: &Fixture, tasks: usize, seconds: f64) -> f64 {
    let limit = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut handles = Vec::new();
    for users in f.partition(tasks) {
        let (p, t) = (f.provisioner.clone(), f.transport.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < limit {
                let user = &users[n as usize % users.len()];
                full_cycle(&p, &t, user).await.expect("cycle");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let args = args();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = bench_data_dir();
    std::fs::create_dir_all(&dir).expect("bench data dir");
    let users = USERS_PER_TASK * TASKS[TASKS.len() - 1];
    println!(
        "ceiling: {} rounds of {} s per figure, {cores} cores, load average before: {}",
        args.rounds,
        args.seconds,
        load_average()
    );
    for durability in [Durability::Full, Durability::Normal] {
        let name = pragma(durability);
        let fixture = rt
            .block_on(Fixture::sqlite(
                &dir.join(format!("ceiling-{}.sqlite", name.to_lowercase())),
                durability,
                users,
                users,
            ))
            .expect("sqlite fixture");
        let raw_path = dir.join(format!("ceiling-raw-{}.sqlite", name.to_lowercase()));
        let mut raw = Vec::new();
        let mut per_tasks: Vec<Vec<f64>> = vec![Vec::new(); TASKS.len()];
        for _ in 0..args.rounds {
            raw.push(raw_commits(&raw_path, durability, args.seconds));
            for (i, tasks) in TASKS.iter().enumerate() {
                per_tasks[i].push(rt.block_on(cycles(&fixture, *tasks, args.seconds)));
            }
        }
        let raw = median(raw);
        println!("synchronous={name}: raw single-row WAL commits {raw:>9.0}/s");
        for (tasks, rates) in TASKS.iter().zip(per_tasks) {
            let all = rates
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ");
            let rate = median(rates);
            println!(
                "synchronous={name}: {tasks:>2} tasks {rate:>9.0} cycles/s  \
                 = {:.2} x the raw commit rate  (rounds: {all})",
                rate / raw
            );
        }
    }
    println!("load average after: {}", load_average());
}
