//! The console's Sites page (`/admin/sites`): every site server settings discovery answers
//! for, and a form that adds a site or changes one — host, port, context and the five SSD
//! flags — through the same [`actions::save_site`](crate::actions::save_site) as
//! `sites add` and `PUT /api/v1/sites/{site}`; *Delete* goes through
//! [`actions::delete_site`](crate::actions::delete_site) as `sites delete` and
//! `DELETE /api/v1/sites/{site}`. The page is [`crate::views::sites`].

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::HeaderMap;
use axum::response::{IntoResponse, Response};
use swivel_provision::ServerSettings;

use crate::actions::{Actor, delete_site, save_site};
use crate::client::ClientIp;
use crate::error::AppError;
use crate::html;
use crate::routes::admin::{logged_in, logged_in_post};
use crate::session::Session;
use crate::state::AppState;
use crate::views;
use crate::views::console::Message;

/// The page with every site and `message` above it.
async fn page(
    state: &AppState,
    session: &Session,
    message: Option<Message>,
) -> Result<String, AppError> {
    let sites = state.backend().site_admin.list_sites().await?;
    Ok(views::sites::page(&session.csrf, &sites, message.as_ref()))
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
    after(&state, &session, outcome.map(|saved| saved.to_string())).await
}

/// `POST /admin/sites/delete`: deletes the site named by the form's `site`.
pub async fn delete(
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
    let outcome = delete_site(&state, Actor::Console(ip), site).await;
    after(&state, &session, outcome.map(|deleted| deleted.to_string())).await
}

/// The page after an action: its outcome above the sites, answered with a refusal's status
/// (`400`, `404`); a server error stays the error page.
async fn after(
    state: &AppState,
    session: &Session,
    outcome: Result<String, AppError>,
) -> Result<Response, AppError> {
    let (status, message) = match outcome {
        Ok(done) => (StatusCode::OK, Message::ok(done)),
        Err(e) if e.status().is_client_error() => (e.status(), Message::error(e.public_message())),
        Err(e) => return Err(e),
    };
    let body = page(state, session, Some(message)).await?;
    Ok((status, html::headers(), body).into_response())
}
