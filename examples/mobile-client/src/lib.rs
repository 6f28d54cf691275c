//! # mobile-client
//!
//! A command-line stand-in for the Swivel mobile client: it provisions itself with a
//! provision code (or a Provision URL, or a Site ID resolved through SSD), downloads its
//! security strings over AgentXML, and makes one-time codes from them and a PIN. It speaks
//! through [`swivel_provision::agentxml`] and [`swivel_provision::ssd`], the same codec the
//! server uses.
//!
//! [`run`] is the whole program (the binary only parses arguments and prints errors), so
//! tests can drive it in-process.
//!
//! # Security
//! The state file holds the provision Id and the security strings: it is written with mode
//! 0600 (atomically, through a temporary file). `show` prints neither.

pub mod cli;
pub mod device;
pub mod error;
pub mod state;

pub use cli::{Cli, Command, run};
pub use error::ClientError;
