//! Serving the router on a socket, plain or TLS, with the connection limits of
//! `[connections]` ([`ConnectionLimits`]):
//!
//! - **header timeout**: hyper's `header_read_timeout`; its timer runs from the moment hyper
//!   starts reading a request head and again when the previous answer is written, so it
//!   closes half-open connections (partial headers) and idle keep-alive connections alike.
//!   The first byte of a new connection must come within the same time (hyper-util's
//!   HTTP/1-or-2 detection waits for it without a timer), and the TLS handshake too.
//! - **request timeout**: tower-http's `TimeoutLayer`, applied by [`crate::app()`] from
//!   [`crate::AppState::request_timeout`]: a request (its body included) not answered in
//!   time gets `408`.
//! - **idle timeout**: `tokio-io-timeout` read and write timeouts on the socket: a connection
//!   on which no byte moves for that long is closed (a stalled body, a client that does not
//!   read its answer, an HTTP/2 connection that sends nothing).
//! - **connection cap**: a connection is served only with a permit; while all are taken the
//!   accept loop waits, so further connections wait in the kernel's listen backlog and are
//!   served once a slot frees up. axum-server's accept loop sleeps after an accept error
//!   (such as `EMFILE`) instead of spinning.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;
use tower::Service;

use crate::config::ConnectionLimits;
use crate::error::AppError;

/// Serves `router` on `listener` until `handle` shuts it down; TLS when `tls` is given.
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<RustlsConfig>,
    handle: axum_server::Handle,
) -> Result<(), AppError> {
    let make = ConnectionCap {
        inner: router.into_make_service_with_connect_info::<SocketAddr>(),
        slots: Arc::new(Semaphore::new(limits.max_connections)),
    };
    let idle = IdleAcceptor {
        idle: limits.idle_timeout(),
        first_byte: limits.header_timeout(),
    };
    let result = match tls {
        Some(config) => {
            // HTTP/1.1 only: hyper's header timeout covers HTTP/1 (see the module docs).
            let mut inner = (*config.get_inner()).clone();
            inner.alpn_protocols = vec![b"http/1.1".to_vec()];
            config.reload_from_config(Arc::new(inner));
            let acceptor = RustlsAcceptor::new(config)
                .handshake_timeout(limits.header_timeout())
                .acceptor(idle);
            let mut server = axum_server::from_tcp(listener).acceptor(acceptor);
            configure(server.http_builder(), &limits);
            server.handle(handle).serve(make).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener).acceptor(idle);
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
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.idle_timeout())
        .keep_alive_timeout(limits.header_timeout());
}

/// Waits (at most `first_byte`) for a new connection's first byte, then puts read and write
/// inactivity timeouts on the socket.
#[derive(Debug, Clone, Copy)]
struct IdleAcceptor {
    idle: Duration,
    first_byte: Duration,
}

type Accepted<S> = std::io::Result<(Pin<Box<TimeoutStream<TcpStream>>>, S)>;

impl<S: Send + 'static> Accept<TcpStream, S> for IdleAcceptor {
    type Stream = Pin<Box<TimeoutStream<TcpStream>>>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = Accepted<S>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let (idle, first_byte) = (self.idle, self.first_byte);
        Box::pin(async move {
            let mut probe = [0u8; 1];
            match tokio::time::timeout(first_byte, stream.peek(&mut probe)).await {
                Ok(Ok(n)) if n > 0 => {}
                // Nothing sent in time, or closed: dropping the stream closes it.
                _ => return Err(std::io::ErrorKind::TimedOut.into()),
            }
            let _ = stream.set_nodelay(true);
            let mut stream = TimeoutStream::new(stream);
            stream.set_read_timeout(Some(idle));
            stream.set_write_timeout(Some(idle));
            Ok((Box::pin(stream), service))
        })
    }
}

/// Makes a connection's service only with a free slot; the slot is held until the
/// connection (and every request of it) is gone.
#[derive(Clone)]
struct ConnectionCap<M> {
    inner: M,
    slots: Arc<Semaphore>,
}

impl<M> Service<SocketAddr> for ConnectionCap<M>
where
    M: Service<SocketAddr> + Send,
    M::Future: Send + 'static,
{
    type Response = Held<M::Response>;
    type Error = M::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, M::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), M::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, peer: SocketAddr) -> Self::Future {
        let slots = self.slots.clone();
        let make = self.inner.call(peer);
        Box::pin(async move {
            // The accept loop awaits this: while every slot is taken, nothing more is
            // accepted.
            let permit = slots.acquire_owned().await.ok().map(Arc::new);
            let inner = make.await?;
            Ok(Held {
                inner,
                _slot: permit,
            })
        })
    }
}

/// A connection's service and its slot.
#[derive(Clone)]
struct Held<S> {
    inner: S,
    _slot: Option<Arc<OwnedSemaphorePermit>>,
}

impl<S, R> Service<R> for Held<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.inner.call(req)
    }
}
