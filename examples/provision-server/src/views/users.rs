//! The console's users page (`/admin/users`): the search form, one page of users with
//! their status and buttons, the *Next* link and the Add user form.

use maud::html;
use swivel_provision::{ProvisionStatus, UserEntry, UserQuery, Username};

use crate::html::csrf_field;
use crate::routes::landing::encode_component;
use crate::routes::users::status_text;
use crate::views::console::{self, Message};
use crate::views::user_parts::{button, destinations_text, user_inputs, user_path};

/// What the users page shows.
#[derive(Debug)]
pub struct UsersView<'a> {
    /// The search (prefix, destination, cursor) this page answers.
    pub query: &'a UserQuery,
    /// The page's users with their status, in username order.
    pub rows: &'a [(UserEntry, ProvisionStatus)],
    /// The cursor of the next page (`None` on the last page).
    pub next_after: Option<&'a Username>,
    /// The outcome of an action, shown above the page.
    pub message: Option<&'a Message>,
}

/// The page.
pub fn page(csrf: &str, view: &UsersView<'_>) -> String {
    let query = view.query;
    let prefix = query.prefix.as_deref().unwrap_or_default();
    let destination = query.destination.as_deref().unwrap_or_default();
    let searching = query.prefix.is_some() || query.destination.is_some();
    let body = html! {
        (console::message(view.message))
        form method="get" action="/admin/users" id="search" {
            label { "Username starts with " input name="prefix" id="prefix" value=(prefix); }
            label {
                "Destination (exact) "
                input name="destination" id="destination" value=(destination);
            }
            button type="submit" id="find" { "Search" }
            " "
            a href="/admin/users" { "All users" }
        }
        table id="users" {
            tr {
                th { "User" }
                th { "Destinations" }
                th { "Mobile group" }
                th { "Provisioning" }
                th {}
            }
            @for (user, status) in view.rows {
                @let name = user.username.as_str();
                tr {
                    td { a href=(user_path(&user.username)) { (name) } }
                    td { (destinations_text(user)) }
                    td { (if user.mobile_group { "yes" } else { "no" }) }
                    td class="status" { (status_text(status)) }
                    td {
                        (button(csrf, "/admin/reprovision", "reprovision", "Reprovision", name))
                        @if status.locked_at.is_some() {
                            (button(csrf, "/admin/unlock", "unlock", "Unlock", name))
                        }
                    }
                }
            }
        }
        @if view.rows.is_empty() {
            @if searching || query.after.is_some() {
                p id="none" { "No users match." }
            } @else {
                p id="none" {
                    "No users yet. Add one below, or with "
                    code { "provision-server users add NAME --email ADDRESS --mobile-group" }
                    "."
                }
            }
        }
        @if let Some(after) = view.next_after {
            p {
                a id="next" href=(format!(
                    "/admin/users?prefix={}&destination={}&after={}",
                    encode_component(prefix),
                    encode_component(destination),
                    encode_component(after.as_str())
                )) { "Next" }
            }
        }
        h2 { "Add user" }
        form method="post" action="/admin/users" id="add" {
            (csrf_field(csrf))
            label { "Username " input name="username" id="username" required; }
            (user_inputs(None))
            button type="submit" id="add-user" { "Add user" }
        }
    };
    console::page(csrf, "User Management", body)
}
