//! Several OS processes on one file: exactly-once redeem between two processes, and a
//! process killed with SIGKILL in the middle of provisioning.
//!
//! The test binary runs itself as the child: `child_process_entry` does nothing unless
//! `SWIVEL_SQLITE_CHILD` is set.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use swivel_provision::testing::RecordingTransport;
use swivel_provision::{
    Channel, CodeStore, Delivery, Destination, DeviceInfo, Origin, ProvisionCode, ProvisionRecord,
    Provisioner, ServerKey, UserAdmin, UserEntry, Username,
};
use swivel_provision_sqlite::SqliteStore;

const CHILD: &str = "SWIVEL_SQLITE_CHILD";
const ROUNDS: usize = 20;
const KEY: [u8; 32] = [7; 32];
/// Concurrent writers in the child that gets killed.
const LANES: usize = 64;

fn provisioner(store: &SqliteStore) -> (Provisioner, Arc<RecordingTransport>) {
    let outbox = Arc::new(RecordingTransport::new());
    let p = Provisioner::builder()
        .store(Arc::new(store.clone()))
        .users(Arc::new(store.clone()))
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::from_bytes(KEY))
        .delivery(Delivery::Direct)
        .build()
        .expect("provisioner");
    (p, outbox)
}

fn entry(name: &str) -> UserEntry {
    UserEntry::new(Username::parse(name).expect("valid"))
        .with_destination(Destination::email("user@example.com").expect("valid"))
        .with_mobile_group(true)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn spawn_child(role: &str, envs: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, role)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The child's side. Does nothing in an ordinary test run.
#[test]
fn child_process_entry() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"));
    let db = PathBuf::from(env("DB"));
    let rt = runtime();
    let mut out = std::io::stdout();
    match role.as_str() {
        "redeem" => rt.block_on(async {
            let store = SqliteStore::open(&db).await.expect("child open");
            let (p, _) = provisioner(&store);
            let user = Username::parse(&env("USER_NAME")).unwrap();
            let code = ProvisionCode::new(&env("CODE"));
            std::fs::write(env("READY"), b"").unwrap();
            wait_for(Path::new(&env("GO")), "the start barrier");
            let line = match p.redeem(&user, &code, DeviceInfo::default()).await {
                Ok(_) => "RESULT won".to_owned(),
                Err(e) => format!("RESULT lost {}", e.public_message()),
            };
            writeln!(out, "{line}").unwrap();
            out.flush().unwrap();
        }),
        "provision-loop" => rt.block_on(async {
            let store = SqliteStore::open(&db).await.expect("child open");
            let (p, outbox) = provisioner(&store);
            let prefix = env("PREFIX");
            // LANES provisions in flight at a time, forever (until killed): their writes
            // share group commits, so the kill lands in the middle of one.
            let mut tasks = Vec::new();
            for lane in 0..LANES {
                let (p, outbox, store, prefix) =
                    (p.clone(), outbox.clone(), store.clone(), prefix.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0.. {
                        let name = format!("{prefix}-{lane}-{i}");
                        let user = Username::parse(&name).unwrap();
                        store.put_user(&entry(&name)).await.expect("put user");
                        p.request_provision(&user, Origin::Admin)
                            .await
                            .expect("request");
                        let code = outbox.last_code_for(&user).expect("code");
                        let id = p
                            .redeem(&user, &code, DeviceInfo::default())
                            .await
                            .expect("redeem");
                        let hash = p.server_key().id_hash(&id).to_hex();
                        // One write per line, so lines never interleave.
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "PROVISIONED {name} {hash}").unwrap();
                        out.flush().unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }),
        other => panic!("unknown child role {other}"),
    }
}

/// The text after `marker` in a line of the child's output (libtest may print its own
/// words before it on the same line).
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split_once(marker).map(|(_, rest)| rest)
}

fn result_line(child: Child) -> String {
    let output = child.wait_with_output().expect("child output");
    assert!(output.status.success(), "child failed: {:?}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| after(l, "RESULT ").map(str::to_owned))
        .unwrap_or_else(|| panic!("child printed no result: {stdout}"))
}

#[test]
fn two_processes_redeem_one_code_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("race.db");
    let rt = runtime();
    let store = rt.block_on(SqliteStore::open(&db)).expect("open");
    let (p, outbox) = provisioner(&store);
    let user = Username::parse("racer").unwrap();
    rt.block_on(store.put_user(&entry("racer"))).unwrap();
    let mut lost_words = Vec::new();
    for round in 0..ROUNDS {
        rt.block_on(p.request_provision(&user, Origin::Admin))
            .expect("request");
        let code = outbox.last_code_for(&user).expect("code");
        let go = dir.path().join(format!("go-{round}"));
        let children: Vec<Child> = (0..2)
            .map(|n| {
                let ready = dir.path().join(format!("ready-{round}-{n}"));
                spawn_child(
                    "redeem",
                    &[
                        ("DB", db.to_str().unwrap()),
                        ("USER_NAME", "racer"),
                        ("CODE", code.expose()),
                        ("READY", ready.to_str().unwrap()),
                        ("GO", go.to_str().unwrap()),
                    ],
                )
            })
            .collect();
        for n in 0..2 {
            wait_for(
                &dir.path().join(format!("ready-{round}-{n}")),
                "children to be ready",
            );
        }
        std::fs::write(&go, b"").unwrap();
        let results: Vec<String> = children.into_iter().map(result_line).collect();
        let winners = results.iter().filter(|r| *r == "won").count();
        assert_eq!(
            winners, 1,
            "round {round}: exactly one process wins, got {results:?}"
        );
        lost_words.extend(results.into_iter().filter(|r| r != "won"));
        // The winner's device is stored.
        let record = rt.block_on(store.load(&user)).unwrap().expect("record");
        assert!(
            record.device.is_some() && record.pending.is_none(),
            "round {round}"
        );
    }
    assert!(
        lost_words.iter().all(|w| w == "lost Provision Failure"),
        "the loser is told what every failure is told (uniform device errors): {lost_words:?}"
    );
}

#[test]
fn a_process_killed_mid_provisioning_leaves_a_sound_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crash.db");
    let rt = runtime();
    drop(rt.block_on(SqliteStore::open(&db)).expect("create"));
    let mut reported: Vec<(String, String)> = Vec::new();
    for kill in 0..3 {
        let prefix = format!("crash{kill}");
        let mut child = spawn_child(
            "provision-loop",
            &[("DB", db.to_str().unwrap()), ("PREFIX", &prefix)],
        );
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut seen = 0;
        while seen < 25 + 10 * kill {
            let line = lines
                .next()
                .expect("child still running")
                .expect("utf-8 line");
            if let Some(rest) = after(&line, "PROVISIONED ") {
                let (name, hash) = rest.split_once(' ').expect("name and hash");
                reported.push((name.to_owned(), hash.to_owned()));
                seen += 1;
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        // Lines already in the pipe were answered before the kill: they count too.
        for line in lines {
            let line = line.expect("line");
            if let Some(rest) = after(&line, "PROVISIONED ") {
                let (name, hash) = rest.split_once(' ').expect("name and hash");
                reported.push((name.to_owned(), hash.to_owned()));
            }
        }
        check_file(&db, &reported, &rt);
    }
    assert!(
        reported.len() >= 25 + 35 + 45 - 3,
        "all reported provisions were checked"
    );
}

fn check_file(db: &Path, reported: &[(String, String)], rt: &tokio::runtime::Runtime) {
    // The raw file: integrity, and every row is a whole record consistent with its columns.
    let conn = rusqlite::Connection::open(db).expect("open raw");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare("SELECT username, version, body, device_id_hash FROM records")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .unwrap();
    let mut count = 0;
    for row in rows {
        let (username, version, body, device) = row.unwrap();
        let record = ProvisionRecord::from_json(&body).expect("every record parses");
        assert_eq!(record.username.as_str(), username);
        assert_eq!(record.version as i64, version);
        assert_eq!(record.device_id_hash().map(|h| h.to_hex()), device);
        count += 1;
    }
    assert!(count > 0);
    drop(stmt);
    drop(conn);
    // Every redeem that answered success is there, with its device.
    let store = rt
        .block_on(SqliteStore::open(db))
        .expect("reopen after the kill");
    for (name, hash) in reported {
        let user = Username::parse(name).unwrap();
        let record = rt
            .block_on(store.load(&user))
            .unwrap()
            .unwrap_or_else(|| panic!("{name} lost"));
        let device = record
            .device
            .unwrap_or_else(|| panic!("{name}: device lost"));
        assert_eq!(
            &device.id_hash.to_hex(),
            hash,
            "{name}: the reported device"
        );
    }
}
