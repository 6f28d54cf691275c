//! `POST /{context}/AgentXML` for every context of [`swivel_provision::CONTEXTS`]
//! (`pinsafe`, `sentry`, `proxy`): the device protocol (DESIGN §9), answered by the core's
//! codec. Every answer is a `SASResponse`: a malformed body gets `FAIL`, a body over the
//! limit `413` with `FAIL`, and a client over its allowance of failed requests (see
//! [`crate::throttle`]) `429` with `Retry-After` and `FAIL`.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use swivel_provision::agentxml::{AgentReply, AgentResponse, render_response};

use crate::client::ClientIp;
use crate::state::AppState;

/// The `Error` of an answer refused by the throttle.
pub const THROTTLED: &str = "Too many failed requests, try again later";
/// The `Error` of a request the server could not read (too large, cut short).
pub const UNREADABLE: &str = "Request could not be read";

fn xml_response(status: StatusCode, xml: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        xml,
    )
        .into_response()
}

/// A `SASResponse` with `FAIL` and `error`.
pub fn fail(status: StatusCode, error: &str) -> Response {
    let xml = render_response(&AgentReply::new(AgentResponse::Fail {
        error: error.to_owned(),
    }));
    xml_response(status, xml)
}

/// Turns a rejection that is not yet a `SASResponse` (the framework's `405`, the request
/// timeout's `408`, ...) into one with `FAIL`, keeping its status and headers.
pub async fn as_sas_response(response: Response) -> Response {
    let is_xml = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/xml"));
    if is_xml || response.status().is_success() {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let replacement = fail(parts.status, UNREADABLE);
    let (new_parts, body) = replacement.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &new_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}

/// Answers one AgentXML request.
pub async fn handle(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(t) = state.throttles().agentxml_admit(ip) {
        let mut r = fail(StatusCode::TOO_MANY_REQUESTS, THROTTLED);
        r.headers_mut()
            .insert(header::RETRY_AFTER, t.header_value());
        return r;
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            state.throttles().agentxml_failed(ip).await;
            return fail(rejection.status(), UNREADABLE);
        }
    };
    let answer = swivel_provision::agentxml::answer(state.provisioner(), &body).await;
    if answer.failed {
        state.throttles().agentxml_failed(ip).await;
    }
    xml_response(StatusCode::OK, answer.xml)
}
