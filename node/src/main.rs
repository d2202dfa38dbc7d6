//! The `callfleet` binary: parses the command line and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use callfleet::cli;
use callfleet::cli::logging::{self, LogFormat};
use callfleet::config::Config;

#[derive(Parser)]
#[command(name = "callfleet", version, about = "Multi-node call-centre cluster")]
struct Cli {
    /// Log lines as `text` (coloured only on a terminal) or `json` (one object per line);
    /// default: $CALLFLEET_LOG_FORMAT, else text.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (or `node drain` to drain a running one).
    #[command(args_conflicts_with_subcommands = true)]
    Node {
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<NodeAction>,
    },
    /// Create or upgrade the database schema.
    Migrate {
        #[arg(long, short, conflicts_with = "database")]
        config: Option<PathBuf>,
        /// Database URL (postgres://... or sqlite://...).
        #[arg(long)]
        database: Option<String>,
    },
    /// Run a whole cluster on this host: 2 main nodes and 1 extra node, SQLite, with a small
    /// call centre and simulated traffic (callers, agents' phones, a supervisor's phone).
    Demo {
        /// Where configs, the database and logs go.
        #[arg(long, default_value = "callfleet-demo")]
        dir: PathBuf,
        /// Only the cluster: no call centre, no simulated traffic.
        #[arg(long)]
        quiet: bool,
    },
    /// Manage the phones (devices) that register with digest credentials.
    Device {
        #[command(subcommand)]
        action: DeviceAction,
    },
    /// Phones that configure themselves over HTTP(S): provisioning tokens, provisioned phones.
    Provision {
        #[command(subcommand)]
        action: ProvisionAction,
    },
    /// Office VoIP proxies: SIP from their last check-in address is admitted.
    Proxy {
        #[command(subcommand)]
        action: ProxyAction,
    },
    /// Manage the panel's users (admins and supervisors).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage the CRM API tokens (XML-RPC and JSON API).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Check a node's config, database, ports and audio.
    Doctor {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the lock service (agent leases) until Ctrl-C or SIGTERM.
    Lockd {
        /// Address to serve the HTTP API on, e.g. 10.0.0.1:7070.
        #[arg(long)]
        listen: SocketAddr,
        /// `memory` (one host) or `memcached://HOST:PORT` (shared by all lockd of a cluster).
        #[arg(long, default_value = "memory")]
        backend: String,
        /// Threads serving requests: 1 (the default) serves everything on one thread, which
        /// is the cheapest per request; more spread a busy lockd over cores.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: u16,
        /// A file holding the cluster secret (the nodes' `http.secret`), readable by lockd's
        /// user only. Without it (and without --config), CALLFLEET_HTTP_SECRET.
        #[arg(long, conflicts_with = "config")]
        secret_file: Option<PathBuf>,
        /// A node's config file, for its `http.secret`.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Say in one line whether the node of this config takes calls; exit 0 if it does, 1 if
    /// it is not running, 2 if it takes no calls (draining, refusing, database unreachable).
    Health {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Make a snapshot of a node (binary, cluster settings, sounds), or bring up a new node
    /// from one.
    Snapshot {
        #[command(subcommand)]
        action: cli::snapshot::Action,
    },
    /// Developer tools: `dev seed` writes a synthetic call history.
    Dev {
        #[command(subcommand)]
        action: DevAction,
    },
}

#[derive(Subcommand)]
enum DevAction {
    /// Write a realistic synthetic call history (CDRs and queue events) for the reports, with
    /// the queues sales, support, billing, retention and the department front.
    Seed {
        #[arg(long, short, conflicts_with = "database")]
        config: Option<PathBuf>,
        /// Database URL (postgres://... or sqlite://...).
        #[arg(long)]
        database: Option<String>,
        /// How many CDRs.
        #[arg(long)]
        cdrs: u64,
        /// Over how many days, ending now.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
        days: i64,
        /// Random seed (the same seed makes the same history).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum DeviceAction {
    /// Allow a phone to register, or set its password (read from stdin without --password).
    Add {
        #[arg(long, short)]
        config: PathBuf,
        /// The extension: the phone's SIP user name.
        #[arg(long)]
        ext: String,
        #[arg(long)]
        password: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List the phones allowed to register.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Stop a phone from registering.
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        ext: String,
    },
}

#[derive(Subcommand)]
enum ProvisionAction {
    /// The phones that provisioned themselves (MAC, extension, family, source, token, last fetch).
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Provisioning tokens: what a new phone presents on its first fetch.
    Token {
        #[command(subcommand)]
        action: ProvisionTokenAction,
    },
}

#[derive(Subcommand)]
enum ProvisionTokenAction {
    /// Create a provisioning token and print it (shown only once).
    Add {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// List the provisioning tokens (names, never secrets).
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Revoke a provisioning token (phones it made keep their credentials).
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum ProxyAction {
    /// Add a proxy and print its check-in token (shown only once).
    Add {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// List the proxies (name, address, last check-in in ms).
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Remove a proxy: its address is no longer admitted.
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user, or set its password, role and phone (read the password from stdin
    /// without --password); ends the user's sessions.
    Add {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
        /// admin or supervisor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        password: Option<String>,
        /// The user's own phone extension (listen-in dials it).
        #[arg(long)]
        device: Option<String>,
    },
    /// List the users.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Delete a user (its sessions end at once).
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a CRM API token and print it (shown only once).
    Add {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// List the tokens (names and public ids, never secrets).
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Revoke a token.
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum NodeAction {
    /// Ask a running node to take no new calls and exit once its calls have ended.
    Drain {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    let log_format = logging::choose_format(
        args.log_format,
        std::env::var_os(logging::LOG_FORMAT_ENV).as_deref(),
    )?;
    logging::init(log_format);
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async move {
        match args.command {
            Command::Node {
                action: Some(NodeAction::Drain { config }),
                ..
            } => cli::drain(&load(&config)?).await,
            Command::Node {
                config: Some(config),
                action: None,
            } => callfleet::node::run(load(&config)?).await,
            Command::Node {
                config: None,
                action: None,
            } => {
                // No file: the whole config comes from CALLFLEET_<SECTION>_<KEY> variables.
                let cfg = Config::load_with_env(None, std::env::vars()).context(
                    "callfleet node needs --config FILE, or at least CALLFLEET_NODE_NAME, \
                     CALLFLEET_SIP_LISTEN and CALLFLEET_HTTP_LISTEN in the environment",
                )?;
                callfleet::node::run(cfg).await
            }
            Command::Migrate { config, database } => {
                cli::migrate(config.as_deref(), database).await
            }
            Command::Demo { dir, quiet } => {
                cli::demo(cli::DemoOptions {
                    dir,
                    quiet,
                    log_format,
                })
                .await
            }
            Command::Doctor { config } => cli::doctor(&config).await,
            Command::Device { action } => device(action).await,
            Command::Provision { action } => provision(action).await,
            Command::Proxy { action } => proxy(action).await,
            Command::User { action } => user(action).await,
            Command::Token { action } => token(action).await,
            Command::Dev {
                action:
                    DevAction::Seed {
                        config,
                        database,
                        cdrs,
                        days,
                        seed,
                    },
            } => {
                let end_ms = callfleet::now_ms();
                let plan = cli::seed::Plan {
                    cdrs,
                    days,
                    end_ms,
                    seed,
                };
                cli::dev_seed(config.as_deref(), database, plan).await
            }
            Command::Lockd {
                listen,
                backend,
                workers,
                secret_file,
                config,
            } => {
                let key = cli::lockd_key(secret_file.as_deref(), config.as_deref())?;
                cli::lockd(listen, &backend, workers.into(), key).await
            }
            Command::Snapshot { action } => cli::snapshot::run(action).await,
            Command::Health { config } => cli::health(&load(&config)?).await,
        }
    })
}

async fn device(action: DeviceAction) -> anyhow::Result<()> {
    match action {
        DeviceAction::Add {
            config,
            ext,
            password,
            name,
        } => cli::device::add(&load(&config)?, &ext, password, name).await,
        DeviceAction::List { config } => cli::device::list(&load(&config)?).await,
        DeviceAction::Remove { config, ext } => cli::device::remove(&load(&config)?, &ext).await,
    }
}

async fn provision(action: ProvisionAction) -> anyhow::Result<()> {
    use cli::provision as p;
    match action {
        ProvisionAction::List { config } => p::list(&load(&config)?).await,
        ProvisionAction::Token { action } => match action {
            ProvisionTokenAction::Add { config, name } => {
                p::token_add(&load(&config)?, &name).await
            }
            ProvisionTokenAction::List { config } => p::token_list(&load(&config)?).await,
            ProvisionTokenAction::Remove { config, name } => {
                p::token_remove(&load(&config)?, &name).await
            }
        },
    }
}

async fn proxy(action: ProxyAction) -> anyhow::Result<()> {
    use cli::proxy as p;
    match action {
        ProxyAction::Add { config, name } => p::add(&load(&config)?, &name).await,
        ProxyAction::List { config } => p::list(&load(&config)?).await,
        ProxyAction::Remove { config, name } => p::remove(&load(&config)?, &name).await,
    }
}

async fn user(action: UserAction) -> anyhow::Result<()> {
    match action {
        UserAction::Add {
            config,
            name,
            role,
            password,
            device,
        } => cli::users::add(&load(&config)?, &name, &role, password, device).await,
        UserAction::List { config } => cli::users::list(&load(&config)?).await,
        UserAction::Remove { config, name } => cli::users::remove(&load(&config)?, &name).await,
    }
}

async fn token(action: TokenAction) -> anyhow::Result<()> {
    match action {
        TokenAction::Add { config, name } => cli::users::token_add(&load(&config)?, &name).await,
        TokenAction::List { config } => cli::users::token_list(&load(&config)?).await,
        TokenAction::Remove { config, name } => {
            cli::users::token_remove(&load(&config)?, &name).await
        }
    }
}

fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("load config {}", path.display()))
}
