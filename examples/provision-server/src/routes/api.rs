//! The JSON API, behind `Authorization: Bearer <token>` (made by
//! `provision-server api token`):
//!
//! - `POST /api/v1/users/{username}/reprovision` → `202` with the destination and expiry.
//! - `GET /api/v1/users/{username}` → the user and their provisioning status.
//! - `PUT /api/v1/users/{username}` with a JSON body of
//!   [`UserFields`] → `200` with the user as `GET` shows it
//!   (added, or destinations, group and PIN replaced).
//! - `POST /api/v1/users/{username}/unlock` → `200` with whether a lock (or a run of
//!   failures) was cleared.
//! - `GET /api/v1/sites/{site}` → what server settings discovery answers for the Site ID.
//! - `PUT /api/v1/sites/{site}` with a JSON body of [`SiteFields`] → `200` with the site
//!   as `GET` shows it (added or replaced).
//! - `GET /api/v1/events?user=&since=&limit=&before=` → `{"events": [...], "next_before":
//!   id|null}`: the shared event log of every instance, newest first (`since` RFC 3339,
//!   `limit` 1 to 1,000, default 100; `before` the `next_before` of the previous page).
//!
//! Errors are `{"error": "<seed wording>"}` with a fitting status.

use axum::Json;
use std::collections::HashMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use swivel_provision::{Origin, ServerSettings, SiteId, Username};
use time::format_description::well_known::Rfc3339;

use crate::actions::UserFields;
use crate::error::AppError;
use crate::state::AppState;

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// An API error as JSON.
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        let mut response = (
            self.0.status(),
            Json(json!({ "error": self.0.public_message() })),
        )
            .into_response();
        if matches!(self.0, AppError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AppError::Unauthorized)?;
    if !state.credentials().check_api_token(token).await? {
        tracing::warn!("API request with a wrong token");
        return Err(AppError::Unauthorized.into());
    }
    Ok(())
}

/// `GET /api/v1/users/{username}`.
pub async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let username = Username::parse(&name)?;
    Ok(Json(user_json(&state, &username).await?))
}

/// `PUT /api/v1/users/{username}`.
pub async fn save_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<UserFields>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let Json(fields) = body.map_err(body_error)?;
    let saved = crate::actions::save_user(&state, &name, &fields).await?;
    Ok(Json(user_json(&state, &saved.username).await?))
}

/// What a refused JSON body is told. Never the parser's own text: it quotes values, and a
/// value may be a PIN.
fn body_error(rejection: JsonRejection) -> AppError {
    AppError::BadRequest(
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON (Content-Type: application/json)"
            }
            JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON",
            _ => {
                "the body must be an object with only these fields: email, phone, \
                 strings_email, strings_phone (strings), mobile_group (true or false), pin \
                 (a string of 4 to 10 digits)"
            }
        }
        .into(),
    )
}

/// The user and their provisioning status, as `GET` shows them.
async fn user_json(state: &AppState, username: &Username) -> Result<Value, ApiError> {
    let Some(user) = state.backend().users.find_user(username).await? else {
        return Err(swivel_provision::Error::UnknownUser {
            username: username.to_string(),
        }
        .into());
    };
    let status = state.provisioner().status(username).await?;
    Ok(json!({
        "username": user.username.as_str(),
        "mobile_group": user.mobile_group,
        "destinations": user.destinations.iter().map(|d| json!({"channel": d.channel.as_str(), "address": d.address})).collect::<Vec<_>>(),
        "pending": status.pending.map(|p| json!({
            "expires_at": rfc3339(p.expires_at),
            "attempts_left": p.attempts_left,
            "origin": match p.origin { Origin::Admin => "admin", Origin::SelfService => "self_service" },
        })),
        "device": status.device.map(|d| json!({
            "provisioned_at": rfc3339(d.provisioned_at),
            "generation": d.generation,
            "info": d.info.map(|i| i.to_string()),
        })),
        "failures": status.failures,
        "locked_at": status.locked_at.map(rfc3339),
    }))
}

/// `GET /api/v1/events`.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let Query(params) =
        params.map_err(|_| AppError::BadRequest("the query string is not valid".into()))?;
    let query = crate::event_query::parse(&params, crate::event_query::API_DEFAULT_LIMIT)?;
    let (events, next) = crate::event_query::page(&state, &query).await?;
    Ok(Json(json!({
        "events": events.iter().map(crate::event_query::event_json).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

/// `POST /api/v1/users/{username}/unlock`.
pub async fn unlock(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let done = crate::actions::unlock(&state, &name).await?;
    Ok(Json(
        json!({ "username": done.username.as_str(), "unlocked": done.cleared }),
    ))
}

/// `POST /api/v1/users/{username}/reprovision`.
pub async fn reprovision(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers).await?;
    let username = Username::parse(&name)?;
    let receipt = state
        .provisioner()
        .request_provision(&username, Origin::Admin)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "username": receipt.username.as_str(),
            "destination": {"channel": receipt.destination.channel.as_str(), "address": receipt.destination.address},
            "expires_at": rfc3339(receipt.expires_at),
            "queued": receipt.queued,
        })),
    )
        .into_response())
}

/// The body of `PUT /api/v1/sites/{site}`: where devices of the site connect, and the five
/// SSD flags. `hostname` and `port` are required; unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFields {
    /// Host name devices connect to.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Context path of the AgentXML endpoint: `pinsafe` (default), `sentry` or `proxy`.
    #[serde(default = "default_context")]
    pub context: String,
    /// Devices use HTTPS (SSD `usingSSL`, default false).
    #[serde(default)]
    pub using_ssl: bool,
    /// Push authentication is supported (SSD `pushSupport`, default false).
    #[serde(default)]
    pub push_support: bool,
    /// The server is on the local network (SSD `local`, default false).
    #[serde(default)]
    pub local: bool,
    /// The client asks for a PIN (SSD `pin`, default true).
    #[serde(default = "yes")]
    pub pin: bool,
    /// OATH tokens are used (SSD `oath`, default false).
    #[serde(default)]
    pub oath: bool,
}

fn default_context() -> String {
    "pinsafe".into()
}

fn yes() -> bool {
    true
}

impl From<SiteFields> for ServerSettings {
    fn from(f: SiteFields) -> Self {
        ServerSettings {
            hostname: f.hostname,
            port: f.port,
            connection_type: f.context,
            using_ssl: f.using_ssl,
            push_support: f.push_support,
            local: f.local,
            pin: f.pin,
            oath: f.oath,
        }
    }
}

fn site_json(site: &SiteId, s: &ServerSettings) -> Value {
    json!({
        "site": site.as_str(),
        "hostname": s.hostname,
        "port": s.port,
        "context": s.connection_type,
        "using_ssl": s.using_ssl,
        "push_support": s.push_support,
        "local": s.local,
        "pin": s.pin,
        "oath": s.oath,
    })
}

/// `GET /api/v1/sites/{site}`.
pub async fn site(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let site = SiteId::parse(&site)?;
    let Some(settings) = state.backend().sites.find_site(&site).await? else {
        return Err(swivel_provision::Error::UnknownServerId.into());
    };
    Ok(Json(site_json(&site, &settings)))
}

/// `PUT /api/v1/sites/{site}`.
pub async fn save_site(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
    body: Result<Json<SiteFields>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers).await?;
    let Json(fields) = body.map_err(site_body_error)?;
    let saved = crate::actions::save_site(&state, &site, fields.into()).await?;
    Ok(Json(site_json(&saved.site, &saved.settings)))
}

/// What a refused site body is told: a site holds no secret, so the parser's own text
/// (which field, what was expected) is shown.
fn site_body_error(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::JsonDataError(e) => AppError::BadRequest(format!(
            "the body must be an object with hostname (a string), port (1 to 65535) and \
             optionally context, using_ssl, push_support, local, pin, oath: {}",
            e.body_text()
        )),
        other => body_error(other),
    }
}
