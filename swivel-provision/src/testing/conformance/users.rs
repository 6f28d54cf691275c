//! The check of [`UserAdmin::list_users_page`] ([`users_page`]).

use super::unique;
use crate::types::{Destination, Username};
use crate::users::{MAX_USER_PAGE, UserAdmin, UserEntry, UserQuery};

async fn page<S: UserAdmin + ?Sized>(store: &S, query: &UserQuery, what: &str) -> Vec<Username> {
    let users = store
        .list_users_page(query)
        .await
        .unwrap_or_else(|e| panic!("users page: {what}: {e}"));
    assert!(
        users.len() <= query.limit,
        "users page: {what}: {} users for a limit of {}",
        users.len(),
        query.limit
    );
    for user in &users {
        assert!(
            query.matches(user),
            "users page: {what}: {:?} does not match the query",
            user.username
        );
    }
    users.into_iter().map(|u| u.username).collect()
}

/// Every page of `query`, following the cursor: checks that the pages are in order with no
/// repeat, and returns every username.
async fn every_page<S: UserAdmin + ?Sized>(
    store: &S,
    mut query: UserQuery,
    what: &str,
) -> Vec<Username> {
    let mut all: Vec<Username> = Vec::new();
    for _ in 0..100 {
        let names = page(store, &query, what).await;
        for name in &names {
            assert!(
                all.last().is_none_or(|last| last < name),
                "users page: {what}: {name:?} out of order or repeated"
            );
            all.push(name.clone());
        }
        if names.len() < query.limit {
            return all;
        }
        query.after = names.last().cloned();
    }
    panic!("users page: {what}: the cursor never reached the end");
}

fn email(address: &str) -> Destination {
    Destination::email(address).expect("valid address")
}

/// [`UserAdmin::list_users_page`]: pages in username order (byte order) that follow the
/// cursor with no gap or repeat; a prefix selects exactly the usernames that start with it
/// (not its neighbours on either side, with non-ASCII and `U+10FFFF` names inside); a
/// destination address selects exactly the users with that address (any channel or
/// purpose), and follows changes and removals; limits 0 and above [`MAX_USER_PAGE`] are
/// refused. Usernames carry a random tag, so the check can run against a shared database.
pub async fn users_page<S: UserAdmin + ?Sized>(store: &S) {
    let tag = unique("page");
    let base = format!("{tag}-");
    let shared = format!("shared@{tag}.example");
    let mut inside: Vec<Username> = ["u00", "u01", "u02", "u03", "u04", "u05", "é", "\u{10FFFF}z"]
        .iter()
        .map(|s| Username::parse(&format!("{base}{s}")).expect("valid"))
        .collect();
    // Neighbours just below and above the prefix's range.
    let outside: Vec<Username> = ["+", "."]
        .iter()
        .map(|s| Username::parse(&format!("{tag}{s}")).expect("valid"))
        .collect();
    for (i, name) in inside.iter().chain(&outside).enumerate() {
        let mut user =
            UserEntry::new(name.clone()).with_destination(email(&format!("{i}@{tag}.example")));
        if i == 1 {
            user = user.with_destination(email(&shared));
        }
        if i == 4 {
            user = user.with_destination(
                Destination::sms(&shared)
                    .expect("valid")
                    .for_security_strings(),
            );
        }
        if i == inside.len() {
            // Outside the prefix, with the shared address too.
            user = user.with_destination(email(&shared));
        }
        store.put_user(&user).await.expect("put_user");
    }
    inside.sort();

    let by_prefix = |limit| UserQuery {
        prefix: Some(base.clone()),
        ..UserQuery::first(limit)
    };
    for limit in [1, 3, 8, 50] {
        let all = every_page(store, by_prefix(limit), "prefix").await;
        assert_eq!(all, inside, "users page: prefix, {limit} a page");
    }
    // The whole directory in pages, from the user before the tag: the tag's users, in order.
    let from_tag = UserQuery {
        after: Some(outside[0].clone()),
        ..UserQuery::first(4)
    };
    let first = page(store, &from_tag, "after the first neighbour").await;
    assert_eq!(
        first,
        inside[..4],
        "users page: the cursor without a prefix"
    );
    // The cursor inside the prefix's range.
    let rest = UserQuery {
        after: Some(inside[2].clone()),
        ..by_prefix(50)
    };
    assert_eq!(
        page(store, &rest, "prefix after the third").await,
        inside[3..],
        "users page: prefix and cursor"
    );

    let by_address = |address: &str, limit| UserQuery {
        destination: Some(address.to_owned()),
        ..UserQuery::first(limit)
    };
    let mut holders = vec![
        inside_name(&base, "u01"),
        inside_name(&base, "u04"),
        outside[0].clone(),
    ];
    holders.sort();
    for limit in [1, 2, 10] {
        let all = every_page(store, by_address(&shared, limit), "destination").await;
        assert_eq!(all, holders, "users page: destination, {limit} a page");
    }
    let both = UserQuery {
        prefix: Some(base.clone()),
        ..by_address(&shared, 10)
    };
    assert_eq!(
        page(store, &both, "prefix and destination").await,
        [inside_name(&base, "u01"), inside_name(&base, "u04")],
        "users page: prefix and destination"
    );
    for near in [
        format!("SHARED@{tag}.example"),
        format!("shared@{tag}"),
        "shared@".to_owned(),
    ] {
        assert!(
            page(store, &by_address(&near, 10), "near address")
                .await
                .is_empty(),
            "users page: the destination is matched exactly ({near})"
        );
    }

    // A changed destination and a removed user are found no more.
    let moved = inside_name(&base, "u01");
    let new_address = format!("moved@{tag}.example");
    store
        .put_user(&UserEntry::new(moved.clone()).with_destination(email(&new_address)))
        .await
        .expect("put_user");
    store.remove_user(&outside[0]).await.expect("remove_user");
    assert_eq!(
        page(store, &by_address(&shared, 10), "after the changes").await,
        [inside_name(&base, "u04")],
        "users page: destination after a change and a removal"
    );
    assert_eq!(
        page(store, &by_address(&new_address, 10), "the new address").await,
        [moved],
        "users page: the new address"
    );
    assert_eq!(
        every_page(store, by_prefix(3), "prefix after the changes").await,
        inside,
        "users page: prefix after the changes"
    );

    for limit in [0, MAX_USER_PAGE + 1] {
        assert!(
            store
                .list_users_page(&UserQuery::first(limit))
                .await
                .is_err(),
            "users page: a limit of {limit} is refused"
        );
    }
    let most = UserQuery {
        prefix: Some(base.clone()),
        ..UserQuery::first(MAX_USER_PAGE)
    };
    assert_eq!(
        page(store, &most, "the largest limit").await.len(),
        inside.len()
    );
}

fn inside_name(base: &str, suffix: &str) -> Username {
    Username::parse(&format!("{base}{suffix}")).expect("valid")
}
