//! The command line: `provision-server [OPTIONS] [COMMAND]`. Without a command it serves.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use swivel_provision::{
    Delivery, Destination, MAX_USER_PAGE, Pin, ServerKey, ServerSettings, SiteId, UserEntry,
    UserQuery, Username,
};

use crate::actions::Actor;
use crate::backend::Backend;
use crate::config::{FileConfig, TlsFiles};
use crate::credentials::random_token;
use crate::error::AppError;
use crate::routes::show_time;
use crate::state::{AppState, StateBuilder};

/// `provision-server`: a Swivel-style mobile provisioning server.
#[derive(Debug, Parser)]
#[command(name = "provision-server", version, about)]
pub struct Cli {
    /// Where the SQLite file, the server key and the outbox live.
    #[arg(long, global = true, default_value = "./provision-data")]
    pub data_dir: PathBuf,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, global = true)]
    pub listen: Option<String>,
    /// Configuration file (TOML: policy, transports, public URL, site id, TLS).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Database: a SQLite file path, `postgres://...`, or `memory` (default:
    /// `<data-dir>/provision.sqlite`).
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// SQLite durability: `full` (default; every commit is fsynced before it answers) or
    /// `normal` (much faster; a power loss may lose the last commits, never corrupts).
    #[arg(long, global = true, default_value = "full", value_parser = parse_durability)]
    pub sqlite_durability: swivel_provision_sqlite::Durability,
    /// Base URL users reach this server at (default `http://<listen>`).
    #[arg(long, global = true)]
    pub public_url: Option<String>,
    /// Add demo data when absent: users alice (email, PIN 1234), bob (phone, PIN 5678),
    /// carol (not in the mobile group) and site DEMO; also print outbox messages (live
    /// codes) on stdout.
    #[arg(long)]
    pub demo: bool,
    /// Set the API token from this file when serving (its first line, at least 32
    /// characters), replacing any token made before: for an orchestrator's mounted
    /// secret, or a `memory` database, where `api token` cannot reach the serving process.
    /// The file should be readable by this user only.
    #[arg(long)]
    pub api_token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Send a new provision code to a user (as the console's Reprovision does).
    Reprovision {
        /// The user.
        name: String,
    },
    /// Manage sites (server settings discovery).
    #[command(subcommand)]
    Sites(SitesCommand),
    /// Show or change the policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The administration console.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The JSON API.
    #[command(subcommand)]
    Api(ApiCommand),
}

/// `users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user, or replace an existing user's destinations and group.
    Add(AddUser),
    /// List users and their provisioning status, in username order (read a page of 1,000
    /// at a time).
    List {
        /// Only usernames starting with this text.
        #[arg(long)]
        prefix: Option<String>,
        /// Only users with a destination of exactly this address.
        #[arg(long)]
        destination: Option<String>,
    },
    /// Delete a user: revoke the device and pending code, remove the user and the PIN.
    #[command(visible_alias = "remove")]
    Delete {
        /// The user.
        name: String,
    },
    /// Revoke a user's device and pending provision code (the user stays).
    Revoke {
        /// The user.
        name: String,
    },
    /// Unlock an account locked after too many failed attempts in a row.
    Unlock {
        /// The user.
        name: String,
    },
    /// Cancel a user's pending provision code (the device, if any, keeps working).
    Cancel {
        /// The user.
        name: String,
    },
}

/// `users add`.
#[derive(Debug, Args)]
pub struct AddUser {
    /// The username.
    pub name: String,
    /// The user's destinations, group and PIN.
    #[command(flatten)]
    pub fields: crate::actions::UserFields,
}

/// `sites ...`.
#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Add or replace a site.
    Add {
        /// The Site ID.
        site: String,
        /// Host name devices connect to (default: from --public-url or --listen).
        #[arg(long)]
        hostname: Option<String>,
        /// Port (default: from --public-url or --listen).
        #[arg(long)]
        port: Option<u16>,
        /// Context path of the AgentXML endpoint: pinsafe, sentry or proxy (the contexts
        /// this server serves).
        #[arg(long, default_value = "pinsafe")]
        context: String,
        /// Devices use HTTPS (SSD `usingSSL`; also when the public URL is https).
        #[arg(long)]
        ssl: bool,
        /// Push authentication is supported (SSD `pushSupport`).
        #[arg(long)]
        push_support: bool,
        /// The server is on the local network (SSD `local`).
        #[arg(long)]
        local: bool,
        /// The client does not ask for a PIN (SSD `pin` NO; the default is YES).
        #[arg(long)]
        no_pin: bool,
        /// OATH tokens are used (SSD `oath`).
        #[arg(long)]
        oath: bool,
    },
    /// List sites.
    List,
    /// Delete a site (discovery no longer answers for it).
    #[command(visible_alias = "remove")]
    Delete {
        /// The Site ID.
        site: String,
    },
}

/// `policy ...`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print every setting.
    Show,
    /// Change one setting (names as `policy show` prints them).
    Set {
        /// The setting.
        key: String,
        /// The value (`Yes`/`No` for switches; empty clears a link or the Site ID).
        value: String,
    },
}

/// `admin ...`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set or reset the console password: generated and printed once, or read from stdin.
    Password {
        /// Read the new password from the first line of stdin instead of generating one.
        #[arg(long)]
        stdin: bool,
    },
}

/// `api ...`.
#[derive(Debug, Subcommand)]
pub enum ApiCommand {
    /// Make a new API bearer token (printed once; replaces the previous token).
    Token,
}

/// Settings resolved from flags, the configuration file and defaults.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: String,
    /// Public URL, when given.
    pub public_url: Option<String>,
    /// Database.
    pub database: String,
    /// SQLite durability.
    pub sqlite_durability: swivel_provision_sqlite::Durability,
    /// TLS files.
    pub tls: Option<TlsFiles>,
    /// The configuration file.
    pub file: FileConfig,
}

impl Cli {
    /// Resolves flags over the configuration file over defaults.
    pub fn resolve(&self) -> Result<Resolved, AppError> {
        let file = match &self.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => file.tls.clone(),
        };
        let database = self
            .database
            .clone()
            .or_else(|| file.database.clone())
            .unwrap_or_else(|| self.data_dir.join("provision.sqlite").display().to_string());
        Ok(Resolved {
            data_dir: self.data_dir.clone(),
            listen: self
                .listen
                .clone()
                .or_else(|| file.listen.clone())
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            public_url: self.public_url.clone().or_else(|| file.public_url.clone()),
            database,
            sqlite_durability: self.sqlite_durability,
            tls,
            file,
        })
    }
}

/// Creates the data directory (mode 0700), or tightens an existing one with a warning.
pub fn ensure_data_dir(dir: &Path) -> Result<(), AppError> {
    crate::files::private_dir(dir)
}

/// Loads `<data-dir>/server.key`, or creates it (32 random bytes, mode 0600). Refuses a key
/// file that group or others can read.
pub fn load_or_create_key(data_dir: &Path) -> Result<ServerKey, AppError> {
    ensure_data_dir(data_dir)?;
    let path = data_dir.join("server.key");
    match std::fs::metadata(&path) {
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(AppError::Setup(format!(
                        "{} is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    )));
                }
            }
            let _ = meta;
            let bytes = std::fs::read(&path)
                .map_err(|e| AppError::Setup(format!("cannot read {}: {e}", path.display())))?;
            ServerKey::from_slice(&bytes).map_err(|_| {
                AppError::Setup(format!("{} must hold exactly 32 bytes", path.display()))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ServerKey::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&path)
                .map_err(|e| AppError::Setup(format!("cannot create {}: {e}", path.display())))?;
            file.write_all(key.expose_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| AppError::Setup(format!("cannot write {}: {e}", path.display())))?;
            println!(
                "Created a new server key in {} (mode 0600). Keep it safe: losing it invalidates every code and device.",
                path.display()
            );
            Ok(key)
        }
        Err(e) => Err(AppError::Setup(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn default_public_url(listen: &SocketAddr, tls: bool) -> String {
    format!("{}://{listen}", if tls { "https" } else { "http" })
}

/// Host and port of a URL like `http://host:port/...`.
fn host_port(url: &str) -> Option<(String, u16, bool)> {
    let (scheme, rest) = url.split_once("://")?;
    let ssl = scheme.eq_ignore_ascii_case("https");
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse() {
            Ok(p) => (h.to_owned(), p),
            Err(_) => (authority.to_owned(), if ssl { 443 } else { 80 }),
        },
        _ => (authority.to_owned(), if ssl { 443 } else { 80 }),
    };
    Some((host.trim_matches(['[', ']']).to_owned(), port, ssl))
}

/// This instance's name in the shared event log: `instance_name` from the configuration
/// file, else `<hostname>:<port>` of `listen`.
fn instance_name(r: &Resolved, listen: Option<SocketAddr>) -> String {
    match (&r.file.instance_name, listen) {
        (Some(name), _) => name.clone(),
        (None, Some(addr)) => crate::config::default_instance_name(addr),
        (None, None) => r.listen.clone(),
    }
}

/// Opens the backend and builds the state for a command or the server.
#[allow(clippy::too_many_arguments)]
async fn build_state(
    r: &Resolved,
    instance: String,
    backend: Backend,
    key: ServerKey,
    public_url: &str,
    site_id: Option<SiteId>,
    delivery: Delivery,
    print_outbox: bool,
) -> Result<AppState, AppError> {
    let mut builder = StateBuilder::new(backend, key)
        .public_url(public_url)
        .site_id(site_id)
        .delivery(delivery)
        .secure_cookies(r.tls.is_some())
        .log_lines(r.file.log_lines.unwrap_or(1000))
        .instance_name(instance)
        .throttle(r.file.throttle.clone())
        .request_timeout(r.file.connections.request_timeout())
        .metrics_endpoint(r.file.metrics.endpoint()?);
    if let Some(p) = &r.file.policy {
        builder = builder.initial_policy(p.clone());
    }
    for (channel, transport, what) in
        crate::transports::from_config(&r.file, &r.data_dir, print_outbox)?
    {
        tracing::debug!(%channel, %what, "transport");
        builder = builder.transport(channel, transport);
    }
    builder.build().await
}

fn site_id_of(cli: &Cli, r: &Resolved) -> Result<Option<SiteId>, AppError> {
    match &r.file.site_id {
        Some(s) => Ok(Some(SiteId::parse(s)?)),
        None if cli.demo => Ok(Some(SiteId::parse("DEMO")?)),
        None => Ok(None),
    }
}

/// Settings-store keys where `serve` records the public URL and Site ID it runs with, so
/// that commands (`reprovision`) make the same links.
const SERVED_URL_KEY: &str = "server/public_url";
const SERVED_SITE_KEY: &str = "server/site_id";

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<(), AppError> {
    let r = cli.resolve()?;
    match &cli.command {
        None | Some(Command::Serve) => serve(&cli, &r).await,
        Some(command) => {
            let key = load_or_create_key(&r.data_dir)?;
            let backend = Backend::open(&r.database, r.sqlite_durability, &r.file.postgres).await?;
            let public_url = match &r.public_url {
                Some(u) => u.clone(),
                None => match backend.settings.get_setting(SERVED_URL_KEY).await? {
                    Some(u) if cli.listen.is_none() => u,
                    _ => format!(
                        "{}://{}",
                        if r.tls.is_some() { "https" } else { "http" },
                        r.listen
                    ),
                },
            };
            let site = match site_id_of(&cli, &r)? {
                Some(s) => Some(s),
                None => match backend.settings.get_setting(SERVED_SITE_KEY).await? {
                    Some(s) => Some(SiteId::parse(&s)?),
                    None => None,
                },
            };
            let print = cli.demo || r.file.outbox.print;
            let instance = instance_name(&r, r.listen.parse().ok());
            let state = build_state(
                &r,
                instance,
                backend,
                key,
                &public_url,
                site,
                Delivery::Direct,
                print,
            )
            .await?;
            if cli.demo {
                add_demo_data(&state, &public_url).await?;
            }
            let result = run_command(&state, command, &public_url).await;
            // The command's events (a reprovision, an unlock) go to the shared log too.
            if !state.flush_events(Duration::from_secs(5)).await {
                tracing::warn!("some events were not written to the shared event log");
            }
            result
        }
    }
}

/// One line of `users list`: name, destinations, group, status.
async fn print_user(state: &AppState, user: &UserEntry) -> Result<(), AppError> {
    let status = state.provisioner().status(&user.username).await?;
    let dests: Vec<String> = user
        .destinations
        .iter()
        .map(|d| format!("{}:{}", d.channel, d.address))
        .collect();
    println!(
        "{}\t{}\t{}\t{}",
        user.username,
        if dests.is_empty() {
            "-".to_owned()
        } else {
            dests.join(",")
        },
        if user.mobile_group {
            "mobile-group"
        } else {
            "-"
        },
        crate::routes::users::status_text(&status)
    );
    Ok(())
}

async fn run_command(
    state: &AppState,
    command: &Command,
    public_url: &str,
) -> Result<(), AppError> {
    let b = state.backend();
    match command {
        Command::Serve => unreachable!("handled by run"),
        Command::Users(UsersCommand::Add(a)) => {
            println!(
                "{}",
                crate::actions::save_user(state, Actor::Cli, &a.name, &a.fields).await?
            );
        }
        Command::Users(UsersCommand::List {
            prefix,
            destination,
        }) => {
            let mut query = UserQuery {
                prefix: prefix.clone(),
                destination: destination.clone(),
                ..UserQuery::first(MAX_USER_PAGE)
            };
            loop {
                let page = crate::user_list::page(state, &query).await?;
                for user in &page.users {
                    print_user(state, user).await?;
                }
                match page.next_after {
                    Some(after) => query.after = Some(after),
                    None => break,
                }
            }
        }
        Command::Users(UsersCommand::Delete { name }) => {
            println!(
                "{}",
                crate::actions::delete_user(state, Actor::Cli, name).await?
            );
        }
        Command::Users(UsersCommand::Revoke { name }) => {
            println!("{}", crate::actions::revoke(state, Actor::Cli, name).await?);
        }
        Command::Users(UsersCommand::Unlock { name }) => {
            println!("{}", crate::actions::unlock(state, Actor::Cli, name).await?);
        }
        Command::Users(UsersCommand::Cancel { name }) => {
            println!(
                "{}",
                crate::actions::cancel_code(state, Actor::Cli, name).await?
            );
        }
        Command::Reprovision { name } => {
            let done = crate::actions::reprovision(state, Actor::Cli, name).await?;
            println!(
                "Provision code sent to user \"{}\" at {} (valid until {}).",
                done.0.username,
                done.0.destination.address,
                show_time(done.0.expires_at)
            );
        }
        Command::Sites(SitesCommand::Add {
            site,
            hostname,
            port,
            context,
            ssl,
            push_support,
            local,
            no_pin,
            oath,
        }) => {
            let (h, p, s) = host_port(public_url).unwrap_or(("localhost".into(), 8080, false));
            let settings = ServerSettings {
                hostname: hostname.clone().unwrap_or(h),
                port: port.unwrap_or(p),
                connection_type: context.clone(),
                using_ssl: *ssl || s,
                push_support: *push_support,
                local: *local,
                pin: !*no_pin,
                oath: *oath,
            };
            println!(
                "{}",
                crate::actions::save_site(state, Actor::Cli, site, settings).await?
            );
        }
        Command::Sites(SitesCommand::Delete { site }) => {
            println!(
                "{}",
                crate::actions::delete_site(state, Actor::Cli, site).await?
            );
        }
        Command::Sites(SitesCommand::List) => {
            for (id, s) in b.site_admin.list_sites().await? {
                println!("{id}\t{}", crate::actions::show_site(&s));
            }
        }
        Command::Policy(PolicyCommand::Show) => {
            let policy = state.provisioner().policy();
            for key in swivel_provision::Policy::KEYS {
                println!("{key} = {}", policy.get(key).unwrap_or_default());
            }
        }
        Command::Policy(PolicyCommand::Set { key, value }) => {
            let policy =
                crate::actions::change_policy(state, Actor::Cli, &[(key.as_str(), value.as_str())])
                    .await?
                    .map_err(|refused| AppError::BadRequest(refused.join("; ")))?;
            println!("{key} = {}", policy.get(key).unwrap_or_default());
        }
        Command::Admin(AdminCommand::Password { stdin }) => {
            if *stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| AppError::Setup(format!("cannot read stdin: {e}")))?;
                let password = SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned());
                crate::actions::set_console_password(state, Actor::Cli, None, &password).await?;
                println!("Console password set.");
            } else {
                let password = SecretString::from(random_token(18));
                crate::actions::set_console_password(state, Actor::Cli, None, &password).await?;
                println!(
                    "Console password set (shown only now): {}",
                    password.expose_secret()
                );
            }
        }
        Command::Api(ApiCommand::Token) => {
            let token = state.credentials().new_api_token().await?;
            println!("API token (shown only now; the previous token no longer works):");
            println!("{}", token.expose_secret());
        }
    }
    Ok(())
}

/// A site as `sites add` and `sites list` print it: the URL a device follows and the flags
/// as SSD answers them.
/// The demo users and site, added when absent.
pub async fn add_demo_data(state: &AppState, public_url: &str) -> Result<(), AppError> {
    let b = state.backend();
    let demo = [
        (
            "alice",
            Some(Destination::email("alice@example.com")?),
            true,
            "1234",
        ),
        ("bob", Some(Destination::sms("+15555550100")?), true, "5678"),
        (
            "carol",
            Some(Destination::email("carol@example.com")?),
            false,
            "4321",
        ),
    ];
    for (name, dest, group, pin) in demo {
        let username = Username::parse(name)?;
        if b.users.find_user(&username).await?.is_some() {
            continue;
        }
        let mut user = UserEntry::new(username.clone()).with_mobile_group(group);
        if let Some(d) = dest {
            user = user.with_destination(d);
        }
        b.user_admin.put_user(&user).await?;
        state.provisioner().user_added(&username).await?;
        state.pins().set(&username, &Pin::parse(pin)?).await?;
        println!("Demo user \"{name}\" added (PIN {pin}).");
    }
    let site = SiteId::parse("DEMO")?;
    if b.sites.find_site(&site).await?.is_none() {
        let (hostname, port, using_ssl) =
            host_port(public_url).unwrap_or(("localhost".into(), 8080, false));
        let settings = ServerSettings {
            hostname,
            port,
            using_ssl,
            ..ServerSettings::default()
        };
        b.site_admin.put_site(&site, &settings).await?;
        println!(
            "Demo site DEMO added ({}:{}).",
            settings.hostname, settings.port
        );
    }
    Ok(())
}

async fn serve(cli: &Cli, r: &Resolved) -> Result<(), AppError> {
    // One server per SQLite file, whatever path names it (PostgreSQL instances share
    // theirs); held until the process ends, and taken first, so that a refused server
    // makes no key.
    ensure_data_dir(&r.data_dir)?;
    if let Some(db) = Backend::sqlite_path(&r.database).filter(|db| db != Path::new(":memory:")) {
        crate::files::InstanceLock::acquire(&db)?;
    }
    let key = load_or_create_key(&r.data_dir)?;
    let listener = std::net::TcpListener::bind(&r.listen)
        .map_err(|e| AppError::Setup(format!("cannot listen on {}: {e}", r.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| AppError::Setup(e.to_string()))?;
    let local = listener
        .local_addr()
        .map_err(|e| AppError::Setup(e.to_string()))?;
    let public_url = r
        .public_url
        .clone()
        .unwrap_or_else(|| default_public_url(&local, r.tls.is_some()));
    let backend = Backend::open(&r.database, r.sqlite_durability, &r.file.postgres).await?;
    let backend_jobs = backend.jobs.is_some();
    let site = site_id_of(cli, r)?;
    backend
        .settings
        .put_setting(SERVED_URL_KEY, &public_url)
        .await?;
    match &site {
        Some(s) => {
            backend
                .settings
                .put_setting(SERVED_SITE_KEY, s.as_str())
                .await?
        }
        None => {
            backend.settings.delete_setting(SERVED_SITE_KEY).await?;
        }
    }
    let state = build_state(
        r,
        instance_name(r, Some(local)),
        backend,
        key,
        &public_url,
        site.clone(),
        r.file
            .delivery
            .delivery(backend_jobs, &instance_name(r, Some(local))),
        cli.demo || r.file.outbox.print,
    )
    .await?;
    if cli.demo {
        add_demo_data(&state, &public_url).await?;
    }
    if let Some(path) = &cli.api_token_file {
        let token = crate::files::read_secret_line(path)?;
        state.credentials().set_api_token(&token).await?;
        tracing::info!("API token set from {}", path.display());
    }
    if !state.credentials().has_password().await? {
        let password = SecretString::from(random_token(18));
        state.credentials().set_password(&password).await?;
        println!("No console password was set, so one was generated (shown only now):");
        println!("    console password: {}", password.expose_secret());
        println!(
            "Change it any time on the console's Password page (/admin/password) or with `provision-server admin password`."
        );
    }
    let background = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = background.provisioner().purge_expired().await {
                tracing::warn!(error = %crate::error::error_chain(&e), "purging expired codes failed");
            }
            if let Err(e) = background.reload_policy().await {
                tracing::warn!(error = %crate::error::error_chain(&e), "reloading the policy failed");
            }
            background.throttles().forget_idle();
            background.throttles().purge_shared().await;
        }
    });
    crate::shared_log::spawn_purge(state.backend().events.clone(), r.file.events.retention());
    let metrics = state.metrics_endpoint();
    if metrics.enabled && metrics.token.is_none() {
        tracing::warn!(
            "GET /metrics answers only this host (loopback): no [metrics] token or token_file is set"
        );
    }
    let router = crate::app(state.clone());
    let handle = axum_server::Handle::new();
    let shutdown =
        crate::shutdown::Shutdown::watch(handle.clone(), r.file.connections.shutdown_timeout())?;
    println!(
        "provision-server listening on {public_url} (data: {}, store: {}, instance: {})",
        r.data_dir.display(),
        state.backend().description,
        state.shared_log().instance()
    );
    println!(
        "Console: {public_url}/admin/  Self-service: {public_url}/reset/provision  Device endpoint: {public_url}/pinsafe/AgentXML"
    );
    let _ = std::io::stdout().flush();
    let tls = match &r.tls {
        Some(tls) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                    .await
                    .map_err(|e| {
                        AppError::Setup(format!("cannot load the TLS certificate or key: {e}"))
                    })?,
            )
        }
        None => None,
    };
    crate::serve::serve(listener, router, r.file.connections, tls, handle).await?;
    shutdown
        .finish(state.provisioner(), state.shared_log())
        .await;
    println!("provision-server stopped.");
    let _ = std::io::stdout().flush();
    Ok(())
}

fn parse_durability(value: &str) -> Result<swivel_provision_sqlite::Durability, String> {
    match value.to_ascii_lowercase().as_str() {
        "full" => Ok(swivel_provision_sqlite::Durability::Full),
        "normal" => Ok(swivel_provision_sqlite::Durability::Normal),
        other => Err(format!("must be full or normal, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_durability_flag() {
        use swivel_provision_sqlite::Durability;
        assert_eq!(parse_durability("NORMAL"), Ok(Durability::Normal));
        assert_eq!(parse_durability("full"), Ok(Durability::Full));
        assert!(
            parse_durability("fast")
                .unwrap_err()
                .contains("full or normal")
        );
    }

    #[test]
    fn host_port_of_urls() {
        assert_eq!(
            host_port("http://127.0.0.1:8080"),
            Some(("127.0.0.1".into(), 8080, false))
        );
        assert_eq!(
            host_port("https://auth.example.com/x"),
            Some(("auth.example.com".into(), 443, true))
        );
        assert_eq!(
            host_port("http://[::1]:9000/"),
            Some(("::1".into(), 9000, false))
        );
    }

    #[test]
    fn key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_create_key(dir.path()).unwrap();
        let k2 = load_or_create_key(dir.path()).unwrap();
        assert_eq!(k1.expose_bytes(), k2.expose_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join("server.key");
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = load_or_create_key(dir.path()).err().unwrap();
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
    }
}
