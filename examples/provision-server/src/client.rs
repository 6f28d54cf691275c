//! [`ClientIp`]: the address a request is counted under by the throttles. The peer address
//! from [`ConnectInfo`] (the server is served with
//! `into_make_service_with_connect_info::<SocketAddr>()`); `X-Forwarded-For` only when the
//! peer is one of `[throttle] trusted_proxies`. Without connection info (an embedder that
//! drives [`crate::app()`] without a socket), every request counts as `0.0.0.0`; tests add
//! `axum::extract::connect_info::MockConnectInfo`.
//!
//! Forwarding headers ([`FORWARDING_HEADERS`]) from a peer that is not a trusted proxy mean
//! a reverse proxy nobody declared: every client behind it shares its address (one
//! client's failures throttle all of them). The first such request is warned about in the
//! log, once.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

/// The headers by which a reverse proxy names the client it forwards.
pub const FORWARDING_HEADERS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Whether a request carries any of [`FORWARDING_HEADERS`]: a proxy forwarded it (or a
/// client pretends so).
pub fn forwarded(headers: &HeaderMap) -> bool {
    FORWARDING_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name))
}

fn is_trusted(ip: IpAddr, trusted: &[IpAddr]) -> bool {
    trusted
        .iter()
        .any(|t| t.to_canonical() == ip.to_canonical())
}

/// The client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        // Also finds a `MockConnectInfo` (tests).
        let peer = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let throttles = state.throttles();
        let trusted = &throttles.config().trusted_proxies;
        if forwarded(&parts.headers)
            && !is_trusted(peer, trusted)
            && throttles.first_untrusted_forwarding()
        {
            tracing::warn!(
                %peer,
                "a request from {peer} carries forwarding headers (Forwarded, X-Forwarded-For or X-Real-IP), \
                 but {peer} is not in [throttle] trusted_proxies: the headers are ignored and every client \
                 behind it counts as {peer}; if it is your reverse proxy, add it to trusted_proxies \
                 (warned once)"
            );
        }
        Ok(Self(client_address(peer, &parts.headers, trusted)))
    }
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy (entries further left are
/// written by the client and prove nothing).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.1");
        let h = xff("203.0.113.9, 198.51.100.4");
        assert_eq!(
            client_address(ip("192.0.2.1"), &h, &[proxy]),
            ip("192.0.2.1")
        );
        assert_eq!(client_address(proxy, &h, &[]), proxy);
        assert_eq!(client_address(proxy, &h, &[proxy]), ip("198.51.100.4"));
        let two = [proxy, ip("198.51.100.4")];
        assert_eq!(client_address(proxy, &h, &two), ip("203.0.113.9"));
        assert_eq!(client_address(proxy, &xff("junk"), &[proxy]), proxy);
        assert_eq!(client_address(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}
