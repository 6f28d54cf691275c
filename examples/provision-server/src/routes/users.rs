//! User Management in the console: `/admin/users`, one page of 50 users at a time (search
//! by username prefix or exact destination, "Next" by keyset cursor, Add user), and a page
//! per user, `/admin/users/{username}`, with the status and the actions (Reprovision,
//! Revoke device, Unlock, Edit, Delete with a confirmation step). Every action is a form
//! with the session's CSRF token and calls the function of [`crate::actions`] that the
//! JSON API and the command line call.

use std::collections::HashMap;

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::HeaderMap;
use axum::response::{IntoResponse, Response};
use swivel_provision::{Channel, Origin, ProvisionStatus, Purpose, UserEntry, UserQuery, Username};

use crate::actions::{self, Actor, UserFields};
use crate::client::ClientIp;
use crate::error::AppError;
use crate::html::{self, csrf_field, escape};
use crate::routes::admin::{console_page, logged_in, logged_in_post};
use crate::routes::landing::encode_component;
use crate::routes::show_time;
use crate::session::Session;
use crate::state::AppState;
use crate::user_list::{self, CONSOLE_PAGE_LIMIT};

/// A user's status on one line, as the users page and `users list` show it.
pub fn status_text(status: &ProvisionStatus) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &status.device {
        let mut s = format!("provisioned at {}", show_time(d.provisioned_at));
        if let Some(info) = &d.info {
            s.push_str(&format!(" ({info})"));
        }
        parts.push(s);
    }
    if let Some(p) = &status.pending {
        parts.push(format!("pending until {}", show_time(p.expires_at)));
    }
    if let Some(t) = status.locked_at {
        parts.push(format!(
            "locked since {} after {} failed attempts",
            show_time(t),
            status.failures
        ));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("; ")
    }
}

/// The path of a user's page (the name percent-encoded, so any username is one segment).
fn user_path(username: &Username) -> String {
    format!("/admin/users/{}", encode_component(username.as_str()))
}

fn message_html(message: Option<&(&str, String)>) -> String {
    message.map_or_else(String::new, |(class, text)| {
        format!("<p class=\"{class}\" id=\"message\">{}</p>", escape(text))
    })
}

/// A one-button form posting the session's CSRF token to `action`.
fn button(session: &Session, action: &str, id: &str, label: &str, value: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\" style=\"display:inline\">{csrf}\
<input type=\"hidden\" name=\"username\" value=\"{value}\">\
<button type=\"submit\" id=\"{id}\" name=\"{id}\" value=\"{value}\">{label}</button></form>",
        action = escape(action),
        csrf = csrf_field(&session.csrf),
        value = escape(value),
    )
}

fn destinations_text(user: &UserEntry) -> String {
    user.destinations
        .iter()
        .map(|d| match d.purpose {
            Purpose::Alert => format!("{}: {}", d.channel, d.address),
            Purpose::SecurityString => format!("{} (strings): {}", d.channel, d.address),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fields of the Add user and Edit forms (a PIN left empty is not changed; an
/// unchecked box is outside the mobile group).
#[derive(Debug, serde::Deserialize)]
pub struct UserForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// The user (Add user only; Edit takes it from the path).
    #[serde(default)]
    pub username: String,
    /// Email address.
    #[serde(default)]
    pub email: String,
    /// Phone number.
    #[serde(default)]
    pub phone: String,
    /// Email address of the security-string transport.
    #[serde(default)]
    pub strings_email: String,
    /// Phone number of the security-string transport.
    #[serde(default)]
    pub strings_phone: String,
    /// `on` when the box is checked.
    #[serde(default)]
    pub mobile_group: Option<String>,
    /// A new PIN, or empty.
    #[serde(default)]
    pub pin: String,
}

impl UserForm {
    fn fields(&self) -> UserFields {
        let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        UserFields {
            email: given(&self.email),
            phone: given(&self.phone),
            strings_email: given(&self.strings_email),
            strings_phone: given(&self.strings_phone),
            mobile_group: self.mobile_group.is_some(),
            pin: given(&self.pin),
        }
    }
}

/// The inputs of the Add user and Edit forms, filled with `user`'s values.
fn user_inputs(user: Option<&UserEntry>) -> String {
    let find = |channel: Channel, purpose: Purpose| {
        user.and_then(|u| {
            u.destinations
                .iter()
                .find(|d| d.channel == channel && d.purpose == purpose)
        })
        .map_or_else(String::new, |d| escape(&d.address))
    };
    let checked = if user.is_some_and(|u| u.mobile_group) {
        " checked"
    } else {
        ""
    };
    format!(
        "<label>Email <input name=\"email\" id=\"email\" value=\"{}\"></label>\
<label>Phone <input name=\"phone\" id=\"phone\" value=\"{}\"></label>\
<label>Security-string email <input name=\"strings_email\" id=\"strings_email\" value=\"{}\"></label>\
<label>Security-string phone <input name=\"strings_phone\" id=\"strings_phone\" value=\"{}\"></label>\
<label><input type=\"checkbox\" name=\"mobile_group\" id=\"mobile_group\"{checked}> Mobile group</label>\
<label>PIN (4 to 10 digits{}) <input type=\"password\" name=\"pin\" id=\"pin\" autocomplete=\"new-password\"></label>",
        find(Channel::Email, Purpose::Alert),
        find(Channel::Sms, Purpose::Alert),
        find(Channel::Email, Purpose::SecurityString),
        find(Channel::Sms, Purpose::SecurityString),
        if user.is_some() {
            "; empty: unchanged"
        } else {
            ""
        },
    )
}

/// The users page: the search form, one page of users and the "Next" link.
async fn list_page(
    state: &AppState,
    session: &Session,
    query: &UserQuery,
    message: Option<(&str, String)>,
) -> Result<String, AppError> {
    let page = user_list::page(state, query).await?;
    let prefix = query.prefix.as_deref().unwrap_or_default();
    let destination = query.destination.as_deref().unwrap_or_default();
    let mut body = message_html(message.as_ref());
    body.push_str(&format!(
        "<form method=\"get\" action=\"/admin/users\" id=\"search\">\
<label>Username starts with <input name=\"prefix\" id=\"prefix\" value=\"{}\"></label>\
<label>Destination (exact) <input name=\"destination\" id=\"destination\" value=\"{}\"></label>\
<button type=\"submit\" id=\"find\">Search</button> <a href=\"/admin/users\">All users</a></form>",
        escape(prefix),
        escape(destination)
    ));
    body.push_str("<table id=\"users\"><tr><th>User</th><th>Destinations</th><th>Mobile group</th><th>Provisioning</th><th></th></tr>");
    for user in &page.users {
        let status = state.provisioner().status(&user.username).await?;
        let name = user.username.as_str();
        let unlock = if status.locked_at.is_some() {
            button(session, "/admin/unlock", "unlock", "Unlock", name)
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<tr><td><a href=\"{href}\">{name}</a></td><td>{dests}</td><td>{group}</td>\
<td class=\"status\">{status}</td><td>{reprovision}{unlock}</td></tr>",
            href = escape(&user_path(&user.username)),
            name = escape(name),
            dests = escape(&destinations_text(user)),
            group = if user.mobile_group { "yes" } else { "no" },
            status = escape(&status_text(&status)),
            reprovision = button(
                session,
                "/admin/reprovision",
                "reprovision",
                "Reprovision",
                name
            ),
        ));
    }
    body.push_str("</table>");
    let searching = query.prefix.is_some() || query.destination.is_some();
    if page.users.is_empty() {
        body.push_str(if searching || query.after.is_some() {
            "<p id=\"none\">No users match.</p>"
        } else {
            "<p id=\"none\">No users yet. Add one below, or with <code>provision-server users add NAME --email ADDRESS --mobile-group</code>.</p>"
        });
    }
    if let Some(after) = page.next_after {
        body.push_str(&format!(
            "<p><a id=\"next\" href=\"/admin/users?prefix={}&amp;destination={}&amp;after={}\">Next</a></p>",
            escape(&encode_component(prefix)),
            escape(&encode_component(destination)),
            escape(&encode_component(after.as_str()))
        ));
    }
    body.push_str(&format!(
        "<h2>Add user</h2><form method=\"post\" action=\"/admin/users\" id=\"add\">{}\
<label>Username <input name=\"username\" id=\"username\" required></label>{}\
<button type=\"submit\" id=\"add-user\">Add user</button></form>",
        csrf_field(&session.csrf),
        user_inputs(None)
    ));
    Ok(console_page(session, "User Management", &body))
}

/// An answer with `status` and the page.
fn html_page(status: StatusCode, page: String) -> Response {
    (status, html::headers(), page).into_response()
}

/// The status and the message of an action's outcome.
fn outcome(result: Result<String, AppError>) -> (StatusCode, (&'static str, String)) {
    match result {
        Ok(done) => (StatusCode::OK, ("ok", done)),
        Err(e) => {
            e.log();
            (e.status(), ("error", e.public_message()))
        }
    }
}

/// The users page after an action on it (the first page), with the outcome.
async fn list_after(
    state: &AppState,
    session: &Session,
    result: Result<String, AppError>,
) -> Result<Response, AppError> {
    let (status, message) = outcome(result);
    let page = list_page(
        state,
        session,
        &UserQuery::first(CONSOLE_PAGE_LIMIT),
        Some(message),
    )
    .await?;
    Ok(html_page(status, page))
}

/// `GET /admin/users`: the users page (`prefix`, `destination`, `after`).
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, AppError> {
    let session = match logged_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let query = params
        .map_err(|_| AppError::BadRequest("the query string is not valid".into()))
        .and_then(|Query(p)| user_list::parse(&p, CONSOLE_PAGE_LIMIT))
        .map(|q| UserQuery {
            limit: CONSOLE_PAGE_LIMIT,
            ..q
        });
    match query {
        Ok(query) => Ok(html_page(
            StatusCode::OK,
            list_page(&state, &session, &query, None).await?,
        )),
        Err(e) => list_after(&state, &session, Err(e)).await,
    }
}

/// `POST /admin/users`: Add user.
pub async fn add(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<UserForm>,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let result = async {
        let name = Username::parse(&form.username)?;
        if state.backend().users.find_user(&name).await?.is_some() {
            return Err(AppError::BadRequest(format!(
                "User \"{name}\" already exists; change it on its page."
            )));
        }
        actions::save_user(&state, Actor::Console(ip), name.as_str(), &form.fields()).await
    }
    .await;
    match result {
        Ok(saved) => user_after(&state, &session, &saved.username, Ok(saved.to_string())).await,
        Err(e) => list_after(&state, &session, Err(e)).await,
    }
}

/// The fields of the one-button forms.
#[derive(Debug, serde::Deserialize)]
pub struct ButtonForm {
    /// CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// The user (the users page's buttons; the user page takes it from the path).
    #[serde(default)]
    pub username: String,
}

/// `POST /admin/reprovision` (the users page's button): a new code to the user's own
/// transport.
pub async fn reprovision(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<ButtonForm>,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let result = actions::reprovision(&state, Actor::Console(ip), &form.username)
        .await
        .map(|done| done.to_string());
    list_after(&state, &session, result).await
}

/// `POST /admin/unlock` (the users page's button): an account locked after too many failed
/// attempts takes codes again.
pub async fn unlock(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<ButtonForm>,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let result = actions::unlock(&state, Actor::Console(ip), &form.username)
        .await
        .map(|done| done.to_string());
    list_after(&state, &session, result).await
}

fn pending_text(status: &ProvisionStatus) -> String {
    status.pending.as_ref().map_or_else(
        || "none".into(),
        |p| {
            format!(
                "pending until {}, {} attempts left, asked by {}",
                show_time(p.expires_at),
                p.attempts_left,
                match p.origin {
                    Origin::Admin => "an administrator",
                    Origin::SelfService => "the user (self-service)",
                }
            )
        },
    )
}

fn device_text(status: &ProvisionStatus) -> String {
    status.device.as_ref().map_or_else(
        || "none".into(),
        |d| {
            let info = d
                .info
                .as_ref()
                .map_or_else(String::new, |i| format!(" ({i})"));
            format!(
                "provisioned at {}{info}, security strings generation {}",
                show_time(d.provisioned_at),
                d.generation
            )
        },
    )
}

fn account_text(status: &ProvisionStatus) -> String {
    match status.locked_at {
        Some(t) => format!(
            "locked since {} after {} failed attempts",
            show_time(t),
            status.failures
        ),
        None if status.failures > 0 => {
            format!("not locked; {} failed attempts in a row", status.failures)
        }
        None => "not locked".into(),
    }
}

/// A user's page: the status, the actions and the Edit form.
async fn user_page(
    state: &AppState,
    session: &Session,
    user: &UserEntry,
    message: Option<(&str, String)>,
) -> Result<String, AppError> {
    let status = state.provisioner().status(&user.username).await?;
    let path = user_path(&user.username);
    let name = user.username.as_str();
    let mut body = message_html(message.as_ref());
    body.push_str(&format!(
        "<p><a href=\"/admin/users\">All users</a></p><table id=\"status\">\
<tr><th>Destinations</th><td id=\"destinations\">{}</td></tr>\
<tr><th>Mobile group</th><td id=\"group\">{}</td></tr>\
<tr><th>Provision code</th><td id=\"pending\">{}</td></tr>\
<tr><th>Device</th><td id=\"device\">{}</td></tr>\
<tr><th>Account</th><td id=\"account\">{}</td></tr></table><p>",
        escape(&destinations_text(user)),
        if user.mobile_group { "yes" } else { "no" },
        escape(&pending_text(&status)),
        escape(&device_text(&status)),
        escape(&account_text(&status)),
    ));
    body.push_str(&button(
        session,
        &format!("{path}/reprovision"),
        "reprovision",
        "Reprovision",
        name,
    ));
    if status.device.is_some() || status.pending.is_some() {
        body.push_str(&button(
            session,
            &format!("{path}/revoke"),
            "revoke",
            "Revoke device and code",
            name,
        ));
    }
    if status.locked_at.is_some() || status.failures > 0 {
        body.push_str(&button(
            session,
            &format!("{path}/unlock"),
            "unlock",
            "Unlock",
            name,
        ));
    }
    body.push_str(&format!(
        " <a id=\"delete\" href=\"{}/delete\">Delete user…</a></p>\
<h2>Edit</h2><form method=\"post\" action=\"{}/edit\" id=\"edit\">{}{}\
<button type=\"submit\" id=\"save\">Save</button></form>",
        escape(&path),
        escape(&path),
        csrf_field(&session.csrf),
        user_inputs(Some(user)),
    ));
    Ok(console_page(session, &format!("User {name}"), &body))
}

/// The user page after an action, with the outcome; the users page when the user is gone.
async fn user_after(
    state: &AppState,
    session: &Session,
    username: &Username,
    result: Result<String, AppError>,
) -> Result<Response, AppError> {
    let Some(user) = state.backend().users.find_user(username).await? else {
        return list_after(state, session, result).await;
    };
    let (status, message) = outcome(result);
    Ok(html_page(
        status,
        user_page(state, session, &user, Some(message)).await?,
    ))
}

/// The user `name`, or the users page answering that there is none.
async fn find(
    state: &AppState,
    session: &Session,
    name: &str,
) -> Result<Result<UserEntry, Response>, AppError> {
    let found = match Username::parse(name) {
        Ok(u) => state.backend().users.find_user(&u).await?,
        Err(_) => None,
    };
    match found {
        Some(user) => Ok(Ok(user)),
        None => {
            let e = swivel_provision::Error::UnknownUser {
                username: name.to_owned(),
            };
            Ok(Err(list_after(state, session, Err(e.into())).await?))
        }
    }
}

/// `GET /admin/users/{username}`: the user's page.
pub async fn user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let session = match logged_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    Ok(match find(&state, &session, &name).await? {
        Ok(user) => html_page(
            StatusCode::OK,
            user_page(&state, &session, &user, None).await?,
        ),
        Err(answer) => answer,
    })
}

/// Which button of the user page.
#[derive(Debug, Clone, Copy)]
enum Button {
    Reprovision,
    Revoke,
    Unlock,
}

async fn press(
    state: AppState,
    ip: std::net::IpAddr,
    headers: HeaderMap,
    name: String,
    csrf: String,
    which: Button,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, Some(&csrf)).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let user = match find(&state, &session, &name).await? {
        Ok(user) => user,
        Err(answer) => return Ok(answer),
    };
    let actor = Actor::Console(ip);
    let result = match which {
        Button::Reprovision => actions::reprovision(&state, actor, &name)
            .await
            .map(|d| d.to_string()),
        Button::Revoke => actions::revoke(&state, actor, &name)
            .await
            .map(|d| d.to_string()),
        Button::Unlock => actions::unlock(&state, actor, &name)
            .await
            .map(|d| d.to_string()),
    };
    user_after(&state, &session, &user.username, result).await
}

/// `POST /admin/users/{username}/reprovision`.
pub async fn user_reprovision(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ButtonForm>,
) -> Result<Response, AppError> {
    press(state, ip, headers, name, form.csrf, Button::Reprovision).await
}

/// `POST /admin/users/{username}/revoke`: revokes the device and the pending code.
pub async fn user_revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ButtonForm>,
) -> Result<Response, AppError> {
    press(state, ip, headers, name, form.csrf, Button::Revoke).await
}

/// `POST /admin/users/{username}/unlock`.
pub async fn user_unlock(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ButtonForm>,
) -> Result<Response, AppError> {
    press(state, ip, headers, name, form.csrf, Button::Unlock).await
}

/// `POST /admin/users/{username}/edit`: replaces the destinations and the group (and the
/// PIN, when one is given).
pub async fn edit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<UserForm>,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let user = match find(&state, &session, &name).await? {
        Ok(user) => user,
        Err(answer) => return Ok(answer),
    };
    let result = actions::save_user(&state, Actor::Console(ip), &name, &form.fields())
        .await
        .map(|d| d.to_string());
    user_after(&state, &session, &user.username, result).await
}

/// `GET /admin/users/{username}/delete`: asks for confirmation (changes nothing).
pub async fn confirm_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let session = match logged_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let user = match find(&state, &session, &name).await? {
        Ok(user) => user,
        Err(answer) => return Ok(answer),
    };
    let path = user_path(&user.username);
    let body = format!(
        "<p id=\"confirm\">Delete user \"{name}\"? Their device and pending code are revoked, \
and the user and their PIN are removed. This cannot be undone.</p>\
<form method=\"post\" action=\"{path}/delete\">{csrf}\
<button type=\"submit\" id=\"delete\">Delete user</button> <a href=\"{path}\">Cancel</a></form>",
        name = escape(user.username.as_str()),
        path = escape(&path),
        csrf = csrf_field(&session.csrf),
    );
    Ok(html_page(
        StatusCode::OK,
        console_page(&session, "Delete user", &body),
    ))
}

/// `POST /admin/users/{username}/delete`: deletes the user (after the confirmation page).
pub async fn delete(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ButtonForm>,
) -> Result<Response, AppError> {
    let session = match logged_in_post(&state, &headers, Some(&form.csrf)).await {
        Ok(s) => s,
        Err(r) => return Ok(r.into_response()),
    };
    let result = actions::delete_user(&state, Actor::Console(ip), &name)
        .await
        .map(|d| d.to_string());
    list_after(&state, &session, result).await
}
