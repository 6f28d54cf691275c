//! # provision-server
//!
//! A real HTTP host for [`swivel_provision`]: the device protocol (AgentXML, SSD), the
//! self-service provision page, the Provision URL landing pages with their QR code, a user
//! login with one-time codes, an administration console and a JSON API. Storage is one
//! SQLite file by default; messages go to an outbox directory unless SMTP or SMS is
//! configured.
//!
//! [`app()`] builds the [`axum::Router`] from an [`AppState`]; tests drive it without a
//! socket. [`state::StateBuilder`] builds the state; the `provision-server` binary wires it
//! to a configuration file and a data directory.
//!
//! # Security
//! - Provision codes, provision Ids, security strings, PINs, the console password and the
//!   API token never reach a log line or an error message.
//! - PINs are stored encrypted (XChaCha20-Poly1305 under a key derived from the server
//!   key); the console password as an Argon2id hash; the API token as an HMAC-SHA256.
//! - Console sessions live in the store, keyed by an HMAC of their Id (see [`session`]);
//!   none is stored before a login form is posted.
//! - Queued messages hold live codes: in the store they are sealed (see
//!   [`swivel_provision::queue`]); the outbox directory is for development only.
//! - Failed AgentXML requests, `/login` posts, self-service submissions and console logins
//!   are throttled per client address ([`throttle`], [`client`]), in the process and in
//!   the store, so that the limits hold across instances ([`throttle::shared`]); connections have a
//!   request deadline for every protocol, request and inactivity timeouts, and caps per
//!   client address and in all ([`serve`]); every answer carries the
//!   security headers ([`app()`]).
//! - Data files are private and one server holds a SQLite database at a time ([`files`]).

pub mod actions;
pub mod api_json;
pub mod app;
pub mod backend;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials;
pub mod delivery;
pub mod error;
pub mod event_query;
pub mod events;
pub mod files;
pub mod html;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod pin;
pub mod problem;
pub mod readiness;
pub mod routes;
pub mod serve;
pub mod session;
pub mod shared_log;
pub mod shutdown;
pub mod state;
pub mod throttle;
pub mod transports;
pub mod user_list;
pub mod views;

pub use app::app;
pub use state::{AppState, StateBuilder};
