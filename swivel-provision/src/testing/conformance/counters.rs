//! The checks every [`CounterStore`] must pass ([`counters_run`]).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::unique;
use crate::counter::{CounterStore, MAX_COUNTER_KEY_BYTES, Window};

/// Concurrent hits in [`counters_concurrent_hits_are_all_counted`].
pub const CONCURRENT_HITS: usize = 64;

const MINUTE: Duration = Duration::from_secs(60);

/// Runs every counter check on `store`, and the concurrent check over `store` and `other`
/// together (pass a second handle on the same store, e.g. a second process's; or `store`
/// again). Each check uses keys with a random suffix, so the checks can run against a
/// shared database.
pub async fn counters_run(store: Arc<dyn CounterStore>, other: Arc<dyn CounterStore>) {
    counters_keys_and_windows_are_separate(store.as_ref()).await;
    counters_long_keys(store.as_ref()).await;
    counters_purge_removes_ended_windows(store.as_ref()).await;
    counters_concurrent_hits_are_all_counted(store, other).await;
}

fn key(prefix: &str) -> String {
    format!("conformance/{}", unique(prefix).as_str())
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).expect("valid")
}

/// A window in 2024 (every check's counters but the purged ones).
fn window() -> Window {
    Window::containing(at(1_704_067_200), MINUTE)
}

async fn hit(store: &dyn CounterStore, key: &str, window: Window, what: &str) -> u64 {
    store
        .hit(key, window)
        .await
        .unwrap_or_else(|e| panic!("counters: {what}: hit failed: {e}"))
}

/// Counts start at 1 and go up by one; another key, or another window of the same key,
/// counts on its own.
pub async fn counters_keys_and_windows_are_separate(store: &dyn CounterStore) {
    let (k, other) = (key("ctr-sep"), key("ctr-sep-other"));
    for n in 1..=3 {
        assert_eq!(
            hit(store, &k, window(), "count").await,
            n,
            "counters: the n-th hit answers n"
        );
    }
    assert_eq!(
        hit(store, &other, window(), "another key").await,
        1,
        "counters: another key counts on its own"
    );
    let next = Window::containing(window().end(), MINUTE);
    assert_eq!(
        hit(store, &k, next, "next window").await,
        1,
        "counters: the next window counts on its own"
    );
    assert_eq!(
        hit(store, &k, window(), "first window again").await,
        4,
        "counters: the first window keeps its count"
    );
}

/// A key of [`MAX_COUNTER_KEY_BYTES`] is kept apart from one that differs only in its last
/// byte; a longer key and an empty one are refused.
pub async fn counters_long_keys(store: &dyn CounterStore) {
    let base = key("ctr-long");
    let long = |last: char| {
        let mut k = base.clone();
        while k.len() < MAX_COUNTER_KEY_BYTES - 1 {
            k.push('x');
        }
        k.push(last);
        k
    };
    assert_eq!(hit(store, &long('a'), window(), "long key").await, 1);
    assert_eq!(
        hit(store, &long('b'), window(), "another long key").await,
        1,
        "counters: long keys differing in their last byte are apart"
    );
    assert_eq!(hit(store, &long('a'), window(), "long key again").await, 2);
    let too_long = format!("{}y", long('a'));
    assert!(
        store.hit(&too_long, window()).await.is_err(),
        "counters: a key over {MAX_COUNTER_KEY_BYTES} bytes is refused"
    );
    assert!(
        store.hit("", window()).await.is_err(),
        "counters: an empty key is refused"
    );
}

/// `purge_counters(t)` removes the windows that ended at or before `t` (counted again from
/// 1) and keeps later ones.
pub async fn counters_purge_removes_ended_windows(store: &dyn CounterStore) {
    // Windows in 1990, earlier than every other check's: a purge cannot remove those.
    let old = Window::containing(at(631_152_000), MINUTE);
    let kept = Window::containing(old.end(), MINUTE);
    let k = key("ctr-purge");
    hit(store, &k, old, "old window").await;
    hit(store, &k, old, "old window").await;
    hit(store, &k, kept, "later window").await;
    let removed = store
        .purge_counters(old.end())
        .await
        .expect("counters: purge");
    assert!(removed >= 1, "counters: purge reports what it removed");
    assert_eq!(
        hit(store, &k, old, "old window after the purge").await,
        1,
        "counters: a purged window counts from 1 again"
    );
    assert_eq!(
        hit(store, &k, kept, "later window after the purge").await,
        2,
        "counters: a window that ended after the cut-off is kept"
    );
}

/// [`CONCURRENT_HITS`] concurrent hits on one key and window, alternating between `a` and
/// `b`: each sees a distinct count, and the counts are exactly 1 to [`CONCURRENT_HITS`].
pub async fn counters_concurrent_hits_are_all_counted(
    a: Arc<dyn CounterStore>,
    b: Arc<dyn CounterStore>,
) {
    let k = Arc::new(key("ctr-race"));
    let tasks: Vec<_> = (0..CONCURRENT_HITS)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            let k = k.clone();
            tokio::spawn(async move { store.hit(&k, window()).await })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for t in tasks {
        let count = t
            .await
            .expect("counters: a hit task panicked")
            .expect("counters: concurrent hit");
        assert!(seen.insert(count), "counters: count {count} answered twice");
    }
    let expected: BTreeSet<u64> = (1..=CONCURRENT_HITS as u64).collect();
    assert_eq!(
        seen, expected,
        "counters: concurrent hits answer 1 to {CONCURRENT_HITS}, none lost"
    );
    assert_eq!(
        hit(b.as_ref(), &k, window(), "after the race").await,
        CONCURRENT_HITS as u64 + 1
    );
}
