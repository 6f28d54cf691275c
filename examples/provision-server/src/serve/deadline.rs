//! The deadline of a connection, whatever protocol it speaks (HTTP/1, HTTP/2 in clear or
//! inside TLS):
//!
//! - while no request is in flight, the connection must bring one (its head, for HTTP/1;
//!   its HEADERS frame, for HTTP/2) within the header timeout of opening or of the end of
//!   its previous answer;
//! - while requests are in flight, an answer must move (a request begins, or a body frame
//!   is sent) at least every `stall` (an HTTP/2 client that opens no flow-control window
//!   holds its answer forever otherwise).
//!
//! Past the deadline the connection's next read fails with `TimedOut` and it is closed.
//!
//! [`Activity`] is shared by the connection's two halves: [`Busy`], the service, marks a
//! request in flight from the moment it is called until its answer's body has been sent or
//! dropped ([`BusyBody`]); [`Deadline`], the stream under TLS and HTTP, holds the timer. Bytes
//! read do not move the deadline: HTTP/2 PING, SETTINGS or WINDOW_UPDATE frames keep no
//! connection open, and neither does a slow TLS handshake or first byte.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tower::Service;

/// What the two halves of a connection share.
#[derive(Debug)]
pub(super) struct Activity {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Requests called and not yet answered to the end.
    in_flight: usize,
    /// When the connection opened, or a request began or ended, or an answer moved.
    moved: Instant,
    /// The reader, woken when the last request ends (its timer was not armed meanwhile).
    reader: Option<Waker>,
}

impl Activity {
    /// A connection opened now, with no request yet.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                moved: Instant::now(),
                reader: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut state = self.lock();
        state.in_flight += 1;
        state.moved = Instant::now();
        InFlight(self.clone())
    }

    fn moved(&self) {
        self.lock().moved = Instant::now();
    }
}

/// One request in flight; ends when dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let reader = {
            let mut state = self.0.lock();
            state.in_flight -= 1;
            if state.in_flight > 0 {
                return;
            }
            state.moved = Instant::now();
            state.reader.take()
        };
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// The stream of a connection, failing its reads once the deadline has passed.
#[derive(Debug)]
pub(super) struct Deadline<S> {
    inner: S,
    activity: Arc<Activity>,
    idle: Duration,
    stall: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<S> Deadline<S> {
    /// `inner`, which must bring a request within `idle` whenever it has none in flight,
    /// and move an answer at least every `stall` while it has.
    pub(super) fn new(inner: S, activity: Arc<Activity>, idle: Duration, stall: Duration) -> Self {
        let at = activity.lock().moved + idle;
        Self {
            inner,
            activity,
            idle,
            stall,
            timer: Box::pin(tokio::time::sleep_until(at)),
        }
    }

    /// Whether the deadline has passed; if not, the timer is registered with `cx`.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let at = {
            let mut state = self.activity.lock();
            if state.in_flight == 0 {
                state.moved + self.idle
            } else {
                // Woken when the last request ends: the deadline shortens then.
                if !state
                    .reader
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    state.reader = Some(cx.waker().clone());
                }
                state.moved + self.stall
            }
        };
        if self.timer.deadline() != at {
            self.timer.as_mut().reset(at);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.expired(cx) {
            return Poll::Ready(Err(std::io::ErrorKind::TimedOut.into()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The service of a connection: each request is in flight until its answer is sent.
#[derive(Debug, Clone)]
pub(super) struct Busy<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Busy<S> {
    /// `inner`, marking its requests in `activity`.
    pub(super) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, B> Service<Request<B>> for Busy<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Answer<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let in_flight = self.activity.begin();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| {
                Body::new(BusyBody {
                    inner: body,
                    in_flight: Some(in_flight),
                })
            }))
        })
    }
}

/// An answer's body, holding its request in flight until it is sent or dropped.
struct BusyBody {
    inner: Body,
    in_flight: Option<InFlight>,
}

impl http_body::Body for BusyBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(_))) => {
                if let Some(in_flight) = &self.in_flight {
                    in_flight.0.moved();
                }
            }
            Poll::Ready(_) => self.in_flight = None,
            Poll::Pending => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
