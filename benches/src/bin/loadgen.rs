//! `loadgen`: drives a running `provision-server` over HTTP.
//!
//! It prepares users `<prefix>N` (email destination, mobile group) and one provision code
//! each directly in the server's SQLite database, with the server's own key
//! (`<data-dir>/server.key`) and saved policy; then `--concurrency` clients send AgentXML
//! `provision` and `SecurityStrings` requests for `--duration`, and it prints requests/s
//! and p50/p99/max latency. It only talks to loopback addresses and stops by itself.
//!
//! ```text
//! loadgen --server http://127.0.0.1:8080 --data-dir ./provision-data \
//!         --users 10000 --concurrency 64 --duration 20s
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use swivel_provision::agentxml::{
    AgentAction, AgentRequest, AgentResponse, parse_response, render_request,
};
use swivel_provision::{
    Channel, Delivery, DeliveryMode, DeviceInfo, Origin, Policy, ProvisionCode, Provisioner,
    SettingsStore, UserAdmin, Username,
};
use swivel_provision_benches::{
    BenchError, LastCodeTransport, LatencySummary, email_user, ensure_loopback, parse_duration,
    read_server_key,
};
use swivel_provision_sqlite::{Durability, SqliteOptions, SqliteStore};

/// Settings key under which `provision-server` saves its policy (JSON).
const POLICY_KEY: &str = "policy";
/// Longest wait for one HTTP answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tasks preparing users and codes at once.
const PREP_TASKS: usize = 8;

/// Load generator for a running provision-server (loopback only).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
struct Args {
    /// Base URL of the server (loopback only: 127.0.0.0/8, ::1, localhost).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The server's data directory (server.key, provision.sqlite).
    #[arg(long, default_value = "./provision-data")]
    data_dir: PathBuf,
    /// The server's SQLite file (default: `<data-dir>/provision.sqlite`).
    #[arg(long)]
    database: Option<PathBuf>,
    /// Users to prepare, one provision each; the run stops early when they are used up.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to send requests (20s, 500ms, 2m).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Prefix of the prepared usernames.
    #[arg(long, default_value = "load-")]
    prefix: String,
    /// The AgentXML path.
    #[arg(long, default_value = "/pinsafe/AgentXML")]
    path: String,
}

/// Latencies (µs) and counts of one client.
#[derive(Debug, Default)]
struct Tally {
    provision: Vec<u64>,
    strings: Vec<u64>,
    cycles: u64,
    failures: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), BenchError> {
    let base = ensure_loopback(&args.server)?;
    let endpoint = base
        .join(&args.path)
        .map_err(|e| BenchError::Invalid(format!("--path {:?}: {e}", args.path)))?;
    if args.users == 0 || args.concurrency == 0 {
        return Err(BenchError::Invalid(
            "--users and --concurrency must be at least 1".into(),
        ));
    }
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| args.data_dir.join("provision.sqlite"));
    if !database.exists() {
        return Err(BenchError::Invalid(format!(
            "{} does not exist: start provision-server with this --data-dir first",
            database.display()
        )));
    }
    let key = read_server_key(&args.data_dir.join("server.key"))?;
    let work = prepare(&args, &database, key).await?;

    // reqwest's rustls feature wants a process-wide provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| BenchError::Invalid(format!("HTTP client: {e}")))?;

    eprintln!(
        "loadgen: {} clients for {:?} against {endpoint}",
        args.concurrency, args.duration
    );
    let work = Arc::new(Mutex::new(work));
    let ran_out = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let (client, endpoint, work, ran_out) = (
            client.clone(),
            endpoint.clone(),
            work.clone(),
            ran_out.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let next = work.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some((user, code)) = next else {
                    ran_out.store(true, Ordering::Relaxed);
                    break;
                };
                one_device(&client, &endpoint, user, code, &mut tally).await;
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for c in clients {
        let t = c
            .await
            .map_err(|e| BenchError::Invalid(format!("client task: {e}")))?;
        total.provision.extend(t.provision);
        total.strings.extend(t.strings);
        total.cycles += t.cycles;
        total.failures += t.failures;
    }
    let elapsed = started.elapsed();
    report(&args, &total, elapsed, ran_out.load(Ordering::Relaxed));
    Ok(())
}

/// Adds the users and requests one code for each, in the server's database with the
/// server's key, so that the server accepts the codes.
async fn prepare(
    args: &Args,
    database: &std::path::Path,
    key: swivel_provision::ServerKey,
) -> Result<Vec<(Username, ProvisionCode)>, BenchError> {
    let started = Instant::now();
    let store = SqliteStore::open_with(
        database,
        SqliteOptions {
            durability: Durability::Normal,
            ..SqliteOptions::default()
        },
    )
    .await?;
    let mut policy = match store.get_setting(POLICY_KEY).await? {
        Some(json) => serde_json::from_str::<Policy>(&json)
            .map_err(|e| BenchError::Invalid(format!("the server's saved policy: {e}")))?,
        None => Policy::default(),
    };
    // The codes must reach the transport (links alone would hide them); the format, which
    // the server checks, stays the server's.
    policy.delivery = DeliveryMode::CodeOnly;
    let transport = Arc::new(LastCodeTransport::new());
    let provisioner = Provisioner::builder()
        .store(Arc::new(store.clone()))
        .users(Arc::new(store.clone()))
        .transport(Channel::Email, transport.clone())
        .policy(policy)
        .server_key(key)
        .delivery(Delivery::Direct)
        .build()?;
    let names: Vec<Username> = (0..args.users)
        .map(|i| {
            Username::parse(&format!("{}{i}", args.prefix))
                .map_err(|e| BenchError::Invalid(format!("--prefix: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let names = Arc::new(names);
    let mut tasks = Vec::new();
    for t in 0..PREP_TASKS {
        let (names, store, provisioner, transport) = (
            names.clone(),
            store.clone(),
            provisioner.clone(),
            transport.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for name in names.iter().skip(t).step_by(PREP_TASKS) {
                store.put_user(&email_user(name)).await?;
                provisioner.request_provision(name, Origin::Admin).await?;
                let code = transport
                    .take_code(name)
                    .ok_or_else(|| BenchError::NoCode(name.to_string()))?;
                out.push((name.clone(), code));
            }
            Ok::<_, BenchError>(out)
        }));
    }
    let mut work = Vec::with_capacity(args.users);
    for t in tasks {
        work.extend(
            t.await
                .map_err(|e| BenchError::Invalid(format!("preparation task: {e}")))??,
        );
    }
    eprintln!(
        "loadgen: prepared {} users and codes in {} in {:.1?}",
        work.len(),
        database.display(),
        started.elapsed()
    );
    Ok(work)
}

/// `provision` then `SecurityStrings` for one user, as a device does.
async fn one_device(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    user: Username,
    code: ProvisionCode,
    tally: &mut Tally,
) {
    let body = render_request(&AgentRequest::new(AgentAction::Provision {
        username: user.to_string(),
        code,
        device: DeviceInfo::default(),
    }));
    let (answer, micros) = post(client, endpoint, body).await;
    tally.provision.push(micros);
    let Some(AgentResponse::Provisioned { id }) = answer else {
        tally.failures += 1;
        return;
    };
    let body = render_request(&AgentRequest::new(AgentAction::SecurityStrings { id }));
    let (answer, micros) = post(client, endpoint, body).await;
    tally.strings.push(micros);
    match answer {
        Some(AgentResponse::Strings { .. }) => tally.cycles += 1,
        _ => tally.failures += 1,
    }
}

/// One request: the parsed answer (`None` on any HTTP or parse error) and its latency in
/// microseconds.
async fn post(
    client: &reqwest::Client,
    endpoint: &reqwest::Url,
    body: String,
) -> (Option<AgentResponse>, u64) {
    let started = Instant::now();
    let result = async {
        let response = client
            .post(endpoint.clone())
            .header("content-type", "text/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?;
        let bytes = response.bytes().await.ok()?;
        parse_response(&bytes).ok().map(|r| r.response)
    }
    .await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    (result, micros)
}

fn show(name: &str, micros: &[u64], elapsed: Duration) {
    let rate = micros.len() as f64 / elapsed.as_secs_f64();
    match LatencySummary::from_micros(micros.to_vec()) {
        Some(s) => println!(
            "{name:<16} {:>8} requests {rate:>9.0}/s   p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
            s.count,
            s.p50.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3,
            s.max.as_secs_f64() * 1e3
        ),
        None => println!("{name:<16} no requests"),
    }
}

fn report(args: &Args, t: &Tally, elapsed: Duration, ran_out: bool) {
    println!(
        "loadgen: {} clients, {:.2} s, {} devices provisioned with strings ({:.0}/s), {} failures",
        args.concurrency,
        elapsed.as_secs_f64(),
        t.cycles,
        t.cycles as f64 / elapsed.as_secs_f64(),
        t.failures
    );
    show("provision", &t.provision, elapsed);
    show("SecurityStrings", &t.strings, elapsed);
    let all: Vec<u64> = t.provision.iter().chain(&t.strings).copied().collect();
    show("all", &all, elapsed);
    if ran_out {
        println!(
            "loadgen: WARNING: the {} prepared users ran out before {:?}; the rate is over {:.2} s (use more --users)",
            args.users,
            args.duration,
            elapsed.as_secs_f64()
        );
    }
}
