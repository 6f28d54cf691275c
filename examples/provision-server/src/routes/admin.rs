//! The administration console under `/admin/`: login with the console password, User
//! Management ([`super::users`]), Policy / Self-Reset, Sites ([`super::sites`]), and Log
//! (the shared event log of every instance). Server-rendered; every form that changes
//! something carries the session's CSRF token.

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
use crate::html::{self, csrf_field, escape};
use crate::routes::show_time;
use crate::session::{self, Session};
use crate::state::AppState;

pub(crate) fn nav(session: &Session) -> String {
    format!(
        "<nav><a href=\"/admin/users\">User Management</a><a href=\"/admin/policy\">Policy / Self-Reset</a>\
<a href=\"/admin/sites\">Sites</a><a href=\"/admin/log\">Log</a><form method=\"post\" action=\"/admin/logout\" style=\"display:inline\">{}\
<button type=\"submit\" id=\"logout\">Log out</button></form></nav>",
        csrf_field(&session.csrf)
    )
}

pub(crate) fn console_page(session: &Session, title: &str, body: &str) -> String {
    html::page(title, &format!("{}\n{body}", nav(session)))
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
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
    let body = html::page(
        "Forbidden",
        "<p class=\"error\">The form has expired or did not come from this console. Reload the page and try again.</p>",
    );
    (StatusCode::FORBIDDEN, html::headers(), body).into_response()
}

/// `/admin` and `/admin/`: to the users page.
pub async fn index() -> Redirect {
    Redirect::to("/admin/users")
}

fn login_page(csrf: &str, message: Option<&str>, has_password: bool) -> String {
    let mut body = String::new();
    if let Some(m) = message {
        body.push_str(&format!(
            "<p class=\"error\" id=\"message\">{}</p>",
            escape(m)
        ));
    }
    if !has_password {
        body.push_str(
            "<p class=\"error\">No console password is set. Run <code>provision-server admin password</code> to set one.</p>",
        );
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/admin/login\">{}<label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\" id=\"login\">Log in</button></form>",
        csrf_field(csrf)
    ));
    html::page("Administration Console", &body)
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
    let response = (html::headers(), login_page(&token, None, has_password)).into_response();
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
        let page = login_page(&form.csrf, Some(THROTTLED), has_password);
        return Ok(t.html_response(page));
    }
    let right = {
        let _turn = state.throttles().hash_turn().await?;
        state.credentials().check_password(&form.password).await?
    };
    if !right {
        tracing::warn!(client = %ip, "console login failed");
        let page = login_page(&form.csrf, Some("Invalid password"), has_password);
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

struct Field {
    key: &'static str,
    label: &'static str,
    choices: Option<&'static [&'static str]>,
}

const FIELDS: &[Field] = &[
    Field {
        key: "allow_self_provision",
        label: "Allow user self-provision of mobile client",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "log_device_info",
        label: "Log device information when provisioning",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "notify_device_bound",
        label: "Tell the user when a new device is provisioned",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "validity_secs",
        label: "Provision Code Validity period (seconds, 10-1000000)",
        choices: None,
    },
    Field {
        key: "code_length",
        label: "Provision code length",
        choices: None,
    },
    Field {
        key: "code_alphabet",
        label: "Provision code alphabet",
        choices: Some(&["digits", "alphanumeric"]),
    },
    Field {
        key: "max_attempts",
        label: "Wrong attempts per code (1-100)",
        choices: None,
    },
    Field {
        key: "self_service_interval_secs",
        label: "Seconds between self-service requests per user (0-86400)",
        choices: None,
    },
    Field {
        key: "delivery",
        label: "Message carries",
        choices: Some(&["both", "code_only", "url_only"]),
    },
    Field {
        key: "links.provision",
        label: "Provision URL (provision)",
        choices: None,
    },
    Field {
        key: "links.getsettings",
        label: "Provision URL (getsettings)",
        choices: None,
    },
    Field {
        key: "links.complete",
        label: "Provision URL (complete)",
        choices: None,
    },
    Field {
        key: "site_id",
        label: "Site ID",
        choices: None,
    },
    Field {
        key: "token_index",
        label: "Answer TokenIndex (next index for the mobile client)",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "provision_code_as_security_string",
        label: "Send provision code as security string",
        choices: Some(&["Yes", "No"]),
    },
];

fn policy_page(
    session: &Session,
    values: &HashMap<String, String>,
    errors: &[String],
    saved: bool,
) -> String {
    let mut body = String::new();
    if saved {
        body.push_str("<p class=\"ok\" id=\"message\">Policy saved.</p>");
    }
    if !errors.is_empty() {
        body.push_str("<ul class=\"error\" id=\"errors\">");
        for e in errors {
            body.push_str(&format!("<li>{}</li>", escape(e)));
        }
        body.push_str("</ul>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/admin/policy\">{}",
        csrf_field(&session.csrf)
    ));
    for f in FIELDS {
        let value = values.get(f.key).cloned().unwrap_or_default();
        let input = match f.choices {
            Some(choices) => {
                let opts: String = choices
                    .iter()
                    .map(|c| {
                        let sel = if c.eq_ignore_ascii_case(&value) {
                            " selected"
                        } else {
                            ""
                        };
                        format!("<option value=\"{c}\"{sel}>{c}</option>")
                    })
                    .collect();
                format!("<select name=\"{k}\" id=\"{k}\">{opts}</select>", k = f.key)
            }
            None => format!(
                "<input name=\"{k}\" id=\"{k}\" value=\"{v}\" size=\"60\">",
                k = f.key,
                v = escape(&value)
            ),
        };
        body.push_str(&format!("<label>{}: {input}</label>", escape(f.label)));
    }
    body.push_str("<button type=\"submit\" id=\"save\">Save</button></form>");
    console_page(session, "Policy / Self-Reset", &body)
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
    Ok((html::headers(), policy_page(&session, &values, &[], false)).into_response())
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
    let mut next = state.provisioner().policy();
    let mut errors = Vec::new();
    for key in Policy::KEYS {
        if let Some(value) = form.get(*key) {
            if next.get(key).as_deref() == Some(value.as_str()) {
                continue;
            }
            if let Err(e) = next.set(key, value) {
                errors.push(e.to_string());
            }
        }
    }
    if !errors.is_empty() {
        let mut values = current_values(&next);
        for key in Policy::KEYS {
            if let Some(v) = form.get(*key) {
                values.insert((*key).to_owned(), v.clone());
            }
        }
        let page = policy_page(&session, &values, &errors, false);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html::headers(), page).into_response());
    }
    crate::actions::save_policy(&state, crate::actions::Actor::Console(ip), next).await?;
    let values = current_values(&state.provisioner().policy());
    Ok((html::headers(), policy_page(&session, &values, &[], true)).into_response())
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
    let query = params
        .map_err(|_| AppError::BadRequest("the query string is not valid".into()))
        .and_then(|Query(p)| crate::event_query::parse(&p, crate::event_query::LOG_PAGE_LIMIT));
    let page = match query {
        Ok(query) => crate::event_query::page(&state, &query)
            .await
            .map(|page| (query, page)),
        Err(e) => Err(e),
    };
    let (query, (events, next)) = match page {
        Ok(page) => page,
        Err(e) => return e.into_response(),
    };
    let user = query.user.as_ref().map_or("", |u| u.as_str());
    let mut body = format!(
        "<form method=\"get\" action=\"/admin/log\"><label>User <input name=\"user\" id=\"user\" value=\"{}\"></label>\
<button type=\"submit\" id=\"filter\">Filter</button></form>\
<table id=\"log\"><tr><th>Time</th><th>Instance</th><th>Event</th></tr>",
        escape(user)
    );
    for e in &events {
        body.push_str(&format!(
            "<tr{}><td>{}</td><td>{}</td><td>{}</td></tr>",
            if e.failure { " class=\"error\"" } else { "" },
            show_time(e.at),
            escape(&e.instance),
            escape(&e.line)
        ));
    }
    body.push_str("</table>");
    if let Some(before) = next {
        body.push_str(&format!(
            "<p><a id=\"older\" href=\"/admin/log?before={before}&amp;user={}\">Older</a></p>",
            escape(&crate::routes::landing::encode_component(user))
        ));
    }
    (html::headers(), console_page(&session, "Log", &body)).into_response()
}
