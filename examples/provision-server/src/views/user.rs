//! A user's page in the console (`/admin/users/{username}`): the status, the action
//! buttons and the Edit form; and the confirmation page of *Delete user*.

use maud::html;
use swivel_provision::{Origin, ProvisionStatus, UserEntry};

use crate::html::csrf_field;
use crate::routes::show_time;
use crate::views::console::{self, Message};
use crate::views::user_parts::{button, destinations_text, user_inputs, user_path};

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

/// The page of `user` with `status`, and `message` (the outcome of an action) above it.
pub fn page(
    csrf: &str,
    user: &UserEntry,
    status: &ProvisionStatus,
    message: Option<&Message>,
) -> String {
    let path = user_path(&user.username);
    let name = user.username.as_str();
    let body = html! {
        (console::message(message))
        p { a href="/admin/users" { "All users" } }
        table id="status" {
            tr { th { "Destinations" } td id="destinations" { (destinations_text(user)) } }
            tr {
                th { "Mobile group" }
                td id="group" { (if user.mobile_group { "yes" } else { "no" }) }
            }
            tr { th { "Provision code" } td id="pending" { (pending_text(status)) } }
            tr { th { "Device" } td id="device" { (device_text(status)) } }
            tr { th { "Account" } td id="account" { (account_text(status)) } }
        }
        p {
            (button(csrf, &format!("{path}/reprovision"), "reprovision", "Reprovision", name))
            @if status.device.is_some() || status.pending.is_some() {
                (button(csrf, &format!("{path}/revoke"), "revoke", "Revoke device and code", name))
            }
            @if status.pending.is_some() {
                (button(csrf, &format!("{path}/cancel"), "cancel", "Cancel pending code", name))
            }
            @if status.locked_at.is_some() || status.failures > 0 {
                (button(csrf, &format!("{path}/unlock"), "unlock", "Unlock", name))
            }
            " "
            a id="delete" href=(format!("{path}/delete")) { "Delete user…" }
        }
        h2 { "Edit" }
        form method="post" action=(format!("{path}/edit")) id="edit" {
            (csrf_field(csrf))
            (user_inputs(Some(user)))
            button type="submit" id="save" { "Save" }
        }
    };
    console::page(csrf, &format!("User {name}"), body)
}

/// The confirmation page of *Delete user* (its form posts to the user's `/delete`).
pub fn confirm_delete(csrf: &str, user: &UserEntry) -> String {
    let path = user_path(&user.username);
    let body = html! {
        p id="confirm" {
            "Delete user \"" (user.username.as_str()) "\"? "
            "Their device and pending code are revoked, and the user and their PIN are removed. "
            "This cannot be undone."
        }
        form method="post" action=(format!("{path}/delete")) {
            (csrf_field(csrf))
            button type="submit" id="delete" { "Delete user" }
            " "
            a href=(path) { "Cancel" }
        }
    };
    console::page(csrf, "Delete user", body)
}
