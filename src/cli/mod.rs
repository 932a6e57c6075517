//! The `provisio` command line: server-side commands (`serve`, `migrate`, `admin-token`) that open
//! the store directly, and remote commands that talk to a running hub's REST API.

mod app_settings;
mod apps;
mod attributes;
mod backup;
pub mod client;
mod config_doc;
mod groups;
mod impact;
mod ldap;
mod mapping;
pub mod output;
mod prompt;
mod reports;
mod runs;
mod session;
mod tokens;
mod users;

use crate::config::{ServeArgs, StoreArgs};
use clap::{Args, Parser, Subcommand};
use client::ClientError;
use std::path::PathBuf;

/// Provisio: keeps SaaS accounts in step with your directory.
#[derive(Debug, Parser)]
#[command(name = "provisio", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the remote commands find the hub.
#[derive(Debug, Clone, Args)]
pub struct RemoteArgs {
    /// Base URL of the hub. Default: the CLI config file's `server`, else http://127.0.0.1:8080.
    #[arg(long, env = "PROVISIO_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Admin API token. Default: the CLI config file's `token`.
    #[arg(
        long,
        env = "PROVISIO_TOKEN",
        global = true,
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// CLI config file with `server` and `token` keys. Default: ~/.config/provisio/cli.toml.
    #[arg(long, env = "PROVISIO_CLI_CONFIG", global = true, value_name = "FILE")]
    pub cli_config: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub (HTTP API on --listen; embedded SQLite unless --database-url is given).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(StoreArgs),
    /// Create an admin API token directly in the store (no running hub needed) and print only the token.
    AdminToken {
        /// Where the store lives.
        #[command(flatten)]
        store: StoreArgs,
        /// A label for the token.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Copy the store into FILE while hubs run on it (SQLite: a consistent online copy;
    /// PostgreSQL: a pg_dump archive). App tokens stay encrypted: keep the secret key file beside
    /// the backup.
    Backup {
        /// Where the store lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Put a backup back: into a data directory no hub runs on, or an empty PostgreSQL database.
    /// A backup newer than this binary is refused.
    Restore {
        /// Where the store lives.
        #[command(flatten)]
        store: StoreArgs,
        /// The backup file to read.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Replace the store the data directory holds already.
        #[arg(long)]
        replace: bool,
    },
    /// Log in with an administrator password and save a token in the CLI config file.
    /// Reads the password (and, when asked, a new password) from standard input.
    Login {
        /// Administrator username.
        #[arg(long, default_value = "admin")]
        username: String,
        /// Read the password (and, when it must be replaced, the new one on the next line) from
        /// standard input instead of asking at the terminal.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Directory users.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Groups and memberships.
    Groups {
        #[command(subcommand)]
        command: groups::GroupsCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Custom profile attributes.
    Attributes {
        #[command(subcommand)]
        command: attributes::AttributesCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Admin API tokens.
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// SCIM tokens: one per identity provider that pushes users and groups into the hub's SCIM
    /// server at /scim/v2 (e.g. `scim-tokens create okta`, which prints only the token).
    ScimTokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Apps (SCIM 2.0 destinations).
    Apps {
        #[command(subcommand)]
        command: apps::AppsCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Policies: which groups get accounts in which apps.
    Policies {
        #[command(subcommand)]
        command: apps::PoliciesCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Provision one user in one app now and print what was done.
    Provision {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// User id or username.
        #[arg(long)]
        user: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Search the provisioning report (newest first).
    Reports {
        #[command(flatten)]
        args: reports::ReportArgs,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Import an app's accounts: link them to directory users (and create users where the app's
    /// import settings allow); --dry-run only shows what would happen.
    Import {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Show the outcome of every account; link, create and queue nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Compare an app's accounts with the hub's state and list the differences; --apply fixes
    /// them as far as the app's reconcile setting allows.
    Reconcile {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Fix what the app's reconcile setting allows (default: only report).
        #[arg(long)]
        apply: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Import conflicts: accounts an import could not link on its own.
    Conflicts {
        #[command(subcommand)]
        command: runs::ConflictsCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// LDAP and Active Directory sources the directory is read from.
    LdapSources {
        #[command(subcommand)]
        command: ldap::LdapCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Configuration as code: export the hub's attributes, apps, policies and LDAP sources as a
    /// TOML document, plan a document, apply it in one transaction.
    Config {
        #[command(subcommand)]
        command: config_doc::ConfigCommand,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Reconcile every user and group of an app, or print the plan with --dry-run.
    Sync {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Print what would be done without contacting the app.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

/// Runs a parsed command line; the error carries the exit code.
pub async fn run(cli: Cli) -> Result<(), ClientError> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve().map_err(|e| ClientError::Usage(e.to_string()))?;
            crate::telemetry::init_logging(config.log_format, &config.log_level);
            crate::server::serve(config)
                .await
                .map_err(|e| ClientError::Other(e.to_string()))
        }
        Command::Migrate(store) => {
            crate::telemetry::init_logging(crate::config::LogFormat::Human, "warn");
            let database = store.database().map_err(|e| ClientError::Usage(e.to_string()))?;
            let opened = crate::server::open_store(&database)
                .await
                .map_err(|e| ClientError::Other(e.to_string()))?;
            opened.close().await;
            println!("the database schema is up to date ({})", database.describe());
            Ok(())
        }
        Command::AdminToken { store, name } => {
            crate::telemetry::init_logging(crate::config::LogFormat::Human, "warn");
            let database = store.database().map_err(|e| ClientError::Usage(e.to_string()))?;
            let opened = crate::server::open_store(&database)
                .await
                .map_err(|e| ClientError::Other(e.to_string()))?;
            let auth = crate::service::AuthService::new(opened.clone());
            let issued = auth
                .create_token(&name, &crate::domain::admin::Principal::system())
                .await
                .map_err(|e| ClientError::Other(e.to_string()))?;
            opened.close().await;
            println!("{}", secrecy::ExposeSecret::expose_secret(&issued.secret));
            Ok(())
        }
        Command::Backup { store, to } => backup::backup(&store, &to).await,
        Command::Restore { store, from, replace } => backup::restore(&store, &from, replace).await,
        Command::Login {
            username,
            password_stdin,
            remote,
        } => session::login(&remote, &username, password_stdin).await,
        Command::Users { command, remote } => users::users(&remote, command).await,
        Command::Groups { command, remote } => groups::groups(&remote, command).await,
        Command::Attributes { command, remote } => attributes::attributes(&remote, command).await,
        Command::Tokens { command, remote } => tokens::tokens(&remote, command, "/api/v1/tokens").await,
        Command::ScimTokens { command, remote } => tokens::tokens(&remote, command, "/api/v1/scim-tokens").await,
        Command::Apps { command, remote } => apps::apps(&remote, command).await,
        Command::Policies { command, remote } => apps::policies(&remote, command).await,
        Command::Provision { app, user, remote } => apps::provision(&remote, &app, &user).await,
        Command::Sync { app, dry_run, remote } => apps::sync(&remote, &app, dry_run).await,
        Command::Import { app, dry_run, remote } => runs::import(&remote, &app, dry_run).await,
        Command::Reconcile { app, apply, remote } => runs::reconcile(&remote, &app, apply).await,
        Command::Conflicts { command, remote } => runs::conflicts(&remote, command).await,
        Command::Reports { args, remote } => reports::reports(&remote, args).await,
        Command::LdapSources { command, remote } => ldap::ldap_sources(&remote, command).await,
        Command::Config { command, remote } => config_doc::config(&remote, command).await,
    }
}
