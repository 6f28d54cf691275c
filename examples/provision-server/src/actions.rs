//! Administrator actions shared by the console, the JSON API and the command line: each
//! of the three calls the same function here, so a rule (which user may be acted on, what
//! counts as done) is written once.

use swivel_provision::Username;

use crate::error::AppError;
use crate::state::AppState;

/// Checks `name` and that the user is in the directory (`Invalid Username` otherwise).
pub async fn existing_user(state: &AppState, name: &str) -> Result<Username, AppError> {
    let username = Username::parse(name)?;
    if state.backend().users.find_user(&username).await?.is_none() {
        return Err(swivel_provision::Error::UnknownUser {
            username: name.to_owned(),
        }
        .into());
    }
    Ok(username)
}

/// What [`unlock`] did. `Display` is the line the console and the command line show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlocked {
    /// The user.
    pub username: Username,
    /// Whether there was a lock or a run of failures to clear.
    pub cleared: bool,
}

impl std::fmt::Display for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cleared {
            write!(f, "User \"{}\" unlocked.", self.username)
        } else {
            write!(f, "User \"{}\" was not locked.", self.username)
        }
    }
}

/// Unlocks an account locked after too many failed attempts in a row (console Unlock,
/// `POST /api/v1/users/{username}/unlock`, `provision-server users unlock`).
pub async fn unlock(state: &AppState, name: &str) -> Result<Unlocked, AppError> {
    let username = existing_user(state, name).await?;
    let cleared = state.provisioner().unlock(&username).await?;
    Ok(Unlocked { username, cleared })
}
