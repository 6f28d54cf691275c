//! `loadgen`: drives one or more running `provision-server` instances over HTTP.
//!
//! It prepares users `<prefix>N` (email destination, mobile group) and one provision code
//! each, then `--concurrency` clients send AgentXML `provision` and `SecurityStrings`
//! requests for `--duration` (the device side), and it prints requests/s and p50/p99/max
//! latency. It only talks to loopback addresses and stops by itself. Requests are spread
//! over the `--server`s given (client `i` talks to server `i mod n`).
//!
//! Preparation, by the store the server runs on:
//! - a SQLite file (the default): users and codes are written directly into the server's
//!   database, with the server's own key (`<data-dir>/server.key`) and saved policy;
//! - anything (`--via-api`, needed for `--database memory` and PostgreSQL): users are added
//!   with `PUT /api/v1/users/{u}` and codes asked for with `POST .../reprovision`, with the
//!   token in `SWIVEL_API_TOKEN` (`provision-server api token`); the codes are read from
//!   the servers' outbox directories (`--outbox`, default `<data-dir>/outbox`), so the
//!   servers must deliver through the outbox, with the code in the message (policy
//!   delivery `both` or `code_only`).
//!
//! `--full-cycle` (implies `--via-api`) measures whole enrolments instead: each client
//! repeats API reprovision → delivery (the outbox) → `provision` → `SecurityStrings` on
//! its own share of the users.
//!
//! ```text
//! loadgen --server http://127.0.0.1:8080 --data-dir ./provision-data \
//!         --users 10000 --concurrency 64 --duration 20s
//! SWIVEL_API_TOKEN=... loadgen --via-api --full-cycle --server http://127.0.0.1:8080 \
//!         --server http://127.0.0.1:8081 --data-dir ./shared-data --users 2000
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
    ApiClient, BenchError, LastCodeTransport, LatencySummary, OutboxReader, email_user,
    ensure_loopback, parse_duration, read_server_key,
};
use swivel_provision_sqlite::{Durability, SqliteOptions, SqliteStore};

/// Settings key under which `provision-server` saves its policy (JSON).
const POLICY_KEY: &str = "policy";
/// Longest wait for one HTTP answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Tasks preparing users and codes at once.
const PREP_TASKS: usize = 8;
/// Longest wait for a message to turn up in the outbox.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Where `--via-api` finds the API token.
const TOKEN_VAR: &str = "SWIVEL_API_TOKEN";

/// Load generator for a running provision-server (loopback only).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
struct Args {
    /// Base URL of a server (loopback only: 127.0.0.0/8, ::1, localhost); repeat it to
    /// spread the clients over several instances of one cluster.
    #[arg(long = "server", default_value = "http://127.0.0.1:8080")]
    servers: Vec<String>,
    /// The server's data directory (server.key, provision.sqlite, outbox/).
    #[arg(long, default_value = "./provision-data")]
    data_dir: PathBuf,
    /// The server's SQLite file (default: `<data-dir>/provision.sqlite`).
    #[arg(long)]
    database: Option<PathBuf>,
    /// Prepare through the servers' JSON API and outbox instead of the SQLite file (token
    /// in `SWIVEL_API_TOKEN`).
    #[arg(long)]
    via_api: bool,
    /// Outbox directories to read codes from (repeatable; default `<data-dir>/outbox`).
    #[arg(long = "outbox")]
    outboxes: Vec<PathBuf>,
    /// Measure whole enrolments (API reprovision, delivery, provision, strings) instead of
    /// the device side alone; implies `--via-api`.
    #[arg(long)]
    full_cycle: bool,
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
    reprovision: Vec<u64>,
    delivery: Vec<u64>,
    provision: Vec<u64>,
    strings: Vec<u64>,
    cycles: u64,
    failures: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.reprovision.extend(other.reprovision);
        self.delivery.extend(other.delivery);
        self.provision.extend(other.provision);
        self.strings.extend(other.strings);
        self.cycles += other.cycles;
        self.failures += other.failures;
    }
}

/// How the clients get their users and codes.
enum Work {
    /// Prepared users with one code each, taken by whichever client is free.
    Prepared(Mutex<Vec<(Username, ProvisionCode)>>),
    /// Whole enrolments: client `i` cycles over users `i`, `i + concurrency`, ...
    FullCycle {
        api: Arc<ApiClient>,
        outbox: Arc<OutboxReader>,
        users: Arc<Vec<Username>>,
    },
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

async fn run(mut args: Args) -> Result<(), BenchError> {
    args.via_api |= args.full_cycle;
    let bases = args
        .servers
        .iter()
        .map(|s| ensure_loopback(s))
        .collect::<Result<Vec<_>, _>>()?;
    let endpoints = bases
        .iter()
        .map(|b| {
            b.join(&args.path)
                .map_err(|e| BenchError::Invalid(format!("--path {:?}: {e}", args.path)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.users == 0 || args.concurrency == 0 {
        return Err(BenchError::Invalid(
            "--users and --concurrency must be at least 1".into(),
        ));
    }
    if args.full_cycle && args.users < args.concurrency {
        return Err(BenchError::Invalid(
            "--full-cycle needs at least as many --users as --concurrency (each client cycles over its own users)".into(),
        ));
    }
    let names = (0..args.users)
        .map(|i| {
            Username::parse(&format!("{}{i}", args.prefix))
                .map_err(|e| BenchError::Invalid(format!("--prefix: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    // reqwest's rustls feature wants a process-wide provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| BenchError::Invalid(format!("HTTP client: {e}")))?;

    let work = if args.via_api {
        let token = std::env::var(TOKEN_VAR).map_err(|_| {
            BenchError::Invalid(format!(
                "--via-api needs the API token in {TOKEN_VAR} (provision-server api token)"
            ))
        })?;
        let api = ApiClient::new(client.clone(), &token);
        let dirs = if args.outboxes.is_empty() {
            vec![args.data_dir.join("outbox")]
        } else {
            args.outboxes.clone()
        };
        let outbox = OutboxReader::start(dirs, &args.prefix)?;
        let started = Instant::now();
        let names = Arc::new(names);
        let (api, outbox) = (Arc::new(api), Arc::new(outbox));
        let mut tasks = Vec::new();
        for t in 0..PREP_TASKS {
            let (names, api, outbox, bases) =
                (names.clone(), api.clone(), outbox.clone(), bases.clone());
            let with_codes = !args.full_cycle;
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for (i, name) in names.iter().enumerate().skip(t).step_by(PREP_TASKS) {
                    let base = &bases[i % bases.len()];
                    api.put_user(base, name.as_str()).await?;
                    if with_codes {
                        api.reprovision(base, name.as_str()).await?;
                        let code = outbox.code_for(name.as_str(), DELIVERY_TIMEOUT).await?;
                        out.push((name.clone(), code));
                    }
                }
                Ok::<_, BenchError>(out)
            }));
        }
        let mut prepared = Vec::with_capacity(args.users);
        for t in tasks {
            prepared.extend(
                t.await
                    .map_err(|e| BenchError::Invalid(format!("preparation task: {e}")))??,
            );
        }
        eprintln!(
            "loadgen: added {} users{} through the API in {:.1?}",
            names.len(),
            if args.full_cycle {
                ""
            } else {
                " and their codes"
            },
            started.elapsed()
        );
        if args.full_cycle {
            Work::FullCycle {
                api,
                outbox,
                users: names,
            }
        } else {
            Work::Prepared(Mutex::new(prepared))
        }
    } else {
        let database = args
            .database
            .clone()
            .unwrap_or_else(|| args.data_dir.join("provision.sqlite"));
        if !database.exists() {
            return Err(BenchError::Invalid(format!(
                "{} does not exist: start provision-server with this --data-dir first, or use --via-api",
                database.display()
            )));
        }
        let key = read_server_key(&args.data_dir.join("server.key"))?;
        Work::Prepared(Mutex::new(prepare(&args, &database, key, names).await?))
    };

    eprintln!(
        "loadgen: {} clients for {:?} against {} server(s){}",
        args.concurrency,
        args.duration,
        endpoints.len(),
        if args.full_cycle { ", full cycles" } else { "" }
    );
    let work = Arc::new(work);
    let ran_out = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut clients = Vec::new();
    for c in 0..args.concurrency {
        let (client, work, ran_out) = (client.clone(), work.clone(), ran_out.clone());
        let endpoint = endpoints[c % endpoints.len()].clone();
        let base = bases[c % bases.len()].clone();
        let concurrency = args.concurrency;
        clients.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            match &*work {
                Work::Prepared(queue) => {
                    while Instant::now() < deadline {
                        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                        let Some((user, code)) = next else {
                            ran_out.store(true, Ordering::Relaxed);
                            break;
                        };
                        one_device(&client, &endpoint, user, code, &mut tally).await;
                    }
                }
                Work::FullCycle { api, outbox, users } => {
                    let mine: Vec<&Username> = users.iter().skip(c).step_by(concurrency).collect();
                    for user in mine.iter().cycle() {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let t = Instant::now();
                        let asked = api.reprovision(&base, user.as_str()).await;
                        tally.reprovision.push(micros_since(t));
                        if asked.is_err() {
                            tally.failures += 1;
                            continue;
                        }
                        let t = Instant::now();
                        let code = outbox.code_for(user.as_str(), DELIVERY_TIMEOUT).await;
                        tally.delivery.push(micros_since(t));
                        let Ok(code) = code else {
                            tally.failures += 1;
                            continue;
                        };
                        one_device(&client, &endpoint, (*user).clone(), code, &mut tally).await;
                    }
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for c in clients {
        total.add(
            c.await
                .map_err(|e| BenchError::Invalid(format!("client task: {e}")))?,
        );
    }
    let elapsed = started.elapsed();
    report(&args, &total, elapsed, ran_out.load(Ordering::Relaxed));
    Ok(())
}

fn micros_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Adds the users and requests one code for each, in the server's database with the
/// server's key, so that the server accepts the codes.
async fn prepare(
    args: &Args,
    database: &std::path::Path,
    key: swivel_provision::ServerKey,
    names: Vec<Username>,
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
        .store_with_users(Arc::new(store.clone()))
        .transport(Channel::Email, transport.clone())
        .policy(policy)
        .server_key(key)
        .delivery(Delivery::Direct)
        .build()?;
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
    (result, micros_since(started))
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
        "loadgen: {} clients, {} server(s), {:.2} s, {} {} ({:.0}/s), {} failures",
        args.concurrency,
        args.servers.len(),
        elapsed.as_secs_f64(),
        t.cycles,
        if args.full_cycle {
            "full enrolments (reprovision, delivery, provision, strings)"
        } else {
            "devices provisioned with strings"
        },
        t.cycles as f64 / elapsed.as_secs_f64(),
        t.failures
    );
    if args.full_cycle {
        show("API reprovision", &t.reprovision, elapsed);
        show("delivery wait", &t.delivery, elapsed);
    }
    show("provision", &t.provision, elapsed);
    show("SecurityStrings", &t.strings, elapsed);
    let all: Vec<u64> = t.provision.iter().chain(&t.strings).copied().collect();
    show("device side", &all, elapsed);
    if ran_out {
        println!(
            "loadgen: WARNING: the {} prepared users ran out before {:?}; the rate is over {:.2} s (use more --users)",
            args.users,
            args.duration,
            elapsed.as_secs_f64()
        );
    }
}
