//! App operations: apps (SCIM destinations), presets, policies, previews, on-demand provisioning,
//! full synchronisation and its dry run. Remote work is never done here: it is queued for the engine.

use crate::domain::address::check_base_url_address;
use crate::domain::admin::Actor;
use crate::domain::app::{
    AccountState, App, AppAccount, AppSettings, AppState, DeprovisionAction, Deprovisioning, DeprovisioningChange,
    FeaturesPatch, FlowControl, Policy, validate_base_url, validate_name, validate_secret,
};
use crate::domain::job::{Job, NewJob, Report, SubjectKind};
use crate::domain::mapping::{Mapping, MappingRule, Preset, preset, presets};
use crate::domain::mapping_rows::MappingRow;
use crate::domain::target_run::SyncSettings;
use crate::domain::{Error, Result, now};
use crate::secrets::SecretKey;
use crate::service::DirectoryService;
use crate::store::{
    AppStore, AttributeStore, ChangeLogStore, GroupStore, QueueStore, ReportStore, StoredApp, UserStore,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod directory_access;
mod dry_run;
mod runs;

pub use directory_access::UserAccountView;
pub use dry_run::PlannedAction;
pub use runs::RunSchedule;

/// An app after a change, with what the change does to accounts that exist (the deprovisioning
/// settings apply from then on; see [`Deprovisioning::change_notices`]).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AppUpdated {
    /// The app as stored.
    #[serde(flatten)]
    pub app: App,
    /// What the change means for existing accounts, in words; empty when nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// A policy with the names of its app and group, for people.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// The policy.
    #[serde(flatten)]
    pub policy: Policy,
    /// Its app's name.
    pub app_name: String,
    /// Its group's name.
    pub group_name: String,
}

/// What an administrator supplies to connect an app.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    /// Unique name.
    pub name: String,
    /// SCIM base URL.
    pub base_url: String,
    /// Bearer token for the target (stored encrypted, never shown again).
    #[schema(value_type = String)]
    pub token: SecretString,
    /// Preset to start from (`monday`, `generic`); default `generic`.
    #[serde(default)]
    pub preset: Option<String>,
    /// Mapping; default: the preset's.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub mapping: Option<Mapping>,
    /// Features to switch on or off; the others keep the preset's defaults (everything but group
    /// push, which the Monday.com preset switches on).
    #[serde(default)]
    pub features: Option<FeaturesPatch>,
    /// Deprovisioning: one choice for every event (`"deactivate"`, `"delete"`) or per event;
    /// default: the preset's (deactivate).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub deprovision: Option<DeprovisioningChange>,
    /// Whether to provision; default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Concurrency and rate ceilings; default 4 requests in flight, no rate ceiling.
    #[serde(default)]
    pub flow: Option<FlowControl>,
    /// Define the custom attributes the preset's mapping reads (as strings) when they are missing,
    /// instead of refusing the app.
    #[serde(default)]
    pub create_attributes: bool,
}

/// A change to an app; absent fields stay.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppUpdate {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New base URL (triggers a connection check).
    #[serde(default)]
    pub base_url: Option<String>,
    /// New bearer token (triggers a connection check).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub token: Option<SecretString>,
    /// New mapping.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub mapping: Option<Mapping>,
    /// Features to switch on or off; the ones not named keep their value.
    #[serde(default)]
    pub features: Option<FeaturesPatch>,
    /// Deprovisioning choices to change: one for every event (`"delete"`) or the fields named
    /// (`{"on_unassign": "nothing"}`); the others keep their value.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub deprovision: Option<DeprovisioningChange>,
    /// Enable or disable provisioning.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// New concurrency and rate ceilings.
    #[serde(default)]
    pub flow: Option<FlowControl>,
    /// New import and reconciliation settings (whole).
    #[serde(default)]
    pub sync: Option<SyncSettings>,
}

/// What is supplied to create a policy.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    /// A name for people; defaults to "<app> for <group>".
    #[serde(default)]
    pub name: Option<String>,
    /// App id or name.
    pub app: String,
    /// Group id or name.
    pub group: String,
}

/// One line of a dry-run plan.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanLine {
    /// `user` or `group`.
    pub subject_kind: SubjectKind,
    /// Directory id.
    pub subject_id: String,
    /// Username or group name.
    pub name: String,
    /// What would happen.
    pub plan: PlannedAction,
}

/// A queued full synchronisation.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncRun {
    /// Identifier to follow progress with.
    pub run_id: String,
    /// Jobs queued.
    pub total: i64,
    /// Jobs finished.
    pub done: i64,
    /// Jobs failed.
    pub failed: i64,
}

/// A job with its report records.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    /// The job.
    pub job: Job,
    /// Its report records, oldest first.
    pub reports: Vec<Report>,
}

/// App operations over a store.
#[derive(Debug, Clone)]
pub struct AppService<S> {
    store: S,
    directory: DirectoryService<S>,
    key: SecretKey,
    allow_link_local: bool,
}

impl<S> AppService<S>
where
    S: AppStore + AttributeStore + UserStore + GroupStore + QueueStore + ReportStore + ChangeLogStore + Clone,
{
    /// Wraps a store; `key` encrypts app tokens.
    pub fn new(store: S, key: SecretKey) -> Self {
        Self {
            directory: DirectoryService::new(store.clone()),
            store,
            key,
            allow_link_local: false,
        }
    }

    /// Shares `directory` (its turns and caches) instead of a directory service of its own, so that
    /// an attribute this service defines is seen at once by every service sharing it.
    pub fn with_directory(mut self, directory: DirectoryService<S>) -> Self {
        self.directory = directory;
        self
    }

    /// Accepts (`true`) or refuses (`false`, the default) app base URLs whose host is a link-local
    /// address (169.254.0.0/16, fe80::/10), the server's `--allow-link-local-targets`.
    pub fn allow_link_local_targets(mut self, allow: bool) -> Self {
        self.allow_link_local = allow;
        self
    }

    /// The built-in presets.
    pub fn presets(&self) -> Result<Vec<Preset>> {
        presets()
    }

    /// Connects an app. The connection is checked in the background; provisioning starts once it passes.
    pub async fn create_app(&self, input: NewApp, actor: &Actor) -> Result<App> {
        let name = validate_name("name", &input.name)?;
        let base_url = validate_base_url(&input.base_url)?;
        check_base_url_address(&base_url, self.allow_link_local)?;
        validate_secret("token", input.token.expose_secret())?;
        let preset_name = input.preset.unwrap_or_else(|| "generic".to_owned());
        let preset = preset(&preset_name)?.ok_or_else(|| {
            Error::invalid(
                "preset",
                format!("unknown preset '{preset_name}' (see GET /api/v1/presets)"),
            )
        })?;
        let mapping = input.mapping.unwrap_or_else(|| preset.mapping.clone());
        let mut definitions = self.store.list_attributes().await?;
        let missing: Vec<String> = mapping
            .custom_attributes_used()
            .into_iter()
            .filter(|name| !definitions.iter().any(|d| &d.name == name))
            .collect();
        let flow = input.flow.unwrap_or_default();
        flow.validate()?;
        let deprovision = {
            let base = Deprovisioning::uniform(DeprovisionAction::parse("deprovision", &preset.deprovision)?);
            match &input.deprovision {
                Some(change) => base.merged(change)?,
                None => base,
            }
        };
        if input.create_attributes && !missing.is_empty() {
            // Only once everything else is known to be acceptable: a refused app defines nothing.
            if self.store.get_app_by_name(&name).await?.is_some() {
                return Err(Error::conflict("name", format!("an app named '{name}' exists")));
            }
            for attribute in &missing {
                let created = self
                    .directory
                    .create_attribute(
                        crate::service::directory::NewAttribute {
                            name: attribute.clone(),
                            display_name: None,
                            kind: crate::domain::attribute::AttributeType::String,
                            required: false,
                            description: Some(format!("defined for the app '{name}' ({} preset)", preset.name)),
                        },
                        actor,
                    )
                    .await?;
                definitions.push(created);
            }
        }
        mapping.validate(&definitions).map_err(|e| match e {
            Error::Validation { field, message } if field.starts_with("mapping") => Error::Validation {
                message: if input_is_preset_mapping(&preset, &mapping) {
                    format!(
                        "{message} (the '{}' preset needs the custom attributes {:?}: create them first, or create the app with create_attributes: true, --create-attributes in the CLI)",
                        preset.name,
                        preset.custom_attributes_used()
                    )
                } else {
                    message
                },
                field,
            },
            other => other,
        })?;
        let settings = AppSettings {
            name,
            base_url,
            features: preset.features.merged(&input.features.unwrap_or_default()),
            deprovision,
            enabled: input.enabled.unwrap_or(true),
            mapping,
            preset: preset.name,
            flow,
        };
        let app = App::connect(settings, now());
        let token_ciphertext = self.key.encrypt(input.token.expose_secret(), &app.id.to_string())?;
        self.store
            .insert_app(
                &StoredApp {
                    app: app.clone(),
                    token_ciphertext,
                },
                actor,
            )
            .await?;
        Ok(app)
    }

    /// Finds an app by id or name.
    pub async fn get_stored(&self, reference: &str) -> Result<StoredApp> {
        if let Ok(id) = Uuid::parse_str(reference)
            && let Some(app) = self.store.get_app(id).await?
        {
            return Ok(app);
        }
        self.store
            .get_app_by_name(reference)
            .await?
            .ok_or_else(|| Error::not_found("app", reference))
    }

    /// Finds an app by id or name.
    pub async fn get_app(&self, reference: &str) -> Result<App> {
        Ok(self.get_stored(reference).await?.app)
    }

    /// All apps.
    pub async fn list_apps(&self) -> Result<Vec<App>> {
        self.store.list_apps().await
    }

    /// Changes an app. A new URL or token resets the connection state and queues a check.
    pub async fn update_app(&self, reference: &str, update: AppUpdate, actor: &Actor) -> Result<App> {
        Ok(self.update_app_explained(reference, update, actor).await?.app)
    }

    /// Changes an app like [`AppService::update_app`], and says what a change of the
    /// deprovisioning settings does to accounts that exist.
    pub async fn update_app_explained(&self, reference: &str, update: AppUpdate, actor: &Actor) -> Result<AppUpdated> {
        let mut stored = self.get_stored(reference).await?;
        let previous_version = stored.app.version;
        let mut changed = Vec::new();
        let mut notices = Vec::new();
        let app = &mut stored.app;
        if let Some(name) = update.name {
            app.name = validate_name("name", &name)?;
            changed.push("name");
        }
        let mut recheck = false;
        if let Some(url) = update.base_url {
            let url = validate_base_url(&url)?;
            check_base_url_address(&url, self.allow_link_local)?;
            app.base_url = url;
            changed.push("base_url");
            recheck = true;
        }
        if let Some(token) = update.token {
            validate_secret("token", token.expose_secret())?;
            stored.token_ciphertext = self.key.encrypt(token.expose_secret(), &app.id.to_string())?;
            changed.push("token");
            recheck = true;
        }
        if let Some(mapping) = update.mapping {
            mapping.validate(&self.store.list_attributes().await?)?;
            app.mapping = mapping;
            changed.push("mapping");
        }
        if let Some(patch) = update.features {
            let features = app.features.merged(&patch);
            if features != app.features {
                app.features = features;
                changed.push("features");
            }
        }
        if let Some(change) = update.deprovision {
            let deprovision = app.deprovision.merged(&change)?;
            if deprovision != app.deprovision {
                notices = deprovision.change_notices(&app.deprovision);
                app.deprovision = deprovision;
                changed.push("deprovision");
            }
        }
        if let Some(enabled) = update.enabled {
            app.enabled = enabled;
            changed.push("enabled");
        }
        if let Some(flow) = update.flow {
            flow.validate()?;
            app.flow = flow;
            changed.push("flow");
        }
        if let Some(sync) = update.sync
            && sync != app.sync
        {
            sync.validate()?;
            if let Some(group) = sync.import.assign_group
                && self.store.get_group(group).await?.is_none()
            {
                return Err(Error::invalid(
                    "sync.import.assign_group",
                    format!("no group has the id {group}"),
                ));
            }
            for (what, before, after) in [
                ("an import", app.sync.import_every, sync.import_every),
                ("a reconciliation", app.sync.reconcile_every, sync.reconcile_every),
            ] {
                if before != after && after.period().is_some() {
                    notices.push(format!(
                        "{what} runs now, then {} (schedules just switched on start at once)",
                        after.as_str().replace('_', "-")
                    ));
                }
            }
            app.sync = sync;
            changed.push("sync");
        }
        if changed.is_empty() {
            return Ok(AppUpdated {
                app: stored.app,
                notices,
            });
        }
        if recheck {
            app.connection_changed();
        }
        app.version += 1;
        app.updated_at = now();
        let changed: Vec<String> = changed.into_iter().map(str::to_owned).collect();
        self.store
            .update_app(&stored, previous_version, &changed, actor)
            .await?;
        Ok(AppUpdated {
            app: stored.app,
            notices,
        })
    }

    /// The app's mapping as rows (target, source, transform, required).
    pub async fn mapping_rows(&self, reference: &str) -> Result<Vec<MappingRow>> {
        Ok(self.get_app(reference).await?.mapping.rows())
    }

    /// Sets one mapping rule: it replaces the rule for the same target attribute or is added. The
    /// whole mapping is validated; a bad rule is refused with the reason and changes nothing.
    pub async fn set_mapping_rule(&self, reference: &str, rule: MappingRule, actor: &Actor) -> Result<App> {
        let app = self.get_app(reference).await?;
        let mapping = app.mapping.with_rule(rule)?;
        let update = AppUpdate {
            mapping: Some(mapping),
            ..AppUpdate::default()
        };
        self.update_app(&app.id.to_string(), update, actor).await
    }

    /// Removes the mapping rule for `target`; refused (mapping unchanged) when the mapping would
    /// no longer be valid, e.g. without `userName`.
    pub async fn remove_mapping_rule(&self, reference: &str, target: &str, actor: &Actor) -> Result<App> {
        let app = self.get_app(reference).await?;
        let mapping = app.mapping.without_rule(target)?;
        let update = AppUpdate {
            mapping: Some(mapping),
            ..AppUpdate::default()
        };
        self.update_app(&app.id.to_string(), update, actor).await
    }

    /// Moves the mapping rule for `target` one place up (`up`) or down (see
    /// [`Mapping::with_rule_moved`] for what the order means).
    pub async fn move_mapping_rule(&self, reference: &str, target: &str, up: bool, actor: &Actor) -> Result<App> {
        let app = self.get_app(reference).await?;
        let mapping = app.mapping.with_rule_moved(target, up)?;
        if mapping == app.mapping {
            return Ok(app);
        }
        let update = AppUpdate {
            mapping: Some(mapping),
            ..AppUpdate::default()
        };
        self.update_app(&app.id.to_string(), update, actor).await
    }

    /// How many accounts the engine manages in each app, by app id (one query for every app).
    pub async fn account_counts(&self) -> Result<std::collections::HashMap<Uuid, i64>> {
        Ok(self.store.count_accounts().await?.into_iter().collect())
    }

    /// Removes an app from the hub (its accounts in the target are left as they are).
    pub async fn delete_app(&self, reference: &str, actor: &Actor) -> Result<App> {
        let app = self.get_app(reference).await?;
        self.store.delete_app(app.id, actor).await
    }

    /// Queues a connection check; returns the job id.
    pub async fn test_connection(&self, reference: &str) -> Result<String> {
        let app = self.get_app(reference).await?;
        self.store
            .enqueue(&NewJob {
                app_id: app.id,
                subject_kind: SubjectKind::Connection,
                subject_id: app.id.to_string(),
                run_id: None,
                cause: "manual".into(),
                not_before: None,
            })
            .await
    }

    /// The SCIM resource a user would be sent.
    pub async fn preview(&self, app: &str, user: &str) -> Result<serde_json::Value> {
        let app = self.get_app(app).await?;
        let user = self.find_user(user).await?;
        app.mapping.render(&user)
    }

    async fn find_user(&self, reference: &str) -> Result<crate::domain::user::User> {
        self.directory.get_user(reference).await
    }

    async fn find_group(&self, reference: &str) -> Result<crate::domain::group::Group> {
        self.directory.get_group(reference).await
    }

    /// The accounts the engine manages in an app.
    pub async fn accounts(&self, app: &str) -> Result<Vec<AppAccount>> {
        let app = self.get_app(app).await?;
        self.store.list_accounts(app.id).await
    }

    /// Links a group to an app.
    pub async fn create_policy(&self, input: NewPolicy, actor: &Actor) -> Result<Policy> {
        let app = self.get_app(&input.app).await?;
        let group = self.find_group(&input.group).await?;
        let name = match input.name {
            Some(name) => validate_name("name", &name)?,
            None => format!("{} for {}", app.name, group.name),
        };
        let policy = Policy {
            id: Uuid::now_v7(),
            name,
            app_id: app.id,
            group_id: group.id,
            created_at: now(),
        };
        self.store.insert_policy(&policy, actor).await?;
        Ok(policy)
    }

    /// Removes a policy, named by id or by its name (regardless of case; a name several policies
    /// share is refused, naming their ids). Its group's members lose their accounts unless
    /// another policy keeps them.
    pub async fn delete_policy(&self, reference: &str, actor: &Actor) -> Result<Policy> {
        let id = match Uuid::parse_str(reference) {
            Ok(id) => id,
            Err(_) => {
                let named: Vec<Policy> = self
                    .store
                    .list_policies(None)
                    .await?
                    .into_iter()
                    .filter(|p| p.name.to_lowercase() == reference.trim().to_lowercase())
                    .collect();
                match named.as_slice() {
                    [] => return Err(Error::not_found("policy", reference)),
                    [one] => one.id,
                    several => {
                        let ids: Vec<String> = several.iter().map(|p| p.id.to_string()).collect();
                        return Err(Error::Conflict {
                            field: None,
                            message: format!(
                                "{} policies are named '{reference}': delete one by its id ({})",
                                several.len(),
                                ids.join(", ")
                            ),
                        });
                    }
                }
            }
        };
        self.store.delete_policy(id, actor).await
    }

    /// Policies, of one app or all, with their app's and group's names.
    pub async fn list_policies(&self, app: Option<&str>) -> Result<Vec<PolicyView>> {
        let app = match app {
            Some(reference) => Some(self.get_app(reference).await?.id),
            None => None,
        };
        let apps = self.store.list_apps().await?;
        let mut views = Vec::new();
        for policy in self.store.list_policies(app).await? {
            let app_name = apps
                .iter()
                .find(|a| a.id == policy.app_id)
                .map(|a| a.name.clone())
                .unwrap_or_default();
            let group_name = self
                .store
                .get_group(policy.group_id)
                .await?
                .map(|g| g.name)
                .unwrap_or_default();
            views.push(PolicyView {
                policy,
                app_name,
                group_name,
            });
        }
        Ok(views)
    }

    /// Queues one user's reconciliation now; returns the job id.
    pub async fn provision_now(&self, app: &str, user: &str) -> Result<String> {
        let app = self.get_app(app).await?;
        let user = self.find_user(user).await?;
        self.enqueue_manual(app.id, user.id).await
    }

    /// Queues a reconciliation of one user in one app, asked for by an administrator.
    pub(super) async fn enqueue_manual(&self, app_id: Uuid, user_id: Uuid) -> Result<String> {
        self.store
            .enqueue(&NewJob {
                app_id,
                subject_kind: SubjectKind::User,
                subject_id: user_id.to_string(),
                run_id: None,
                cause: "manual".into(),
                not_before: None,
            })
            .await
    }

    /// A job and its report records.
    pub async fn job(&self, id: &str) -> Result<JobView> {
        let job = self
            .store
            .get_job(id)
            .await?
            .ok_or_else(|| Error::not_found("job", id))?;
        let reports = self.store.reports_for_correlation(&job.correlation_id).await?;
        Ok(JobView { job, reports })
    }

    /// Queues a full reconciliation of every user and group of the app.
    pub async fn sync(&self, app: &str) -> Result<SyncRun> {
        let app = self.get_app(app).await?;
        let run_id = format!("run-{}", Uuid::now_v7().simple());
        let (users, groups) = self.store.app_subjects(app.id).await?;
        let job = |subject_kind: SubjectKind, subject_id: String| NewJob {
            app_id: app.id,
            subject_kind,
            subject_id,
            run_id: Some(run_id.clone()),
            cause: format!("sync:{run_id}"),
            not_before: None,
        };
        let mut jobs: Vec<NewJob> = users
            .iter()
            .map(|user| job(SubjectKind::User, user.to_string()))
            .collect();
        if app.features.push_groups {
            jobs.extend(groups.iter().map(|group| job(SubjectKind::Group, group.to_string())));
        }
        let total = i64::try_from(self.store.enqueue_run(&jobs).await?).unwrap_or(i64::MAX);
        Ok(SyncRun {
            run_id,
            total,
            done: 0,
            failed: 0,
        })
    }

    /// Progress of a full reconciliation.
    pub async fn sync_progress(&self, run_id: &str) -> Result<SyncRun> {
        let (total, done, failed) = self.store.run_progress(run_id).await?;
        if total == 0 {
            return Err(Error::not_found("sync run", run_id));
        }
        Ok(SyncRun {
            run_id: run_id.to_owned(),
            total,
            done,
            failed,
        })
    }

    /// Pauses an app: its work waits until it is resumed.
    pub async fn pause(&self, app: &str) -> Result<App> {
        let app = self.get_app(app).await?;
        self.store
            .set_app_state(app.id, AppState::Paused, Some("paused by an administrator"), None)
            .await?;
        self.get_app(&app.id.to_string()).await
    }

    /// Resumes a paused or quarantined app: its waiting work runs now.
    pub async fn resume(&self, app: &str) -> Result<App> {
        let app = self.get_app(app).await?;
        self.store.set_app_state(app.id, AppState::Active, None, None).await?;
        self.get_app(&app.id.to_string()).await
    }

    /// Jobs that failed permanently or exhausted their retries.
    pub async fn dead_letters(&self, app: &str) -> Result<Vec<Job>> {
        let app = self.get_app(app).await?;
        self.store
            .list_jobs(app.id, crate::domain::job::JobStatus::Failed, 10_000)
            .await
    }

    /// Queues failed jobs again (one, or all of the app); returns how many.
    pub async fn retry_dead_letters(&self, app: &str, job: Option<&str>) -> Result<u64> {
        let app = self.get_app(app).await?;
        self.store.retry_failed(app.id, job).await
    }

    /// Drops failed jobs (one, or all of the app); returns how many.
    pub async fn discard_dead_letters(&self, app: &str, job: Option<&str>) -> Result<u64> {
        let app = self.get_app(app).await?;
        self.store.discard_failed(app.id, job).await
    }

    /// Accounts in the given state (for reports and checks).
    pub async fn accounts_in_state(&self, app: &str, state: AccountState) -> Result<Vec<AppAccount>> {
        Ok(self
            .accounts(app)
            .await?
            .into_iter()
            .filter(|a| a.state == state)
            .collect())
    }
}

fn input_is_preset_mapping(preset: &Preset, mapping: &Mapping) -> bool {
    &preset.mapping == mapping
}
