//! The middleware that counts every HTTP answer by method, route template and status,
//! and times it ([`track`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// The `route` label of a request that matched no route (never its raw path, which the
/// client chooses).
pub const UNMATCHED: &str = "unmatched";

/// The `method` label: the standard methods by name, anything else `other` (a client
/// chooses the method, so it must not grow the label set).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Counts and times one request under its route template (e.g.
/// `/api/v1/users/{username}`), or [`UNMATCHED`].
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics().observe_http(
        method,
        route.as_deref().unwrap_or(UNMATCHED),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
