//! User Management in the console: `/admin/users`, one page of 50 users at a time (search
//! by username prefix or exact destination, "Next" by keyset cursor, Add user), and a page
//! per user, `/admin/users/{username}`, with the status and the actions (Reprovision,
//! Revoke device, Unlock, Edit, Delete with a confirmation step). Every action is a form
//! with the session's CSRF token and calls the function of [`crate::actions`] that the
//! JSON API and the command line call. The pages are [`crate::views::users`] and
//! [`crate::views::user`].

use std::collections::HashMap;

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::HeaderMap;
use axum::response::{IntoResponse, Response};
use swivel_provision::{ProvisionStatus, UserEntry, UserQuery, Username};

use crate::actions::{self, Actor, UserFields};
use crate::client::ClientIp;
use crate::error::AppError;
use crate::html;
use crate::routes::admin::{logged_in, logged_in_post};
use crate::routes::show_time;
use crate::session::Session;
use crate::state::AppState;
use crate::user_list::{self, CONSOLE_PAGE_LIMIT};
use crate::views;
use crate::views::console::Message;
use crate::views::users::UsersView;

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

/// The users page: one page of users with their status, and `message` above it.
async fn list_page(
    state: &AppState,
    session: &Session,
    query: &UserQuery,
    message: Option<Message>,
) -> Result<String, AppError> {
    let page = user_list::page(state, query).await?;
    let mut rows = Vec::with_capacity(page.users.len());
    for user in page.users {
        let status = state.provisioner().status(&user.username).await?;
        rows.push((user, status));
    }
    Ok(views::users::page(
        &session.csrf,
        &UsersView {
            query,
            rows: &rows,
            next_after: page.next_after.as_ref(),
            message: message.as_ref(),
        },
    ))
}

/// An answer with `status` and the page.
fn html_page(status: StatusCode, page: String) -> Response {
    (status, html::headers(), page).into_response()
}

/// The status and the message of an action's outcome.
fn outcome(result: Result<String, AppError>) -> (StatusCode, Message) {
    match result {
        Ok(done) => (StatusCode::OK, Message::ok(done)),
        Err(e) => {
            e.log();
            (e.status(), Message::error(e.public_message()))
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

/// A user's page: the status, the actions and the Edit form, and `message` above them.
async fn user_page(
    state: &AppState,
    session: &Session,
    user: &UserEntry,
    message: Option<Message>,
) -> Result<String, AppError> {
    let status = state.provisioner().status(&user.username).await?;
    Ok(views::user::page(
        &session.csrf,
        user,
        &status,
        message.as_ref(),
    ))
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
    Cancel,
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
        Button::Cancel => actions::cancel_code(&state, actor, &name)
            .await
            .map(|d| d.to_string()),
        Button::Unlock => actions::unlock(&state, actor, &name)
            .await
            .map(|d| d.to_string()),
    };
    user_after(&state, &session, &user.username, result).await
}

/// `POST /admin/users/{username}/reprovision`, `…/revoke` (the device and the pending
/// code), `…/cancel` (the pending code alone) and `…/unlock`: the button is the route's
/// last segment.
pub async fn user_button(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    matched: MatchedPath,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<ButtonForm>,
) -> Result<Response, AppError> {
    let which = match matched.as_str().rsplit('/').next() {
        Some("reprovision") => Button::Reprovision,
        Some("revoke") => Button::Revoke,
        Some("cancel") => Button::Cancel,
        Some("unlock") => Button::Unlock,
        _ => return Err(AppError::Internal("a user button without its route".into())),
    };
    press(state, ip, headers, name, form.csrf, which).await
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
    Ok(html_page(
        StatusCode::OK,
        views::user::confirm_delete(&session.csrf, &user),
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
