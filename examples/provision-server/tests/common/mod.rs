//! Shared helpers of the integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod browser;
pub mod fixture;
pub mod forwarder;
pub mod oneshot;
pub mod pki;
pub mod postgres;

pub const SERVER: &str = env!("CARGO_BIN_EXE_provision-server");
pub const PASSWORD: &str = "console password for tests";

/// A running `provision-server`; killed on drop (also when a test panics).
pub struct ServerProcess {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    output: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Sets the console password, starts the server with `--demo` on a free port and waits
    /// for its "listening on" line.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Like [`ServerProcess::start`], with more arguments (e.g. `--config FILE`, TLS files).
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        let status = Command::new(SERVER)
            .args(["--data-dir"])
            .arg(data_dir)
            .args(["admin", "password", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{PASSWORD}\n").as_bytes())?;
                c.wait()
            })
            .expect("run admin password");
        assert!(status.success(), "admin password failed");
        let mut child = Command::new(SERVER)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--demo", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start provision-server");
        let stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let out = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Record the line before announcing the URL, so that whoever waits for the
                // URL also sees the line that carried it.
                {
                    let mut o = out.lock().unwrap();
                    o.push_str(&line);
                    o.push('\n');
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let mut server = Self {
            child,
            url: String::new(),
            data_dir: data_dir.to_owned(),
            output,
        };
        server.url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start; output:\n{}", server.output()));
        server
    }

    /// Everything the server printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Runs a subcommand against the same data directory.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        let listen = self
            .url
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        Command::new(SERVER)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", listen])
            .args(args)
            .output()
            .expect("run provision-server command")
    }

    /// Waits until the server's output contains `text`.
    pub fn wait_for_output(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.output().contains(text) {
            assert!(
                Instant::now() < deadline,
                "server never printed {text:?}; output:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl ServerProcess {
    /// `host:port` the server listens on.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_owned()
    }

    /// Sends SIGTERM (with `kill`, no libc).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Sends SIGKILL and waits for the process to end (its output stays readable).
    pub fn kill(&mut self) {
        self.child.kill().expect("kill provision-server");
        self.child.wait().expect("wait for provision-server");
    }

    /// The exit status once the process has ended, or `None` if it still runs after
    /// `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for provision-server") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provision code of the newest outbox message for `user`.
pub fn latest_code(data_dir: &Path, user: &str) -> (String, String) {
    let dir = data_dir.join("outbox");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("outbox exists")
        .map(|e| e.unwrap().path())
        .filter(|p| outbox_file_user(p) == Some(user))
        .collect();
    files.sort();
    // The newest message with a code (a device-bound notice carries none).
    let text = files
        .iter()
        .rev()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .find(|t| t.contains("Provision code:"))
        .expect("a message with a code for the user");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    (field("Provision code:"), field("Provision URL:"))
}

/// The user an outbox file is for: `<ms>-<user>.txt`, or `<ms>-<user>-<job id>.txt` for a
/// message of the durable queue (usernames of the tests have no `-`).
pub fn outbox_file_user(path: &Path) -> Option<&str> {
    let stem = path.file_name()?.to_str()?.strip_suffix(".txt")?;
    let mut parts = stem.split('-');
    let (_ms, user) = (parts.next()?, parts.next()?);
    match parts.next() {
        None => Some(user),
        Some(id) if id.len() == 32 && parts.next().is_none() => Some(user),
        Some(_) => None,
    }
}

/// Every outbox file of `data_dir` (none when there is no outbox).
pub fn outbox_files(data_dir: &Path) -> Vec<PathBuf> {
    // Message files only: `.txt`, not the hidden temporary one a message is written to first.
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir.join("outbox"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "txt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// A private data directory `dir/name` holding a copy of `key` (instances of a cluster
/// share the server key).
pub fn data_dir_with_key(dir: &Path, name: &str, key: &Path) -> PathBuf {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let data = dir.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&data)
        .unwrap();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(data.join("server.key"))
        .unwrap();
    std::io::Write::write_all(&mut file, &std::fs::read(key).unwrap()).unwrap();
    data
}

/// Runs the built binary's subcommand `args` on `data_dir`: whether it succeeded, its
/// stdout and its stderr.
pub fn run_cli(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(SERVER)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run provision-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits (polling every 100 ms) until `done`, failing the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A JSON API call: `method path` on `addr` with the bearer `token` and the JSON `body`;
/// the status and the body (panics on an I/O error).
pub fn api_json(addr: &str, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let auth = format!("Authorization: Bearer {token}");
    http_call(
        addr,
        method,
        path,
        &[&auth, "Content-Type: application/json"],
        body,
        Duration::from_secs(10),
    )
    .unwrap()
}

/// Posts the `/login` form of a running server (username and one-time code) with `client`
/// and returns the page.
pub fn login_with(client: reqwest::Client, server: &str, user: &str, otc: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        client
            .post(format!("{server}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("username={user}&otc={otc}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

/// `GET path` on `addr` (`host:port`) over a fresh HTTP/1.1 connection: the status and the
/// body, or the I/O error (each read and write may take `limit`).
pub fn http_get(addr: &str, path: &str, limit: Duration) -> std::io::Result<(u16, String)> {
    http_call(addr, "GET", path, &[], "", limit)
}

/// `method path` on `addr` with a bearer token over a fresh HTTP/1.1 connection: the status
/// and the body, or the I/O error.
pub fn http_bearer(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    limit: Duration,
) -> std::io::Result<(u16, String)> {
    let auth = format!("Authorization: Bearer {token}");
    http_call(addr, method, path, &[&auth], "", limit)
}

/// `method path` on `addr` with the extra header lines and the body, over a fresh HTTP/1.1
/// connection that closes after the answer: the status and the body, or the I/O error
/// (each read and write may take `limit`).
pub fn http_call(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
    limit: Duration,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    write!(
        stream,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Runs `mobile-client --state STATE ARGS...`: the built binary next to `provision-server`
/// when there is one (`cargo test --workspace` builds it), else `mobile_client::run`
/// in-process (and says so). Returns (success, stdout, stderr or the error).
pub fn mobile(state: &Path, args: &[&str]) -> (bool, String, String) {
    let mut full = vec!["--state".to_owned(), state.display().to_string()];
    full.extend(args.iter().map(|s| (*s).to_owned()));
    let bin = PathBuf::from(SERVER)
        .with_file_name(format!("mobile-client{}", std::env::consts::EXE_SUFFIX));
    if bin.exists() {
        let out = Command::new(bin)
            .args(&full)
            .output()
            .expect("run mobile-client");
        return (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
    }
    eprintln!(
        "NOTE: target/debug/mobile-client is not built; running mobile_client::run in-process (`cargo test --workspace` or `cargo build -p mobile-client` builds it)"
    );
    use clap::Parser;
    let mut argv = vec!["mobile-client".to_owned()];
    argv.extend(full);
    let cli = mobile_client::Cli::parse_from(argv);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = Vec::new();
    let result = rt.block_on(mobile_client::run(cli, &mut out));
    let stdout = String::from_utf8(out).unwrap();
    match result {
        Ok(()) => (true, stdout, String::new()),
        Err(e) => (false, stdout, e.to_string()),
    }
}
