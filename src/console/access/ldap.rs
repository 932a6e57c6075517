//! LDAP sources: the sources with their newest runs, a form to add one from a preset, and the
//! buttons that queue a connection test, a dry run or a sync (the source runner carries them
//! out; the page shows their counts and errors once they end) or delete a source. Any role reads
//! the page (it shows no secret); only administrators change anything.

use crate::console::reports::format::when;
use crate::console::{Editor, FormErrors, Layout, PageError, Viewer, render, render_status};
use crate::domain::ldap::run::{LdapRun, SyncMode};
use crate::domain::ldap::{LdapPreset, NewLdapSource};
use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

/// One run's line.
struct RunRow {
    queued: String,
    what: String,
    status: String,
    summary: String,
    error: String,
}

impl From<&LdapRun> for RunRow {
    fn from(run: &LdapRun) -> Self {
        let c = &run.counts;
        let mut what = format!("{} {}", run.mode.as_str(), run.kind.as_str());
        if run.dry_run && run.kind == crate::domain::ldap::run::LdapRunKind::Sync {
            what.push_str(" (dry run)");
        }
        Self {
            queued: when(run.created_at),
            what,
            status: run.status.as_str().to_owned(),
            summary: format!(
                "read {} users, {} groups; users +{} ~{} -{}; groups +{} ~{} -{}; members +{} -{}; refused {}",
                c.users_read,
                c.groups_read,
                c.users_created + c.users_adopted,
                c.users_updated,
                c.users_deactivated + c.users_deleted,
                c.groups_created,
                c.groups_updated,
                c.groups_deleted,
                c.members_added,
                c.members_removed,
                c.refused + c.failed
            ),
            error: run.error.clone().unwrap_or_default(),
        }
    }
}

/// One source with its newest runs.
struct SourceRow {
    id: String,
    name: String,
    url: String,
    user_base: String,
    group_base: String,
    schedule: String,
    runs: Vec<RunRow>,
}

/// The values of the new-source form.
#[derive(Debug, Default, Deserialize)]
pub struct SourceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    preset: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    bind_dn: String,
    #[serde(default)]
    bind_password: String,
    #[serde(default)]
    user_base: String,
    #[serde(default)]
    group_base: String,
}

#[derive(Template)]
#[template(path = "access/ldap.html")]
struct LdapPage {
    layout: Layout,
    sources: Vec<SourceRow>,
    form: SourceForm,
    errors: FormErrors,
}

async fn page(viewer: &Viewer, form: SourceForm, errors: FormErrors) -> Result<LdapPage, PageError> {
    let service = &viewer.console.app.ldap;
    let mut sources = Vec::new();
    for source in service.list_sources().await? {
        let runs = service.list_runs(&source.id.to_string(), 5).await?;
        sources.push(SourceRow {
            id: source.id.to_string(),
            name: source.name,
            url: source.settings.url,
            user_base: source.settings.user_base,
            group_base: source.settings.group_base.unwrap_or_default(),
            schedule: source
                .settings
                .sync_every_minutes
                .map(|m| format!("every {m} min"))
                .unwrap_or_else(|| "on demand".into()),
            runs: runs.iter().map(RunRow::from).collect(),
        });
    }
    Ok(LdapPage {
        layout: viewer.layout("LDAP sources", "ldap"),
        sources,
        form,
        errors,
    })
}

/// `GET /console/ldap-sources`.
pub async fn list(viewer: Viewer) -> Result<Response, PageError> {
    let page = page(&viewer, SourceForm::default(), FormErrors::default()).await?;
    Ok(render(&page))
}

/// `POST /console/ldap-sources`: adds a source from a preset and the form's settings.
pub async fn create(editor: Editor, Form(form): Form<SourceForm>) -> Result<Response, PageError> {
    let preset = match form.preset.as_str() {
        "active_directory" => Some(LdapPreset::ActiveDirectory),
        "openldap" => Some(LdapPreset::Openldap),
        _ => None,
    };
    let mut settings = serde_json::Map::new();
    for (key, value) in [
        ("url", &form.url),
        ("bind_dn", &form.bind_dn),
        ("user_base", &form.user_base),
    ] {
        settings.insert(key.into(), json!(value.trim()));
    }
    if !form.group_base.trim().is_empty() {
        settings.insert("group_base".into(), json!(form.group_base.trim()));
    }
    let input = NewLdapSource {
        name: form.name.trim().to_owned(),
        preset,
        bind_password: form.bind_password.clone(),
        settings,
    };
    match editor.console.app.ldap.create_source(input).await {
        Ok(source) => Ok(editor.redirect(
            "/console/ldap-sources",
            &format!(
                "The LDAP source {} was added: test its connection, then sync it.",
                source.name
            ),
        )),
        Err(e) => {
            let errors = FormErrors::from_error(e, "name")?;
            // The password is never sent back to the browser.
            let form = SourceForm {
                bind_password: String::new(),
                ..form
            };
            let page = page(&editor, form, errors).await?;
            Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// What a run button asks for.
#[derive(Debug, Deserialize)]
pub struct RunForm {
    /// `test`, `dry_run`, `sync` or `incremental`.
    run: String,
}

/// `POST /console/ldap-sources/{id}/runs`: queues a test, a dry run or a sync.
pub async fn start(editor: Editor, Path(id): Path<String>, Form(form): Form<RunForm>) -> Result<Response, PageError> {
    let app = &editor.console.app;
    let (run, what) = match form.run.as_str() {
        "test" => (app.ldap.queue_test(&id).await?, "A connection test"),
        "dry_run" => (app.ldap.queue_sync(&id, SyncMode::Full, true).await?, "A dry run"),
        "incremental" => (
            app.ldap.queue_sync(&id, SyncMode::Incremental, false).await?,
            "An incremental sync",
        ),
        _ => (app.ldap.queue_sync(&id, SyncMode::Full, false).await?, "A sync"),
    };
    app.wake.ldap_queued();
    Ok(editor.redirect(
        "/console/ldap-sources",
        &format!(
            "{what} was queued (run {}): reload this page to see its outcome.",
            run.id
        ),
    ))
}

/// `POST /console/ldap-sources/{id}/delete`.
pub async fn delete(editor: Editor, Path(id): Path<String>) -> Result<Response, PageError> {
    let source = editor.console.app.ldap.delete_source(&id).await?;
    Ok(editor.redirect(
        "/console/ldap-sources",
        &format!(
            "The LDAP source {} was deleted; its users and groups stay in the directory.",
            source.name
        ),
    ))
}
