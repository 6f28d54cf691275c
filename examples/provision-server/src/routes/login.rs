//! `GET`/`POST /login`: a user logs in with a one-time code (the PIN's digits of one
//! security string, then its two-digit index), checked with
//! [`Provisioner::verify_otc`](swivel_provision::Provisioner::verify_otc) and the user's
//! PIN (stored encrypted). Every failure gets the same answer, after the same work: a user
//! without a PIN is checked against a dummy PIN (the core does equal work for an unknown
//! user). Posts are throttled per client address and for the server, and wrong codes per
//! account and client address (the policy's `max_otc_failures` a minute, the same whether
//! or not the account exists) ([`crate::throttle`]): past a limit, `429` with
//! `Retry-After`. Another address, the user's own, is not refused: a stranger cannot block
//! the user's codes.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use swivel_provision::Username;

use crate::client::ClientIp;
use crate::html;
use crate::state::AppState;

/// The answer past the throttle's limit.
pub const THROTTLED: &str = "Too many login attempts. Try again later.";

/// The answer to every failed login.
pub const FAILED: &str = "Login failed: wrong username or one-time code.";

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    /// The username.
    #[serde(default)]
    pub username: String,
    /// The one-time code.
    #[serde(default)]
    pub otc: String,
}

fn form(message: Option<(&str, &str)>) -> String {
    html::page(
        "Log in",
        maud::html! {
            @if let Some((class, text)) = message {
                p class=(class) id="message" { (text) }
            }
            form method="post" {
                label {
                    "Username "
                    input name="username" id="username" autocomplete="username" required;
                }
                label {
                    "One-time code "
                    input name="otc" id="otc" autocomplete="one-time-code" inputmode="numeric"
                        required;
                }
                button type="submit" id="login" { "Log in" }
            }
        },
    )
}

/// The form.
pub async fn show() -> Response {
    (html::headers(), form(None)).into_response()
}

/// Checks the one-time code.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Err(t) = state.throttles().login(ip).await {
        return t.html_response(form(Some(("error", THROTTLED))));
    }
    let fail = || {
        (
            StatusCode::UNAUTHORIZED,
            html::headers(),
            form(Some(("error", FAILED))),
        )
            .into_response()
    };
    let Ok(username) = Username::parse(&f.username) else {
        return fail();
    };
    let allowance = state.provisioner().policy().max_otc_failures();
    if let Err(t) = state
        .throttles()
        .otc_admit(username.as_str(), ip, allowance)
    {
        return t.html_response(form(Some(("error", THROTTLED))));
    }
    let (pin, has_pin) = match state.pins().get_or_dummy(&username).await {
        Ok(found) => found,
        Err(e) => return crate::error::AppError::from(e).into_response(),
    };
    let verified = state
        .provisioner()
        .verify_otc(&username, f.otc.trim(), &pin)
        .await;
    match verified {
        Ok(()) if has_pin => {
            let text = format!("Login successful. Welcome, {username}.");
            (html::headers(), form(Some(("ok", &text)))).into_response()
        }
        Ok(()) | Err(swivel_provision::Error::OtcRejected) => {
            state.throttles().otc_failed(username.as_str(), ip).await;
            fail()
        }
        Err(e) => crate::error::AppError::from(e).into_response(),
    }
}
