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

/// Manages users: what an administration console or command line needs.
#[async_trait]
pub trait UserAdmin: UserRepository {
    /// Adds the user, or replaces the user's destinations and group membership.
    async fn put_user(&self, user: &UserEntry) -> Result<(), StoreError>;
    /// Removes the user. Returns whether the user existed. The provisioning record is not
    /// touched: a removed user's device fails with "No suitable authentication method".
    async fn remove_user(&self, username: &Username) -> Result<bool, StoreError>;
    /// Every user, ordered by username.
    async fn list_users(&self) -> Result<Vec<UserEntry>, StoreError>;
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
    }
}
