//! `probe`: the timing side channel, measured the way an attacker would, against a running
//! `provision-server` (loopback only).
//!
//! In one interleaved run (each round sends one request of every kind, in a shuffled
//! order) it times, for a user that exists and one that does not:
//! - AgentXML `provision` with a wrong code (the known user has a device, and first a
//!   pending code; the unknown names are new each round);
//! - the self-service form (`POST /reset/provision`);
//! - `/login` with a wrong one-time code (the known user has downloaded strings);
//! - the `TokenIndex` oracle: read `TokenIndex` = k, post `/login` with zeros and k (the
//!   number of zeros from one under to three over the PIN's length, in turn), read it
//!   again; timed as a whole, and counted when the index moved;
//!
//! and an ordinary AgentXML `ping` against the worst 64 KiB body (thousands of attributes).
//! It prints the median and p90 of each and the ratio of each pair. Setup: the known user
//! must exist with a PIN and the policy must allow self-service (see BENCHMARKS.md); the
//! probe itself provisions the known user's device through the server, with a code it
//! requests in the server's SQLite file under the server's key (as `loadgen` does). Each
//! round's requests name a client address of their own in `X-Forwarded-For` (the server
//! believes it with `trusted_proxies = ["127.0.0.1"]`), so that the limit on wrong
//! one-time codes per account and address does not refuse the known user's.
//!
//! ```text
//! probe --server http://127.0.0.1:18080 --data-dir /tmp/pd --known probe-known --rounds 2000
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use swivel_provision::agentxml::{
    AgentAction, AgentRequest, AgentResponse, parse_response, render_request,
};
use swivel_provision::{
    Channel, Delivery, DeliveryMode, DeviceInfo, Origin, Pin, Policy, ProvisionCode, Provisioner,
    SecurityStrings, SettingsStore, Username, one_time_code,
};
use swivel_provision_benches::{BenchError, LastCodeTransport, ensure_loopback, read_server_key};
use swivel_provision_sqlite::{Durability, SqliteOptions, SqliteStore};

/// Settings key under which `provision-server` saves its policy (JSON).
const POLICY_KEY: &str = "policy";
/// Longest wait for one HTTP answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest body the server reads.
const MAX_BODY: usize = 64 * 1024;

/// Timing probe for a running provision-server (loopback only).
#[derive(Debug, Parser)]
#[command(name = "probe", version, about)]
struct Args {
    /// Base URL of the server (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The server's data directory (server.key, provision.sqlite).
    #[arg(long, default_value = "./provision-data")]
    data_dir: PathBuf,
    /// An existing user with an email destination, in the mobile group, with `--pin`.
    #[arg(long, default_value = "probe-known")]
    known: String,
    /// The known user's PIN.
    #[arg(long, default_value = "1234")]
    pin: String,
    /// Rounds (each sends one request of every kind).
    #[arg(long, default_value_t = 2000)]
    rounds: usize,
}

/// The kinds of request, each timed on its own.
const KINDS: [&str; 10] = [
    "agentxml provision, known user",
    "agentxml provision, unknown user",
    "self-service, known user",
    "self-service, unknown user",
    "/login wrong OTC, known user with device",
    "/login wrong OTC, unknown user",
    "agentxml ping",
    "agentxml 64 KiB, many attributes",
    "TokenIndex, wrong /login, TokenIndex: known",
    "TokenIndex, wrong /login, TokenIndex: unknown",
];

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("probe: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn invalid(what: impl std::fmt::Display) -> BenchError {
    BenchError::Invalid(what.to_string())
}

async fn run(args: Args) -> Result<(), BenchError> {
    let base = ensure_loopback(&args.server)?;
    let url = |path: &str| base.join(path).map_err(invalid);
    let (agent, reset, login, token_index) = (
        url("/pinsafe/AgentXML")?,
        url("/reset/provision")?,
        url("/login")?,
        url("/pinsafe/TokenIndex")?,
    );
    let known = Username::parse(&args.known)?;
    let pin = Pin::parse(&args.pin)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(invalid)?;

    // Setup: a device with strings for the known user, then a pending code.
    let provisioner = provisioner(&args).await?;
    let transport = provisioner.1;
    let provisioner = provisioner.0;
    provisioner.request_provision(&known, Origin::Admin).await?;
    let code = transport
        .take_code(&known)
        .ok_or_else(|| invalid("no code was made for the known user"))?;
    let id = match agent_call(&client, &agent, &provision_xml(&known, &code)).await? {
        AgentResponse::Provisioned { id } => id,
        other => return Err(invalid(format!("provisioning the known user: {other:?}"))),
    };
    let strings_xml = render_request(&AgentRequest::new(AgentAction::SecurityStrings { id }));
    let strings = match agent_call(&client, &agent, &strings_xml).await? {
        AgentResponse::Strings { strings, .. } => strings,
        other => return Err(invalid(format!("downloading strings: {other:?}"))),
    };
    provisioner.request_provision(&known, Origin::Admin).await?;
    let pending = transport.take_code(&known).expect("a second code");
    let wrong_code = ProvisionCode::new(if pending.expose() == "1234567890" {
        "0987654321"
    } else {
        "1234567890"
    });
    // A wrong one-time code on string 7 (each index is spent once; later rounds name a
    // spent index, which costs the server the same).
    let mut wrong_otc = one_time_code(strings.get(7).expect("string 7"), &pin, 7)?;
    let first = if wrong_otc.starts_with('9') { "0" } else { "9" };
    wrong_otc.replace_range(0..1, first);
    let ping = render_request(&AgentRequest::new(AgentAction::Ping));
    let big = many_attributes();

    let mut times: Vec<Vec<u64>> = vec![Vec::with_capacity(args.rounds); KINDS.len()];
    let mut order: Vec<usize> = (0..KINDS.len()).collect();
    let mut status_seen = vec![std::collections::BTreeSet::new(); KINDS.len()];
    // Rounds in which TokenIndex moved after a wrong code: known, unknown.
    let mut moved = [0usize; 2];
    eprintln!("probe: {} rounds against {base}", args.rounds);
    for round in 0..args.rounds {
        shuffle(&mut order, round as u64);
        let nobody = format!("probe-nobody-{round}");
        let ip = format!("198.18.{}.{}", round / 250 % 256, round % 250 + 1);
        let c = Client {
            http: &client,
            ip: &ip,
        };
        // From one digit under the PIN's length to three over, in turn.
        let zeros = (pin.expose().len() - 1) + round % 5;
        for &kind in &order {
            let started = Instant::now();
            let status = match kind {
                0 => c.post(&agent, provision_xml(&known, &wrong_code)).await?,
                1 => {
                    let name = Username::parse(&nobody)?;
                    c.post(&agent, provision_xml(&name, &wrong_code)).await?
                }
                2 => c.form(&reset, &[("username", known.as_str())]).await?,
                3 => c.form(&reset, &[("username", &nobody)]).await?,
                4 => {
                    let f = [("username", known.as_str()), ("otc", wrong_otc.as_str())];
                    c.form(&login, &f).await?
                }
                5 => {
                    let f = [("username", nobody.as_str()), ("otc", wrong_otc.as_str())];
                    c.form(&login, &f).await?
                }
                6 => c.post(&agent, ping.clone()).await?,
                7 => c.post(&agent, big.clone()).await?,
                _ => {
                    let (user, right) = if kind == 8 {
                        (known.as_str(), Some((&strings, &pin)))
                    } else {
                        (nobody.as_str(), None)
                    };
                    let (status, changed) =
                        c.oracle(&token_index, &login, user, zeros, right).await?;
                    moved[kind - 8] += usize::from(changed);
                    status
                }
            };
            times[kind].push(started.elapsed().as_micros() as u64);
            status_seen[kind].insert(status);
        }
    }
    println!("probe: {} rounds, interleaved, one client", args.rounds);
    println!(
        "{:<44} {:>9} {:>9}  statuses",
        "request", "p50 µs", "p90 µs"
    );
    let mut p50s = Vec::new();
    for (kind, t) in times.iter_mut().enumerate() {
        let (p50, p90) = (percentile(t, 50.0), percentile(t, 90.0));
        p50s.push((p50, p90));
        println!(
            "{:<44} {p50:>9} {p90:>9}  {:?}",
            KINDS[kind], status_seen[kind]
        );
    }
    for pair in [0, 2, 4, 6, 8] {
        let ((a50, a90), (b50, b90)) = (p50s[pair], p50s[pair + 1]);
        println!(
            "ratio {:<38} p50 {:.2}  p90 {:.2}",
            format!("{} / {}", KINDS[pair + 1], KINDS[pair]),
            b50 as f64 / a50.max(1) as f64,
            b90 as f64 / a90.max(1) as f64
        );
    }
    println!(
        "TokenIndex moved after a wrong code: known {} of {}, unknown {} of {}",
        moved[0], args.rounds, moved[1], args.rounds
    );
    Ok(())
}

/// A provisioner over the server's SQLite file with the server's key and policy, whose
/// codes reach a [`LastCodeTransport`].
async fn provisioner(args: &Args) -> Result<(Provisioner, Arc<LastCodeTransport>), BenchError> {
    let database = args.data_dir.join("provision.sqlite");
    if !database.exists() {
        return Err(invalid(format!(
            "{} does not exist: start provision-server with this --data-dir first",
            database.display()
        )));
    }
    let key = read_server_key(&args.data_dir.join("server.key"))?;
    let options = SqliteOptions {
        durability: Durability::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&database, options).await?;
    let mut policy = match store.get_setting(POLICY_KEY).await? {
        Some(json) => serde_json::from_str::<Policy>(&json).map_err(invalid)?,
        None => Policy::default(),
    };
    policy.delivery = DeliveryMode::CodeOnly;
    let transport = Arc::new(LastCodeTransport::new());
    let provisioner = Provisioner::builder()
        .store_with_users(Arc::new(store))
        .transport(Channel::Email, transport.clone())
        .policy(policy)
        .server_key(key)
        .delivery(Delivery::Direct)
        .build()?;
    Ok((provisioner, transport))
}

fn provision_xml(user: &Username, code: &ProvisionCode) -> String {
    render_request(&AgentRequest::new(AgentAction::Provision {
        username: user.to_string(),
        code: code.clone(),
        device: DeviceInfo::default(),
    }))
}

/// `<SASRequest a0="" a1="" …>` filling the 64 KiB the server reads.
fn many_attributes() -> String {
    let mut xml = String::from("<SASRequest");
    let mut i = 0;
    while xml.len() + 40 < MAX_BODY {
        xml.push_str(&format!(" a{i}=\"\""));
        i += 1;
    }
    xml.push_str("><Action>ping</Action></SASRequest>");
    xml
}

async fn agent_call(
    client: &reqwest::Client,
    url: &url::Url,
    xml: &str,
) -> Result<AgentResponse, BenchError> {
    let body = client
        .post(url.clone())
        .body(xml.to_owned())
        .send()
        .await
        .map_err(invalid)?
        .bytes()
        .await
        .map_err(invalid)?;
    Ok(parse_response(&body).map_err(invalid)?.response)
}

/// Sends a request, reads the whole answer (so that the time includes it) and returns the
/// status.
async fn status_of(request: reqwest::RequestBuilder) -> Result<u16, BenchError> {
    let r = request.send().await.map_err(invalid)?;
    let status = r.status().as_u16();
    r.bytes().await.map_err(invalid)?;
    Ok(status)
}

/// The HTTP client, naming the round's client address in `X-Forwarded-For`.
struct Client<'a> {
    http: &'a reqwest::Client,
    ip: &'a str,
}

impl Client<'_> {
    fn request(&self, method: reqwest::Method, url: &url::Url) -> reqwest::RequestBuilder {
        self.http
            .request(method, url.clone())
            .header("x-forwarded-for", self.ip)
    }

    async fn post(&self, url: &url::Url, xml: String) -> Result<u16, BenchError> {
        status_of(self.request(reqwest::Method::POST, url).body(xml)).await
    }

    async fn form(&self, url: &url::Url, fields: &[(&str, &str)]) -> Result<u16, BenchError> {
        let body: String = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        status_of(
            self.request(reqwest::Method::POST, url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    async fn token_index(&self, url: &url::Url, user: &str) -> Result<String, BenchError> {
        let mut url = url.clone();
        url.query_pairs_mut().append_pair("username", user);
        let r = self
            .request(reqwest::Method::GET, &url)
            .send()
            .await
            .map_err(invalid)?;
        if !r.status().is_success() {
            return Err(invalid(format!("TokenIndex answered {}", r.status())));
        }
        r.text().await.map_err(invalid)
    }

    /// The oracle of issue 20: `TokenIndex` = k, `/login` with `zeros` zeros and k,
    /// `TokenIndex` again (ones instead of zeros when that is the code `right` makes: the
    /// known user's strings and PIN). The login's status, and whether the index moved.
    async fn oracle(
        &self,
        token_index: &url::Url,
        login: &url::Url,
        user: &str,
        zeros: usize,
        right: Option<(&SecurityStrings, &Pin)>,
    ) -> Result<(u16, bool), BenchError> {
        let before = self.token_index(token_index, user).await?;
        let k: u8 = before.trim().parse().map_err(invalid)?;
        let mut otc = format!("{}{k:02}", "0".repeat(zeros));
        let is_right = right.and_then(|(strings, pin)| {
            let string = strings.get(k)?;
            one_time_code(string, pin, k).ok()
        });
        if is_right.as_deref() == Some(otc.as_str()) {
            otc = format!("{}{k:02}", "1".repeat(zeros));
        }
        let status = self
            .form(login, &[("username", user), ("otc", &otc)])
            .await?;
        let after = self.token_index(token_index, user).await?;
        Ok((status, before != after))
    }
}

fn urlencode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// A fixed permutation per round (xorshift), so that no kind always goes first.
fn shuffle(order: &mut [usize], round: u64) {
    let mut x = round.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Nearest-rank percentile in µs (sorts `t`).
fn percentile(t: &mut [u64], p: f64) -> u64 {
    if t.is_empty() {
        return 0;
    }
    t.sort_unstable();
    let rank = ((p / 100.0) * t.len() as f64).ceil() as usize;
    t[rank.clamp(1, t.len()) - 1]
}
