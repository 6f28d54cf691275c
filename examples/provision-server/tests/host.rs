//! Process-level tests of the host's protections with the built `provision-server`:
//! half-open connections closed after the header timeout while a normal request is served,
//! the connection cap, no outbox fallback for a channel without a transport, private file
//! modes, and one server per SQLite database.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{SERVER, ServerProcess};

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Reads until the peer closes; `Err` if it is still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<String, String> {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&got).into_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&got).into_owned());
            }
            Err(_) if Instant::now() < deadline => {}
            Err(e) => return Err(format!("still open after {limit:?}: {e}")),
        }
    }
}

/// Whether the peer has already closed `stream` (without waiting).
fn closed_now(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    let closed = match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

#[test]
fn half_open_connections_are_closed_and_the_cap_lets_a_normal_request_through() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[connections]\nheader_timeout_secs = 1\nidle_timeout_secs = 30\nmax_connections = 2\n",
    );
    let server = ServerProcess::start_with(&dir.path().join("data"), &["--config", &config]);
    let addr = addr(&server.url);

    // Two connections take both slots: one sends part of its headers, one sends nothing.
    let mut partial = TcpStream::connect(&addr).unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut silent = TcpStream::connect(&addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    // A normal request waits for a slot, and is served once the header timeout frees one.
    let mut normal = TcpStream::connect(&addr).unwrap();
    normal
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut normal, Duration::from_secs(20)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // It was served only after the server had closed one of the connections holding a slot.
    assert!(
        closed_now(&mut partial) || closed_now(&mut silent),
        "served while both slots were still taken: no cap"
    );

    // The half-open connections were closed by the server.
    let p = read_until_closed(&mut partial, Duration::from_secs(20));
    assert!(p.is_ok(), "partial headers: {p:?}");
    let s = read_until_closed(&mut silent, Duration::from_secs(20));
    assert!(s.is_ok(), "nothing sent: {s:?}");
}

#[test]
fn a_channel_without_a_transport_is_an_error_never_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        "[smtp]\nhost = \"127.0.0.1\"\nport = 1\nfrom = \"noreply@example.com\"\n",
    );
    let run = |args: &[&str]| {
        Command::new(SERVER)
            .arg("--data-dir")
            .arg(&data)
            .args(["--config", &config])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "users",
        "add",
        "bob",
        "--phone",
        "+15555550100",
        "--mobile-group",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["reprovision", "bob"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("No suitable transport for the user \"bob\""),
        "{stderr}"
    );
    assert!(!stdout.contains("Provision code"), "{stdout}");
    let outbox = data.join("outbox");
    let files = std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 0, "a message went to the outbox");
}

#[cfg(unix)]
#[test]
fn data_files_are_private_even_in_an_existing_directory() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = data.join("provision.sqlite");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let server = ServerProcess::start(&data);
    let out = server.command(&["reprovision", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&db), 0o600, "database");
    for companion in ["provision.sqlite-wal", "provision.sqlite-shm"] {
        let p = data.join(companion);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{companion}");
        }
    }
    assert_eq!(mode(&data.join("server.key")), 0o600);
    let outbox = data.join("outbox");
    assert_eq!(mode(&outbox), 0o700, "outbox dir");
    for file in std::fs::read_dir(&outbox).unwrap() {
        let path = file.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

#[test]
fn a_second_server_on_one_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _first = ServerProcess::start(&data);
    let mut second = Command::new(SERVER)
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second server kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("another provision-server is already serving the SQLite database"),
        "{stderr}"
    );
}

#[test]
fn under_tls_hsts_http1_and_a_silent_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, key.cert.pem()).unwrap();
    std::fs::write(&key_path, key.signing_key.serialize_pem()).unwrap();
    let config = write_config(dir.path(), "[connections]\nheader_timeout_secs = 1\n");
    let server = ServerProcess::start_with(
        &dir.path().join("data"),
        &[
            "--config",
            &config,
            "--tls-cert",
            &cert_path.display().to_string(),
            "--tls-key",
            &key_path.display().to_string(),
        ],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let mut silent = TcpStream::connect(server.url.trim_start_matches("https://")).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, version, hsts) = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let res = client
            .get(format!("{}/admin/login", server.url))
            .send()
            .await
            .unwrap();
        let hsts = res
            .headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status(), res.version(), hsts)
    });
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(version, reqwest::Version::HTTP_11);
    assert!(hsts.is_some_and(|v| v.starts_with("max-age=")));
    let s = read_until_closed(&mut silent, Duration::from_secs(20));
    assert!(s.is_ok(), "a silent TLS connection: {s:?}");
}

/// One request with a bearer token and a JSON body: the status and the body.
fn api_call(url: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let auth = format!("Authorization: Bearer {token}");
    common::http_call(
        &addr(url),
        method,
        path,
        &[&auth, "Content-Type: application/json"],
        body,
        Duration::from_secs(10),
    )
    .unwrap()
}

#[test]
fn a_memory_server_takes_its_api_token_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = "t0ken-from-a-mounted-secret-0123456789abcdef";
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start_with(
        &data,
        &[
            "--database",
            "memory",
            "--api-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let (status, _) = api_call(&server.url, "GET", "/api/v1/users/alice", "wrong-token", "");
    assert_eq!(status, 401);
    let (status, body) = api_call(
        &server.url,
        "PUT",
        "/api/v1/users/erin",
        token,
        r#"{"email":"erin@example.com","mobile_group":true}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = api_call(
        &server.url,
        "POST",
        "/api/v1/users/erin/reprovision",
        token,
        "",
    );
    assert_eq!(status, 202, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    // A message file appears whole (it is written under a temporary name first).
    while common::outbox_files(&data).is_empty() {
        assert!(Instant::now() < deadline, "no message in the outbox");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, _) = common::latest_code(&data, "erin");
    assert_eq!(code.len(), 10);
    assert!(
        !server.output().contains(token),
        "the token is never printed"
    );

    // A token file that is too short stops the server with a clear error.
    std::fs::write(&token_file, "short\n").unwrap();
    let out = Command::new(SERVER)
        .arg("--data-dir")
        .arg(dir.path().join("data2"))
        .args([
            "--database",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--api-token-file",
        ])
        .arg(&token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32"), "{stderr}");
    assert!(!stderr.contains("short"), "{stderr}");
}
