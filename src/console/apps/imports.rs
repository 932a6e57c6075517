//! An app's "Import & reconcile" tab: the import and reconciliation settings as a form (what an
//! account is matched on, whether unmatched accounts become users, the group imported users join,
//! how far an applying reconciliation goes, how often each runs on its own), the buttons that
//! queue a dry or real import or reconciliation, the next scheduled runs, the recent runs and the
//! number of open conflicts.

use super::AppSummary;
use super::runs::RunView;
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::Error;
use crate::domain::app::App;
use crate::domain::import::{ImportSettings, MatchAttribute};
use crate::domain::reconcile::ReconcileApply;
use crate::domain::target_run::{ConflictStatus, Interval, SyncSettings};
use crate::service::apps::AppUpdate;
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

/// How many runs the page lists.
const RECENT_RUNS: u32 = 20;
/// The form fields whose messages are shown beside them (as the service names them).
const MATCH_FIELD: &str = "sync.import.match_on";
const GROUP_FIELD: &str = "sync.import.assign_group";
const RECONCILE_FIELD: &str = "sync.reconcile";
const IMPORT_EVERY_FIELD: &str = "sync.import_every";
const RECONCILE_EVERY_FIELD: &str = "sync.reconcile_every";

/// The attributes to match on: (attribute, form value, label).
const MATCH_CHOICES: [(MatchAttribute, &str, &str); 3] = [
    (MatchAttribute::UserName, "userName", "userName"),
    (MatchAttribute::Email, "email", "email (any of the account's addresses)"),
    (MatchAttribute::ExternalId, "externalId", "externalId"),
];

/// How far an applying reconciliation goes: (setting, form value, label).
const RECONCILE_CHOICES: [(ReconcileApply, &str, &str); 3] = [
    (ReconcileApply::ReportOnly, "report_only", "Only report the differences"),
    (
        ReconcileApply::FixDrift,
        "fix_drift",
        "Fix drift: create missing accounts, link unlinked ones, undo changed attributes, active states and group members",
    ),
    (
        ReconcileApply::FixAndDeprovision,
        "fix_and_deprovision",
        "Fix drift, and deprovision extra accounts as the app's deprovisioning settings say",
    ),
];

/// How often a run repeats: (interval, label).
const INTERVAL_CHOICES: [(Interval, &str); 5] = [
    (Interval::Off, "Only on demand"),
    (Interval::Hourly, "Every hour"),
    (Interval::SixHourly, "Every six hours"),
    (Interval::Daily, "Every day"),
    (Interval::Weekly, "Every week"),
];

/// What the settings form holds, as typed.
#[derive(Debug, Clone, Default)]
struct SettingsValues {
    /// The attributes checked (form values).
    match_on: Vec<String>,
    create_users: bool,
    create_groups: bool,
    /// The group's id (empty: none).
    assign_group: String,
    reconcile: String,
    import_every: String,
    reconcile_every: String,
}

impl SettingsValues {
    /// The app's settings as stored.
    fn of(app: &App) -> Self {
        let sync = &app.sync;
        Self {
            match_on: sync
                .import
                .match_on
                .iter()
                .filter_map(|m| MATCH_CHOICES.iter().find(|(a, _, _)| a == m))
                .map(|(_, value, _)| (*value).to_owned())
                .collect(),
            create_users: sync.import.create_users,
            create_groups: sync.import.create_groups,
            assign_group: sync.import.assign_group.map(|g| g.to_string()).unwrap_or_default(),
            reconcile: RECONCILE_CHOICES
                .iter()
                .find(|(r, _, _)| *r == sync.reconcile)
                .map(|(_, value, _)| (*value).to_owned())
                .unwrap_or_default(),
            import_every: sync.import_every.as_str().to_owned(),
            reconcile_every: sync.reconcile_every.as_str().to_owned(),
        }
    }

    /// The values a form post carried (checkboxes repeat `match_on`).
    fn read(fields: &[(String, String)]) -> Self {
        let mut values = Self::default();
        for (key, value) in fields {
            match key.as_str() {
                "match_on" => values.match_on.push(value.clone()),
                "create_users" => values.create_users = true,
                "create_groups" => values.create_groups = true,
                "assign_group" => values.assign_group = value.trim().to_owned(),
                "reconcile" => values.reconcile = value.clone(),
                "import_every" => values.import_every = value.clone(),
                "reconcile_every" => values.reconcile_every = value.clone(),
                _ => {}
            }
        }
        values
    }

    /// Whether the attribute with form value `value` is checked.
    fn matches_on(&self, value: &str) -> bool {
        self.match_on.iter().any(|m| m == value)
    }

    /// The settings the form stands for, or what is wrong with each field that says nothing the
    /// service understands (the service checks the rest).
    fn settings(&self) -> Result<SyncSettings, FormErrors> {
        let mut errors = FormErrors::default();
        let mut match_on = Vec::new();
        for value in &self.match_on {
            match MATCH_CHOICES.iter().find(|(_, v, _)| v == value) {
                Some((attribute, _, _)) => match_on.push(*attribute),
                None => errors.add(
                    MATCH_FIELD,
                    format!("'{value}' is not an attribute to match on (userName, email, externalId)"),
                ),
            }
        }
        let assign_group = match self.assign_group.as_str() {
            "" => None,
            text => Uuid::parse_str(text)
                .inspect_err(|_| errors.add(GROUP_FIELD, "choose a group from the list, or none"))
                .ok(),
        };
        let reconcile = RECONCILE_CHOICES
            .iter()
            .find(|(_, v, _)| *v == self.reconcile)
            .map(|(r, _, _)| *r);
        if reconcile.is_none() {
            errors.add(RECONCILE_FIELD, "choose what an applying reconciliation fixes");
        }
        let mut interval = |field: &str, text: &str| {
            Interval::parse(text)
                .inspect_err(|_| errors.add(field, "choose how often it runs"))
                .ok()
        };
        let import_every = interval(IMPORT_EVERY_FIELD, &self.import_every);
        let reconcile_every = interval(RECONCILE_EVERY_FIELD, &self.reconcile_every);
        match (reconcile, import_every, reconcile_every) {
            (Some(reconcile), Some(import_every), Some(reconcile_every)) if !errors.any() => Ok(SyncSettings {
                import: ImportSettings {
                    match_on,
                    create_users: self.create_users,
                    assign_group,
                    create_groups: self.create_groups,
                },
                reconcile,
                import_every,
                reconcile_every,
            }),
            _ => Err(errors),
        }
    }
}

#[derive(Template)]
#[template(path = "apps/imports.html")]
struct ImportsPage {
    layout: Layout,
    app: AppSummary,
    /// Whether the app's import feature is on.
    feature_on: bool,
    /// Why the last run asked for could not be queued (empty: nothing to say).
    run_error: String,
    form: SettingsValues,
    errors: FormErrors,
    /// (id, name) of the groups offered.
    groups: Vec<(String, String)>,
    /// The next scheduled import and reconciliation (empty: none).
    next_import: String,
    next_reconcile: String,
    runs: Vec<RunView>,
    open_conflicts: usize,
    match_choices: Vec<(&'static str, &'static str)>,
    reconcile_choices: Vec<(&'static str, &'static str)>,
    interval_choices: Vec<(&'static str, &'static str)>,
    /// The stored reconcile setting, in words (for the button that applies it).
    reconcile_words: &'static str,
}

impl ImportsPage {
    /// Messages about fields the form shows nowhere else.
    fn other_errors(&self) -> Vec<&str> {
        let shown = [
            MATCH_FIELD,
            GROUP_FIELD,
            RECONCILE_FIELD,
            IMPORT_EVERY_FIELD,
            RECONCILE_EVERY_FIELD,
        ];
        self.errors
            .all()
            .into_iter()
            .filter(|(field, _)| !shown.contains(field))
            .map(|(_, message)| message)
            .collect()
    }
}

/// The groups to offer: the first ones by the directory's order, and the chosen one wherever it is.
async fn group_choices(viewer: &Viewer, chosen: &str) -> Result<Vec<(String, String)>, Error> {
    let directory = &viewer.console.app.directory;
    let mut groups = super::offered_groups(directory).await?;
    if Uuid::parse_str(chosen).is_ok() && !groups.iter().any(|(id, _)| id == chosen) {
        let name = match directory.get_group(chosen).await {
            Ok(group) => group.name,
            Err(Error::NotFound { .. }) => format!("{chosen} (no longer in the directory)"),
            Err(other) => return Err(other),
        };
        groups.push((chosen.to_owned(), name));
    }
    Ok(groups)
}

async fn imports_page(
    viewer: &Viewer,
    app: &App,
    form: SettingsValues,
    errors: FormErrors,
    run_error: String,
) -> Result<ImportsPage, Error> {
    let apps = &viewer.console.app.apps;
    let id = app.id.to_string();
    let schedule = apps.run_schedule(&id).await?;
    let runs = apps.target_runs(&id, RECENT_RUNS).await?;
    let open_conflicts = apps.import_conflicts(&id, Some(ConflictStatus::Open)).await?.len();
    Ok(ImportsPage {
        layout: viewer.layout(format!("{}: import & reconcile", app.name), "apps"),
        app: AppSummary::of(app, "imports"),
        feature_on: app.features.import_users,
        run_error,
        groups: group_choices(viewer, &form.assign_group).await?,
        form,
        errors,
        next_import: schedule.next_import_at.map(super::when).unwrap_or_default(),
        next_reconcile: schedule.next_reconcile_at.map(super::when).unwrap_or_default(),
        runs: runs.iter().map(RunView::of).collect(),
        open_conflicts,
        match_choices: MATCH_CHOICES.iter().map(|(_, v, l)| (*v, *l)).collect(),
        reconcile_choices: RECONCILE_CHOICES.iter().map(|(_, v, l)| (*v, *l)).collect(),
        interval_choices: INTERVAL_CHOICES.iter().map(|(i, l)| (i.as_str(), *l)).collect(),
        reconcile_words: RECONCILE_CHOICES
            .iter()
            .find(|(r, _, _)| *r == app.sync.reconcile)
            .map(|(_, _, label)| *label)
            .unwrap_or_default(),
    })
}

/// `GET /console/apps/{app}/imports`: the settings, the buttons, the schedule and the recent runs.
pub async fn page(viewer: Viewer, Path(app): Path<String>) -> Result<Response, PageError> {
    let app = viewer.console.app.apps.get_app(&app).await?;
    let form = SettingsValues::of(&app);
    Ok(render(
        &imports_page(&viewer, &app, form, FormErrors::default(), String::new()).await?,
    ))
}

/// `POST /console/apps/{app}/imports/settings`: saves the settings whole; a bad value is shown
/// beside its field (422) with what was typed.
pub async fn save_settings(
    editor: Editor,
    Path(app): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let app = apps.get_app(&app).await?;
    let form = SettingsValues::read(&fields);
    let errors = match form.settings() {
        Ok(sync) => {
            let update = AppUpdate {
                sync: Some(sync),
                ..Default::default()
            };
            match apps
                .update_app(&app.id.to_string(), update, &editor.principal().actor)
                .await
            {
                Ok(saved) => {
                    return Ok(editor.redirect(
                        &format!("/console/apps/{}/imports", saved.id),
                        &format!("The import and reconciliation settings of {} were saved.", saved.name),
                    ));
                }
                Err(error) => FormErrors::from_error(error, GROUP_FIELD)?,
            }
        }
        Err(errors) => errors,
    };
    Ok(render_status(
        StatusCode::UNPROCESSABLE_ENTITY,
        &imports_page(&editor, &app, form, errors, String::new()).await?,
    ))
}

/// The run buttons' fields.
#[derive(Debug, Deserialize)]
pub struct RunForm {
    /// `import` or `reconcile`.
    #[serde(default)]
    kind: String,
    /// `dry_run` or `apply`.
    #[serde(default)]
    mode: String,
}

/// `POST /console/apps/{app}/imports/run`: queues an import or a reconciliation, dry or real, and
/// leads to its page; a run the app cannot have (its import feature is off) is explained here.
pub async fn run(editor: Editor, Path(app): Path<String>, Form(form): Form<RunForm>) -> Result<Response, PageError> {
    let apps = &editor.console.app.apps;
    let app = apps.get_app(&app).await?;
    let id = app.id.to_string();
    let actor = editor.principal().actor;
    let queued = match (form.kind.as_str(), form.mode.as_str()) {
        ("import", "dry_run") => apps.start_import(&id, true, &actor).await,
        ("import", "apply") => apps.start_import(&id, false, &actor).await,
        ("reconcile", "dry_run") => apps.start_reconcile(&id, false, &actor).await,
        ("reconcile", "apply") => apps.start_reconcile(&id, true, &actor).await,
        (kind, mode) => Err(Error::invalid(
            "kind",
            format!("'{kind}' with '{mode}' is not a run: ask for an import or a reconcile, as a dry_run or to apply"),
        )),
    };
    match queued {
        Ok(run) => {
            editor.console.app.wake.jobs_queued();
            let view = RunView::of(&run);
            Ok(editor.redirect(
                &format!("/console/apps/{id}/runs/{}", run.id),
                &format!("{} of {} queued ({}).", view.kind_words, app.name, view.mode),
            ))
        }
        Err(Error::Validation { message, .. }) => {
            let form = SettingsValues::of(&app);
            Ok(render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &imports_page(&editor, &app, form, FormErrors::default(), message).await?,
            ))
        }
        Err(other) => Err(other.into()),
    }
}
