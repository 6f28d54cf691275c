//! `POST /{context}/AgentXML` for every context of [`swivel_provision::CONTEXTS`]
//! (`pinsafe`, `sentry`, `proxy`): the device protocol (DESIGN §9), answered by the core's
//! codec. A malformed body gets a `SASResponse` with `FAIL`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Answers one AgentXML request.
pub async fn handle(State(state): State<AppState>, body: Bytes) -> impl IntoResponse {
    let xml = swivel_provision::agentxml::respond(state.provisioner(), &body).await;
    (
        [
            (header::CONTENT_TYPE, "text/xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        xml,
    )
}
