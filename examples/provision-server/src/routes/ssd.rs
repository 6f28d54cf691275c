//! `GET /ssdserver/getServerDetails?id=SITEID`: server settings discovery (DESIGN §7).
//! `429` with `Retry-After` (and an error `getServerDetailsResponse`) past the client's
//! allowance (`[throttle]` `ssd_per_ip`, `ssd_global`; counted on every instance).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use swivel_provision::ssd::render_server_details;

use crate::client::ClientIp;
use crate::state::AppState;

/// Answers the settings of one site (or `Error Server, Unknown Server ID`).
pub async fn handle(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let xml_type = [(header::CONTENT_TYPE, "text/xml; charset=utf-8")];
    if let Err(t) = state.throttles().ssd(ip).await {
        let refusal = swivel_provision::Error::RateLimited {
            retry_after_secs: t.retry_after_secs().max(1),
        };
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            xml_type,
            render_server_details(Err(&refusal)),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, t.header_value());
        return r;
    }
    let id = query.get("id").map(String::as_str).unwrap_or_default();
    let xml = swivel_provision::ssd::respond(state.provisioner(), id).await;
    (xml_type, xml).into_response()
}
