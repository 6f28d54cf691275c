//! The administration console under `/admin/`: login with the console password, User
//! Management ([`super::users`]), Policy / Self-Reset, Sites ([`super::sites`]), and Log
//! (the shared event log of every instance). Server-rendered from the templates of
//! [`crate::views`]; every form that changes something carries the session's CSRF token.

use std::collections::HashMap;

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{self, HeaderMap};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use swivel_provision::Policy;

use crate::client::ClientIp;
use crate::error::AppError;
use crate::html;
use crate::session::{self, Session};
use crate::state::AppState;
use crate::views;

pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Why a console request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No logged-in session: to the login page.
    NotLoggedIn,
    /// The form did not carry the session's CSRF token.
    BadCsrf,
    /// The session could not be read (the store failed).
    Unavailable,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::NotLoggedIn => Redirect::to("/admin/login").into_response(),
            Denied::BadCsrf => forbidden(),
            Denied::Unavailable => {
                AppError::Internal("console session unavailable".into()).into_response()
            }
        }
    }
}

/// The logged-in session, or a redirect to the login page.
pub(crate) async fn logged_in(state: &AppState, headers: &HeaderMap) -> Result<Session, Denied> {
    match state.sessions().from_headers(headers).await {
        Ok(Some(s)) if s.authenticated => Ok(s),
        Ok(_) => Err(Denied::NotLoggedIn),
        Err(e) => {
            e.log();
            Err(Denied::Unavailable)
        }
    }
}

/// A logged-in session whose form carried its CSRF token.
pub(crate) async fn logged_in_post(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Denied> {
    let session = logged_in(state, headers).await?;
    if !csrf.is_some_and(|t| session.csrf_ok(t)) {
        return Err(Denied::BadCsrf);
    }
    Ok(session)
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        html::headers(),
        views::console::forbidden(),
    )
        .into_response()
}

/// `/admin` and `/admin/`: to the users page.
pub async fn index() -> Redirect {
    Redirect::to("/admin/users")
}

/// The login form. Stores nothing: its CSRF token is signed and bound to a nonce cookie
/// (see [`crate::session`]).
pub async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(s) = state.sessions().from_headers(&headers).await?
        && s.authenticated
    {
        return Ok(Redirect::to("/admin/users").into_response());
    }
    let has_password = state.credentials().has_password().await?;
    let (cookie, nonce) = session::login_cookie(state.secure_cookies());
    let token = state.sessions().login_token(&nonce);
    let response = (
        html::headers(),
        views::console_login::page(&token, None, has_password),
    )
        .into_response();
    Ok(with_cookie(response, &cookie))
}

/// The login form's fields.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// The console password.
    #[serde(default)]
    pub password: String,
}

/// The answer past the console login throttle.
pub const THROTTLED: &str =
    "Too many login attempts from this address. Wait a minute and try again.";

/// Checks the console password; on success a fresh, authenticated session.
///
/// The attempt is counted per client address before the password is hashed, and the hash
/// waits for one of the few hashing turns ([`crate::throttle`]); another address is never
/// refused because of this one's failures.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    if !state.sessions().login_token_ok(&headers, &form.csrf) {
        return Ok(forbidden());
    }
    let has_password = state.credentials().has_password().await?;
    if let Err(t) = state.throttles().console_login(ip).await {
        let page = views::console_login::page(&form.csrf, Some(THROTTLED), has_password);
        return Ok(t.html_response(page));
    }
    let right = {
        let _turn = state.throttles().hash_turn().await?;
        state.credentials().check_password(&form.password).await?
    };
    if !right {
        tracing::warn!(client = %ip, "console login failed");
        let page = views::console_login::page(&form.csrf, Some("Invalid password"), has_password);
        return Ok((StatusCode::UNAUTHORIZED, html::headers(), page).into_response());
    }
    let session = state.sessions().create(true).await?;
    tracing::info!(client = %ip, "console login");
    let response = Redirect::to("/admin/users").into_response();
    let response = with_cookie(
        response,
        &session::set_cookie(&session, state.secure_cookies()),
    );
    Ok(with_cookie(
        response,
        &session::clear_login_cookie(state.secure_cookies()),
    ))
}

/// A form with only the CSRF token.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// Ends the session.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = match logged_in_post(&state, &headers, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if let Err(e) = state.sessions().remove(&session.id).await {
        return e.into_response();
    }
    with_cookie(
        Redirect::to("/admin/login").into_response(),
        &session::clear_cookie(state.secure_cookies()),
    )
}

fn current_values(policy: &Policy) -> HashMap<String, String> {
    Policy::KEYS
        .iter()
        .map(|k| ((*k).to_owned(), policy.get(k).unwrap_or_default()))
        .collect()
}

/// Policy / Self-Reset.
pub async fn policy(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let session = match logged_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    state.reload_policy().await?;
    let values = current_values(&state.provisioner().policy());
    Ok((
        html::headers(),
        views::policy::page(&session.csrf, &values, &[], false),
    )
        .into_response())
}

/// Saves the policy; every refused value is shown on the page and nothing changes.
pub async fn save_policy(
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
    // The form's settings (it also carries the CSRF token).
    let given: Vec<(&str, &str)> = Policy::KEYS
        .iter()
        .filter_map(|k| form.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    let actor = crate::actions::Actor::Console(ip);
    match crate::actions::change_policy(&state, actor, &given).await? {
        Ok(policy) => {
            let page = views::policy::page(&session.csrf, &current_values(&policy), &[], true);
            Ok((html::headers(), page).into_response())
        }
        Err(errors) => {
            let mut values = current_values(&state.provisioner().policy());
            for (key, value) in given {
                values.insert(key.to_owned(), value.to_owned());
            }
            let page = views::policy::page(&session.csrf, &values, &errors, false);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html::headers(), page).into_response())
        }
    }
}

/// Log: the shared event log of every instance, newest first, 50 a page, filtered by user,
/// with an "Older" link (the keyset cursor `before`).
pub async fn log(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let session = match logged_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let Ok(Query(params)) = params else {
        return AppError::BadRequest("the query string is not valid".into()).into_response();
    };
    let query = crate::event_query::parse(&params, crate::event_query::LOG_PAGE_LIMIT);
    let page = match query {
        Ok(query) => crate::event_query::page(&state, &query).await,
        Err(e) => Err(e),
    };
    let (events, next) = match page {
        Ok(page) => page,
        Err(e) => return e.into_response(),
    };
    let given = |name: &str| params.get(name).map_or("", |v| v.trim());
    let filters = views::log::Filters {
        user: given("user"),
        kind: given("kind"),
        since: given("since"),
        until: given("until"),
    };
    let page = views::log::page(&session.csrf, &filters, &events, next);
    (html::headers(), page).into_response()
}
