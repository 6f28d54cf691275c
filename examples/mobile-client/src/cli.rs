//! The command line and [`run`], the whole program.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use swivel_provision::{Pin, SecurityStrings, one_time_code};

use crate::device::{self, Endpoint};
use crate::error::ClientError;
use crate::state::DeviceState;

/// `mobile-client`: plays a phone with the Swivel mobile client.
#[derive(Debug, Parser)]
#[command(name = "mobile-client", version, about)]
pub struct Cli {
    /// The device's state file (holds the provision Id and the strings: keep it private).
    #[arg(long, global = true, default_value = "./mobile-client.json")]
    pub state: PathBuf,
    /// Trust only the certificate authorities in this PEM file for `https` (a private or
    /// test CA); without it, the platform's roots.
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provision this device, then download its security strings.
    Provision {
        /// The server's base URL (e.g. http://127.0.0.1:8080).
        #[arg(long)]
        server: Option<String>,
        /// A Site ID, resolved through the SSD given by --ssd.
        #[arg(long, requires = "ssd")]
        site: Option<String>,
        /// The server settings discovery service (base URL).
        #[arg(long)]
        ssd: Option<String>,
        /// A Provision URL (one step: server, user and code from the link).
        #[arg(long, conflicts_with_all = ["server", "site"])]
        url: Option<String>,
        /// The username.
        #[arg(long)]
        user: Option<String>,
        /// The provision code.
        #[arg(long)]
        code: Option<String>,
        /// The push Id this device registered with its push service (sent as `PushId`).
        #[arg(long, default_value = "mobile-client-simulator")]
        push_id: String,
    },
    /// Ask the server which index to use next (`TokenIndex`) and use it from now on.
    Sync,
    /// Download a new set of security strings.
    Strings,
    /// Print the next one-time code (and advance).
    Otc {
        /// The user's PIN.
        #[arg(long)]
        pin: String,
    },
    /// Show the device's state (never the provision Id or the strings).
    Show,
}

struct Target {
    endpoint: Endpoint,
    user: String,
    code: String,
}

async fn target(
    client: &reqwest::Client,
    server: Option<String>,
    site: Option<String>,
    ssd: Option<String>,
    url: Option<String>,
    user: Option<String>,
    code: Option<String>,
) -> Result<Target, ClientError> {
    let (endpoint_src, user, code) = match url {
        Some(url) => {
            let link = device::parse_link(&url)?;
            let user = user.or(link.user.clone());
            let code = code.or(link.code.clone());
            let src = match link.kind.as_str() {
                "provision" => (Some(link.server), None, None),
                _ => (None, link.site, Some(ssd.unwrap_or(link.server))),
            };
            (src, user, code)
        }
        None => ((server, site, ssd), user, code),
    };
    let user = user
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .ok_or(ClientError::UserNotSet)?;
    let code = code
        .filter(|c| !c.trim().is_empty())
        .ok_or(ClientError::InvalidProvisionCode)?;
    let endpoint = match endpoint_src {
        (_, Some(site), Some(ssd)) => device::resolve_site(client, &ssd, &site).await?,
        (_, None, Some(_)) => return Err(ClientError::UnknownServerId),
        (Some(server), _, None) => Endpoint::of_server(&server)?,
        (None, _, None) => return Err(ClientError::Connection(None)),
    };
    Ok(Target {
        endpoint,
        user,
        code,
    })
}

fn count(strings: &SecurityStrings) -> usize {
    (0..=99u8).filter(|i| strings.get(*i).is_some()).count()
}

async fn download_into(
    client: &reqwest::Client,
    state: &mut DeviceState,
    out: &mut dyn Write,
) -> Result<(), ClientError> {
    let strings = device::download(client, &state.agent_url, &state.provision_id).await?;
    state.strings = Some(strings.to_wire());
    state.next_index = 1;
    let _ = writeln!(out, "Downloaded {} security strings", count(&strings));
    Ok(())
}

/// Runs one command, writing what a user would see to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), ClientError> {
    match cli.command {
        Command::Provision {
            server,
            site,
            ssd,
            url,
            user,
            code,
            push_id,
        } => {
            let client = device::http_client(cli.ca_cert.as_deref())?;
            let t = target(&client, server, site, ssd, url, user, code).await?;
            let _ = writeln!(out, "Provisioning. Please wait...");
            let id = device::provision(&client, &t.endpoint.agent_url, &t.user, &t.code, &push_id)
                .await?;
            let mut state = DeviceState {
                server: t.endpoint.server,
                agent_url: t.endpoint.agent_url,
                user: t.user,
                provision_id: id.expose().to_owned(),
                strings: None,
                next_index: 1,
            };
            state.save(&cli.state)?;
            let _ = writeln!(out, "Device Provisioned");
            download_into(&client, &mut state, out).await?;
            state.save(&cli.state)
        }
        Command::Strings => {
            let mut state = DeviceState::load(&cli.state)?;
            let client = device::http_client(cli.ca_cert.as_deref())?;
            download_into(&client, &mut state, out).await?;
            state.save(&cli.state)
        }
        Command::Sync => {
            let mut state = DeviceState::load(&cli.state)?;
            let client = device::http_client(cli.ca_cert.as_deref())?;
            let endpoint = Endpoint {
                server: state.server.clone(),
                agent_url: state.agent_url.clone(),
            };
            let index = device::token_index(&client, &endpoint, &state.user).await?;
            state.next_index = index;
            state.save(&cli.state)?;
            let _ = writeln!(out, "Next index {index:02}");
            Ok(())
        }
        Command::Otc { pin } => {
            let pin = Pin::parse(&pin).map_err(|_| ClientError::InvalidPin)?;
            let mut state = DeviceState::load(&cli.state)?;
            let wire = state.strings.as_deref().ok_or(ClientError::Strings(None))?;
            let strings =
                SecurityStrings::from_wire(0, wire).map_err(|_| ClientError::Strings(None))?;
            let index = state.next_index.max(1);
            if index > 99 {
                return Err(ClientError::NoStringsLeft);
            }
            let string = strings.get(index).ok_or(ClientError::NoStringsLeft)?;
            let otc = one_time_code(string, &pin, index).map_err(|_| ClientError::InvalidPin)?;
            state.next_index = index + 1;
            state.save(&cli.state)?;
            let _ = writeln!(out, "{otc}");
            Ok(())
        }
        Command::Show => {
            let state = DeviceState::load(&cli.state)?;
            let strings = state
                .strings
                .as_deref()
                .and_then(|w| SecurityStrings::from_wire(0, w).ok())
                .map(|s| count(&s))
                .unwrap_or(0);
            let _ = writeln!(out, "User: {}", state.user);
            let _ = writeln!(out, "Server: {}", state.server);
            let _ = writeln!(out, "Provisioned: yes");
            let _ = writeln!(
                out,
                "Security strings: {strings} (next index {:02})",
                state.next_index
            );
            Ok(())
        }
    }
}
