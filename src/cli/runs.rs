//! The remote commands for imports and reconciliations: `import`, `reconcile` (queue a run,
//! follow it with a progress bar, print a summary table and the items worth reading),
//! `conflicts` (the import conflict queue), and the `apps update` flags of an app's import and
//! reconciliation settings.

use super::RemoteArgs;
use super::client::{Client, ClientError, encode};
use super::output::{print_json, print_table, when};
use super::session::connect;
use crate::domain::app::App;
use crate::domain::import::MatchAttribute;
use crate::domain::reconcile::ReconcileApply;
use crate::domain::target_run::{ConflictStatus, ImportConflict, Interval, RunItem, RunStatus, TargetRun};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::time::Duration;

const NO_BODY: Option<&Value> = None;
/// Items printed after a run; the rest are a command away.
const ITEMS_SHOWN: usize = 50;

/// `provisio conflicts ...`.
#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// List an app's import conflicts (open ones unless --all).
    List {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Include linked and ignored ones.
        #[arg(long)]
        all: bool,
    },
    /// Link a conflict's account to a directory user.
    Link {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Conflict id.
        conflict: String,
        /// User id or username.
        user: String,
    },
    /// Leave a conflict's account alone for good (later imports skip it).
    Ignore {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Conflict id.
        conflict: String,
    },
}

/// `apps update` flags for the app's import and reconciliation settings (the others stay).
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Account attributes that match directory users, comma-separated (userName, email,
    /// externalId).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    match_on: Vec<String>,
    /// Create a directory user for an account that matches nobody (true or false).
    #[arg(long, value_name = "BOOL")]
    import_create_users: Option<bool>,
    /// Add linked and created users to this group (name or id; `none` for no group).
    #[arg(long, value_name = "GROUP")]
    import_group: Option<String>,
    /// How far `reconcile --apply` fixes: report_only, fix_drift or fix_and_deprovision.
    #[arg(long, value_name = "SETTING")]
    reconcile: Option<String>,
    /// How often an import runs on its own: off, hourly, six_hourly, daily or weekly.
    #[arg(long, value_name = "INTERVAL")]
    import_every: Option<String>,
    /// How often a reconciliation runs on its own: off, hourly, six_hourly, daily or weekly.
    #[arg(long, value_name = "INTERVAL")]
    reconcile_every: Option<String>,
}

fn parse_value<T: serde::de::DeserializeOwned>(flag: &str, text: &str, expected: &str) -> Result<T, ClientError> {
    serde_json::from_value(Value::String(text.trim().to_owned()))
        .map_err(|_| ClientError::Usage(format!("{flag}: '{text}' is not one of {expected}")))
}

impl SyncArgs {
    fn is_empty(&self) -> bool {
        self.match_on.is_empty()
            && self.import_create_users.is_none()
            && self.import_group.is_none()
            && self.reconcile.is_none()
            && self.import_every.is_none()
            && self.reconcile_every.is_none()
    }

    /// Adds `sync` to an update body when a flag is given: the app's current settings with
    /// what the flags name changed.
    pub async fn apply(&self, client: &Client, app: &str, body: &mut Map<String, Value>) -> Result<(), ClientError> {
        if self.is_empty() {
            return Ok(());
        }
        let current: App = client
            .request(Method::GET, &format!("/api/v1/apps/{}", encode(app)), NO_BODY)
            .await?;
        let mut sync = current.sync;
        if !self.match_on.is_empty() {
            sync.import.match_on = self
                .match_on
                .iter()
                .map(|name| parse_value::<MatchAttribute>("--match-on", name, "userName, email, externalId"))
                .collect::<Result<_, _>>()?;
        }
        if let Some(create) = self.import_create_users {
            sync.import.create_users = create;
        }
        if let Some(group) = &self.import_group {
            sync.import.assign_group = if group.eq_ignore_ascii_case("none") {
                None
            } else {
                let found: Value = client
                    .request(Method::GET, &format!("/api/v1/groups/{}", encode(group)), NO_BODY)
                    .await?;
                let id = found["id"]
                    .as_str()
                    .and_then(|id| uuid::Uuid::parse_str(id).ok())
                    .ok_or_else(|| ClientError::Other("the hub sent a group without an id".into()))?;
                Some(id)
            };
        }
        if let Some(setting) = &self.reconcile {
            sync.reconcile =
                parse_value::<ReconcileApply>("--reconcile", setting, "report_only, fix_drift, fix_and_deprovision")?;
        }
        let interval = |flag: &str, text: &str| {
            Interval::parse(text.trim()).map_err(|_| {
                ClientError::Usage(format!(
                    "{flag}: '{text}' is not one of off, hourly, six_hourly, daily, weekly"
                ))
            })
        };
        if let Some(every) = &self.import_every {
            sync.import_every = interval("--import-every", every)?;
        }
        if let Some(every) = &self.reconcile_every {
            sync.reconcile_every = interval("--reconcile-every", every)?;
        }
        body.insert("sync".into(), json!(sync));
        Ok(())
    }
}

/// Follows a run until it ends, with a progress bar on the terminal (hidden with --json).
async fn follow(client: &Client, remote: &RemoteArgs, run: TargetRun) -> Result<TargetRun, ClientError> {
    let bar = indicatif::ProgressBar::new_spinner();
    if remote.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let verb = match run.kind {
        crate::domain::target_run::RunKind::Import => "importing",
        crate::domain::target_run::RunKind::Reconcile => "reconciling",
    };
    loop {
        let now: TargetRun = client
            .request(Method::GET, &format!("/api/v1/runs/{}", run.id), NO_BODY)
            .await?;
        match now.status {
            RunStatus::Done | RunStatus::Failed => {
                bar.finish_and_clear();
                return Ok(now);
            }
            RunStatus::Queued => bar.set_message(match &now.error {
                Some(error) => format!("queued: {error}"),
                None => "queued".to_owned(),
            }),
            RunStatus::Running if now.accounts_read == 0 => bar.set_message("reading the app's accounts"),
            RunStatus::Running => {
                if bar.length().is_none() {
                    bar.set_style(
                        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                }
                bar.set_length(u64::try_from(now.accounts_read).unwrap_or(0));
                bar.set_position(u64::try_from(now.counts.values().sum::<i64>()).unwrap_or(0));
                bar.set_message(verb);
            }
        }
        bar.tick();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints the end of a run: its counts, then its first items.
async fn summary(client: &Client, remote: &RemoteArgs, run: &TargetRun) -> Result<(), ClientError> {
    let items: Vec<RunItem> = client
        .request(
            Method::GET,
            &format!("/api/v1/runs/{}/items?limit={}", run.id, ITEMS_SHOWN + 1),
            NO_BODY,
        )
        .await?;
    if remote.json {
        print_json(&json!({"run": run, "items": items}));
    } else {
        let rows: Vec<Vec<String>> = run
            .counts
            .iter()
            .map(|(k, v)| vec![k.replace('_', " "), v.to_string()])
            .collect();
        println!(
            "{} {} of {} accounts{}",
            if run.dry_run { "planned" } else { "ran" },
            run.kind.as_str(),
            run.accounts_read,
            if run.dry_run { " (dry run: nothing changed)" } else { "" }
        );
        print_table(&["OUTCOME", "COUNT"], &rows);
        if let Some(warning) = &run.warning {
            eprintln!("warning: {warning}");
        }
        let rows: Vec<Vec<String>> = items
            .iter()
            .take(ITEMS_SHOWN)
            .filter(|item| item.outcome != "already_linked")
            .map(|item| {
                let detail = ["reason", "note"]
                    .iter()
                    .find_map(|key| item.detail.get(*key).and_then(Value::as_str))
                    .unwrap_or_default()
                    .to_owned();
                vec![
                    item.outcome.clone(),
                    item.target_username.clone().unwrap_or_default(),
                    item.user_id.map(|id| id.to_string()).unwrap_or_else(|| "-".into()),
                    if item.applied { "yes".into() } else { "no".into() },
                    detail,
                ]
            })
            .collect();
        if !rows.is_empty() {
            println!();
            print_table(&["OUTCOME", "ACCOUNT", "USER", "APPLIED", "DETAIL"], &rows);
        }
        if items.len() > ITEMS_SHOWN {
            println!("... more items: GET /api/v1/runs/{}/items?after={ITEMS_SHOWN}", run.id);
        }
    }
    if run.status == RunStatus::Failed {
        return Err(ClientError::Other(format!(
            "the {} failed: {}",
            run.kind.as_str(),
            run.error.clone().unwrap_or_default()
        )));
    }
    Ok(())
}

/// `provisio import --app A [--dry-run]`.
pub async fn import(remote: &RemoteArgs, app: &str, dry_run: bool) -> Result<(), ClientError> {
    let client = connect(remote)?;
    let run: TargetRun = client
        .request(
            Method::POST,
            &format!("/api/v1/apps/{}/imports", encode(app)),
            Some(&json!({"dry_run": dry_run})),
        )
        .await?;
    let run = follow(&client, remote, run).await?;
    summary(&client, remote, &run).await
}

/// `provisio reconcile --app A [--apply]`.
pub async fn reconcile(remote: &RemoteArgs, app: &str, apply: bool) -> Result<(), ClientError> {
    let client = connect(remote)?;
    let run: TargetRun = client
        .request(
            Method::POST,
            &format!("/api/v1/apps/{}/reconciliations", encode(app)),
            Some(&json!({"apply": apply})),
        )
        .await?;
    if apply && run.apply == ReconcileApply::ReportOnly && !remote.json {
        eprintln!(
            "note: the app's reconcile setting is report_only, so nothing is fixed; change it with \
             `provisio apps update {app} --reconcile fix_drift`"
        );
    }
    let run = follow(&client, remote, run).await?;
    summary(&client, remote, &run).await
}

/// `provisio conflicts ...`.
pub async fn conflicts(remote: &RemoteArgs, command: ConflictsCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        ConflictsCommand::List { app, all } => {
            let query = if all {
                String::new()
            } else {
                format!("?status={}", ConflictStatus::Open.as_str())
            };
            let listed: Vec<ImportConflict> = client
                .request(
                    Method::GET,
                    &format!("/api/v1/apps/{}/conflicts{query}", encode(&app)),
                    NO_BODY,
                )
                .await?;
            if remote.json {
                print_json(&listed);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.target_username.clone().unwrap_or_default(),
                        c.status.as_str().to_owned(),
                        c.reason.clone(),
                        when(c.updated_at),
                    ]
                })
                .collect();
            print_table(&["ID", "ACCOUNT", "STATUS", "REASON", "UPDATED"], &rows);
        }
        ConflictsCommand::Link { app, conflict, user } => {
            let resolved: ImportConflict = client
                .request(
                    Method::POST,
                    &format!("/api/v1/apps/{}/conflicts/{}", encode(&app), encode(&conflict)),
                    Some(&json!({"action": "link", "user": user})),
                )
                .await?;
            if remote.json {
                print_json(&resolved);
            } else {
                println!(
                    "linked account {} to user {user}",
                    resolved.target_username.unwrap_or(resolved.target_id)
                );
            }
        }
        ConflictsCommand::Ignore { app, conflict } => {
            let resolved: ImportConflict = client
                .request(
                    Method::POST,
                    &format!("/api/v1/apps/{}/conflicts/{}", encode(&app), encode(&conflict)),
                    Some(&json!({"action": "ignore"})),
                )
                .await?;
            if remote.json {
                print_json(&resolved);
            } else {
                println!(
                    "ignoring account {} from now on",
                    resolved.target_username.unwrap_or(resolved.target_id)
                );
            }
        }
    }
    Ok(())
}
