//! The console's Password page: `GET /admin/password` shows the form, `POST` changes the
//! console password through [`actions::set_console_password`]
//! (as `provision-server admin password` does), which ends every console session; this
//! administrator gets a fresh one. Each attempt counts against the console login throttle
//! and waits for a hashing turn, as a login does, so the form is no faster password
//! oracle than the login page. The page is [`crate::views::password`].

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::HeaderMap;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;

use crate::actions::{self, Actor};
use crate::client::ClientIp;
use crate::error::AppError;
use crate::html;
use crate::routes::admin::{THROTTLED, logged_in, logged_in_post, with_cookie};
use crate::session;
use crate::state::AppState;
use crate::views;
use crate::views::console::Message;

/// `GET /admin/password`.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match logged_in(&state, &headers).await {
        Ok(s) => (html::headers(), views::password::page(&s.csrf, None)).into_response(),
        Err(r) => r.into_response(),
    }
}

/// The form's fields.
#[derive(serde::Deserialize)]
pub struct PasswordForm {
    /// CSRF token.
    #[serde(default)]
    csrf: String,
    /// The password now in use.
    #[serde(default)]
    current: String,
    /// The new password.
    #[serde(default)]
    new: String,
    /// The new password again.
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/password`.
pub async fn change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let refused = |status: StatusCode, text: &str| {
        let page = views::password::page(&session.csrf, Some(&Message::error(text)));
        (status, html::headers(), page).into_response()
    };
    if form.new != form.confirm {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "The new passwords do not match; nothing was changed.",
        ));
    }
    if let Err(t) = state.throttles().console_login(ip).await {
        let page = views::password::page(&session.csrf, Some(&Message::error(THROTTLED)));
        return Ok(t.html_response(page));
    }
    let outcome = {
        let _turn = state.throttles().hash_turn().await?;
        let current = SecretString::from(form.current);
        let new = SecretString::from(form.new);
        actions::set_console_password(&state, Actor::Console(ip), Some(&current), &new).await
    };
    match outcome {
        Ok(()) => {}
        Err(AppError::BadRequest(why)) => {
            tracing::warn!(client = %ip, "console password change refused");
            return Ok(refused(
                StatusCode::BAD_REQUEST,
                &format!("Not changed: {why}."),
            ));
        }
        Err(e) => return Err(e),
    }
    let fresh = state.sessions().create(true).await?;
    let page = views::password::page(
        &fresh.csrf,
        Some(&Message::ok(
            "Console password changed. Every other console session has ended.",
        )),
    );
    Ok(with_cookie(
        (html::headers(), page).into_response(),
        &session::set_cookie(&fresh, state.secure_cookies()),
    ))
}
