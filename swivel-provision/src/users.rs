//! [`UserRepository`]: the user directory the core asks about users, and [`UserAdmin`],
//! the calls hosts use to manage it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::types::{Destination, Username};

/// What the core needs to know about a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntry {
    /// The username.
    pub username: Username,
    /// Where the user receives messages, in order of preference.
    pub destinations: Vec<Destination>,
    /// Whether the user belongs to a group with mobile-client authentication (needed to
    /// download security strings).
    pub mobile_group: bool,
}

impl UserEntry {
    /// A user with no destination, outside the mobile group.
    pub fn new(username: Username) -> Self {
        Self {
            username,
            destinations: Vec::new(),
            mobile_group: false,
        }
    }

    /// Adds a destination.
    pub fn with_destination(mut self, destination: Destination) -> Self {
        self.destinations.push(destination);
        self
    }

    /// Sets the mobile-group membership.
    pub fn with_mobile_group(mut self, member: bool) -> Self {
        self.mobile_group = member;
        self
    }
}

/// Finds users.
///
/// # What an implementer must guarantee
/// Lookups are by exact username. Errors say whether a retry can help
/// ([`StoreError::Unavailable`]).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync + 'static {
    /// The user, or `None` when the user does not exist.
    async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError>;
}

/// Most users one [`UserAdmin::list_users_page`] returns.
pub const MAX_USER_PAGE: usize = 1000;

/// Which users a [`UserAdmin::list_users_page`] returns: ordered by username (byte order,
/// as [`Username`]'s `Ord`), after the cursor, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Only usernames starting with this text (byte for byte; `None` or empty: every user).
    pub prefix: Option<String>,
    /// Only users with a destination of exactly this address (any channel or purpose).
    pub destination: Option<String>,
    /// Only usernames after this one (the keyset cursor of the next page: the last
    /// username of the previous page).
    pub after: Option<Username>,
    /// At most this many users, 1 to [`MAX_USER_PAGE`].
    pub limit: usize,
}

impl UserQuery {
    /// The first `limit` users, unfiltered.
    pub fn first(limit: usize) -> Self {
        Self {
            prefix: None,
            destination: None,
            after: None,
            limit,
        }
    }

    /// Checks the limit.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when `limit` is 0 or above [`MAX_USER_PAGE`].
    pub fn validate(&self) -> Result<(), StoreError> {
        if !(1..=MAX_USER_PAGE).contains(&self.limit) {
            return Err(StoreError::backend(format!(
                "a user query's limit must be between 1 and {MAX_USER_PAGE}, got {}",
                self.limit
            )));
        }
        Ok(())
    }

    /// The prefix, `None` when it is absent or empty.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref().filter(|p| !p.is_empty())
    }

    /// The least string above every string that starts with the prefix: the end of the
    /// prefix's range for a store's range scan (`prefix <= username < end`). `None` when
    /// there is no prefix, or when the range has no end (a prefix of only `U+10FFFF`).
    pub fn prefix_end(&self) -> Option<String> {
        let mut chars: Vec<char> = self.prefix()?.chars().collect();
        while let Some(last) = chars.pop() {
            // UTF-8 byte order is code point order: the next code point (over the
            // surrogates) ends the range.
            let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
            if let Some(next) = next {
                chars.push(next);
                return Some(chars.into_iter().collect());
            }
        }
        None
    }

    /// Whether `user` passes the filters and the cursor (not the limit).
    pub fn matches(&self, user: &UserEntry) -> bool {
        self.prefix()
            .is_none_or(|p| user.username.as_str().starts_with(p))
            && self
                .destination
                .as_deref()
                .is_none_or(|a| user.destinations.iter().any(|d| d.address == a))
            && self.after.as_ref().is_none_or(|a| &user.username > a)
    }
}

/// Manages users: what an administration console or command line needs.
///
/// # What an implementer must guarantee
/// [`list_users_page`](UserAdmin::list_users_page) returns users in username order (byte
/// order), only those [`UserQuery::matches`], at most `limit`, and refuses a limit outside
/// 1 to [`MAX_USER_PAGE`] ([`UserQuery::validate`]). Its default reads every user with
/// [`list_users`](UserAdmin::list_users); a store for many users overrides it with an
/// indexed query (a range scan of the username, an index of destination addresses).
/// The conformance check `swivel_provision::testing::conformance::users_page` (feature
/// `testing`) tests it.
#[async_trait]
pub trait UserAdmin: UserRepository {
    /// Adds the user, or replaces the user's destinations and group membership.
    async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError>;
    /// Removes the user. Returns whether the user existed. The provisioning record is not
    /// touched: a removed user's device fails with "No suitable authentication method".
    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError>;
    /// Every user, ordered by username.
    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError>;

    /// One page of users: those `query` selects, ordered by username.
    async fn list_users_page(&self, query: &UserQuery) -> Result<Vec<UserEntry>, StoreError> {
        query.validate()?;
        let mut users = self.list_users().await?;
        users.retain(|u| query.matches(u));
        users.truncate(query.limit);
        Ok(users)
    }
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mockall mock of [`UserAdmin`] (and so of [`UserRepository`]) (feature `mock`).
    pub UserAdmin {}
    #[async_trait]
    impl UserRepository for UserAdmin {
        async fn find_user(&self, username: &Username) -> Result<Option<UserEntry>, StoreError>;
    }
    #[async_trait]
    impl UserAdmin for UserAdmin {
        async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError>;
        async fn remove_user(&self, username: &Username) -> Result<bool, StoreError>;
        async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError>;
        async fn list_users_page(&self, query: &UserQuery) -> Result<Vec<UserEntry>, StoreError>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_prefix(p: &str) -> UserQuery {
        UserQuery {
            prefix: Some(p.to_owned()),
            ..UserQuery::first(10)
        }
    }

    #[test]
    fn the_prefix_range_ends_after_every_name_that_starts_with_it() {
        assert_eq!(with_prefix("ab").prefix_end().as_deref(), Some("ac"));
        assert_eq!(
            with_prefix("a\u{D7FF}").prefix_end().as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(
            with_prefix("a\u{10FFFF}").prefix_end().as_deref(),
            Some("b")
        );
        assert_eq!(with_prefix("\u{10FFFF}").prefix_end(), None);
        assert_eq!(with_prefix("").prefix_end(), None);
        assert_eq!(UserQuery::first(1).prefix_end(), None);
        let end = with_prefix("user-1").prefix_end().unwrap();
        for inside in ["user-1", "user-1\u{10FFFF}", "user-19999"] {
            assert!(inside >= "user-1" && inside < end.as_str(), "{inside}");
        }
        assert!("user-2" >= end.as_str());
    }

    #[test]
    fn limits_are_checked() {
        assert!(UserQuery::first(0).validate().is_err());
        assert!(UserQuery::first(MAX_USER_PAGE + 1).validate().is_err());
        assert!(UserQuery::first(1).validate().is_ok());
        assert!(UserQuery::first(MAX_USER_PAGE).validate().is_ok());
    }
}
