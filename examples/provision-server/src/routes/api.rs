//! The JSON API under `/api/v1/`, behind `Authorization: Bearer <token>` (made by
//! `provision-server api token`); each handler carries its OpenAPI description, which
//! [`crate::openapi`] gathers into the document served at `GET /api/v1/openapi.json`.
//!
//! - `POST /api/v1/users/{username}/reprovision` → `202` with the destination and expiry.
//! - `GET /api/v1/users/{username}` → the user and their provisioning status.
//! - `PUT /api/v1/users/{username}` with a JSON body of
//!   [`UserFields`] → `200` with the user as `GET` shows it
//!   (added, or destinations, group and PIN replaced).
//! - `POST /api/v1/users/{username}/unlock` → `200` with whether a lock (or a run of
//!   failures) was cleared.
//! - `POST /api/v1/users/{username}/revoke` → `200` with whether a device or a pending
//!   code was revoked.
//! - `DELETE /api/v1/users/{username}` → `200`: the user deleted (device and code revoked,
//!   PIN removed).
//! - `GET /api/v1/users?prefix=&destination=&after=&limit=` → `{"users": [...],
//!   "next_after": name|null}`: one page of users by username (`prefix` of the username,
//!   `destination` an exact address, `limit` 1 to 1,000, default 100; `after` the
//!   `next_after` of the previous page).
//! - `GET /api/v1/sites/{site}` → what server settings discovery answers for the Site ID.
//! - `PUT /api/v1/sites/{site}` with a JSON body of [`SiteFields`] → `200` with the site
//!   as `GET` shows it (added or replaced).
//! - `GET /api/v1/events?user=&since=&limit=&before=` → `{"events": [...], "next_before":
//!   id|null}`: the shared event log of every instance, newest first (`since` RFC 3339,
//!   `limit` 1 to 1,000, default 100; `before` the `next_before` of the previous page).
//!
//! Errors are problems (`application/problem+json`, [`crate::problem`]) with a fitting
//! status; the `detail` is the seed wording. An address past its allowance of wrong tokens
//! gets `429` with `Retry-After` on every route ([`crate::throttle`]).

use std::collections::HashMap;
use std::net::IpAddr;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use swivel_provision::{SiteId, Username};

use crate::actions::{Actor, UserFields};
use crate::api_json::{
    CancelJson, DeletedJson, DeletedSiteJson, EventJson, EventsJson, PolicyJson, ReprovisionJson,
    RevokeJson, SiteFields, SiteJson, SitesJson, UnlockJson, UserEntryJson, UserJson, UsersJson,
};
use crate::client::ClientIp;
use crate::error::AppError;
use crate::problem::Problem;
use crate::state::AppState;

/// An API error: answered as a [`Problem`].
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.log();
        let mut response = Problem::new(self.0.status(), self.0.public_message()).into_response();
        let headers = response.headers_mut();
        match &self.0 {
            AppError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            AppError::Core(swivel_provision::Error::RateLimited { retry_after_secs }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// Lets the request through when it carries the API token. An address that sent too many
/// wrong tokens (`[throttle]` `api_token_failures_per_ip`, counted in the store too, so on
/// every instance) is refused before its token is looked at, the right one included: a
/// guess past the allowance is never checked. `429` with `Retry-After`, as a problem.
async fn authorize(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<(), ApiError> {
    let throttles = state.throttles();
    throttles.api_admit(ip).map_err(throttled)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AppError::Unauthorized)?;
    if !state.credentials().check_api_token(token).await? {
        tracing::warn!("API request with a wrong token");
        throttles.api_token_failed(ip).await;
        return Err(AppError::Unauthorized.into());
    }
    Ok(())
}

/// A throttle's refusal as the API answers it (`429`, `Retry-After`).
fn throttled(t: crate::throttle::Throttled) -> ApiError {
    AppError::Core(swivel_provision::Error::RateLimited {
        retry_after_secs: t.retry_after_secs().max(1),
    })
    .into()
}

/// `GET /api/v1/users/{username}`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{username}",
    tag = "users",
    summary = "A user and their provisioning status",
    params(("username" = String, Path, example = "alice", description = "The username")),
    responses(
        (status = 200, description = "The user", body = UserJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn user(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<UserJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let username = Username::parse(&name)?;
    Ok(Json(user_json(&state, &username).await?))
}

/// `PUT /api/v1/users/{username}`.
#[utoipa::path(
    put,
    path = "/api/v1/users/{username}",
    tag = "users",
    summary = "Add a user, or replace their destinations and group (and PIN, when given)",
    description = "The same as `provision-server users add`. Every field is checked before \
        anything is written; a refused body is never quoted back (it may hold a PIN).",
    params(("username" = String, Path, example = "alice", description = "The username")),
    request_body = UserFields,
    responses(
        (status = 200, description = "The user as saved", body = UserJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 413, response = crate::openapi::TooLarge),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn save_user(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<UserFields>, JsonRejection>,
) -> Result<Json<UserJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let Json(fields) = body.map_err(body_error)?;
    let saved = crate::actions::save_user(&state, Actor::Api, &name, &fields).await?;
    Ok(Json(user_json(&state, &saved.username).await?))
}

/// What a refused JSON body is told. Never the parser's own text: it quotes values, and a
/// value may be a PIN.
fn body_error(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            AppError::BadRequest("the body must be JSON (Content-Type: application/json)".into())
        }
        JsonRejection::JsonSyntaxError(_) => {
            AppError::BadRequest("the body is not valid JSON".into())
        }
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        _ => AppError::BadRequest(
            "the body must be an object with only these fields: email, phone, \
             strings_email, strings_phone (strings), mobile_group (true or false), pin \
             (a string of 4 to 10 digits)"
                .into(),
        ),
    }
}

/// The user and their provisioning status, as `GET` shows them.
async fn user_json(state: &AppState, username: &Username) -> Result<UserJson, ApiError> {
    let Some(user) = state.backend().users.find_user(username).await? else {
        return Err(swivel_provision::Error::UnknownUser {
            username: username.to_string(),
        }
        .into());
    };
    let status = state.provisioner().status(username).await?;
    Ok(UserJson::new(
        &user.username,
        user.mobile_group,
        &user.destinations,
        status,
    ))
}

/// `GET /api/v1/events`.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    summary = "One page of the shared event log of every instance, newest first",
    description = "A parameter is left out rather than sent empty; an unknown one is refused.",
    params(
        ("user" = Option<String>, Query, min_length = 1,
            description = "Only the events of this user"),
        ("kind" = Option<String>, Query, min_length = 1,
            description = "Only events of this kind, e.g. `code_created` or \
                `administrator_action` (every kind is listed in the 400 answer to an unknown one)"),
        ("since" = Option<String>, Query, format = DateTime,
            description = "Only events at or after this RFC 3339 time"),
        ("until" = Option<String>, Query, format = DateTime,
            description = "Only events before this RFC 3339 time"),
        ("limit" = Option<u16>, Query, minimum = 1, maximum = 1000,
            description = "Events on the page (default 100)"),
        ("before" = Option<i64>, Query, minimum = 1,
            description = "The `next_before` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of events", body = EventsJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<EventsJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let Query(params) =
        params.map_err(|_| AppError::BadRequest("the query string is not valid".into()))?;
    let query = crate::event_query::parse(&params, crate::event_query::API_DEFAULT_LIMIT)?;
    // Unlike the Log page's filter form, the API leaves a parameter out rather than send
    // it empty (as the document says).
    if let Some((name, _)) = params.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(AppError::BadRequest(format!("{name} is empty; leave it out instead")).into());
    }
    let (events, next_before) = crate::event_query::page(&state, &query).await?;
    Ok(Json(EventsJson {
        events: events.iter().map(EventJson::from).collect(),
        next_before,
    }))
}

/// `POST /api/v1/users/{username}/unlock`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/unlock",
    tag = "users",
    summary = "Unlock an account locked after too many failed attempts in a row",
    params(("username" = String, Path, example = "alice", description = "The username")),
    responses(
        (status = 200, description = "Whether there was something to clear", body = UnlockJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn unlock(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<UnlockJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let done = crate::actions::unlock(&state, Actor::Api, &name).await?;
    Ok(Json(UnlockJson {
        username: done.username.as_str().to_owned(),
        unlocked: done.cleared,
    }))
}

/// `POST /api/v1/users/{username}/reprovision`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/reprovision",
    tag = "users",
    summary = "Send the user a new provision code",
    params(("username" = String, Path, example = "alice", description = "The username")),
    responses(
        (status = 202, description = "The code is made and sent (or queued)", body = ReprovisionJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 423, response = crate::openapi::Locked),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn reprovision(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers, ip).await?;
    let done = crate::actions::reprovision(&state, Actor::Api, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(ReprovisionJson::from(&done.0))).into_response())
}

/// `POST /api/v1/users/{username}/revoke`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/revoke",
    tag = "users",
    summary = "Revoke the user's device and pending provision code",
    description = "The same as the console's Revoke and `provision-server users revoke`. \
        The user stays; a new code (reprovision) provisions a new device.",
    params(("username" = String, Path, example = "alice", description = "The username")),
    responses(
        (status = 200, description = "Whether there was something to revoke", body = RevokeJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<RevokeJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let done = crate::actions::revoke(&state, Actor::Api, &name).await?;
    Ok(Json(RevokeJson {
        username: done.username.as_str().to_owned(),
        revoked: done.revoked,
    }))
}

/// `POST /api/v1/users/{username}/cancel`.
#[utoipa::path(
    post,
    path = "/api/v1/users/{username}/cancel",
    tag = "users",
    summary = "Cancel the user's pending provision code",
    description = "The same as the console's Cancel pending code and `provision-server users \
        cancel`: the pending code no longer redeems (a queued message of it is dropped \
        unsent); the device, if any, keeps working.",
    params(("username" = String, Path, example = "alice", description = "The username")),
    responses(
        (status = 200, description = "Whether there was a pending code", body = CancelJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<CancelJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let done = crate::actions::cancel_code(&state, Actor::Api, &name).await?;
    Ok(Json(CancelJson {
        username: done.username.as_str().to_owned(),
        cancelled: done.cancelled,
    }))
}

/// `DELETE /api/v1/users/{username}`.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{username}",
    tag = "users",
    summary = "Delete a user",
    description = "The same as the console's Delete and `provision-server users delete`: the \
        device and pending code are revoked, then the user and their PIN are removed.",
    params(("username" = String, Path, example = "alice", description = "The username")),
    responses(
        (status = 200, description = "The user is deleted", body = DeletedJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<DeletedJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let done = crate::actions::delete_user(&state, Actor::Api, &name).await?;
    Ok(Json(DeletedJson {
        username: done.username.as_str().to_owned(),
        deleted: true,
    }))
}

/// `GET /api/v1/users`.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    summary = "One page of users, ordered by username",
    description = "A parameter is left out rather than sent empty; an unknown one is refused.",
    params(
        ("prefix" = Option<String>, Query, min_length = 1,
            description = "Only usernames starting with this text"),
        ("destination" = Option<String>, Query, min_length = 1,
            description = "Only users with a destination of exactly this address"),
        ("after" = Option<String>, Query, min_length = 1,
            description = "The `next_after` of the previous page"),
        ("limit" = Option<u16>, Query, minimum = 1, maximum = 1000,
            description = "Users on the page (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of users", body = UsersJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn users(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<UsersJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let Query(params) =
        params.map_err(|_| AppError::BadRequest("the query string is not valid".into()))?;
    let query = crate::user_list::parse(&params, crate::user_list::API_DEFAULT_LIMIT)?;
    if let Some((name, _)) = params.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(AppError::BadRequest(format!("{name} is empty; leave it out instead")).into());
    }
    let page = crate::user_list::page(&state, &query).await?;
    Ok(Json(UsersJson {
        users: page.users.iter().map(UserEntryJson::from).collect(),
        next_after: page.next_after.map(|u| u.as_str().to_owned()),
    }))
}

/// `GET /api/v1/sites`.
#[utoipa::path(
    get,
    path = "/api/v1/sites",
    tag = "sites",
    summary = "Every site server settings discovery answers for",
    description = "The same as the console's Sites page and `provision-server sites list`.",
    responses(
        (status = 200, description = "Every site, in Site ID order", body = SitesJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn sites(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Json<SitesJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let sites = state.backend().site_admin.list_sites().await?;
    Ok(Json(SitesJson {
        sites: sites.iter().map(|(id, s)| SiteJson::new(id, s)).collect(),
    }))
}

fn policy_json(policy: &swivel_provision::Policy) -> PolicyJson {
    PolicyJson(
        swivel_provision::Policy::KEYS
            .iter()
            .map(|k| ((*k).to_owned(), policy.get(k).unwrap_or_default()))
            .collect(),
    )
}

/// `GET /api/v1/policy`.
#[utoipa::path(
    get,
    path = "/api/v1/policy",
    tag = "policy",
    summary = "Every setting of the policy",
    description = "The same as the console's Policy page and `provision-server policy show`.",
    responses(
        (status = 200, description = "The policy", body = PolicyJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn policy(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Json<PolicyJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    state.reload_policy().await?;
    Ok(Json(policy_json(&state.provisioner().policy())))
}

/// `PUT /api/v1/policy`.
#[utoipa::path(
    put,
    path = "/api/v1/policy",
    tag = "policy",
    summary = "Change some settings of the policy",
    description = "The same as the console's Policy page and `provision-server policy set`: \
        the body names the settings to change (names and values as `GET` shows them; the \
        others stay). Every refused value is in the `400`'s detail, and then nothing \
        changed.",
    request_body = PolicyJson,
    responses(
        (status = 200, description = "The whole policy, as saved", body = PolicyJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 413, response = crate::openapi::TooLarge),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn save_policy(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Json<PolicyJson>, JsonRejection>,
) -> Result<Json<PolicyJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let Json(PolicyJson(values)) = body.map_err(|r| match r {
        r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        JsonRejection::JsonSyntaxError(_) => {
            AppError::BadRequest("the body is not valid JSON".into())
        }
        JsonRejection::MissingJsonContentType(_) => {
            AppError::BadRequest("the body must be JSON (Content-Type: application/json)".into())
        }
        _ => AppError::BadRequest(
            "the body must be an object of setting names to values, all strings, as GET \
             /api/v1/policy shows them"
                .into(),
        ),
    })?;
    state.reload_policy().await?;
    let given: Vec<(&str, &str)> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match crate::actions::change_policy(&state, Actor::Api, &given).await? {
        Ok(policy) => Ok(Json(policy_json(&policy))),
        Err(refused) => Err(AppError::BadRequest(refused.join("; ")).into()),
    }
}

/// `GET /api/v1/sites/{site}`.
#[utoipa::path(
    get,
    path = "/api/v1/sites/{site}",
    tag = "sites",
    summary = "What server settings discovery answers for the Site ID",
    params(("site" = String, Path, example = "DEMO",
        description = "The Site ID (1 to 64 letters, digits, '-', '_', '.')")),
    responses(
        (status = 200, description = "The site", body = SiteJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn site(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Json<SiteJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let site = SiteId::parse(&site)?;
    let Some(settings) = state.backend().sites.find_site(&site).await? else {
        return Err(swivel_provision::Error::UnknownServerId.into());
    };
    Ok(Json(SiteJson::new(&site, &settings)))
}

/// `PUT /api/v1/sites/{site}`.
#[utoipa::path(
    put,
    path = "/api/v1/sites/{site}",
    tag = "sites",
    summary = "Add or replace a site",
    description = "The same as `provision-server sites add`.",
    params(("site" = String, Path, example = "DEMO",
        description = "The Site ID (1 to 64 letters, digits, '-', '_', '.')")),
    request_body = SiteFields,
    responses(
        (status = 200, description = "The site as saved", body = SiteJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 413, response = crate::openapi::TooLarge),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn save_site(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(site): Path<String>,
    body: Result<Json<SiteFields>, JsonRejection>,
) -> Result<Json<SiteJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let Json(fields) = body.map_err(site_body_error)?;
    let saved = crate::actions::save_site(&state, Actor::Api, &site, fields.into()).await?;
    Ok(Json(SiteJson::new(&saved.site, &saved.settings)))
}

/// `DELETE /api/v1/sites/{site}`.
#[utoipa::path(
    delete,
    path = "/api/v1/sites/{site}",
    tag = "sites",
    summary = "Delete a site",
    description = "The same as the console's Delete on the Sites page and `provision-server \
        sites delete`: server settings discovery no longer answers for the Site ID.",
    params(("site" = String, Path, example = "DEMO",
        description = "The Site ID (1 to 64 letters, digits, '-', '_', '.')")),
    responses(
        (status = 200, description = "The site is deleted", body = DeletedSiteJson),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 429, response = crate::openapi::TooManyRequests),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::ServerError),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
pub async fn delete_site(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Json<DeletedSiteJson>, ApiError> {
    authorize(&state, &headers, ip).await?;
    let done = crate::actions::delete_site(&state, Actor::Api, &site).await?;
    Ok(Json(DeletedSiteJson {
        site: done.site.as_str().to_owned(),
        deleted: true,
    }))
}

/// What a refused site body is told: which field is wrong (a key the client sent is
/// shortened to 64 bytes), never a value.
fn site_body_error(rejection: JsonRejection) -> AppError {
    const SHAPE: &str = "the body must be an object with hostname (a string), port (1 to \
                         65535) and optionally context, using_ssl, push_support, local, pin, \
                         oath (true or false)";
    let JsonRejection::JsonDataError(e) = &rejection else {
        return body_error(rejection);
    };
    let parsed = std::error::Error::source(e)
        .and_then(std::error::Error::source)
        .and_then(|s| s.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>());
    let Some(parsed) = parsed else {
        return AppError::BadRequest(SHAPE.into());
    };
    let path = parsed.path().to_string();
    let what = if path != "." {
        format!(
            "{} has a wrong type or value",
            crate::event_query::truncated(&path)
        )
    } else {
        // At the top level: a missing field (its name is ours) or an unknown one.
        let inner = parsed.inner().to_string();
        match between_backticks(&inner) {
            Some(field) if inner.starts_with("missing field") => {
                format!("{} is missing", crate::event_query::truncated(field))
            }
            Some(field) if inner.starts_with("unknown field") => {
                format!("unknown field {}", crate::event_query::truncated(field))
            }
            _ => "it is not such an object".into(),
        }
    };
    AppError::BadRequest(format!("{SHAPE}: {what}"))
}

fn between_backticks(s: &str) -> Option<&str> {
    let start = s.find('`')? + 1;
    let len = s[start..].find('`')?;
    Some(&s[start..start + len])
}
