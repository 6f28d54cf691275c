//! The console's Password page (`/admin/password`): the form that changes the console
//! password.

use maud::html;

use crate::html::csrf_field;
use crate::views::console::{self, Message};

/// The form, with `message` (the outcome of a change) above it. Password fields are never
/// filled in again.
pub fn page(csrf: &str, message: Option<&Message>) -> String {
    let body = html! {
        (console::message(message))
        p {
            "Changing the password ends every console session, on every instance; this one "
            "continues."
        }
        form method="post" action="/admin/password" {
            (csrf_field(csrf))
            label {
                "Current password "
                input type="password" name="current" id="current"
                    autocomplete="current-password" required;
            }
            label {
                "New password (at least 12 characters) "
                input type="password" name="new" id="new" autocomplete="new-password"
                    minlength="12" required;
            }
            label {
                "New password again "
                input type="password" name="confirm" id="confirm" autocomplete="new-password"
                    minlength="12" required;
            }
            button type="submit" id="change-password" { "Change password" }
        }
    };
    console::page(csrf, "Console password", body)
}
