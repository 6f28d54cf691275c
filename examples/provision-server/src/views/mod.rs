//! The administration console's pages as [`maud`] templates, one module per page. The
//! handlers in [`crate::routes`] gather the data and call these; every value goes through
//! maud's escaping. The public pages (landing, login, self-service) keep their small
//! templates next to their handlers.

pub mod console;
pub mod console_login;
pub mod log;
pub mod password;
pub mod policy;
pub mod sites;
pub mod user;
pub mod user_parts;
pub mod users;
