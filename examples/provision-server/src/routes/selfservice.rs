//! `GET`/`POST /reset/provision` (and `/reset/provision.jsp`): a user asks for a provision
//! code for themselves.
//!
//! # Security
//! The answer is the same whatever happened (unknown user, no transport, rate limited,
//! delivery failure), and it comes at once: the request itself runs in the background, so
//! that neither the page nor its timing tells who has an account. The only other answers
//! are `User not set` (nothing typed), the refusal while the policy says No, and `429` with
//! `Retry-After` for a client past its allowance of submissions ([`crate::throttle`]).

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use swivel_provision::{Error, Origin, Username};

use crate::client::ClientIp;
use crate::html;
use crate::state::AppState;

/// The answer past the throttle's limit.
pub const THROTTLED: &str = "Too many requests. Try again later.";

/// The one answer to every accepted request.
pub const SAME_ANSWER: &str = "If the username is registered, a provision code has been sent to the user's registered device or email address. It can be used once, for a limited time.";

/// The self-service form's fields.
#[derive(Debug, Deserialize)]
pub struct ProvisionForm {
    /// The username as typed.
    #[serde(default)]
    pub username: String,
}

fn form(message: Option<(&str, &str)>) -> String {
    html::page(
        "Mobile Provision",
        maud::html! {
            @if let Some((class, text)) = message {
                p class=(class) id="message" { (text) }
            }
            p {
                "Enter your username to receive a Mobile Provision Code on your registered device."
            }
            form method="post" {
                label {
                    "Username "
                    input name="username" id="username" autocomplete="username" required;
                }
                button type="submit" id="provision" { "Provision" }
            }
        },
    )
}

fn disabled() -> Response {
    let text = Error::SelfProvisionDisabled.public_message();
    let body = html::page(
        "Mobile Provision",
        maud::html! { p class="error" id="message" { (text) } },
    );
    (StatusCode::FORBIDDEN, html::headers(), body).into_response()
}

/// The form (or the refusal while the policy says No).
pub async fn show(State(state): State<AppState>) -> Response {
    if !state.provisioner().policy().allow_self_provision {
        return disabled();
    }
    (html::headers(), form(None)).into_response()
}

/// Handles the form.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(f): Form<ProvisionForm>,
) -> Response {
    if !state.provisioner().policy().allow_self_provision {
        return disabled();
    }
    if let Err(t) = state.throttles().self_service(ip).await {
        return t.html_response(form(Some(("error", THROTTLED))));
    }
    let username = match Username::parse(&f.username) {
        Ok(u) => u,
        Err(Error::UserNotSet) => {
            let page = form(Some(("error", &Error::UserNotSet.public_message())));
            return (StatusCode::BAD_REQUEST, html::headers(), page).into_response();
        }
        // A malformed name gets the same answer as an unknown one.
        Err(_) => return (html::headers(), form(Some(("ok", SAME_ANSWER)))).into_response(),
    };
    let background = state.clone();
    tokio::spawn(async move {
        // A task spawned from a worker runs next on that worker (tokio's LIFO slot), before
        // the answer is written: step back once so that the answer leaves first and its
        // time does not depend on the work done for a real user.
        tokio::task::yield_now().await;
        let result = background
            .provisioner()
            .request_provision(&username, Origin::SelfService)
            .await;
        if let Err(e) = result {
            // Logged for the operator (no secret in it); the user saw the same answer.
            if matches!(e, Error::NoSuitableTransport { .. }) {
                crate::error::AppError::from(e).log();
                return;
            }
            tracing::info!(user = %username, error = %crate::error::error_chain(&e), "self-service request not sent");
        }
    });
    (html::headers(), form(Some(("ok", SAME_ANSWER)))).into_response()
}
