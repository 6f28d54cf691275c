//! Graceful shutdown of the built `provision-server` on SIGTERM: requests in flight (their
//! bodies still arriving) get complete answers, new connections are refused, and the
//! process exits with status 0 printing `provision-server stopped.`; a request that never
//! completes is cut at `[connections] shutdown_timeout_secs` and the exit is still 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{ServerProcess, http_get};

const PING: &str =
    "<SASRequest><Version>3.6</Version><Action>ping</Action><RequestID>r1</RequestID></SASRequest>";

fn start(dir: &Path, shutdown_timeout_secs: u64) -> ServerProcess {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("[connections]\nshutdown_timeout_secs = {shutdown_timeout_secs}\n"),
    )
    .unwrap();
    ServerProcess::start_with(
        &dir.join("data"),
        &["--config", &config.display().to_string()],
    )
}

/// An AgentXML ping whose head has been read by the server and whose handler is reading
/// the body: the server answered `100 Continue` (hyper sends it when the body is first
/// read), and the first half of the body is sent.
fn half_sent_ping(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /pinsafe/AgentXML HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        PING.len()
    )
    .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed before 100 Continue");
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s.write_all(&PING.as_bytes()[..PING.len() / 2]).unwrap();
    s
}

/// Everything the server sends until it closes the connection (or the read fails).
fn read_all(s: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).into_owned()
}

/// Waits until connecting to `addr` is refused: the server no longer accepts.
fn wait_until_refused(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), 10);
    let addr = server.addr();
    // An idle keep-alive connection must not hold the shutdown up.
    let mut idle = TcpStream::connect(&addr).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let n = idle.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let mut slow: Vec<TcpStream> = (0..4).map(|_| half_sent_ping(&addr)).collect();
    server.terminate();
    let terminated = Instant::now();
    wait_until_refused(&addr);
    // The bodies are still arriving after the signal.
    std::thread::sleep(Duration::from_millis(500));
    for s in &mut slow {
        s.write_all(&PING.as_bytes()[PING.len() / 2..]).unwrap();
    }
    for (i, s) in slow.iter_mut().enumerate() {
        let answer = read_all(s);
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("request {i}: no complete head: {answer:?}"));
        assert!(head.starts_with("HTTP/1.1 200 OK"), "request {i}: {head}");
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("request {i}: no Content-Length: {head}"));
        assert_eq!(body.len(), length, "request {i}: cut short: {answer:?}");
        assert!(
            body.contains("<Result>PASS</Result>") && body.trim_end().ends_with("</SASResponse>"),
            "request {i}: {body}"
        );
    }
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("still running 15 s after SIGTERM");
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; output:\n{}",
        server.output()
    );
    assert!(
        terminated.elapsed() < Duration::from_secs(10),
        "exit took {:?}: something waited for the deadline",
        terminated.elapsed()
    );
    server.wait_for_output("provision-server stopped.");
    assert_eq!(
        read_all(&mut idle),
        "",
        "the idle connection got more than a close"
    );
}

#[test]
fn a_request_that_never_completes_is_cut_at_the_shutdown_timeout_and_the_exit_is_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), 2);
    let addr = server.addr();
    let (status, body) = http_get(&addr, "/healthz", Duration::from_secs(20)).unwrap();
    assert_eq!((status, body.as_str()), (200, "ok"));
    // Half a body and then nothing: the request timeout (30 s) and the idle timeout (60 s)
    // are far away; only the shutdown deadline ends it.
    let mut stuck = half_sent_ping(&addr);
    server.terminate();
    let terminated = Instant::now();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("still running 15 s after SIGTERM");
    let took = terminated.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; output:\n{}",
        server.output()
    );
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(7),
        "exit took {took:?} with shutdown_timeout_secs = 2"
    );
    server.wait_for_output("provision-server stopped.");
    let rest = read_all(&mut stuck);
    assert!(
        !rest.contains("SASResponse"),
        "the cut request got an answer: {rest}"
    );
}
