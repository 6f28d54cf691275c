//! Reading the user directory a page at a time, for the console's users page,
//! `GET /api/v1/users` and `provision-server users list`: the query parameters (`prefix`,
//! `destination`, `after`, `limit`) checked with a clear message each, and one page of
//! users with the keyset cursor of the next ([`swivel_provision::UserAdmin::list_users_page`],
//! an index range scan in the SQLite and PostgreSQL stores).

use std::collections::HashMap;

use swivel_provision::{MAX_USER_PAGE, UserEntry, UserQuery, Username};

use crate::error::AppError;
use crate::event_query::refuse_unknown;
use crate::state::AppState;

/// Users per page of the console's users page.
pub const CONSOLE_PAGE_LIMIT: usize = 50;
/// Users per page of `GET /api/v1/users` when `limit` is not given.
pub const API_DEFAULT_LIMIT: usize = 100;

/// The parameters a caller may give.
const PARAMETERS: [&str; 4] = ["prefix", "destination", "after", "limit"];

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

/// Checks the query parameters and makes the store's query. Empty values count as absent
/// (the search form sends `prefix=`); `limit` defaults to `default_limit`. The prefix keeps
/// inner and trailing blanks (usernames may hold them), the destination is trimmed as
/// addresses are when saved.
pub fn parse(
    params: &HashMap<String, String>,
    default_limit: usize,
) -> Result<UserQuery, AppError> {
    refuse_unknown(params, &PARAMETERS)?;
    let given = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let prefix = params
        .get("prefix")
        .map(|p| p.trim_start())
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let after = given("after")
        .map(|a| Username::parse(a).map_err(|e| bad(format!("after is not a valid username: {e}"))))
        .transpose()?;
    let limit = match given("limit") {
        None => default_limit,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_USER_PAGE).contains(l))
            .ok_or_else(|| {
                bad(format!(
                    "limit must be a whole number from 1 to {MAX_USER_PAGE}"
                ))
            })?,
    };
    Ok(UserQuery {
        prefix,
        destination: given("destination").map(str::to_owned),
        after,
        limit,
    })
}

/// One page of users, and the `after` of the next page (`None` on the last page).
#[derive(Debug, Clone)]
pub struct UsersPage {
    /// The users, ordered by username.
    pub users: Vec<UserEntry>,
    /// The cursor of the next page.
    pub next_after: Option<Username>,
}

/// The page `query` selects. It asks the store for one user more than the page holds, so
/// that the last page has no "next" (but for a page of the largest limit, whose "next"
/// may then be empty).
pub async fn page(state: &AppState, query: &UserQuery) -> Result<UsersPage, AppError> {
    let probe = UserQuery {
        limit: (query.limit + 1).min(MAX_USER_PAGE),
        ..query.clone()
    };
    let mut users = state.backend().user_admin.list_users_page(&probe).await?;
    let more = users.len() > query.limit || users.len() == MAX_USER_PAGE;
    users.truncate(query.limit);
    let next_after = more
        .then(|| users.last().map(|u| u.username.clone()))
        .flatten();
    Ok(UsersPage { users, next_after })
}
