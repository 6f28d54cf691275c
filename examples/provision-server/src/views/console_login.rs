//! The console's login page (`/admin/login`).

use maud::html;

use crate::html::{self, csrf_field};

/// The login form, with `message` (a refusal) above it and a hint when no console password
/// is set yet.
pub fn page(csrf: &str, message: Option<&str>, has_password: bool) -> String {
    html::page(
        "Administration Console",
        html! {
            @if let Some(m) = message {
                p class="error" id="message" { (m) }
            }
            @if !has_password {
                p class="error" {
                    "No console password is set. Run "
                    code { "provision-server admin password" }
                    " to set one."
                }
            }
            form method="post" action="/admin/login" {
                (csrf_field(csrf))
                label {
                    "Password "
                    input type="password" name="password" id="password"
                        autocomplete="current-password" required;
                }
                button type="submit" id="login" { "Log in" }
            }
        },
    )
}
