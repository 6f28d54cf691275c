//! The connection limits of `provision_server::serve::serve` on real sockets: a connection
//! that completes no request within the header timeout is closed whatever protocol it
//! speaks (HTTP/1, cleartext HTTP/2 with prior knowledge, HTTP/2 inside TLS without ALPN),
//! HTTP/2 PINGs do not keep it open, real requests do; and one client address holds at
//! most `max_per_address` connections.
//!
//! The HTTP/2 clients are written by hand (a few frames, an HPACK block of static-table
//! entries and literals), so that they send exactly what an attacker would.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_server::tls_rustls::RustlsConfig;
use provision_server::backend::Backend;
use provision_server::config::{ConnectionLimits, FileConfig};
use provision_server::{StateBuilder, app};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use swivel_provision::ServerKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use common::pki::TestPki;

/// The `[connections]` section `toml` (checked like a configuration file).
fn limits(toml: &str) -> ConnectionLimits {
    FileConfig::parse(&format!("[connections]\n{toml}\n"))
        .unwrap()
        .connections
}

/// A running server on 127.0.0.1; shut down on drop.
struct Server {
    addr: SocketAddr,
    handle: axum_server::Handle,
    _dir: Option<tempfile::TempDir>,
    ca: Option<std::path::PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn start(limits: ConnectionLimits, tls: bool) -> Server {
    let state = StateBuilder::new(Backend::memory(), ServerKey::generate())
        .build()
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (dir, ca, config) = if tls {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let pki = TestPki::generate(dir.path());
        let config = RustlsConfig::from_pem_file(&pki.leaf_cert, &pki.leaf_key)
            .await
            .unwrap();
        (Some(dir), Some(pki.ca_cert), Some(config))
    } else {
        (None, None, None)
    };
    let handle = axum_server::Handle::new();
    let serving =
        provision_server::serve::serve(listener, app(state), limits, config, handle.clone());
    tokio::spawn(serving);
    handle.listening().await.unwrap();
    Server {
        addr,
        handle,
        _dir: dir,
        ca,
    }
}

// --- HTTP/2 by hand -------------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const ACK: u8 = 1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// The client's first bytes: the preface and a SETTINGS frame of `settings` (id, value).
fn h2_start(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (id, value) in settings {
        payload.extend(id.to_be_bytes());
        payload.extend(value.to_be_bytes());
    }
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &payload));
    out
}

/// SETTINGS_INITIAL_WINDOW_SIZE: 0 lets the server send no DATA.
const NO_WINDOW: (u16, u32) = (4, 0);

fn ping(n: u64) -> Vec<u8> {
    frame(PING, 0, 0, &n.to_be_bytes())
}

/// `GET /healthz` on `stream` (END_STREAM | END_HEADERS).
fn get_healthz(stream: u32) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.extend([0x04, 8]); // :path, a literal value
    block.extend(b"/healthz");
    block.extend([0x01, 9]); // :authority, a literal value
    block.extend(b"localhost");
    frame(HEADERS, 0x5, stream, &block)
}

/// Frames read so far; answers what the peer must answer (SETTINGS, PING).
#[derive(Default)]
struct H2Reader {
    buf: Vec<u8>,
    /// Streams answered `:status 200`.
    ok: Vec<u32>,
}

impl H2Reader {
    /// Takes `bytes`; returns what to write back.
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(bytes);
        let mut reply = Vec::new();
        while self.buf.len() >= 9 {
            let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
            if self.buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (self.buf[3], self.buf[4]);
            let stream = u32::from_be_bytes(self.buf[5..9].try_into().unwrap()) & 0x7fff_ffff;
            let payload = self.buf[9..9 + len].to_vec();
            self.buf.drain(..9 + len);
            match kind {
                SETTINGS if flags & ACK == 0 => reply.extend(frame(SETTINGS, ACK, 0, &[])),
                PING if flags & ACK == 0 => reply.extend(frame(PING, ACK, 0, &payload)),
                // `:status 200` is entry 8 of the static table.
                HEADERS if payload.first() == Some(&0x88) => self.ok.push(stream),
                _ => {}
            }
        }
        reply
    }
}

/// What a client saw: how long the connection lived (`None`: still open at the end), and
/// the streams answered `200`.
struct Outcome {
    closed_after: Option<Duration>,
    ok: Vec<u32>,
}

/// Speaks cleartext HTTP/2 (prior knowledge) on `stream` for at most `limit`: `settings`,
/// then a PING every 300 ms, and `GET /healthz` every 400 ms while `requests_for` lasts.
async fn h2c_client(
    mut stream: TcpStream,
    settings: &[(u16, u32)],
    requests_for: Duration,
    limit: Duration,
) -> Outcome {
    let start = Instant::now();
    let mut reader = H2Reader::default();
    let mut pings = tokio::time::interval(Duration::from_millis(300));
    let mut requests = tokio::time::interval(Duration::from_millis(400));
    let mut next_stream = 1;
    let mut buf = [0u8; 4096];
    let closed = |start: Instant| Outcome {
        closed_after: Some(start.elapsed()),
        ok: Vec::new(),
    };
    if stream.write_all(&h2_start(settings)).await.is_err() {
        return closed(start);
    }
    let mut n = 0;
    let closed_after = loop {
        if start.elapsed() > limit {
            break None;
        }
        let sent = tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break Some(start.elapsed()),
                Ok(k) => reader.feed(&buf[..k]),
            },
            _ = pings.tick() => {
                n += 1;
                ping(n)
            }
            _ = requests.tick(), if start.elapsed() < requests_for => {
                next_stream += 2;
                get_healthz(next_stream - 2)
            }
        };
        if !sent.is_empty() && stream.write_all(&sent).await.is_err() {
            break Some(start.elapsed());
        }
    };
    Outcome {
        closed_after,
        ok: reader.ok,
    }
}

/// Like [`h2c_client`] without requests, inside TLS (no ALPN offered), on a thread.
fn h2_tls_pinger(addr: SocketAddr, ca: &std::path::Path, limit: Duration) -> Option<Duration> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(config.alpn_protocols.is_empty());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let start = Instant::now();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    if tls.write_all(&h2_start(&[])).is_err() {
        return Some(start.elapsed());
    }
    let mut reader = H2Reader::default();
    let mut last_ping = Instant::now();
    let mut n = 0;
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        let mut out = Vec::new();
        match tls.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(k) => out = reader.feed(&buf[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(start.elapsed()),
        }
        if last_ping.elapsed() >= Duration::from_millis(300) {
            n += 1;
            out.extend(ping(n));
            last_ping = Instant::now();
        }
        if !out.is_empty() && tls.write_all(&out).is_err() {
            return Some(start.elapsed());
        }
    }
    None
}

const QUICK: &str = "header_timeout_secs = 1\nidle_timeout_secs = 60";
/// How long a test waits for a connection the server should close after 1 s.
const WAIT: Duration = Duration::from_secs(6);
/// The bound: the header timeout, and room for a slow machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread")]
async fn an_h2c_connection_that_only_pings_is_closed_after_the_header_timeout() {
    let server = start(limits(QUICK), false).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let outcome = h2c_client(stream, &[], Duration::ZERO, WAIT).await;
    let lived = outcome
        .closed_after
        .expect("a connection sending only PINGs was still open");
    assert!(lived < CLOSED_WITHIN, "closed only after {lived:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_h2_connection_inside_tls_without_alpn_that_only_pings_is_closed() {
    let server = start(limits(QUICK), true).await;
    let (addr, ca) = (server.addr, server.ca.clone().unwrap());
    let lived = tokio::task::spawn_blocking(move || h2_tls_pinger(addr, &ca, WAIT))
        .await
        .unwrap()
        .expect("an HTTP/2 connection inside TLS sending only PINGs was still open");
    assert!(lived < CLOSED_WITHIN, "closed only after {lived:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_h2c_connection_with_requests_stays_open_then_closes_once_they_stop() {
    let server = start(limits(QUICK), false).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    // Requests for 2.5 s (past the 1 s header timeout), then PINGs only.
    let outcome = h2c_client(stream, &[], Duration::from_millis(2500), WAIT + WAIT).await;
    assert!(
        outcome.ok.len() >= 5,
        "only {} requests answered",
        outcome.ok.len()
    );
    let lived = outcome
        .closed_after
        .expect("the connection stayed open after its requests stopped");
    assert!(
        lived >= Duration::from_millis(2500),
        "closed while requests were coming: {lived:?}"
    );
    assert!(
        lived < Duration::from_millis(2500) + CLOSED_WITHIN,
        "closed only after {lived:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_h2c_answer_held_back_by_a_closed_window_does_not_hold_the_connection() {
    // The answer waits for a window the client never opens, while it PINGs: the answer
    // must move within the idle timeout (2 s).
    let quick = "header_timeout_secs = 1\nrequest_timeout_secs = 1\nidle_timeout_secs = 2";
    let server = start(limits(quick), false).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let outcome = h2c_client(stream, &[NO_WINDOW], Duration::from_millis(100), WAIT).await;
    assert_eq!(outcome.ok, [1], "the request was not answered");
    let lived = outcome
        .closed_after
        .expect("a connection holding back its answer was still open");
    assert!(
        lived < CLOSED_WITHIN + Duration::from_secs(1),
        "closed only after {lived:?}"
    );
}

/// Sends `GET /healthz` on an HTTP/1.1 keep-alive connection; whether it was answered 200.
async fn http1_get(stream: &mut TcpStream) -> bool {
    let req = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if stream.write_all(req).await.is_err() {
        return false;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return false,
        }
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return head.starts_with("HTTP/1.1 200");
            }
        }
    }
}

/// Whether the server closes `stream` within `limit` (reading and dropping what comes).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let until = Instant::now() + limit;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http1_keep_alive_requests_are_served_and_an_idle_connection_closed() {
    let server = start(limits(QUICK), false).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Four requests 400 ms apart: 1.2 s in all, past the header timeout.
    for i in 0..4 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        assert!(http1_get(&mut stream).await, "request {i} not answered");
    }
    assert!(
        closed_within(&mut stream, CLOSED_WITHIN).await,
        "an idle HTTP/1 connection stayed open"
    );
}

/// A connection from `source` (a loopback address) to `addr`.
async fn connect_from(source: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::from(source), 0))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_hold_every_connection() {
    let server = start(
        limits("header_timeout_secs = 30\nmax_connections = 4\nmax_per_address = 3"),
        false,
    )
    .await;
    // Three connections from one address, each served (so each was accepted, in order).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from([127, 0, 0, 1], server.addr).await;
        assert!(http1_get(&mut s).await);
        held.push(s);
    }
    // A fourth from the same address is closed unanswered.
    let mut fourth = connect_from([127, 0, 0, 1], server.addr).await;
    assert!(
        !http1_get(&mut fourth).await,
        "a fourth connection was served"
    );
    // Another address still gets the last slot.
    let mut other = connect_from([127, 0, 0, 2], server.addr).await;
    assert!(
        http1_get(&mut other).await,
        "another address was not served"
    );
    // Once one of the three closes, the address may open another.
    drop(held.pop());
    let mut served = false;
    for _ in 0..50 {
        let mut again = connect_from([127, 0, 0, 1], server.addr).await;
        if http1_get(&mut again).await {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "the address never got its slot back");
}
