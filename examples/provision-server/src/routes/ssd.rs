//! `GET /ssdserver/getServerDetails?id=SITEID`: server settings discovery (DESIGN §7).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Answers the settings of one site (or `Error Server, Unknown Server ID`).
pub async fn handle(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let id = query.get("id").map(String::as_str).unwrap_or_default();
    let xml = swivel_provision::ssd::respond(state.provisioner(), id).await;
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], xml)
}
