//! `GET /{context}/TokenIndex?username=U` for every context of
//! [`swivel_provision::CONTEXTS`]: the next index (1–99) the user's device should use, as
//! plain text ([`Provisioner::token_index`](swivel_provision::Provisioner::token_index)).
//! Unknown users and users without a device get an answer of the same shape. `404` when
//! the policy's `token_index` is off; `429` with `Retry-After` past the client's allowance
//! (`[throttle]` `token_index_per_ip`, `token_index_global`; counted on every instance).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::client::ClientIp;
use crate::error::AppError;
use crate::state::AppState;

/// Answers the next index for `username` (missing or blank: an index all the same).
pub async fn handle(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Err(t) = state.throttles().token_index(ip).await {
        let mut r = (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, t.header_value());
        return Ok(r);
    }
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
