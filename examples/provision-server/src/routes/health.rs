//! `GET /healthz` (the process answers) and `GET /readyz` (it can serve: see
//! [`crate::readiness`]), for load balancers and orchestrators. Plain text, not throttled,
//! no log line per request.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const TEXT: [(header::HeaderName, &str); 1] = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];

/// `200 ok` whenever the process answers; touches nothing else.
pub async fn healthz() -> Response {
    (TEXT, "ok").into_response()
}

/// `200 ready`, or `503` with the reason ([`crate::readiness::NotReady::reason`]).
pub async fn readyz(State(state): State<AppState>) -> Response {
    match crate::readiness::check(&state).await {
        Ok(()) => (TEXT, "ready").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, why.reason()).into_response(),
    }
}
