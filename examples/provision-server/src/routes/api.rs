//! The JSON API, behind `Authorization: Bearer <token>` (made by
//! `provision-server api token`):
//!
//! - `POST /api/v1/users/{username}/reprovision` → `202` with the destination and expiry.
//! - `GET /api/v1/users/{username}` → the user and their provisioning status.
//! - `POST /api/v1/users/{username}/unlock` → `200` with whether a lock (or a run of
//!   failures) was cleared.
//!
//! Errors are `{"error": "<seed wording>"}` with a fitting status.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use swivel_provision::{Origin, Username};
use time::format_description::well_known::Rfc3339;

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
    let Some(user) = state.backend().users.find_user(&username).await? else {
        return Err(swivel_provision::Error::UnknownUser { username: name }.into());
    };
    let status = state.provisioner().status(&username).await?;
    Ok(Json(json!({
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
