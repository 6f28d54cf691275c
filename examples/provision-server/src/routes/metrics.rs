//! `GET /metrics`: every metric ([`crate::metrics`]) in the OpenMetrics text format. With a
//! configured token (`[metrics] token` or `token_file`) it needs
//! `Authorization: Bearer <token>`, else it answers `401`; without one it answers only
//! clients on this host (loopback) whose request carries no forwarding header (a reverse
//! proxy on this host connects from loopback for remote clients), `401` to others: its
//! counters, though they hold no name or secret, tell what happened to one's own request.

use axum::extract::State;
use axum::http::header::{self, HeaderMap};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::client::ClientIp;
use crate::state::AppState;

/// The content type of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub async fn handle(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let forwarded = crate::client::forwarded(&headers);
    if !state
        .metrics_endpoint()
        .allows(presented, client, forwarded)
    {
        tracing::warn!("metrics request without the right token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))],
            "Unauthorized\n",
        )
            .into_response();
    }
    if let Some(jobs) = &state.backend().jobs {
        // Read at scrape time; a slow or failing store leaves the last values.
        let depth = tokio::time::timeout(std::time::Duration::from_secs(2), jobs.queue_depth());
        if let Ok(Ok(depth)) = depth.await {
            let age = depth
                .oldest
                .map_or(0.0, |t| (state.provisioner().now() - t).as_seconds_f64());
            state.metrics().set_queue(depth.jobs, age);
        }
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        state.metrics().encode(),
    )
        .into_response()
}
