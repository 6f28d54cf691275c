//! Serving the router on a socket, plain or TLS, with the connection limits of
//! `[connections]` ([`ConnectionLimits`]):
//!
//! - **request deadline**, for every protocol served (HTTP/1, HTTP/2 with prior knowledge
//!   in clear or inside TLS): a connection with no request in flight must bring one within
//!   the header timeout of opening or of its previous answer, and an answer in flight must
//!   move at least every idle timeout (or request timeout, if longer), else the connection
//!   is closed (module `deadline`). Bytes alone do not count: HTTP/2 PINGs or SETTINGS keep no
//!   connection open, and the TLS handshake and first byte fall under the same deadline. So
//!   an HTTP/2 connection without streams is closed like an idle HTTP/1 keep-alive one.
//!   hyper's own HTTP/1 `header_read_timeout` stays as well (it also closes a connection
//!   that sends part of a head).
//! - **request timeout**: tower-http's `TimeoutLayer`, applied by [`crate::app()`] from
//!   [`crate::AppState::request_timeout`]: a request (its body included) not answered in
//!   time gets `408`.
//! - **idle timeout**: `tokio-io-timeout` read and write timeouts on the socket: a connection
//!   on which no byte moves for that long is closed (a stalled body, a client that does not
//!   read its answer).
//! - **connection caps** (module `cap`): at most `max_per_address` open connections per client
//!   address (the TCP peer's, an IPv4 address or an IPv6 /64); one more is closed
//!   unanswered. And a connection is served only with one of `max_connections` permits;
//!   while all are taken the accept loop waits, so further connections wait in the kernel's
//!   listen backlog and are served once a slot frees up. axum-server's accept loop sleeps
//!   after an accept error (such as `EMFILE`) instead of spinning.
//!
//! With TLS, ALPN offers `http/1.1` only (browsers and devices speak HTTP/1.1); a client
//! that starts HTTP/2 without ALPN is served under the same deadline and caps.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;

use crate::config::ConnectionLimits;
use crate::error::AppError;

mod cap;
mod deadline;

use cap::ConnectionCap;
use deadline::{Activity, Busy, Deadline};

/// Serves `router` on `listener` until `handle` shuts it down; TLS when `tls` is given.
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<RustlsConfig>,
    handle: axum_server::Handle,
) -> Result<(), AppError> {
    let make = ConnectionCap::new(
        router.into_make_service_with_connect_info::<SocketAddr>(),
        limits.max_connections,
        limits.per_address(),
    );
    let connection = ConnectionAcceptor {
        idle: limits.idle_timeout(),
        request: limits.header_timeout(),
        stall: limits.idle_timeout().max(limits.request_timeout()),
    };
    let result = match tls {
        Some(config) => {
            // ALPN: HTTP/1.1 only (see the module docs).
            let mut inner = (*config.get_inner()).clone();
            inner.alpn_protocols = vec![b"http/1.1".to_vec()];
            config.reload_from_config(Arc::new(inner));
            let acceptor = RustlsAcceptor::new(config)
                .handshake_timeout(limits.header_timeout())
                .acceptor(connection);
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            configure(server.http_builder(), &limits);
            server.handle(handle).serve(make).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener).acceptor(connection);
            configure(server.http_builder(), &limits);
            server.handle(handle).serve(make).await
        }
    };
    result.map_err(|e| AppError::Setup(format!("server failed: {e}")))
}

fn configure(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &ConnectionLimits,
) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .keep_alive(true);
    // An HTTP/2 connection without streams is closed by the deadline; these PINGs find a
    // dead peer while requests are in flight.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.idle_timeout())
        .keep_alive_timeout(limits.header_timeout());
}

/// Puts the request deadline ([`deadline`]) on a new connection, its stream and its service,
/// and read and write inactivity timeouts on its socket.
#[derive(Debug, Clone, Copy)]
struct ConnectionAcceptor {
    idle: Duration,
    request: Duration,
    stall: Duration,
}

type Stream = Deadline<Pin<Box<TimeoutStream<TcpStream>>>>;

impl<S: Send + 'static> Accept<TcpStream, S> for ConnectionAcceptor {
    type Stream = Stream;
    type Service = Busy<S>;
    type Future = std::future::Ready<std::io::Result<(Stream, Busy<S>)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let _ = stream.set_nodelay(true);
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(Some(self.idle));
        stream.set_write_timeout(Some(self.idle));
        let activity = Activity::new();
        let stream = Deadline::new(Box::pin(stream), activity.clone(), self.request, self.stall);
        std::future::ready(Ok((stream, Busy::new(service, activity))))
    }
}
