//! [`ClientIp`]: the address a request is counted under by the throttles. The peer address
//! from [`ConnectInfo`] (the server is served with
//! `into_make_service_with_connect_info::<SocketAddr>()`); `X-Forwarded-For` only when the
//! peer is one of `[throttle] trusted_proxies`. Without connection info (an embedder that
//! drives [`crate::app()`] without a socket), every request counts as `0.0.0.0`; tests add
//! `axum::extract::connect_info::MockConnectInfo`.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

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
        Ok(Self(client_address(
            peer,
            &parts.headers,
            &state.throttles().config().trusted_proxies,
        )))
    }
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry that is not a trusted proxy (entries further left are
/// written by the client and prove nothing).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let canon = |ip: IpAddr| ip.to_canonical();
    if !trusted.iter().any(|t| canon(*t) == canon(peer)) {
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
        if !trusted.iter().any(|t| canon(*t) == canon(ip)) {
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
