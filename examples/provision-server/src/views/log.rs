//! The console's Log page (`/admin/log`): the user filter, the events newest first, and
//! the *Older* link.

use maud::html;
use swivel_provision::StoredEvent;

use crate::routes::landing::encode_component;
use crate::routes::show_time;
use crate::views::console;

/// The page: the filter form showing `user`, `events` (a failure's row in class `error`),
/// and the *Older* link when there is a page before `before`.
pub fn page(csrf: &str, user: &str, events: &[StoredEvent], before: Option<u64>) -> String {
    let body = html! {
        form method="get" action="/admin/log" {
            label { "User " input name="user" id="user" value=(user); }
            button type="submit" id="filter" { "Filter" }
        }
        table id="log" {
            tr { th { "Time" } th { "Instance" } th { "Event" } }
            @for e in events {
                tr class=[e.failure.then_some("error")] {
                    td { (show_time(e.at)) }
                    td { (e.instance) }
                    td { (e.line) }
                }
            }
        }
        @if let Some(before) = before {
            @let older = format!("/admin/log?before={before}&user={}", encode_component(user));
            p { a id="older" href=(older) { "Older" } }
        }
    };
    console::page(csrf, "Log", body)
}
