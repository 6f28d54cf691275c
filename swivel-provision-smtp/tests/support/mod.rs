//! Test kit: a Python venv with aiosmtpd, a real SMTP server on loopback
//! (`tests/smtp_server.py`), a test CA, and the messages the server received.

#![allow(dead_code, unreachable_pub)]

pub mod pki;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;

/// Environment variable that turns a skip into a failure (CI sets it).
pub const REQUIRE_VAR: &str = "SWIVEL_REQUIRE_SMTP_TESTS";

/// Environment variable naming the venv directory (default `target/tmp/smtp-test-venv`).
pub const VENV_VAR: &str = "SWIVEL_SMTP_TEST_VENV";

/// What pip installs into the test venv.
const AIOSMTPD: &str = "aiosmtpd>=1.4,<2";

static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The venv's Python with aiosmtpd, creating the venv on first use (once per process;
/// reused across runs). `None` after printing `SKIPPED: <why>` when Python or pip fails,
/// unless `SWIVEL_REQUIRE_SMTP_TESTS=1`, which makes it panic instead.
pub fn python(test: &str) -> Option<PathBuf> {
    match PYTHON.get_or_init(setup_venv) {
        Ok(python) => Some(python.clone()),
        Err(why) => {
            if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
                panic!("{test}: the SMTP test server is required ({REQUIRE_VAR}=1) but: {why}");
            }
            // Written to the stderr handle, not with eprintln!: the test harness captures
            // the print macros of passing tests, and a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {test}: {why} (set {REQUIRE_VAR}=1 to make this a failure)"
            );
            None
        }
    }
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn has_aiosmtpd(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", "import aiosmtpd.controller"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn setup_venv() -> Result<PathBuf, String> {
    let venv = match std::env::var_os(VENV_VAR) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("smtp-test-venv"),
    };
    let base = venv.parent().unwrap_or(Path::new("."));
    let python = venv_python(&venv);
    if has_aiosmtpd(&python) {
        return Ok(python);
    }
    let python3 = std::env::var("PYTHON3").unwrap_or_else(|_| "python3".to_owned());
    run(Command::new(&python3).arg("--version"), "python3 --version")
        .map_err(|e| format!("python3 is not available ({e})"))?;

    // Build in a private directory, then rename: concurrent test processes never use a
    // half-built venv.
    let tmp = base.join(format!(".smtp-test-venv.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    eprintln!(
        "creating the SMTP test venv in {} (pip install {AIOSMTPD})",
        venv.display()
    );
    run(
        Command::new(&python3).args(["-m", "venv"]).arg(&tmp),
        "python3 -m venv",
    )?;
    run(
        Command::new(venv_python(&tmp)).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            AIOSMTPD,
        ]),
        "pip install aiosmtpd",
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&tmp);
    })?;
    if std::fs::rename(&tmp, &venv).is_err() {
        // Another process won the race, or a broken venv is in the way.
        if !has_aiosmtpd(&python) {
            let _ = std::fs::remove_dir_all(&venv);
            std::fs::rename(&tmp, &venv)
                .map_err(|e| format!("cannot move the venv into {}: {e}", venv.display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    if has_aiosmtpd(&python) {
        Ok(python)
    } else {
        Err(format!(
            "aiosmtpd is not importable from {}",
            python.display()
        ))
    }
}

/// Port 1 on loopback (tcpmux): nothing listens there, and unlike a port released by another
/// test, no test server can be given it.
pub const CLOSED_PORT: u16 = 1;

/// A free port on 127.0.0.1 for a test server to listen on (bound, then released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// How to run the test server.
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// Offer and require STARTTLS with the test PKI's leaf certificate.
    pub starttls: bool,
    /// Implicit TLS with the test PKI's leaf certificate.
    pub implicit_tls: bool,
    /// Require AUTH with these credentials.
    pub auth: Option<(String, String)>,
    /// Answer 451 to recipients in this domain.
    pub tempfail_domain: Option<String>,
    /// Answer 550 to recipients in this domain.
    pub permfail_domain: Option<String>,
    /// Answer 554 to DATA, quoting the body's "Provision code" line.
    pub echo_reject: bool,
}

/// A running `tests/smtp_server.py`; stopped when dropped.
pub struct Server {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// The test PKI (CA and leaf for localhost / 127.0.0.1).
    pub pki: pki::TestPki,
    mail_dir: PathBuf,
    _dir: TempDir,
}

impl Server {
    /// Starts the server and waits until it accepts connections.
    pub fn start(python: &Path, options: &ServerOptions) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki::TestPki::generate(dir.path());
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut last_error = String::new();
        // The port is free when picked; retry in the unlikely case someone takes it first.
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = Command::new(python);
            cmd.arg("-u")
                .arg(&script)
                .arg(port.to_string())
                .arg(&mail_dir);
            let (cert, key) = (pki.leaf_cert.clone(), pki.leaf_key.clone());
            if options.starttls {
                cmd.arg("--starttls").arg(&cert).arg(&key);
            }
            if options.implicit_tls {
                cmd.arg("--implicit-tls").arg(&cert).arg(&key);
            }
            if let Some((user, password)) = &options.auth {
                cmd.args(["--auth", user, password]);
            }
            if let Some(d) = &options.tempfail_domain {
                cmd.args(["--tempfail-domain", d]);
            }
            if let Some(d) = &options.permfail_domain {
                cmd.args(["--permfail-domain", d]);
            }
            if options.echo_reject {
                cmd.arg("--echo-reject");
            }
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn the SMTP test server");
            let mut line = String::new();
            let mut stdout = BufReader::new(child.stdout.take().unwrap());
            let _ = stdout.read_line(&mut line);
            if line.trim() == "READY" {
                return Server {
                    child,
                    port,
                    pki,
                    mail_dir,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let status = child.wait();
            last_error = format!("server on port {port} did not start ({status:?}): {line:?}");
        }
        panic!("{last_error}");
    }

    /// The messages received so far, in no particular order.
    pub fn received(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.mail_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "eml") {
                let raw = std::fs::read(&path).unwrap();
                let meta: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap())
                        .unwrap();
                out.push(Received { raw, meta });
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One received message: the raw RFC 5322 bytes and the envelope the server saw.
pub struct Received {
    /// The message as received.
    pub raw: Vec<u8>,
    /// `{"mail_from", "rcpt_tos", "tls", "auth_mechanism", "auth_login"}`.
    pub meta: serde_json::Value,
}
