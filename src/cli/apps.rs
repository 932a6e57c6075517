//! The remote commands for apps, policies and provisioning: `apps`, `policies`, `provision`, `sync`.

use super::RemoteArgs;
use super::app_settings::{SettingsArgs, show_app};
use super::client::{Client, ClientError, encode};
use super::mapping::MappingAction;
use super::output::{cell, print_json, print_table};
use super::session::connect;
use crate::api::{QueuedJob, SyncAnswer};
use crate::domain::app::{App, AppAccount, Policy};
use crate::domain::job::JobStatus;
use crate::domain::mapping::Preset;
use crate::service::apps::{JobView, PolicyView, SyncRun};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;

const NO_BODY: Option<&Value> = None;

/// `provisio apps ...`.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Connect a SCIM 2.0 app. The token is read from --token-file, or asked for (without echo) at the terminal.
    Create {
        /// Unique name.
        name: String,
        /// SCIM base URL.
        #[arg(long)]
        url: String,
        /// File holding the app's bearer token (`-`: one line from standard input; default: asked
        /// for at the terminal).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Preset (`monday`, `generic`).
        #[arg(long, default_value = "generic")]
        preset: String,
        /// Mapping as a JSON file (a list of {"target", "source"} rules); default: the preset's.
        #[arg(long, value_name = "FILE")]
        mapping_file: Option<PathBuf>,
        /// Also create the policy groups in the app and keep their members (same as --enable push_groups).
        #[arg(long)]
        push_groups: bool,
        /// Define the custom attributes the preset's mapping reads (as strings) when missing.
        #[arg(long)]
        create_attributes: bool,
        /// Features and deprovisioning.
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List apps.
    List,
    /// Show an app.
    Show {
        /// Id or name.
        app: String,
    },
    /// Change an app.
    Update {
        /// Id or name.
        app: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New base URL.
        #[arg(long)]
        url: Option<String>,
        /// Read a new token from this file (`-` for standard input).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// New mapping from a JSON file (replaces the whole mapping; see `apps mapping` for one row).
        #[arg(long, value_name = "FILE")]
        mapping_file: Option<PathBuf>,
        /// Features to change as JSON, e.g. '{"push_groups": true}' (the others stay).
        #[arg(long, value_name = "JSON")]
        features: Option<String>,
        /// Enable (true) or disable (false) provisioning.
        #[arg(long)]
        enabled: Option<bool>,
        /// Features and deprovisioning.
        #[command(flatten)]
        settings: SettingsArgs,
        /// Import and reconciliation settings.
        #[command(flatten)]
        sync: super::runs::SyncArgs,
    },
    /// Show the attribute mapping as a table, or change one row of it.
    Mapping {
        /// Id or name.
        app: String,
        /// What to change (nothing: show the table).
        #[command(subcommand)]
        action: Option<MappingAction>,
    },
    /// Remove an app from the hub (accounts in the app are left alone; asks first on a terminal).
    Delete {
        /// Id or name.
        app: String,
        /// Do not ask: confirm for scripts.
        #[arg(long)]
        yes: bool,
    },
    /// Check the connection and show what the target supports.
    Test {
        /// Id or name.
        app: String,
    },
    /// Show the SCIM resource a user would be sent.
    Preview {
        /// App id or name.
        app: String,
        /// User id or username.
        user: String,
    },
    /// List the accounts Provisio manages in the app.
    Accounts {
        /// Id or name.
        app: String,
    },
    /// List the built-in presets.
    Presets,
    /// Pause provisioning to the app (work waits in the queue).
    Pause {
        /// Id or name.
        app: String,
    },
    /// Resume a paused or quarantined app.
    Resume {
        /// Id or name.
        app: String,
    },
    /// List the app's dead letters: jobs that failed permanently or ran out of retries.
    DeadLetters {
        /// Id or name.
        app: String,
    },
    /// Queue dead letters again (all of the app's, or --job).
    Retry {
        /// Id or name.
        app: String,
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
    /// Discard dead letters (all of the app's, or --job).
    Discard {
        /// Id or name.
        app: String,
        /// Only this job.
        #[arg(long)]
        job: Option<String>,
    },
}

/// `provisio policies ...`.
#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Give the members of a group an account in an app.
    Create {
        /// App id or name.
        #[arg(long)]
        app: String,
        /// Group id or name.
        #[arg(long)]
        group: String,
        /// Policy name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List policies.
    List {
        /// Only this app's.
        #[arg(long)]
        app: Option<String>,
    },
    /// Remove a policy.
    Delete {
        /// Policy id or name.
        id: String,
    },
}

fn read_token(file: Option<&PathBuf>) -> Result<String, ClientError> {
    let text = match file {
        Some(path) if path.as_os_str() == "-" => super::prompt::line("app's bearer token")?,
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?,
        None => super::prompt::secret(
            "App bearer token",
            "pass --token-file FILE, or --token-file - to read the token from standard input",
        )?,
    };
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(ClientError::Usage("the app's bearer token is empty".into()));
    }
    Ok(token)
}

fn read_json(path: &PathBuf) -> Result<Value, ClientError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| ClientError::Usage(format!("{} is not valid JSON: {e}", path.display())))
}

async fn wait_for_job(client: &Client, id: &str) -> Result<JobView, ClientError> {
    for _ in 0..600 {
        let view: JobView = client
            .request(Method::GET, &format!("/api/v1/jobs/{}", encode(id)), NO_BODY)
            .await?;
        if matches!(view.job.status, JobStatus::Done | JobStatus::Failed) {
            return Ok(view);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(ClientError::Other(format!(
        "job {id} did not finish within two minutes; follow it with GET /api/v1/jobs/{id}"
    )))
}

fn print_reports(view: &JobView) {
    let rows: Vec<Vec<String>> = view
        .reports
        .iter()
        .map(|r| {
            vec![
                r.operation.as_str().to_owned(),
                r.outcome.as_str().to_owned(),
                r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                format!(
                    "{} {}",
                    r.http_method.clone().unwrap_or_default(),
                    r.http_path.clone().unwrap_or_default()
                )
                .trim()
                .to_owned(),
                cell(&r.message),
            ]
        })
        .collect();
    print_table(&["OPERATION", "OUTCOME", "STATUS", "REQUEST", "MESSAGE"], &rows);
}

/// `provisio apps ...`.
pub async fn apps(remote: &RemoteArgs, command: AppsCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        AppsCommand::Create {
            name,
            url,
            token_file,
            preset,
            mapping_file,
            push_groups,
            create_attributes,
            mut settings,
        } => {
            let token = read_token(token_file.as_ref())?;
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            body.insert("base_url".into(), json!(url));
            body.insert("token".into(), json!(token));
            body.insert("preset".into(), json!(preset));
            if let Some(path) = mapping_file {
                body.insert("mapping".into(), read_json(&path)?);
            }
            if push_groups {
                settings.enable_push_groups();
            }
            settings.apply(&mut body)?;
            if create_attributes {
                body.insert("create_attributes".into(), json!(true));
            }
            let app: App = client.request(Method::POST, "/api/v1/apps", Some(&body)).await?;
            if !remote.json {
                eprintln!(
                    "app created; its connection is checked in the background: `provisio apps show {}`",
                    app.name
                );
            }
            show_app(remote, &app);
        }
        AppsCommand::List => {
            let apps: Vec<App> = client.request(Method::GET, "/api/v1/apps", NO_BODY).await?;
            if remote.json {
                print_json(&apps);
            } else {
                let rows: Vec<Vec<String>> = apps
                    .iter()
                    .map(|a| {
                        vec![
                            a.name.clone(),
                            a.base_url.clone(),
                            a.connection_status.as_str().to_owned(),
                            a.enabled.to_string(),
                            a.id.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "BASE URL", "CONNECTION", "ENABLED", "ID"], &rows);
            }
        }
        AppsCommand::Show { app } => {
            let app: App = client
                .request(Method::GET, &format!("/api/v1/apps/{}", encode(&app)), NO_BODY)
                .await?;
            show_app(remote, &app);
        }
        AppsCommand::Update {
            app,
            name,
            url,
            token_file,
            mapping_file,
            features,
            enabled,
            settings,
            sync,
        } => {
            let mut body = Map::new();
            if let Some(name) = name {
                body.insert("name".into(), json!(name));
            }
            if let Some(url) = url {
                body.insert("base_url".into(), json!(url));
            }
            if let Some(file) = token_file {
                body.insert("token".into(), json!(read_token(Some(&file))?));
            }
            if let Some(path) = mapping_file {
                body.insert("mapping".into(), read_json(&path)?);
            }
            if let Some(f) = features {
                let value: Value =
                    serde_json::from_str(&f).map_err(|e| ClientError::Usage(format!("--features is not JSON: {e}")))?;
                body.insert("features".into(), value);
            }
            if let Some(enabled) = enabled {
                body.insert("enabled".into(), json!(enabled));
            }
            settings.apply(&mut body)?;
            sync.apply(&client, &app, &mut body).await?;
            if body.is_empty() {
                return Err(ClientError::Usage("nothing to change".into()));
            }
            let updated: Value = client
                .request(Method::PATCH, &format!("/api/v1/apps/{}", encode(&app)), Some(&body))
                .await?;
            let notices: Vec<String> = serde_json::from_value(updated["notices"].clone()).unwrap_or_default();
            let app: App = serde_json::from_value(updated)
                .map_err(|e| ClientError::Other(format!("the hub sent an unexpected app: {e}")))?;
            show_app(remote, &app);
            if !remote.json {
                for notice in notices {
                    eprintln!("note: {notice}");
                }
            }
        }
        AppsCommand::Mapping { app, action } => super::mapping::mapping(remote, &client, &app, action).await?,
        AppsCommand::Delete { app, yes } => {
            super::prompt::confirm(&super::impact::app_deletion(&client, &app).await?, yes)?;
            client
                .request_empty(Method::DELETE, &format!("/api/v1/apps/{}", encode(&app)), NO_BODY)
                .await?;
            if !remote.json {
                println!("deleted app {app}");
            }
        }
        AppsCommand::Test { app } => {
            let queued: QueuedJob = client
                .request(Method::POST, &format!("/api/v1/apps/{}/test", encode(&app)), NO_BODY)
                .await?;
            wait_for_job(&client, &queued.job_id).await?;
            let shown: App = client
                .request(Method::GET, &format!("/api/v1/apps/{}", encode(&app)), NO_BODY)
                .await?;
            show_app(remote, &shown);
            if shown.connection_status != crate::domain::app::ConnectionStatus::Ok {
                return Err(ClientError::Other(format!(
                    "the connection check failed: {}",
                    shown.connection_message.unwrap_or_default()
                )));
            }
        }
        AppsCommand::Preview { app, user } => {
            let resource: Value = client
                .request(
                    Method::GET,
                    &format!("/api/v1/apps/{}/preview/{}", encode(&app), encode(&user)),
                    NO_BODY,
                )
                .await?;
            print_json(&resource);
        }
        AppsCommand::Accounts { app } => {
            let accounts: Vec<AppAccount> = client
                .request(Method::GET, &format!("/api/v1/apps/{}/accounts", encode(&app)), NO_BODY)
                .await?;
            if remote.json {
                print_json(&accounts);
            } else {
                let rows: Vec<Vec<String>> = accounts
                    .iter()
                    .map(|a| {
                        vec![
                            a.target_username.clone(),
                            a.state.as_str().to_owned(),
                            a.target_id.clone(),
                            a.user_id.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["USERNAME", "STATE", "TARGET ID", "USER ID"], &rows);
            }
        }
        AppsCommand::Pause { app } => {
            let app: App = client
                .request(Method::POST, &format!("/api/v1/apps/{}/pause", encode(&app)), NO_BODY)
                .await?;
            show_app(remote, &app);
        }
        AppsCommand::Resume { app } => {
            let app: App = client
                .request(Method::POST, &format!("/api/v1/apps/{}/resume", encode(&app)), NO_BODY)
                .await?;
            show_app(remote, &app);
        }
        AppsCommand::DeadLetters { app } => {
            let jobs: Vec<crate::domain::job::Job> = client
                .request(
                    Method::GET,
                    &format!("/api/v1/apps/{}/dead-letters", encode(&app)),
                    NO_BODY,
                )
                .await?;
            if remote.json {
                print_json(&jobs);
            } else {
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.clone(),
                            j.subject_kind.as_str().to_owned(),
                            j.subject_id.clone(),
                            j.attempts.to_string(),
                            cell(&j.last_error),
                        ]
                    })
                    .collect();
                print_table(&["JOB", "KIND", "SUBJECT", "ATTEMPTS", "LAST ERROR"], &rows);
            }
        }
        AppsCommand::Retry { app, job } => {
            let affected: crate::api::Affected = client
                .request(
                    Method::POST,
                    &format!("/api/v1/apps/{}/dead-letters/retry", encode(&app)),
                    Some(&json!({"job": job})),
                )
                .await?;
            println!("{} job(s) queued again", affected.affected);
        }
        AppsCommand::Discard { app, job } => {
            let path = match job {
                Some(job) => format!("/api/v1/apps/{}/dead-letters?job={}", encode(&app), encode(&job)),
                None => format!("/api/v1/apps/{}/dead-letters", encode(&app)),
            };
            let affected: crate::api::Affected = client.request(Method::DELETE, &path, NO_BODY).await?;
            println!("{} job(s) discarded", affected.affected);
        }
        AppsCommand::Presets => {
            let presets: Vec<Preset> = client.request(Method::GET, "/api/v1/presets", NO_BODY).await?;
            if remote.json {
                print_json(&presets);
            } else {
                let rows: Vec<Vec<String>> = presets
                    .iter()
                    .map(|p| {
                        vec![
                            p.name.clone(),
                            p.title.clone(),
                            p.custom_attributes_used().join(", "),
                            p.description.clone(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "TITLE", "NEEDS ATTRIBUTES", "DESCRIPTION"], &rows);
            }
        }
    }
    Ok(())
}

/// `provisio policies ...`.
pub async fn policies(remote: &RemoteArgs, command: PoliciesCommand) -> Result<(), ClientError> {
    let client = connect(remote)?;
    match command {
        PoliciesCommand::Create { app, group, name } => {
            let policy: Policy = client
                .request(
                    Method::POST,
                    "/api/v1/policies",
                    Some(&json!({"app": app, "group": group, "name": name})),
                )
                .await?;
            if remote.json {
                print_json(&policy);
            } else {
                println!("policy '{}' created ({})", policy.name, policy.id);
            }
        }
        PoliciesCommand::List { app } => {
            let path = match app {
                Some(app) => format!("/api/v1/policies?app={}", encode(&app)),
                None => "/api/v1/policies".to_owned(),
            };
            let policies: Vec<PolicyView> = client.request(Method::GET, &path, NO_BODY).await?;
            if remote.json {
                print_json(&policies);
            } else {
                let rows: Vec<Vec<String>> = policies
                    .iter()
                    .map(|p| {
                        vec![
                            p.policy.name.clone(),
                            p.app_name.clone(),
                            p.group_name.clone(),
                            p.policy.id.to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "APP", "GROUP", "ID"], &rows);
            }
        }
        PoliciesCommand::Delete { id } => {
            let policy: Policy = client
                .request(Method::DELETE, &format!("/api/v1/policies/{}", encode(&id)), NO_BODY)
                .await?;
            if remote.json {
                print_json(&policy);
            } else {
                println!("deleted policy '{}'", policy.name);
            }
        }
    }
    Ok(())
}

/// `provisio provision --app A --user U`: provisions one user now and prints what was done.
pub async fn provision(remote: &RemoteArgs, app: &str, user: &str) -> Result<(), ClientError> {
    let client = connect(remote)?;
    let queued: QueuedJob = client
        .request(
            Method::POST,
            &format!("/api/v1/apps/{}/provision/{}", encode(app), encode(user)),
            NO_BODY,
        )
        .await?;
    let view = wait_for_job(&client, &queued.job_id).await?;
    if remote.json {
        print_json(&view);
    } else if view.reports.is_empty() {
        println!("nothing to do: the app already holds what the directory says");
    } else {
        print_reports(&view);
    }
    if view.job.status == JobStatus::Failed {
        return Err(ClientError::Other(format!(
            "provisioning failed: {}",
            view.job.last_error.unwrap_or_default()
        )));
    }
    Ok(())
}

/// `provisio sync --app A [--dry-run]`.
pub async fn sync(remote: &RemoteArgs, app: &str, dry_run: bool) -> Result<(), ClientError> {
    let client = connect(remote)?;
    let answer: SyncAnswer = client
        .request(
            Method::POST,
            &format!("/api/v1/apps/{}/sync", encode(app)),
            Some(&json!({"dry_run": dry_run})),
        )
        .await?;
    if let Some(plan) = answer.plan {
        if remote.json {
            print_json(&plan);
        } else {
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|line| {
                    let action = line.plan.key().to_owned();
                    let detail = line.plan.detail(true);
                    vec![line.subject_kind.as_str().to_owned(), line.name.clone(), action, detail]
                })
                .collect();
            print_table(&["KIND", "NAME", "ACTION", "DETAIL"], &rows);
        }
        return Ok(());
    }
    let run = answer
        .run
        .ok_or_else(|| ClientError::Other("the hub answered without a plan or a run".into()))?;
    let bar = indicatif::ProgressBar::new(u64::try_from(run.total).unwrap_or(0));
    if remote.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let finished = loop {
        let progress: SyncRun = client
            .request(
                Method::GET,
                &format!("/api/v1/sync-runs/{}", encode(&run.run_id)),
                NO_BODY,
            )
            .await?;
        bar.set_length(u64::try_from(progress.total).unwrap_or(0));
        bar.set_position(u64::try_from(progress.done + progress.failed).unwrap_or(0));
        if progress.done + progress.failed >= progress.total {
            break progress;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    if remote.json {
        print_json(&finished);
    } else {
        println!(
            "synchronised {}: {} done, {} failed",
            app, finished.done, finished.failed
        );
    }
    if finished.failed > 0 {
        return Err(ClientError::Other(format!(
            "{} item(s) failed; see the provisioning report",
            finished.failed
        )));
    }
    Ok(())
}
