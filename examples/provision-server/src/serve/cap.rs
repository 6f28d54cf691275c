//! The caps on open connections: [`ConnectionCap`] makes a connection's service only while
//! its client address holds fewer than `max_per_address` connections (else the connection
//! is closed unanswered) and with one of the `max_connections` slots (while all are taken,
//! the accept loop waits). Both are held until the connection and every request of it are
//! gone ([`Held`]). A per-address cap as high as the global one protects nobody, so it is
//! not applied: then one address's connections wait for a slot like everyone's.
//!
//! The address is the TCP peer's ([`crate::throttle::client_key`]: an IPv4 address, an IPv6
//! /64), never a forwarding header: behind a reverse proxy the proxy is the peer.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::Service;

use crate::throttle::client_key;

/// How often a refusal is logged at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Open connections per client address.
#[derive(Debug)]
pub(super) struct PerAddress {
    open: Mutex<Open>,
    limit: usize,
}

#[derive(Debug, Default)]
struct Open {
    count: HashMap<IpAddr, usize>,
    warned: Option<Instant>,
}

impl PerAddress {
    /// At most `limit` connections per address.
    pub(super) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(Open::default()),
            limit,
        })
    }

    /// A connection from `ip`, if its address holds fewer than the limit.
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.count.entry(key).or_insert(0);
        if *count >= self.limit {
            if open.warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                open.warned = Some(Instant::now());
                tracing::warn!(
                    "a connection from {ip} was closed: its address holds connections.max_per_address ({}) \
                     already (behind a reverse proxy the proxy is the address; at most one warning a minute)",
                    self.limit
                );
            }
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            map: self.clone(),
            key,
        })
    }
}

/// One open connection of an address; counted until dropped.
#[derive(Debug)]
struct AddressSlot {
    map: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.map.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.count.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.count.remove(&self.key);
            }
        }
    }
}

/// Makes a connection's service only within both caps.
#[derive(Clone)]
pub(super) struct ConnectionCap<M> {
    inner: M,
    slots: Arc<Semaphore>,
    per_address: Option<Arc<PerAddress>>,
}

impl<M> ConnectionCap<M> {
    /// `inner` within `max_connections` and, if lower, `max_per_address`.
    pub(super) fn new(inner: M, max_connections: usize, max_per_address: usize) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max_connections)),
            per_address: (max_per_address < max_connections)
                .then(|| PerAddress::new(max_per_address)),
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<M> Service<SocketAddr> for ConnectionCap<M>
where
    M: Service<SocketAddr> + Send,
    M::Future: Send + 'static,
    M::Response: Send + 'static,
    M::Error: Into<BoxError>,
{
    type Response = Held<M::Response>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner.poll_ready(cx).map_err(std::io::Error::other)
    }

    fn call(&mut self, peer: SocketAddr) -> Self::Future {
        // Refused at once, before it waits for (and takes) a slot. The accept loop drops
        // the connection on this error.
        let address = match &self.per_address {
            None => None,
            Some(per_address) => match per_address.enter(peer.ip()) {
                Some(slot) => Some(slot),
                None => {
                    return Box::pin(std::future::ready(Err(std::io::Error::other(
                        "too many connections from one address",
                    ))));
                }
            },
        };
        let slots = self.slots.clone();
        let make = self.inner.call(peer);
        Box::pin(async move {
            // The accept loop awaits this: while every slot is taken, nothing more is
            // accepted.
            let slot = slots.acquire_owned().await.ok();
            let inner = make.await.map_err(std::io::Error::other)?;
            Ok(Held {
                inner,
                _held: Arc::new((slot, address)),
            })
        })
    }
}

/// A connection's service, its slot and its address's count.
#[derive(Clone)]
pub(super) struct Held<S> {
    inner: S,
    _held: Arc<(Option<OwnedSemaphorePermit>, Option<AddressSlot>)>,
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
