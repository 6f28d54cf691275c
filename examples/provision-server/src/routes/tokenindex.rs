//! `GET /{context}/TokenIndex?username=U` for every context of
//! [`swivel_provision::CONTEXTS`]: the next index (1–99) the user's device should use, as
//! plain text ([`Provisioner::token_index`](swivel_provision::Provisioner::token_index)).
//! Unknown users and users without a device get an answer of the same shape. `404` when
//! the policy's `token_index` is off.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::state::AppState;

/// Answers the next index for `username` (missing or blank: an index all the same).
pub async fn handle(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    // throttle: count this request against the client's TokenIndex budget here (per IP and
    // globally, 429 with Retry-After past it) once the host's throttle module is merged.
    let username = query
        .get("username")
        .map(String::as_str)
        .unwrap_or_default();
    let headers = [
        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok(match state.provisioner().token_index(username).await? {
        Some(index) => (headers, index.to_string()).into_response(),
        None => (StatusCode::NOT_FOUND, headers, "Not Found").into_response(),
    })
}
