//! The console's Log page (`/admin/log`): the filters (user, event kind, time), the events
//! newest first, and the *Older* link carrying the filters.

use maud::html;
use swivel_provision::{ProvisionEvent, StoredEvent};

use crate::routes::landing::encode_component;
use crate::routes::show_time;
use crate::views::console;

/// The filters as the administrator typed them (shown again in the form and carried by
/// the *Older* link).
#[derive(Debug, Clone, Copy, Default)]
pub struct Filters<'a> {
    /// Username.
    pub user: &'a str,
    /// Event kind (empty: every kind).
    pub kind: &'a str,
    /// From this time (RFC 3339, or `YYYY-MM-DDTHH:MM` in UTC).
    pub since: &'a str,
    /// Before this time (as `since`).
    pub until: &'a str,
}

impl Filters<'_> {
    /// The query string of the page before `before` with these filters.
    fn older(&self, before: u64) -> String {
        let mut q = format!("/admin/log?before={before}");
        for (name, value) in [
            ("user", self.user),
            ("kind", self.kind),
            ("since", self.since),
            ("until", self.until),
        ] {
            if !value.is_empty() {
                q.push_str(&format!("&{name}={}", encode_component(value)));
            }
        }
        q
    }
}

/// The page: the filter form showing `filters`, `events` (a failure's row in class
/// `error`), and the *Older* link when there is a page before `before`.
pub fn page(
    csrf: &str,
    filters: &Filters<'_>,
    events: &[StoredEvent],
    before: Option<u64>,
) -> String {
    let body = html! {
        form method="get" action="/admin/log" {
            label { "User " input name="user" id="user" value=(filters.user); }
            label {
                "Event "
                select name="kind" id="kind" {
                    option value="" selected[filters.kind.is_empty()] { "every kind" }
                    @for kind in ProvisionEvent::KINDS {
                        option value=(kind) selected[filters.kind == *kind] { (kind) }
                    }
                }
            }
            label {
                "From (UTC) "
                input type="datetime-local" step="1" name="since" id="since" value=(filters.since);
            }
            label {
                "Before (UTC) "
                input type="datetime-local" step="1" name="until" id="until" value=(filters.until);
            }
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
            p { a id="older" href=(filters.older(before)) { "Older" } }
        }
    };
    console::page(csrf, "Log", body)
}
