//! The SMPP backend against a real SMPP server on loopback: the npm package `smpp` running
//! `tests/smpp_server.js`. The setup installs the package once (into the cargo target's
//! tmp dir) with `npm install`.
//!
//! Without node/npm, or when the install fails, the tests that need the server print
//! `SKIPPED: <why>` to stderr and pass — unless `SWIVEL_REQUIRE_SMS_TESTS=1`, when they
//! fail.

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{CODE, LINK, assert_no_secrets, closed_port, default_text, message};
use serde_json::Value;
use swivel_provision::Transport;
use swivel_provision_sms::{SmsConfig, SmsOptions, SmsTransport};

const SMPP_NPM_VERSION: &str = "0.5.1";
const SYSTEM_ID: &str = "swivel";
const PASSWORD: &str = "s3cr3t";
const TO: &str = "+15551234567";
const INVALID_DEST: &str = "+15550000001";
const THROTTLED_DEST: &str = "+15550000002";
const QUEUE_FULL_DEST: &str = "+15550000003";
const DROP_AFTER_DEST: &str = "+15550000009";

static NPM_SMPP: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn run(cmd: &mut Command) -> Result<std::process::Output, String> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))
}

/// Installs `smpp@SMPP_NPM_VERSION` once under the cargo target's tmp dir (reused when
/// present) and returns its `node_modules` directory.
fn install_smpp() -> Result<PathBuf, String> {
    let node = run(Command::new("node").arg("--version"))?;
    if !node.status.success() {
        return Err("`node --version` failed".into());
    }
    let npm = run(Command::new("npm").arg("--version"))?;
    if !npm.status.success() {
        return Err("`npm --version` failed".into());
    }
    let base =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("npm-smpp-{SMPP_NPM_VERSION}"));
    let modules = base.join("node_modules");
    if modules.join("smpp").join("package.json").is_file() {
        return Ok(modules);
    }
    // Install into a private directory, then move it into place, so that a concurrent or
    // interrupted run never sees a half-installed package.
    let staging = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "npm-smpp-{SMPP_NPM_VERSION}.tmp{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| format!("cannot create {staging:?}: {e}"))?;
    let out = run(Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(&staging)
        .args(["--no-audit", "--no-fund", "--no-save", "--loglevel=error"])
        .arg(format!("smpp@{SMPP_NPM_VERSION}")))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(format!(
            "`npm install smpp@{SMPP_NPM_VERSION}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    if std::fs::rename(&staging, &base).is_err() {
        // Another run got there first.
        let _ = std::fs::remove_dir_all(&staging);
    }
    if modules.join("smpp").join("package.json").is_file() {
        Ok(modules)
    } else {
        Err(format!("npm installed no smpp package under {modules:?}"))
    }
}

/// The installed package, or `None` after printing why the test is skipped.
fn smpp_modules() -> Option<PathBuf> {
    match NPM_SMPP.get_or_init(install_smpp) {
        Ok(p) => Some(p.clone()),
        Err(why) => {
            if std::env::var("SWIVEL_REQUIRE_SMS_TESTS").as_deref() == Ok("1") {
                panic!("SMPP server tests required (SWIVEL_REQUIRE_SMS_TESTS=1) but: {why}");
            }
            // Straight to the process's stderr: libtest captures `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: SMPP server test needs node and the npm package smpp: {why}"
            );
            None
        }
    }
}

/// The JS SMSC stand-in, running; killed on drop.
struct Smsc {
    child: Child,
    port: u16,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Smsc {
    fn start(modules: &PathBuf) -> Smsc {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("smpp_server.js");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["0", SYSTEM_ID, PASSWORD])
            .env("NODE_PATH", modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    eprintln!("smpp_server.js: {line}");
                    continue;
                };
                if event["event"] == "listening" {
                    let _ = port_tx.send(event["port"].as_u64().unwrap() as u16);
                } else {
                    sink.lock().unwrap().push(event);
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("smpp_server.js reports its port");
        Smsc {
            child,
            port,
            events,
        }
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect()
    }

    /// Waits (at most 30 s) until `n` events of `kind` have been seen; panics with every
    /// event seen so far when they do not come.
    async fn wait_for(&self, kind: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.events(kind);
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "waited 30 s for {n} `{kind}` events; the SMSC reported: {:?}",
                self.events.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Smsc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn transport(port: u16, password: &str, text: Option<&str>) -> SmsTransport {
    SmsTransport::new(SmsConfig::Smpp {
        host: "127.0.0.1".into(),
        port,
        system_id: SYSTEM_ID.into(),
        password: password.to_owned().into(),
        system_type: String::new(),
        source_addr: "Swivel".into(),
        source_addr_ton: None,
        source_addr_npi: None,
        options: SmsOptions {
            // Generous: a node process that just started on a busy machine can be slow to
            // answer its first bind. The tests that expect errors get them at once.
            timeout_secs: 30,
            text: text.map(str::to_owned),
        },
    })
    .expect("valid smpp config")
}

#[tokio::test]
async fn right_credentials_deliver_gsm7_text_to_the_destination() {
    let Some(modules) = smpp_modules() else {
        return;
    };
    let smsc = Smsc::start(&modules);
    let sms = transport(smsc.port, PASSWORD, None);

    sms.deliver(&message(TO)).await.expect("delivered");

    let binds = smsc.wait_for("bind", 1).await;
    assert_eq!(binds[0]["system_id"], SYSTEM_ID);
    assert_eq!(binds[0]["status"], 0);
    let submits = smsc.wait_for("submit_sm", 1).await;
    assert_eq!(submits.len(), 1);
    let s = &submits[0];
    assert_eq!(s["destination_addr"], "15551234567");
    assert_eq!(s["dest_addr_ton"], 1, "international");
    assert_eq!(s["dest_addr_npi"], 1, "ISDN");
    assert_eq!(s["source_addr"], "Swivel");
    assert_eq!(s["source_addr_ton"], 5, "alphanumeric");
    assert_eq!(s["data_coding"], 0, "GSM default alphabet");
    // The server decodes data_coding 0 as GSM 03.38: the `_` in the link only survives
    // if it was sent as the GSM code 0x11, not as ASCII.
    assert_eq!(s["message"], default_text());
    sms.close().await;
}

#[tokio::test]
async fn non_gsm_text_goes_as_ucs2() {
    let Some(modules) = smpp_modules() else {
        return;
    };
    let smsc = Smsc::start(&modules);
    let sms = transport(smsc.port, PASSWORD, Some("Kod: {code} — łódź 🙂"));
    sms.deliver(&message(TO)).await.expect("delivered");
    let submits = smsc.wait_for("submit_sm", 1).await;
    assert_eq!(submits[0]["data_coding"], 8);
    assert_eq!(submits[0]["message"], format!("Kod: {CODE} — łódź 🙂"));
    sms.close().await;
}

#[tokio::test]
async fn wrong_credentials_are_permanent() {
    let Some(modules) = smpp_modules() else {
        return;
    };
    let smsc = Smsc::start(&modules);

    let sms = transport(smsc.port, "wrongpw", None);
    let err = sms.deliver(&message(TO)).await.expect_err("bind refused");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("ESME_RINVPASWD"), "{err}");
    assert!(!err.to_string().contains("wrongpw"), "{err}");
    assert_no_secrets(&err);

    let sms = SmsTransport::new(SmsConfig::Smpp {
        host: "127.0.0.1".into(),
        port: smsc.port,
        system_id: "intruder".into(),
        password: PASSWORD.to_owned().into(),
        system_type: String::new(),
        source_addr: "+15005550006".into(),
        source_addr_ton: None,
        source_addr_npi: None,
        options: SmsOptions::default(),
    })
    .unwrap();
    let err = sms.deliver(&message(TO)).await.expect_err("bind refused");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("ESME_RINVSYSID"), "{err}");

    let binds = smsc.wait_for("bind", 2).await;
    assert_eq!(binds.len(), 2);
    assert!(
        smsc.events("submit_sm").is_empty(),
        "nothing submitted without a bind"
    );
}

#[tokio::test]
async fn invalid_destination_is_permanent_and_the_bind_stays_usable() {
    let Some(modules) = smpp_modules() else {
        return;
    };
    let smsc = Smsc::start(&modules);
    let sms = transport(smsc.port, PASSWORD, None);

    let err = sms
        .deliver(&message(INVALID_DEST))
        .await
        .expect_err("refused");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("ESME_RINVDSTADR"), "{err}");
    assert!(err.to_string().contains(INVALID_DEST), "{err}");
    assert_no_secrets(&err);

    sms.deliver(&message(TO))
        .await
        .expect("next message goes through");
    assert_eq!(smsc.wait_for("submit_sm", 2).await.len(), 2);
    assert_eq!(smsc.events("bind").len(), 1, "one bind for both messages");
    sms.close().await;
}

#[tokio::test]
async fn throttling_and_full_queue_are_transient() {
    let Some(modules) = smpp_modules() else {
        return;
    };
    let smsc = Smsc::start(&modules);
    let sms = transport(smsc.port, PASSWORD, None);
    for (to, status) in [
        (THROTTLED_DEST, "ESME_RTHROTTLED"),
        (QUEUE_FULL_DEST, "ESME_RMSGQFUL"),
    ] {
        let err = sms
            .deliver(&message(to))
            .await
            .expect_err("refused for now");
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains(status), "{err}");
        assert_no_secrets(&err);
    }
    sms.close().await;
}

#[tokio::test]
async fn a_dropped_bind_is_established_again() {
    let Some(modules) = smpp_modules() else {
        return;
    };
    let smsc = Smsc::start(&modules);
    let sms = transport(smsc.port, PASSWORD, None);

    // The server answers this one, then drops the connection.
    sms.deliver(&message(DROP_AFTER_DEST))
        .await
        .expect("first delivered");
    assert_eq!(
        smsc.wait_for("dropped", 1).await.len(),
        1,
        "server dropped the session"
    );
    sms.deliver(&message(TO))
        .await
        .expect("second delivered on a new bind");

    let submits = smsc.wait_for("submit_sm", 2).await;
    let ok: Vec<_> = submits.iter().filter(|s| s["status"] == 0).collect();
    assert_eq!(ok.len(), 2, "{submits:?}");
    assert_eq!(ok[1]["destination_addr"], "15551234567");
    assert_eq!(
        smsc.wait_for("bind", 2).await.len(),
        2,
        "bound again after the drop"
    );
    sms.close().await;
}

#[tokio::test]
async fn close_unbinds_and_the_next_message_binds_again() {
    let Some(modules) = smpp_modules() else {
        return;
    };
    let smsc = Smsc::start(&modules);
    let sms = transport(smsc.port, PASSWORD, None);
    sms.deliver(&message(TO)).await.expect("delivered");
    sms.close().await;
    assert_eq!(smsc.wait_for("unbind", 1).await.len(), 1);
    sms.deliver(&message(TO))
        .await
        .expect("delivered after close");
    assert_eq!(smsc.wait_for("bind", 2).await.len(), 2);
    sms.close().await;
    assert_eq!(smsc.wait_for("unbind", 2).await.len(), 2);
}

// These two need no SMPP server.

#[tokio::test]
async fn server_not_listening_is_transient() {
    let sms = transport(closed_port(), PASSWORD, None);
    let err = sms
        .deliver(&message(TO))
        .await
        .expect_err("nothing listens");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert_no_secrets(&err);
}

#[tokio::test]
async fn bad_number_is_refused_before_connecting() {
    // Nothing listens: a connection attempt would give a transient error instead.
    let sms = transport(closed_port(), PASSWORD, None);
    let err = sms
        .deliver(&message("+0044 20 7946"))
        .await
        .expect_err("not E.164");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("+0044 20 7946"), "{err}");
    assert!(!err.to_string().contains(LINK));
}
