//! The HTTP handlers, one module per area.

pub mod admin;
pub mod agentxml;
pub mod api;
pub mod health;
pub mod landing;
pub mod login;
pub mod metrics;
pub mod password;
pub mod selfservice;
pub mod sites;
pub mod ssd;
pub mod tokenindex;
pub mod users;

use time::OffsetDateTime;
use time::macros::format_description;

/// A time as the pages show it: `2024-01-01 12:00:00 UTC`.
pub fn show_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
