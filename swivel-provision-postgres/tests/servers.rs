//! Two real `provision-server` processes on different loopback ports sharing one PostgreSQL
//! schema and one server key, driven over HTTP as devices and users drive them:
//!
//! 1. a code requested on one server (the `reprovision alice` command against its data
//!    directory) is redeemed on the other (AgentXML `provision` → `PASS`), and the spent
//!    code is refused by both;
//! 2. 32 concurrent AgentXML redeems of one fresh code, 16 on each server: exactly one
//!    `PASS`, the 31 others `FAIL` with `Invalid Provision Code`;
//! 3. strings downloaded from either server are the ones the other checks (see the comment
//!    at step 3).
//!
//! The binary is `target/<profile>/provision-server` next to this test's own `deps/`
//! directory (`cargo test --workspace` or `cargo build -p provision-server` builds it; the
//! test runs whatever build is there). Without PostgreSQL or without the binary the test
//! prints `SKIPPED: ...` and passes, unless `SWIVEL_REQUIRE_POSTGRES_TESTS=1`.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestSchema;
use swivel_provision::agentxml::{
    AgentAction, AgentRequest, AgentResponse, parse_response, render_request,
};
use swivel_provision::{DeviceInfo, Pin, ProvisionCode, ProvisionId, one_time_code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a server may take to start, and an HTTP call to answer.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Concurrent redeems of one code, half on each server.
const REDEEMS: usize = 32;

/// The demo user's PIN (`--demo`).
const ALICE_PIN: &str = "1234";

/// `target/<profile>/provision-server`: this test binary is `target/<profile>/deps/servers-…`.
fn server_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir.join(format!("provision-server{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

/// `url` with the connection's `search_path` set to `schema`, so that a server that uses
/// the connection's default schema works inside the test's schema.
fn url_in_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// A running `provision-server`, killed on drop (also when the test panics).
struct Server {
    child: Child,
    /// `host:port` it listens on.
    addr: String,
    data_dir: PathBuf,
    database: String,
    output: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `provision-server --demo` on a free loopback port (`--listen 127.0.0.1:0`)
    /// and waits (bounded) for its `listening on` line.
    fn start(bin: &Path, data_dir: &Path, database: &str) -> Self {
        // The losing redeems of the race are failed AgentXML requests from one address:
        // room for them, so that the throttle does not answer in place of the store.
        std::fs::create_dir_all(data_dir).expect("data dir");
        let config = data_dir.join("throttle.toml");
        std::fs::write(&config, "[throttle]\nagentxml_failures_per_ip = 10000\n")
            .expect("write config");
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--config")
            .arg(&config)
            .args(["--database", database, "--listen", "127.0.0.1:0", "--demo"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start provision-server");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for (pipe, tx) in [
            (Box::new(stdout) as Box<dyn Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let out = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    // Record the line before announcing the address, so that whoever waits
                    // for the address also sees the line that carried it.
                    {
                        let mut o = out.lock().unwrap();
                        o.push_str(&line);
                        o.push('\n');
                    }
                    if let (Some(tx), Some(rest)) = (&tx, line.split("listening on http://").nth(1))
                    {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send(addr.to_owned());
                    }
                }
            });
        }
        let mut server = Self {
            child,
            addr: String::new(),
            data_dir: data_dir.to_owned(),
            database: database.to_owned(),
            output,
        };
        server.addr = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
            panic!(
                "provision-server did not start within {TIMEOUT:?}; output:\n{}",
                server.output()
            )
        });
        server
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Runs `provision-server <args>` against this server's data directory and database.
    async fn command(&self, bin: &Path, args: &[&str]) -> String {
        let out = tokio::process::Command::new(bin)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--database", &self.database, "--listen", &self.addr])
            .args(args)
            .output()
            .await
            .expect("run a provision-server command");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "provision-server {args:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The outbox message files for `user` in `data_dir`, oldest first.
fn outbox_files(data_dir: &Path, user: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(data_dir.join("outbox")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            // `<ms>-<user>.txt`, or `<ms>-<user>-<job id>.txt` from the durable queue.
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".txt") else {
                return false;
            };
            let stem = match stem.rsplit_once('-') {
                Some((rest, id)) if id.len() == 32 => rest,
                _ => stem,
            };
            stem.ends_with(&format!("-{user}"))
        })
        .collect();
    files.sort();
    files
}

/// The provision code of the newest outbox message for `user` that carries one (device-bound
/// notices carry none).
fn latest_code(data_dir: &Path, user: &str) -> String {
    outbox_files(data_dir, user)
        .iter()
        .rev()
        .find_map(|f| {
            let text = std::fs::read_to_string(f).expect("read the outbox message");
            text.lines()
                .find_map(|l| l.strip_prefix("Provision code:"))
                .map(|s| s.trim().to_owned())
        })
        .expect("an outbox message with a Provision code line for the user")
}

/// One HTTP/1.1 POST over a fresh loopback connection; returns (status, body).
async fn post(addr: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    let call = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("receive");
        raw
    };
    let raw = tokio::time::timeout(TIMEOUT, call)
        .await
        .unwrap_or_else(|_| panic!("POST {path} to {addr} got no answer within {TIMEOUT:?}"));
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Posts one AgentXML request to `/pinsafe/AgentXML` and parses the answer.
async fn agentxml(addr: &str, action: AgentAction) -> AgentResponse {
    let (status, body) = post(
        addr,
        "/pinsafe/AgentXML",
        "text/xml; charset=utf-8",
        &render_request(&AgentRequest::new(action)),
    )
    .await;
    assert_eq!(status, 200, "AgentXML answered {status}: {body}");
    parse_response(body.as_bytes())
        .expect("a well-formed SASResponse")
        .response
}

async fn redeem(addr: &str, code: &str) -> AgentResponse {
    agentxml(
        addr,
        AgentAction::Provision {
            username: "alice".into(),
            code: ProvisionCode::new(code),
            device: DeviceInfo::default(),
        },
    )
    .await
}

async fn download(addr: &str, id: &ProvisionId) -> swivel_provision::SecurityStrings {
    match agentxml(addr, AgentAction::SecurityStrings { id: id.clone() }).await {
        AgentResponse::Strings { strings, .. } => {
            for i in 0..100 {
                let s = strings.get(i).expect("100 strings");
                assert!(s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()));
            }
            assert!(strings.get(100).is_none());
            strings
        }
        other => panic!("SecurityStrings from {addr} did not pass: {other:?}"),
    }
}

/// Logs alice in at `POST /login` with a one-time code; whether the page says it worked.
async fn login(addr: &str, otc: &str) -> bool {
    let (status, body) = post(
        addr,
        "/login",
        "application/x-www-form-urlencoded",
        &format!("username=alice&otc={otc}"),
    )
    .await;
    let ok = body.contains("Login successful. Welcome, alice.");
    let failed = body.contains("Login failed: wrong username or one-time code.");
    assert!(ok != failed, "unexpected /login answer ({status}): {body}");
    assert_eq!(status == 200, ok, "status {status} for login ok={ok}");
    ok
}

fn assert_invalid_code(answer: &AgentResponse, what: &str) {
    match answer {
        AgentResponse::Fail { error } => {
            // Uniform device errors (the default): a used code fails like any other.
            assert_eq!(error, "Provision Failure", "{what}");
        }
        other => panic!("{what}: expected FAIL Provision Failure, got {other:?}"),
    }
}

#[test]
fn two_provision_servers_on_one_database_share_codes_redeems_and_strings() {
    let test = "two_provision_servers_on_one_database_share_codes_redeems_and_strings";
    let Some(url) = common::url(test) else {
        return;
    };
    let Some(bin) = server_binary() else {
        assert!(
            !common::required(),
            "{test}: target/<profile>/provision-server is missing but \
             SWIVEL_REQUIRE_POSTGRES_TESTS=1; run `cargo build -p provision-server` first"
        );
        common::skipped(&format!(
            "build provision-server first (`cargo build -p provision-server`) ({test})"
        ));
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");

    // A fresh schema, dropped at the end even on panic (declared before the servers, so the
    // servers are killed first). The servers use the connection's default schema, so the
    // URL's `options=-csearch_path=...` puts every table of both into this schema.
    let schema = TestSchema::new(&url);
    rt.block_on(async {
        common::admin_client(&url)
            .await
            .batch_execute(&format!("CREATE SCHEMA {}", schema.name))
            .await
            .expect("create the test schema");
    });
    let database = url_in_schema(&url, &schema.name);

    let dir = tempfile::tempdir().expect("temp dir");
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));

    // A starts first: it creates the tables, the demo users (alice, PIN 1234) and a new
    // server key in its data directory.
    let a = Server::start(&bin, &dir_a, &database);
    assert!(
        a.output().contains("Created a new server key"),
        "{}",
        a.output()
    );
    // B gets a copy of A's key (mode 0600, or the server refuses it) in its own data
    // directory, so each server has its own outbox.
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir_b)
            .unwrap();
        let key_b = dir_b.join("server.key");
        std::fs::copy(dir_a.join("server.key"), &key_b).expect("copy server.key");
        std::fs::set_permissions(&key_b, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let b = Server::start(&bin, &dir_b, &database);
    assert_ne!(a.addr, b.addr);
    assert!(
        !b.output().contains("Created a new server key"),
        "B must use the copied key:\n{}",
        b.output()
    );
    assert!(
        b.output().contains("store: postgres"),
        "B is on PostgreSQL:\n{}",
        b.output()
    );

    let secrets: Vec<String> = rt.block_on(async {
        let mut secrets = Vec::new();
        // 1. Requested on A (A's data directory: the code lands in A's outbox) ...
        let out = a.command(&bin, &["reprovision", "alice"]).await;
        assert!(
            out.contains("Provision code sent to user \"alice\" at alice@example.com"),
            "{out}"
        );
        let code = latest_code(&a.data_dir, "alice");
        secrets.push(code.clone());
        assert!(outbox_files(&b.data_dir, "alice").is_empty());
        // ... redeemed on B.
        let first_id = match redeem(&b.addr, &code).await {
            AgentResponse::Provisioned { id } => id,
            other => panic!("B did not redeem A's code: {other:?}"),
        };
        // Spent for both.
        assert_invalid_code(&redeem(&a.addr, &code).await, "A, the code B redeemed");
        assert_invalid_code(&redeem(&b.addr, &code).await, "B, the code B redeemed");

        // 2. A fresh code, requested this time on B, redeemed 32 times at once, 16 on each.
        b.command(&bin, &["reprovision", "alice"]).await;
        let code = latest_code(&b.data_dir, "alice");
        secrets.push(code.clone());
        let mut tasks = Vec::new();
        for i in 0..REDEEMS {
            let addr = if i % 2 == 0 {
                a.addr.clone()
            } else {
                b.addr.clone()
            };
            let code = code.clone();
            tasks.push(tokio::spawn(async move { redeem(&addr, &code).await }));
        }
        let mut wins = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.expect("redeem task") {
                AgentResponse::Provisioned { id } => wins.push(id),
                other => assert_invalid_code(&other, &format!("redeem {i} of {REDEEMS}")),
            }
        }
        assert_eq!(wins.len(), 1, "exactly one of {REDEEMS} redeems wins");
        let id = wins.pop().unwrap();
        // The servers' tables are in the test schema (the URL's search_path took effect).
        let rows: i64 = common::admin_client(&url)
            .await
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.records WHERE username = 'alice'",
                    schema.name
                ),
                &[],
            )
            .await
            .expect("alice's record in the test schema")
            .get(0);
        assert_eq!(rows, 1);
        // The device from step 1 is replaced on both servers.
        for addr in [&a.addr, &b.addr] {
            match agentxml(
                addr,
                AgentAction::SecurityStrings {
                    id: first_id.clone(),
                },
            )
            .await
            {
                AgentResponse::Fail { error } => assert_eq!(
                    error,
                    "Mobile request from unknown user; the user needs to reprovision"
                ),
                other => panic!("{addr} still serves the replaced device: {other:?}"),
            }
        }

        // 3. Each download makes a new generation, so the two downloads are not equal
        // byte for byte. What shows that both servers derive the same strings from the
        // shared state (records in PostgreSQL, one key) is that each server accepts the
        // strings the other one handed out: a one-time code from A's set logs in on B,
        // then one from B's (next) set logs in on A. A server computing its strings from
        // anything of its own would refuse them. The PIN check uses alice's PIN, stored
        // encrypted in the database under the shared key.
        let pin = Pin::parse(ALICE_PIN).unwrap();
        let from_a = download(&a.addr, &id).await;
        let otc = one_time_code(from_a.get(6).unwrap(), &pin, 6).unwrap();
        assert!(
            login(&b.addr, &otc).await,
            "B accepts a code from A's strings"
        );
        // The index is spent for both servers.
        assert!(!login(&a.addr, &otc).await, "A refuses the replay");
        assert!(!login(&b.addr, &otc).await, "B refuses the replay");

        let from_b = download(&b.addr, &id).await;
        assert_ne!(from_a.to_wire(), from_b.to_wire(), "a new generation");
        let otc = one_time_code(from_b.get(7).unwrap(), &pin, 7).unwrap();
        assert!(
            login(&a.addr, &otc).await,
            "A accepts a code from B's strings"
        );
        assert!(!login(&b.addr, &otc).await, "B refuses the replay");

        secrets.push(first_id.expose().to_owned());
        secrets.push(id.expose().to_owned());
        secrets.push(from_a.get(0).unwrap().to_owned());
        secrets.push(from_b.get(0).unwrap().to_owned());
        secrets
    });

    // No secret reached either server's output (the codes went out through the command
    // processes, so a server has no reason to print any of them). One-time codes are left
    // out: six digits may well appear in a log line's timestamp.
    for server in [&a, &b] {
        let output = server.output();
        for secret in &secrets {
            assert!(
                !output.contains(secret.as_str()),
                "a secret in the server's output"
            );
        }
    }
    drop(rt);
}
