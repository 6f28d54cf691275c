//! The load generator's safety check: it only ever talks to this machine.

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::BenchError;

/// Parses `server` and accepts it only when its host is a loopback address
/// (`127.0.0.0/8`, `::1`) or `localhost`, over `http` or `https`.
pub fn ensure_loopback(server: &str) -> Result<Url, BenchError> {
    let url = Url::parse(server)
        .map_err(|e| BenchError::Invalid(format!("--server {server:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BenchError::Invalid(format!(
            "--server must be http:// or https://, not {}://",
            url.scheme()
        )));
    }
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.');
            name.eq_ignore_ascii_case("localhost")
        }
        None => false,
    };
    if !loopback {
        return Err(BenchError::Invalid(format!(
            "refusing to load {server}: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_only() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3/",
            "http://[::1]:9000",
            "http://localhost:8080",
            "https://LOCALHOST.",
        ] {
            assert!(ensure_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://192.168.1.1",
            "http://[::2]",
            "http://example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "ftp://127.0.0.1",
            "127.0.0.1:8080",
            "http://0.0.0.0:8080",
            "http://[::ffff:10.0.0.1]",
        ] {
            assert!(ensure_loopback(bad).is_err(), "{bad}");
        }
    }
}
