//! `provisio ldap-sources ...`: LDAP and Active Directory sources over the admin API: create,
//! list, show, change and delete them, and run their connection tests and syncs, following each
//! run to its end.

use super::RemoteArgs;
use super::client::{Client, ClientError, encode};
use super::output::{cell, print_fields, print_json, print_table, when};
use super::session::connect;
use crate::domain::job::Report;
use crate::domain::ldap::LdapSource;
use crate::domain::ldap::run::{LdapRun, LdapRunStatus};
use clap::{Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;

const NO_BODY: Option<&Value> = None;

/// A preset on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Preset {
    /// Microsoft Active Directory.
    ActiveDirectory,
    /// OpenLDAP.
    Openldap,
}

/// Settings given as flags, sent as the `settings` object.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingFlags {
    /// Server URL: ldap://host[:port] or ldaps://host[:port].
    #[arg(long)]
    url: Option<String>,
    /// The DN the hub binds as.
    #[arg(long)]
    bind_dn: Option<String>,
    /// Where users are searched.
    #[arg(long)]
    user_base: Option<String>,
    /// Where groups are searched (no groups are read without it).
    #[arg(long)]
    group_base: Option<String>,
    /// Any other setting as KEY=VALUE (VALUE read as JSON when it is JSON, else as text), e.g.
    /// `--set starttls=true --set 'profile={"email":"mail"}'`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl SettingFlags {
    fn to_map(&self) -> Result<Map<String, Value>, ClientError> {
        let mut settings = Map::new();
        for (key, value) in [
            ("url", &self.url),
            ("bind_dn", &self.bind_dn),
            ("user_base", &self.user_base),
            ("group_base", &self.group_base),
        ] {
            if let Some(value) = value {
                settings.insert(key.into(), json!(value));
            }
        }
        for pair in &self.set {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ClientError::Usage(format!("--set {pair}: expected KEY=VALUE")))?;
            let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
            settings.insert(key.trim().to_owned(), value);
        }
        Ok(settings)
    }
}

/// `provisio ldap-sources ...`.
#[derive(Debug, Subcommand)]
pub enum LdapCommand {
    /// Create a source. The bind password is read from --password-file, or asked for (without
    /// echo) at the terminal.
    Create {
        /// Unique name.
        name: String,
        /// Start from the settings of Active Directory or OpenLDAP.
        #[arg(long, value_enum)]
        preset: Option<Preset>,
        #[command(flatten)]
        settings: SettingFlags,
        /// File holding the bind password (`-`: one line from standard input).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the sources.
    List,
    /// Show a source's settings.
    Show {
        /// Name or id.
        source: String,
    },
    /// Change a source's settings (and, with --password-file, its bind password).
    Update {
        /// Name or id.
        source: String,
        #[command(flatten)]
        settings: SettingFlags,
        /// File holding a new bind password (`-`: standard input).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Delete a source (its users and groups stay, owned by nobody).
    Delete {
        /// Name or id.
        source: String,
        /// Do not ask: confirm for scripts.
        #[arg(long)]
        yes: bool,
    },
    /// Connect, bind and count what the settings find; changes nothing.
    Test {
        /// Name or id.
        source: String,
    },
    /// Sync the directory with the source and print what changed.
    Sync {
        /// Name or id.
        source: String,
        /// Only the entries changed since the last sync.
        #[arg(long)]
        incremental: bool,
        /// Print what a sync would do; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// A source's newest runs.
    Runs {
        /// Name or id.
        source: String,
    },
}

fn read_password(file: Option<&PathBuf>) -> Result<String, ClientError> {
    let text = match file {
        Some(path) if path.as_os_str() == "-" => super::prompt::line("bind password")?,
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?,
        None => super::prompt::secret(
            "Bind password",
            "pass --password-file FILE, or --password-file - to read it from standard input",
        )?,
    };
    let password = text.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(ClientError::Usage("the bind password is empty".into()));
    }
    Ok(password)
}

fn show_source(remote: &RemoteArgs, source: &LdapSource) {
    if remote.json {
        print_json(source);
        return;
    }
    let s = &source.settings;
    print_fields(&[
        ("name", source.name.clone()),
        ("id", source.id.to_string()),
        ("url", s.url.clone()),
        ("starttls", s.starttls.to_string()),
        ("bind_dn", s.bind_dn.clone()),
        ("user_base", s.user_base.clone()),
        ("user_filter", s.user_filter.clone()),
        ("group_base", cell(&s.group_base)),
        ("group_filter", s.group_filter.clone()),
        ("unique_id", s.unique_id.clone()),
        ("username", s.username_attribute.clone()),
        (
            "profile",
            s.profile
                .iter()
                .map(|(k, v)| format!("{k}<-{v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "sync_every_minutes",
            s.sync_every_minutes.map_or("-".into(), |m| m.to_string()),
        ),
    ]);
}

/// Follows a run until it ends.
async fn follow(client: &Client, run: LdapRun) -> Result<LdapRun, ClientError> {
    loop {
        let now: LdapRun = client
            .request(Method::GET, &format!("/api/v1/ldap-runs/{}", run.id), NO_BODY)
            .await?;
        if matches!(now.status, LdapRunStatus::Done | LdapRunStatus::Failed) {
            return Ok(now);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints a finished run; a failed one is an error (exit status 1).
fn print_run(remote: &RemoteArgs, run: &LdapRun) -> Result<(), ClientError> {
    if remote.json {
        print_json(run);
    } else {
        let c = &run.counts;
        print_fields(&[
            ("run", run.id.to_string()),
            ("status", run.status.as_str().to_owned()),
            ("read", format!("{} users, {} groups", c.users_read, c.groups_read)),
            (
                "users",
                format!(
                    "{} created, {} adopted, {} updated, {} deactivated, {} deleted",
                    c.users_created, c.users_adopted, c.users_updated, c.users_deactivated, c.users_deleted
                ),
            ),
            (
                "groups",
                format!(
                    "{} created, {} updated, {} deleted",
                    c.groups_created, c.groups_updated, c.groups_deleted
                ),
            ),
            (
                "members",
                format!("{} added, {} removed", c.members_added, c.members_removed),
            ),
            ("refused", format!("{} entries, {} changes failed", c.refused, c.failed)),
        ]);
    }
    match (&run.status, &run.error) {
        (LdapRunStatus::Failed, Some(error)) => Err(ClientError::Other(error.clone())),
        (LdapRunStatus::Failed, None) => Err(ClientError::Other("the run failed".into())),
        _ => Ok(()),
    }
}

/// `provisio ldap-sources ...`.
pub async fn ldap_sources(remote: &RemoteArgs, command: LdapCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    let path = |source: &str| format!("/api/v1/ldap-sources/{}", encode(source));
    match command {
        LdapCommand::Create {
            name,
            preset,
            settings,
            password_file,
        } => {
            let password = read_password(password_file.as_ref())?;
            let preset = preset.map(|p| match p {
                Preset::ActiveDirectory => "active_directory",
                Preset::Openldap => "openldap",
            });
            let body =
                json!({"name": name, "preset": preset, "bind_password": password, "settings": settings.to_map()?});
            let source: LdapSource = client
                .request(Method::POST, "/api/v1/ldap-sources", Some(&body))
                .await?;
            show_source(remote, &source);
        }
        LdapCommand::List => {
            let sources: Vec<LdapSource> = client.request(Method::GET, "/api/v1/ldap-sources", NO_BODY).await?;
            if remote.json {
                print_json(&sources);
            } else {
                let rows: Vec<Vec<String>> = sources
                    .iter()
                    .map(|s| vec![s.name.clone(), s.settings.url.clone(), s.settings.user_base.clone()])
                    .collect();
                print_table(&["NAME", "URL", "USER BASE"], &rows);
            }
        }
        LdapCommand::Show { source } => {
            let source: LdapSource = client.request(Method::GET, &path(&source), NO_BODY).await?;
            show_source(remote, &source);
        }
        LdapCommand::Update {
            source,
            settings,
            password_file,
        } => {
            let mut body = Map::new();
            let settings = settings.to_map()?;
            if !settings.is_empty() {
                body.insert("settings".into(), Value::Object(settings));
            }
            if password_file.is_some() {
                body.insert("bind_password".into(), json!(read_password(password_file.as_ref())?));
            }
            if body.is_empty() {
                return Err(ClientError::Usage(
                    "nothing to change: give --url, --bind-dn, --user-base, --group-base, --set or --password-file"
                        .into(),
                ));
            }
            let source: LdapSource = client.request(Method::PATCH, &path(&source), Some(&body)).await?;
            show_source(remote, &source);
        }
        LdapCommand::Delete { source, yes } => {
            super::prompt::confirm(
                &[format!(
                    "Delete the LDAP source {source}? Its users and groups stay in the directory, owned by nobody."
                )],
                yes,
            )?;
            client.request_empty(Method::DELETE, &path(&source), NO_BODY).await?;
            if !remote.json {
                println!("deleted LDAP source {source}");
            }
        }
        LdapCommand::Test { source } => {
            let run: LdapRun = client
                .request(Method::POST, &format!("{}/test", path(&source)), NO_BODY)
                .await?;
            let run = follow(&client, run).await?;
            print_run(remote, &run)?;
        }
        LdapCommand::Sync {
            source,
            incremental,
            dry_run,
        } => {
            let mode = if incremental { "incremental" } else { "full" };
            let body = json!({"mode": mode, "dry_run": dry_run});
            let run: LdapRun = client
                .request(Method::POST, &format!("{}/syncs", path(&source)), Some(&body))
                .await?;
            let run = follow(&client, run).await?;
            if dry_run && !remote.json && run.status == LdapRunStatus::Done {
                let reports: Vec<Report> = client
                    .request(Method::GET, &format!("/api/v1/ldap-runs/{}/reports", run.id), NO_BODY)
                    .await?;
                let rows: Vec<Vec<String>> = reports
                    .iter()
                    .map(|r| {
                        vec![
                            r.operation.as_str().to_owned(),
                            cell(&r.username),
                            r.outcome.as_str().to_owned(),
                            cell(&r.message),
                        ]
                    })
                    .collect();
                print_table(&["WOULD", "NAME", "OUTCOME", "DETAIL"], &rows);
            }
            print_run(remote, &run)?;
        }
        LdapCommand::Runs { source } => {
            let runs: Vec<LdapRun> = client
                .request(Method::GET, &format!("{}/runs", path(&source)), NO_BODY)
                .await?;
            if remote.json {
                print_json(&runs);
            } else {
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        vec![
                            when(r.created_at),
                            r.kind.as_str().to_owned(),
                            r.mode.as_str().to_owned(),
                            r.status.as_str().to_owned(),
                            format!(
                                "+{} ~{} -{}",
                                r.counts.users_created, r.counts.users_updated, r.counts.users_deactivated
                            ),
                            cell(&r.error),
                        ]
                    })
                    .collect();
                print_table(&["QUEUED", "KIND", "MODE", "STATUS", "USERS", "ERROR"], &rows);
            }
        }
    }
    Ok(())
}
