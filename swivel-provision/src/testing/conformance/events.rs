//! The checks every [`EventStore`] must pass ([`events_run`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{t0, unique};
use crate::event_log::{EventQuery, EventStore, MAX_EVENT_LIMIT, StoredEvent};
use crate::types::Username;

/// Runs every event log check. Each uses users with a random suffix, so the checks can run
/// against a shared database (and leave their events behind, but for the purged ones).
pub async fn events_run(store: Arc<dyn EventStore>) {
    events_append_and_list_newest_first(store.as_ref()).await;
    events_filters(store.as_ref()).await;
    events_pagination_has_no_gaps_or_repeats(store.as_ref()).await;
    events_limits_are_checked(store.as_ref()).await;
    events_purge_before(store.as_ref()).await;
    events_concurrent_appends_get_distinct_ids(store).await;
}

fn event(user: Option<&Username>, at: OffsetDateTime, n: usize) -> StoredEvent {
    StoredEvent {
        id: 0,
        at,
        instance: format!("instance-{}", n % 3),
        kind: (if n % 2 == 0 {
            "code_created"
        } else {
            "otc_rejected"
        })
        .into(),
        username: user.cloned(),
        failure: n % 2 == 1,
        line: format!("event {n} of \"{}\"", user.map_or("-", |u| u.as_str())),
    }
}

async fn list(store: &dyn EventStore, query: EventQuery, what: &str) -> Vec<StoredEvent> {
    store
        .list(&query)
        .await
        .unwrap_or_else(|e| panic!("events: {what}: list failed: {e}"))
}

fn of_user(user: &Username, limit: usize) -> EventQuery {
    EventQuery {
        user: Some(user.clone()),
        ..EventQuery::newest(limit)
    }
}

fn assert_newest_first(events: &[StoredEvent], what: &str) {
    assert!(
        events.windows(2).all(|w| w[0].id > w[1].id),
        "events: {what}: ids must decrease (newest first)"
    );
}

/// A batch round trips (every field; ids assigned, increasing), newest first; an event
/// without a user is kept too; an empty batch is fine.
pub async fn events_append_and_list_newest_first(store: &dyn EventStore) {
    let user = unique("ev-list");
    let mut batch: Vec<StoredEvent> = (0..3)
        .map(|n| event(Some(&user), t0() + Duration::seconds(n as i64), n))
        .collect();
    batch[2].line = "Message sent to user: \\\"x\\\\, destination: ü@example.com ✓".into();
    store.append(&batch).await.expect("events: append a batch");
    store.append(&[]).await.expect("events: append nothing");
    let got = list(store, of_user(&user, 10), "round trip").await;
    assert_eq!(got.len(), 3, "events: round trip: every event of the batch");
    assert_newest_first(&got, "round trip");
    assert!(got.iter().all(|e| e.id > 0), "events: ids are assigned");
    for (stored, sent) in got.iter().zip(batch.iter().rev()) {
        assert_eq!(
            StoredEvent {
                id: 0,
                ..stored.clone()
            },
            *sent,
            "events: round trip: every field, in the order appended"
        );
    }

    let anonymous = StoredEvent {
        line: format!("no user {}", unique("ev-anon")),
        ..event(None, t0(), 4)
    };
    store
        .append(std::slice::from_ref(&anonymous))
        .await
        .expect("events: append an event without a user");
    let newest = list(store, EventQuery::newest(MAX_EVENT_LIMIT), "unfiltered").await;
    assert_newest_first(&newest, "unfiltered");
    let found = newest
        .iter()
        .find(|e| e.line == anonymous.line)
        .expect("events: an event without a user is listed");
    assert_eq!(found.username, None);
    assert!(
        found.id > got[0].id,
        "events: a later append gets a greater id"
    );
}

/// `user`, `kind`, `since`, `until` and `before_id` filter, alone and together.
pub async fn events_filters(store: &dyn EventStore) {
    let (user, other) = (unique("ev-filter"), unique("ev-other"));
    let mut batch = Vec::new();
    for n in 0..6 {
        let who = if n % 3 == 2 { &other } else { &user };
        batch.push(event(Some(who), t0() + Duration::seconds(n as i64 * 10), n));
    }
    store.append(&batch).await.expect("events: append");
    let mine = list(store, of_user(&user, 100), "user filter").await;
    assert_eq!(mine.len(), 4, "events: only the user's events");
    assert!(mine.iter().all(|e| e.username.as_ref() == Some(&user)));
    let since = list(
        store,
        EventQuery {
            since: Some(t0() + Duration::seconds(30)),
            ..of_user(&user, 100)
        },
        "since filter",
    )
    .await;
    let times: Vec<OffsetDateTime> = since.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        [t0() + Duration::seconds(40), t0() + Duration::seconds(30)],
        "events: since keeps events at or after the time"
    );
    let before = list(
        store,
        EventQuery {
            before_id: Some(mine[1].id),
            ..of_user(&user, 100)
        },
        "before filter",
    )
    .await;
    assert_eq!(
        before,
        mine[2..].to_vec(),
        "events: before_id keeps older events only"
    );
    let of_kind = list(
        store,
        EventQuery {
            kind: Some("otc_rejected".into()),
            ..of_user(&user, 100)
        },
        "kind filter",
    )
    .await;
    let times: Vec<OffsetDateTime> = of_kind.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        [t0() + Duration::seconds(30), t0() + Duration::seconds(10)],
        "events: kind keeps the events of that kind only"
    );
    let until = list(
        store,
        EventQuery {
            until: Some(t0() + Duration::seconds(30)),
            ..of_user(&user, 100)
        },
        "until filter",
    )
    .await;
    let times: Vec<OffsetDateTime> = until.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        [t0() + Duration::seconds(10), t0()],
        "events: until keeps events before the time"
    );
    let window = list(
        store,
        EventQuery {
            kind: Some("code_created".into()),
            since: Some(t0() + Duration::seconds(5)),
            until: Some(t0() + Duration::seconds(50)),
            ..of_user(&user, 100)
        },
        "kind and time window",
    )
    .await;
    let times: Vec<OffsetDateTime> = window.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        [t0() + Duration::seconds(40)],
        "events: kind, since and until together"
    );
    let rare = unique("ev-kind").as_str().replace('-', "_");
    let lone = StoredEvent {
        kind: rare.clone(),
        ..event(None, t0(), 0)
    };
    store
        .append(std::slice::from_ref(&lone))
        .await
        .expect("events: append");
    let by_kind = list(
        store,
        EventQuery {
            kind: Some(rare),
            ..EventQuery::newest(100)
        },
        "kind alone",
    )
    .await;
    assert_eq!(by_kind.len(), 1, "events: kind alone finds its one event");
    assert_eq!(by_kind[0].line, lone.line);
    let limited = list(store, of_user(&user, 2), "limit").await;
    assert_eq!(
        limited,
        mine[..2].to_vec(),
        "events: limit keeps the newest"
    );
}

/// Pages of 7 through 25 events with the keyset cursor: every event once, in order.
pub async fn events_pagination_has_no_gaps_or_repeats(store: &dyn EventStore) {
    let user = unique("ev-page");
    let all: Vec<StoredEvent> = (0..25).map(|n| event(Some(&user), t0(), n)).collect();
    for chunk in all.chunks(10) {
        store.append(chunk).await.expect("events: append");
    }
    let mut seen = Vec::new();
    let mut before = None;
    for _ in 0..10 {
        let page = list(
            store,
            EventQuery {
                before_id: before,
                ..of_user(&user, 7)
            },
            "page",
        )
        .await;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page);
    }
    assert_eq!(seen.len(), 25, "events: pages hold every event once");
    assert_newest_first(&seen, "pages");
    let lines: Vec<&str> = seen.iter().map(|e| e.line.as_str()).collect();
    let expected: Vec<&str> = all.iter().rev().map(|e| e.line.as_str()).collect();
    assert_eq!(lines, expected, "events: pages in append order, reversed");
}

/// A limit of 0 or above [`MAX_EVENT_LIMIT`] is refused.
pub async fn events_limits_are_checked(store: &dyn EventStore) {
    for bad in [0, MAX_EVENT_LIMIT + 1] {
        assert!(
            store.list(&EventQuery::newest(bad)).await.is_err(),
            "events: limit {bad} must be refused"
        );
    }
    store
        .list(&EventQuery::newest(MAX_EVENT_LIMIT))
        .await
        .expect("events: the largest limit is fine");
}

/// `purge_before` deletes what is older than the time, and nothing else.
pub async fn events_purge_before(store: &dyn EventStore) {
    let user = unique("ev-purge");
    // Far in the past, so that no other check's events are purged.
    let old = OffsetDateTime::from_unix_timestamp(978_307_200).expect("valid"); // 2001-01-01
    let batch = [
        event(Some(&user), old, 0),
        event(Some(&user), old + Duration::days(1), 1),
        event(Some(&user), t0(), 2),
    ];
    store.append(&batch).await.expect("events: append");
    let purged = store
        .purge_before(old + Duration::hours(12))
        .await
        .expect("events: purge");
    assert!(purged >= 1, "events: purge counts what it deleted");
    let left = list(store, of_user(&user, 10), "after purge").await;
    let times: Vec<OffsetDateTime> = left.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        [t0(), old + Duration::days(1)],
        "events: purge keeps events at or after the time"
    );
    assert_eq!(
        store
            .purge_before(old + Duration::hours(12))
            .await
            .expect("events: purge again"),
        0,
        "events: nothing left to purge"
    );
}

/// 8 concurrent batches of 5: 40 events, 40 distinct ids.
pub async fn events_concurrent_appends_get_distinct_ids(store: Arc<dyn EventStore>) {
    let user = unique("ev-concurrent");
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move {
                let batch: Vec<StoredEvent> = (0..5)
                    .map(|n| event(Some(&user), t0(), t * 5 + n))
                    .collect();
                store.append(&batch).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("events: append task")
            .expect("events: concurrent append");
    }
    let got = list(store.as_ref(), of_user(&user, 100), "concurrent").await;
    let ids: BTreeSet<u64> = got.iter().map(|e| e.id).collect();
    assert_eq!(got.len(), 40, "events: every concurrent event is kept");
    assert_eq!(ids.len(), 40, "events: ids are distinct");
    assert_newest_first(&got, "concurrent");
}
