//! What every console page shares: the navigation with the *Log out* form, the layout
//! around it, the outcome message, and the page refusing a form without the session's
//! CSRF token.

use maud::{Markup, html};

use crate::html::{self, csrf_field};

/// The outcome of an action, shown above the page: `ok` or `error`, and the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Whether the action succeeded (class `ok`, else `error`).
    pub ok: bool,
    /// What the user reads (no secret in it).
    pub text: String,
}

impl Message {
    /// A success.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
        }
    }

    /// A failure.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
        }
    }
}

/// The message paragraph (`#message`), or nothing.
pub fn message(message: Option<&Message>) -> Markup {
    html! {
        @if let Some(m) = message {
            p class=(if m.ok { "ok" } else { "error" }) id="message" { (m.text) }
        }
    }
}

/// The console's navigation, with the *Log out* form carrying `csrf`.
pub fn nav(csrf: &str) -> Markup {
    html! {
        nav {
            a href="/admin/users" { "User Management" }
            a href="/admin/policy" { "Policy / Self-Reset" }
            a href="/admin/sites" { "Sites" }
            a href="/admin/log" { "Log" }
            a href="/admin/password" { "Password" }
            form method="post" action="/admin/logout" style="display:inline" {
                (csrf_field(csrf))
                button type="submit" id="logout" { "Log out" }
            }
        }
    }
}

/// A console page: the navigation, then `body`.
pub fn page(csrf: &str, title: &str, body: Markup) -> String {
    html::page(title, html! { (nav(csrf)) "\n" (body) })
}

/// `403`'s page: the form was not this console's.
pub fn forbidden() -> String {
    html::page(
        "Forbidden",
        html! {
            p class="error" {
                "The form has expired or did not come from this console. "
                "Reload the page and try again."
            }
        },
    )
}
