//! Configuration as code through the real binary: `config export` then `config apply` onto an
//! empty hub (no groups either: the document declares those its policies need) exports the same
//! bytes; `config plan` lists exactly what `config apply` does, and a second apply does nothing;
//! bad documents are refused with their line and change nothing; one refused write undoes the
//! whole apply, group creations included; `--prune` alone deletes what the document leaves out,
//! and never a group. Both databases.

mod common;

use common::{Backend, TestHub, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;

backend_tests!(
    export_then_apply_on_an_empty_hub_exports_the_same,
    plan_lists_what_apply_does,
    bad_documents_are_refused_with_their_line,
    a_refused_write_undoes_the_group_creations_too,
    prune_alone_deletes_what_the_document_leaves_out,
);

/// The document most tests start from: an attribute, an LDAP source, two apps (one token in a
/// file, one in a variable), the group the policies need and two policies.
fn document(token_file: &Path) -> String {
    format!(
        r#"version = 1

[[attributes]]
name = "title"
type = "string"
description = "Job title"

[[ldap_sources]]
name = "corp"
preset = "openldap"
bind_password_env = "CORP_LDAP_PASSWORD"

[ldap_sources.settings]
url = "ldap://127.0.0.1:3890"
bind_dn = "cn=admin,dc=example,dc=org"
user_base = "ou=people,dc=example,dc=org"
profile = {{ email = "mail", title = "title" }}

[[apps]]
name = "Slack"
base_url = "http://127.0.0.1:9/scim/v2"
token_file = "{}"
features = {{ push_groups = true }}
deprovision = {{ on_unassign = "nothing", delete_deactivated_after_days = 30 }}

[[apps.mapping]]
target = "userName"
source = "username"
transform = "lower"

[[apps.mapping]]
target = "title"
source = "title"

[[apps]]
name = "Wiki"
base_url = "http://127.0.0.1:9/wiki/scim/v2"
token_env = "WIKI_TOKEN"

[[groups]]
name = "Sales"

[[policies]]
app = "Slack"
group = "Sales"

[[policies]]
name = "Wiki for everyone"
app = "Wiki"
group = "sales"
"#,
        token_file.display()
    )
}

/// Runs the real binary against `hub` with the secrets' variables set.
fn cli(hub: &TestHub, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_provisio"));
    command
        .args(args)
        .env("PROVISIO_SERVER", &hub.base_url)
        .env("PROVISIO_TOKEN", &hub.token)
        .env("PROVISIO_CLI_CONFIG", "/nonexistent/provisio-cli.toml")
        .env_remove("WIKI_TOKEN")
        .env_remove("CORP_LDAP_PASSWORD");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run provisio")
}

const SECRETS: &[(&str, &str)] = &[("WIKI_TOKEN", "wiki-t0ken"), ("CORP_LDAP_PASSWORD", "ldap-secret")];

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "provisio failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn export(hub: &TestHub) -> String {
    stdout(&cli(hub, &["config", "export"], &[]))
}

/// A hub that already has the directory group the document declares.
async fn hub_with_sales(backend: Backend) -> TestHub {
    let hub = TestHub::start(backend).await;
    hub.post("/api/v1/groups", json!({"name": "Sales"})).await;
    hub
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

async fn export_then_apply_on_an_empty_hub_exports_the_same(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let token = write(dir.path(), "slack.token", "slack-t0ken\n");
    let first = TestHub::start(backend).await;
    let file = write(dir.path(), "hub.toml", &document(Path::new(&token)));
    stdout(&cli(&first, &["config", "apply", &file], SECRETS));
    let exported = export(&first).await;
    assert!(exported.contains("name = \"Slack\""), "{exported}");
    let declared = exported
        .find("[[groups]]\nname = \"Sales\"\n")
        .expect("the group is declared");
    assert!(
        declared < exported.find("[[policies]]").expect("policies"),
        "{exported}"
    );
    assert!(
        exported.contains("token_env = \"PROVISIO_APP_TOKEN_SLACK\""),
        "{exported}"
    );
    assert!(
        !exported.contains("slack-t0ken") && !exported.contains("ldap-secret"),
        "{exported}"
    );
    assert!(
        !exported.contains("created_at") && !exported.contains("\nid ="),
        "{exported}"
    );
    assert_eq!(exported, export(&first).await, "an export is deterministic");

    // A brand-new hub: no apps, no groups, nothing created beforehand.
    let second = TestHub::start(backend).await;
    assert!(!export(&second).await.contains("[[apps]]"));
    assert_eq!(second.get("/api/v1/groups").await["items"], json!([]));
    let file = write(dir.path(), "exported.toml", &exported);
    let secrets = [
        ("PROVISIO_APP_TOKEN_SLACK", "slack-t0ken"),
        ("PROVISIO_APP_TOKEN_WIKI", "wiki-t0ken"),
        ("PROVISIO_LDAP_PASSWORD_CORP", "ldap-secret"),
    ];
    let planned = stdout(&cli(&second, &["config", "plan", &file, "--json"], &secrets));
    let applied = stdout(&cli(&second, &["config", "apply", &file, "--json"], &secrets));
    assert_eq!(applied, planned, "apply does what the plan said");
    assert!(planned.contains(r#""kind": "group""#), "{planned}");
    assert_eq!(export(&second).await, exported, "byte for byte");
    let sales = second.get("/api/v1/groups/Sales").await;
    assert_eq!((&sales["source"], &sales["member_count"]), (&json!("local"), &json!(0)));
    // Same tokens: the exported document changes nothing on the hub it came from.
    let plan = stdout(&cli(&first, &["config", "plan", &file], &secrets));
    assert!(plan.contains("no changes"), "{plan}");
    first.stop().await;
    second.stop().await;
}

async fn plan_lists_what_apply_does(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let token = write(dir.path(), "slack.token", "slack-t0ken");
    let hub = TestHub::start(backend).await;
    let file = write(dir.path(), "hub.toml", &document(Path::new(&token)));
    let plan_of = |file: &str| {
        let output = cli(&hub, &["config", "plan", file, "--json"], SECRETS);
        serde_json::from_str::<Value>(&stdout(&output)).expect("json")["changes"].clone()
    };
    let apply_of = |file: &str| {
        let output = cli(&hub, &["config", "apply", file, "--json"], SECRETS);
        serde_json::from_str::<Value>(&stdout(&output)).expect("json")["changes"].clone()
    };
    let planned = plan_of(&file);
    let labels: Vec<String> = planned
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| format!("{} {} {}", c["action"], c["kind"], c["name"]).replace('"', ""))
        .collect();
    assert_eq!(
        labels,
        vec![
            "create attribute title",
            "create ldap_source corp",
            "create app Slack",
            "create app Wiki",
            "create group Sales",
            "create policy Slack -> Sales",
            "create policy Wiki -> Sales",
        ]
    );
    assert_eq!(apply_of(&file), planned, "apply does what the plan said");
    assert_eq!(plan_of(&file), json!([]), "nothing is left to do");
    let created: Vec<Value> = hub
        .changes()
        .await
        .into_iter()
        .filter(|c| c["entity"] == "group" && c["operation"] == "created")
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["data"]["group"]["name"], json!("Sales"));
    let events = hub.changes().await.len();
    assert_eq!(apply_of(&file), json!([]), "a second apply changes nothing");
    assert_eq!(hub.changes().await.len(), events, "not even the change log");

    // The first connection check has run (the URL refuses connections): what it left is what a
    // check with the new token must replace.
    let first_check = eventually(30, "the first connection check", || async {
        let slack = hub.get("/api/v1/apps/Slack").await;
        (slack["connection_status"] != json!("unchecked")).then(|| slack["connection_checked_at"].clone())
    })
    .await;

    // Changes to existing objects: a rotated token, a feature, a mapping rule, a policy's name.
    std::fs::write(&token, "rotated-t0ken").expect("rotate");
    let changed = document(Path::new(&token))
        .replace(
            "features = { push_groups = true }",
            "features = { push_groups = false }",
        )
        .replace("source = \"title\"", "source = \"display_name\"")
        .replace("Wiki for everyone", "Wiki for Sales")
        .replace("description = \"Job title\"", "description = \"What they do\"");
    let file = write(dir.path(), "changed.toml", &changed);
    let planned = plan_of(&file);
    assert_eq!(
        planned,
        json!([
            {"action": "update", "kind": "attribute", "name": "title", "fields": ["description"]},
            {"action": "update", "kind": "app", "name": "Slack", "fields": ["token", "features", "mapping"]},
            {"action": "update", "kind": "policy", "name": "Wiki -> Sales", "fields": ["name"]},
        ])
    );
    assert_eq!(apply_of(&file), planned);
    assert_eq!(plan_of(&file), json!([]));
    let slack = hub.get("/api/v1/apps/Slack").await;
    assert_eq!(slack["features"]["push_groups"], json!(false));
    // Queued as unchecked by the apply; the engine may have checked it again already.
    assert!(
        slack["connection_status"] == json!("unchecked") || slack["connection_checked_at"] != first_check,
        "a new token is checked again: {slack}"
    );
    let text = stdout(&cli(&hub, &["config", "plan", &file], SECRETS));
    assert!(text.contains("no changes"), "{text}");
    hub.stop().await;
}

/// Applies `text` and expects a refusal naming `line`; the hub's export must not change.
async fn refused(hub: &TestHub, dir: &Path, text: &str, line: usize, words: &str) {
    let before = export(hub).await;
    let groups = hub.get("/api/v1/groups").await;
    let file = write(dir, "bad.toml", text);
    let output = cli(hub, &["config", "apply", &file], SECRETS);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(3), "{text}\n{stderr}");
    assert!(
        stderr.contains(&format!("line {line}:")),
        "expected line {line}: {stderr}"
    );
    assert!(stderr.contains(words), "expected '{words}': {stderr}");
    let (status, body) = hub
        .call(
            Method::POST,
            "/api/v1/config/plan",
            Some(json!({"document": text, "secrets": {"app_tokens": {"Slack": "x", "Wiki": "y"}, "ldap_passwords": {"corp": "z"}}})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], json!("invalid_document"));
    assert_eq!(body["error"]["line"], json!(line), "{body}");
    assert_eq!(export(hub).await, before, "a refused document changes nothing");
    assert_eq!(hub.get("/api/v1/groups").await, groups, "not even the groups");
}

async fn bad_documents_are_refused_with_their_line(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let token = write(dir.path(), "slack.token", "slack-t0ken");
    let hub = TestHub::start(backend).await;
    let good = document(Path::new(&token));
    stdout(&cli(
        &hub,
        &["config", "apply", &write(dir.path(), "hub.toml", &good)],
        SECRETS,
    ));
    let line_of = |needle: &str| good.lines().position(|l| l.contains(needle)).expect("needle") + 1;

    refused(
        &hub,
        dir.path(),
        &good.replace("[[apps]]\nname = \"Wiki\"", "[[apps]\nname = \"Wiki\""),
        line_of("name = \"Wiki\"") - 1,
        "",
    )
    .await;
    let with_unknown_key = good.replace("name = \"Wiki\"\n", "name = \"Wiki\"\ncolour = \"red\"\n");
    refused(
        &hub,
        dir.path(),
        &with_unknown_key,
        line_of("name = \"Wiki\"") + 1,
        "colour",
    )
    .await;
    refused(
        &hub,
        dir.path(),
        &good.replace("source = \"title\"", "source = \"shoe_size\""),
        line_of("source = \"title\""),
        "shoe_size",
    )
    .await;
    // A policy on a group neither the hub has nor the document declares.
    refused(
        &hub,
        dir.path(),
        &good.replace("group = \"sales\"", "group = \"Marketing\""),
        line_of("group = \"sales\""),
        "Marketing",
    )
    .await;
    // A declared group the directory would refuse (a zero-width space in its name), and a new
    // declared group in a document refused further down: no group is created.
    refused(
        &hub,
        dir.path(),
        &good.replace("name = \"Sales\"", "name = \"Sa\\u200Bles\""),
        line_of("name = \"Sales\""),
        "invisible",
    )
    .await;
    refused(
        &hub,
        dir.path(),
        &good
            .replace("name = \"Sales\"", "name = \"Support\"")
            .replace("group = \"sales\"", "group = \"support\"")
            .replace("source = \"title\"", "source = \"shoe_size\""),
        line_of("source = \"title\""),
        "shoe_size",
    )
    .await;
    let bad_preset = good.replace("name = \"Wiki\"\n", "name = \"Wiki\"\npreset = \"myspace\"\n");
    refused(&hub, dir.path(), &bad_preset, line_of("name = \"Wiki\"") + 1, "myspace").await;
    let literal = good.replace("token_env = \"WIKI_TOKEN\"", "token = \"s3cret\"");
    refused(
        &hub,
        dir.path(),
        &literal,
        line_of("token_env = \"WIKI_TOKEN\""),
        "never written",
    )
    .await;
    let new_app = format!("{good}\n[[apps]]\nname = \"Jira\"\nbase_url = \"https://jira.example.com/scim/v2\"\n");
    refused(
        &hub,
        dir.path(),
        &new_app,
        good.lines().count() + 3,
        "needs its bearer token",
    )
    .await;

    // A secret the document names but the operator's machine lacks: named, nothing sent.
    let missing = good.replace(&token, "/nonexistent/slack.token");
    let output = cli(
        &hub,
        &["config", "apply", &write(dir.path(), "missing.toml", &missing)],
        SECRETS,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/slack.token") && stderr.contains("Slack"),
        "{stderr}"
    );
    let output = cli(
        &hub,
        &["config", "plan", &write(dir.path(), "hub.toml", &good)],
        &[("WIKI_TOKEN", "w")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("CORP_LDAP_PASSWORD"), "{stderr}");

    hub.stop().await;
}

/// A write the store refuses (an attribute users still hold, deleted by `--prune`) undoes the
/// apply's earlier writes, the new group's creation included.
async fn a_refused_write_undoes_the_group_creations_too(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let token = write(dir.path(), "slack.token", "slack-t0ken");
    let hub = TestHub::start(backend).await;
    let file = write(dir.path(), "hub.toml", &document(Path::new(&token)));
    stdout(&cli(&hub, &["config", "apply", &file], SECRETS));
    hub.post(
        "/api/v1/users",
        json!({"username": "ann", "attributes": {"title": "Buyer"}}),
    )
    .await;
    let before = export(&hub).await;
    let events = hub.changes().await.len();
    let file = write(dir.path(), "support.toml", "[[groups]]\nname = \"Support\"\n");
    let plan = stdout(&cli(&hub, &["config", "plan", &file, "--prune"], SECRETS));
    assert!(
        plan.starts_with("+ create group Support\n") && plan.contains("- delete attribute title"),
        "{plan}"
    );
    let output = cli(&hub, &["config", "apply", &file, "--prune"], SECRETS);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("title"), "{stderr}");
    let (status, _) = hub.call(Method::GET, "/api/v1/groups/Support", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the group creation was undone");
    assert_eq!(export(&hub).await, before, "nothing changed");
    assert_eq!(hub.changes().await.len(), events, "not even the change log");
    hub.stop().await;
}

async fn prune_alone_deletes_what_the_document_leaves_out(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let token = write(dir.path(), "slack.token", "slack-t0ken");
    // The declared group exists already: declaring it is no change.
    let hub = hub_with_sales(backend).await;
    let file = write(dir.path(), "hub.toml", &document(Path::new(&token)));
    let plan = stdout(&cli(&hub, &["config", "plan", &file], SECRETS));
    assert!(!plan.contains("group Sales"), "{plan}");
    stdout(&cli(&hub, &["config", "apply", &file], SECRETS));
    let full = export(&hub).await;
    let small =
        "[[apps]]\nname = \"Wiki\"\nbase_url = \"http://127.0.0.1:9/wiki/scim/v2\"\ntoken_env = \"WIKI_TOKEN\"\n";
    let file = write(dir.path(), "small.toml", small);
    let plan = stdout(&cli(&hub, &["config", "plan", &file], SECRETS));
    assert!(plan.contains("no changes"), "{plan}");
    stdout(&cli(&hub, &["config", "apply", &file], SECRETS));
    assert_eq!(export(&hub).await, full, "without --prune nothing is deleted");

    let plan = stdout(&cli(&hub, &["config", "plan", &file, "--prune"], SECRETS));
    assert!(!plan.contains("group"), "prune never deletes a group: {plan}");
    for line in [
        "- delete policy Slack -> Sales",
        "- delete policy Wiki -> Sales",
        "- delete app Slack",
        "- delete ldap source corp",
        "- delete attribute title",
    ] {
        assert!(plan.contains(line), "{line} in {plan}");
    }
    assert!(!plan.contains("app Wiki"), "{plan}");
    let applied = stdout(&cli(&hub, &["config", "apply", &file, "--prune"], SECRETS));
    assert_eq!(applied, plan.replace("to change", "changed"));
    let left = export(&hub).await;
    assert!(left.contains("name = \"Wiki\""), "{left}");
    for gone in [
        "Slack",
        "[[policies]]",
        "[[groups]]",
        "[[attributes]]",
        "[[ldap_sources]]",
    ] {
        assert!(!left.contains(gone), "{gone} in {left}");
    }
    assert_eq!(hub.get("/api/v1/policies").await, json!([]));
    assert_eq!(
        hub.get("/api/v1/groups/Sales").await["name"],
        json!("Sales"),
        "the group stays"
    );
    hub.stop().await;
}
