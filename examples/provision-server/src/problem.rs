//! Errors of the JSON API as `application/problem+json` (RFC 9457): the body ([`Problem`]),
//! and the middleware that gives every other error answer under `/api/v1/` the same shape
//! (the framework's own rejections: unknown path, method, timeout, ...).
//!
//! Every problem has `type` `about:blank`, so its `title` is the status's reason phrase; the
//! `detail` is the seed wording of the error. A detail never holds a secret or a value from
//! the request body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of a problem.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem (RFC 9457): what went wrong, for a program (`status`, `type`) and a person
/// (`title`, `detail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    example = json!({
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Invalid Username"
    })
)]
pub struct Problem {
    /// The problem type: always `about:blank` (the status says what happened).
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    pub kind: String,
    /// The reason phrase of the status.
    pub title: String,
    /// The HTTP status, as on the response.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for a person (never a secret, never a value from the request).
    pub detail: String,
}

impl Problem {
    /// The problem answered with `status`, explained by `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response()
    }
}

/// What a problem says for an answer the framework made itself (no handler error).
fn framework_detail(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "No such API resource",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed on this resource (see Allow)",
        StatusCode::PAYLOAD_TOO_LARGE => "The request body is too large",
        StatusCode::REQUEST_TIMEOUT => "The request took too long",
        StatusCode::BAD_REQUEST => "The request is not valid",
        s if s.is_server_error() => "Server error, please try again later",
        _ => "The request cannot be answered",
    }
}

/// Middleware of the API: an error answer that is not yet a problem becomes one with the
/// same status and headers (`Allow` of a 405 included); success answers pass unchanged.
pub async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let (new_parts, body) = Problem::new(status, framework_detail(status))
        .into_response()
        .into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &new_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}

/// The API's fallback: `404` for a path under `/api/v1/` that is no resource.
pub async fn not_found() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        framework_detail(StatusCode::NOT_FOUND),
    )
    .into_response()
}
