//! The console's Sites page (`/admin/sites`): every site server settings discovery answers
//! for, and a form that adds a site or changes one — host, port, context and the five SSD
//! flags — through the same [`actions::save_site`](crate::actions::save_site) as
//! `sites add` and `PUT /api/v1/sites/{site}`.

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::HeaderMap;
use axum::response::{IntoResponse, Response};
use swivel_provision::{CONTEXTS, ServerSettings};

use crate::actions::{Actor, save_site, show_site};
use crate::client::ClientIp;
use crate::error::AppError;
use crate::html::{self, csrf_field, escape};
use crate::routes::admin::{console_page, logged_in, logged_in_post};
use crate::session::Session;
use crate::state::AppState;

/// The five SSD flags: the form field and the label.
const FLAGS: [(&str, &str); 5] = [
    ("using_ssl", "Devices use HTTPS (usingSSL)"),
    ("push_support", "Push authentication (pushSupport)"),
    ("local", "On the local network (local)"),
    ("pin", "The client asks for a PIN (pin)"),
    ("oath", "OATH tokens (oath)"),
];

async fn page(
    state: &AppState,
    session: &Session,
    message: Option<(bool, String)>,
) -> Result<String, AppError> {
    let mut body = String::new();
    if let Some((ok, text)) = message {
        body.push_str(&format!(
            "<p class=\"{}\" id=\"message\">{}</p>",
            if ok { "ok" } else { "error" },
            escape(&text)
        ));
    }
    body.push_str("<table id=\"sites\"><tr><th>Site ID</th><th>Devices connect to</th></tr>");
    for (id, settings) in state.backend().site_admin.list_sites().await? {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(id.as_str()),
            escape(&show_site(&settings))
        ));
    }
    body.push_str("</table><h2>Add or change a site</h2>");
    body.push_str(&format!(
        "<form method=\"post\" action=\"/admin/sites\">{}\
<label>Site ID <input name=\"site\" id=\"site\" required></label>\
<label>Host name <input name=\"hostname\" id=\"hostname\" required></label>\
<label>Port <input name=\"port\" id=\"port\" value=\"8080\" required></label>\
<label>Context <select name=\"context\" id=\"context\">{}</select></label>",
        csrf_field(&session.csrf),
        CONTEXTS
            .iter()
            .map(|c| format!("<option value=\"{c}\">{c}</option>"))
            .collect::<String>()
    ));
    for (name, label) in FLAGS {
        let checked = if name == "pin" { " checked" } else { "" };
        body.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"{name}\" id=\"{name}\" value=\"on\"{checked}> {}</label>",
            escape(label)
        ));
    }
    body.push_str("<button type=\"submit\" id=\"save-site\">Save site</button></form>");
    Ok(console_page(session, "Sites", &body))
}

/// `GET /admin/sites`.
pub async fn sites(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let session = match logged_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    Ok((html::headers(), page(&state, &session, None).await?).into_response())
}

/// The settings a posted form describes: a checkbox is on when it is sent.
fn settings_of(form: &HashMap<String, String>) -> Result<ServerSettings, AppError> {
    let field = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or_default();
    let port = field("port")
        .parse::<std::num::NonZeroU16>()
        .map_err(|_| {
            AppError::BadRequest(format!(
                "Invalid port: must be a number from 1 to 65535, got \"{}\"",
                field("port")
            ))
        })?
        .get();
    let on = |k: &str| form.contains_key(k);
    Ok(ServerSettings {
        hostname: field("hostname").to_owned(),
        port,
        connection_type: field("context").to_owned(),
        using_ssl: on("using_ssl"),
        push_support: on("push_support"),
        local: on("local"),
        pin: on("pin"),
        oath: on("oath"),
    })
}

/// `POST /admin/sites`: adds or changes the site.
pub async fn save(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, form.get("csrf").map(String::as_str)).await
    {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let site = form.get("site").map(String::as_str).unwrap_or_default();
    let outcome = match settings_of(&form) {
        Ok(settings) => save_site(&state, Actor::Console(ip), site, settings).await,
        Err(e) => Err(e),
    };
    let (status, message) = match outcome {
        Ok(saved) => (StatusCode::OK, (true, saved.to_string())),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            (StatusCode::BAD_REQUEST, (false, e.public_message()))
        }
        Err(e) => return Err(e),
    };
    let body = page(&state, &session, Some(message)).await?;
    Ok((status, html::headers(), body).into_response())
}
