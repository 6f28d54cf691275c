//! Reading the shared event log for the console's Log page and `GET /api/v1/events`: the
//! query parameters (`user`, `kind`, `since`, `until`, `limit`, `before`) checked with a
//! clear message each,
//! and one page of events with the cursor of the next.

use std::collections::HashMap;
use std::time::Duration;

use swivel_provision::{EventQuery, MAX_EVENT_LIMIT, ProvisionEvent, StoredEvent, Username};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::error::AppError;
use crate::state::AppState;

/// Events per page of `GET /api/v1/events` when `limit` is not given.
pub const API_DEFAULT_LIMIT: usize = 100;
/// Events per page of the Log page.
pub const LOG_PAGE_LIMIT: usize = 50;
/// How long a read waits for this instance's own events to reach the store.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// The parameters a caller may give.
const PARAMETERS: [&str; 6] = ["user", "kind", "since", "until", "limit", "before"];

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

/// Checks the query parameters and makes the store's query. Empty values count as absent
/// (the Log page's filter form sends `user=`); `limit` defaults to `default_limit`.
pub fn parse(
    params: &HashMap<String, String>,
    default_limit: usize,
) -> Result<EventQuery, AppError> {
    refuse_unknown(params, &PARAMETERS)?;
    let given = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let user = given("user")
        .map(|u| Username::parse(u).map_err(|e| bad(format!("user is not a valid username: {e}"))))
        .transpose()?;
    let kind = given("kind")
        .map(|k| {
            ProvisionEvent::KINDS
                .iter()
                .find(|known| **known == k)
                .map(|known| (*known).to_owned())
                .ok_or_else(|| {
                    bad(format!(
                        "kind {:?} is not an event kind; the kinds are {}",
                        truncated(k),
                        ProvisionEvent::KINDS.join(", ")
                    ))
                })
        })
        .transpose()?;
    let time = |name: &str| {
        given(name)
            .map(|s| {
                parse_time(s).ok_or_else(|| {
                    bad(format!(
                        "{name} must be an RFC 3339 time, such as 2024-01-01T00:00:00Z"
                    ))
                })
            })
            .transpose()
    };
    let since = time("since")?;
    let until = time("until")?;
    let limit = match given("limit") {
        None => default_limit,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_EVENT_LIMIT).contains(l))
            .ok_or_else(|| {
                bad(format!(
                    "limit must be a whole number from 1 to {MAX_EVENT_LIMIT}"
                ))
            })?,
    };
    let before_id = given("before")
        .map(|b| {
            b.parse::<u64>()
                .ok()
                // Stores keep ids as signed 64-bit numbers.
                .filter(|b| (1..=i64::MAX as u64).contains(b))
                .ok_or_else(|| bad("before must be an event id (a whole number above 0)"))
        })
        .transpose()?;
    Ok(EventQuery {
        user,
        kind,
        since,
        until,
        before_id,
        limit,
    })
}

/// An RFC 3339 time, or a time without an offset taken as UTC (`2024-01-01T12:00` or
/// `2024-01-01T12:00:30`, what a browser's `datetime-local` field sends).
fn parse_time(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(s, &seconds)
        .or_else(|_| PrimitiveDateTime::parse(s, &minutes))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// At most 64 bytes of a caller's text, for an error message.
/// Refuses a query parameter that is not one of `known`, naming it (cut to 64 bytes) and
/// the known ones.
pub(crate) fn refuse_unknown(
    params: &HashMap<String, String>,
    known: &[&str],
) -> Result<(), AppError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(bad(format!(
            "unknown parameter {:?}; the parameters are {}",
            truncated(unknown),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

pub(crate) fn truncated(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One page of events, newest first, and the `before` of the next page (`None` when this
/// page is not full, so there is no older event). Waits briefly for this instance's own
/// events first, so that a page read right after an action shows it.
pub async fn page(
    state: &AppState,
    query: &EventQuery,
) -> Result<(Vec<StoredEvent>, Option<u64>), AppError> {
    state.flush_events(FLUSH_WAIT).await;
    let events = state.backend().events.list(query).await?;
    let next = if events.len() == query.limit {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok((events, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_every_parameter_and_refuses_bad_values() {
        let q = parse(&params(&[]), 100).unwrap();
        assert_eq!(q, EventQuery::newest(100));
        let q = parse(
            &params(&[
                ("user", "alice"),
                ("since", "2024-01-01T00:00:00Z"),
                ("limit", "1000"),
                ("before", "42"),
                ("kind", "code_cancelled"),
                ("until", "2024-01-02T00:00:00Z"),
                ("user", "alice"),
            ]),
            100,
        )
        .unwrap();
        assert_eq!(q.user.unwrap().as_str(), "alice");
        assert_eq!(q.since.unwrap().unix_timestamp(), 1_704_067_200);
        assert_eq!((q.limit, q.before_id), (1000, Some(42)));
        assert_eq!(q.kind.as_deref(), Some("code_cancelled"));
        assert_eq!(q.until.unwrap().unix_timestamp(), 1_704_153_600);
        // A browser's datetime-local value, taken as UTC, with or without seconds.
        let q = parse(
            &params(&[
                ("since", "2024-01-01T00:01"),
                ("until", "2024-01-01T00:01:30"),
            ]),
            100,
        )
        .unwrap();
        assert_eq!(q.since.unwrap().unix_timestamp(), 1_704_067_260);
        assert_eq!(q.until.unwrap().unix_timestamp(), 1_704_067_290);
        assert_eq!(parse(&params(&[("user", "")]), 50).unwrap().user, None);
        for (pairs, words) in [
            (
                vec![("limit", "0")],
                "limit must be a whole number from 1 to 1000",
            ),
            (vec![("limit", "1001")], "limit must be"),
            (vec![("limit", "ten")], "limit must be"),
            (
                vec![("since", "yesterday")],
                "since must be an RFC 3339 time",
            ),
            (vec![("before", "0")], "before must be an event id"),
            (vec![("before", "-3")], "before must be an event id"),
            (
                vec![("before", "9223372036854775808")],
                "before must be an event id",
            ),
            (vec![("user", "a\u{202e}b")], "user is not a valid username"),
            (vec![("sort", "asc")], "unknown parameter \"sort\""),
            (
                vec![("kind", "code_stolen")],
                "kind \"code_stolen\" is not an event kind; the kinds are code_created, ",
            ),
            (vec![("until", "soon")], "until must be an RFC 3339 time"),
        ] {
            let e = parse(&params(&pairs), 100).unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{pairs:?}");
            assert!(e.to_string().contains(words), "{pairs:?}: {e}");
        }
    }
}
