//! The real `provisio` binary: remote commands against a running hub, and the server-side
//! commands (`serve`, `migrate`, `admin-token`) against real stores.

mod common;

use common::{Backend, TestDatabase, TestHub};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

backend_tests!(
    cli_directory_walkthrough,
    cli_errors_have_exit_codes,
    cli_tokens,
    offline_admin_token_and_migrate
);

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

fn json(output: std::process::Output) -> Value {
    serde_json::from_str(&ok(output)).expect("JSON output")
}

async fn cli_directory_walkthrough(backend: Backend) {
    let hub = TestHub::start(backend).await;
    ok(hub.cli(&[
        "attributes",
        "create",
        "title",
        "--type",
        "string",
        "--display-name",
        "Job title",
    ]));
    ok(hub.cli(&["attributes", "create", "badge", "--type", "integer"]));
    ok(hub.cli(&["attributes", "create", "skills", "--type", "string_list"]));
    let table = ok(hub.cli(&["attributes", "list"]));
    assert!(table.lines().next().unwrap().starts_with("NAME"));
    assert!(table.contains("Job title"));
    assert_eq!(
        json(hub.cli(&["attributes", "show", "badge", "--json"]))["type"],
        "integer"
    );
    assert_eq!(
        json(hub.cli(&["attributes", "update", "badge", "--description", "Door badge", "--json"]))["description"],
        "Door badge"
    );

    let user = json(hub.cli(&[
        "users",
        "add",
        "alice",
        "--given-name",
        "Alice",
        "--family-name",
        "Smith",
        "--display-name",
        "Alice Smith",
        "--email",
        "alice@example.com",
        "--attr",
        "title=Engineer",
        "--attr",
        "badge=7",
        "--attr",
        "skills=rust, sql",
        "--json",
    ]));
    assert_eq!(user["attributes"]["badge"], 7);
    assert_eq!(user["attributes"]["skills"], serde_json::json!(["rust", "sql"]));
    ok(hub.cli(&["users", "add", "bob", "--email", "bob@example.com"]));
    let listing = ok(hub.cli(&["users", "list"]));
    assert!(
        listing.contains("alice@example.com") && listing.contains("bob@example.com"),
        "{listing}"
    );
    let found = json(hub.cli(&["users", "list", "--search", "SMITH", "--json"]));
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let shown = ok(hub.cli(&["users", "show", "alice"]));
    assert!(
        shown.contains("attributes.title") && shown.contains("Engineer"),
        "{shown}"
    );

    let updated = json(hub.cli(&[
        "users",
        "update",
        "alice",
        "--attr",
        "title=Lead",
        "--unset",
        "attributes.badge",
        "--unset",
        "family_name",
        "--json",
    ]));
    assert_eq!(updated["attributes"]["title"], "Lead");
    assert!(updated["attributes"].get("badge").is_none());
    assert_eq!(updated["family_name"], Value::Null);
    assert_eq!(
        json(hub.cli(&["users", "deactivate", "bob", "--json"]))["active"],
        false
    );
    assert_eq!(json(hub.cli(&["users", "activate", "bob", "--json"]))["active"], true);

    ok(hub.cli(&["groups", "create", "Engineering"]));
    let added = ok(hub.cli(&["groups", "add-member", "Engineering", "alice", "bob"]));
    assert!(added.contains("alice added to Engineering"), "{added}");
    let members = json(hub.cli(&["groups", "members", "Engineering", "--json"]));
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    ok(hub.cli(&["groups", "remove-member", "Engineering", "bob"]));
    assert_eq!(
        json(hub.cli(&["groups", "show", "Engineering", "--json"]))["member_count"],
        1
    );
    assert_eq!(
        json(hub.cli(&["groups", "rename", "Engineering", "R&D", "--json"]))["name"],
        "R&D"
    );
    let groups = ok(hub.cli(&["groups", "list"]));
    assert!(groups.contains("R&D"));
    // Off a terminal, destructive commands do nothing without --yes and say why.
    for args in [
        ["groups", "delete", "R&D"],
        ["users", "delete", "bob"],
        ["attributes", "delete", "badge"],
    ] {
        let refused = hub.cli(&args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains("--yes") && said.contains("nothing was done"),
            "{args:?}: {said}"
        );
    }
    assert!(String::from_utf8_lossy(&hub.cli(&["users", "delete", "bob"]).stderr).contains("Delete user 'bob'"));
    assert_eq!(
        json(hub.cli(&["groups", "show", "R&D", "--json"]))["name"],
        "R&D",
        "nothing deleted"
    );
    ok(hub.cli(&["groups", "delete", "R&D", "--yes"]));
    ok(hub.cli(&["users", "delete", "bob", "--yes"]));
    ok(hub.cli(&["attributes", "delete", "badge", "--yes"]));
    assert_eq!(
        json(hub.cli(&["users", "list", "--all", "--json"]))["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    hub.stop().await;
}

async fn cli_errors_have_exit_codes(backend: Backend) {
    let hub = TestHub::start(backend).await;
    ok(hub.cli(&["users", "add", "alice"]));
    let cases: [(&[&str], i32); 5] = [
        (&["users", "add", "ALICE"], 5),
        (&["users", "add", "bob", "--email", "nope"], 3),
        (&["users", "show", "nobody"], 4),
        (&["groups", "add-member", "Nope", "alice"], 4),
        (&["users", "add", "carol", "--attr", "undefined=1"], 2),
    ];
    for (args, code) in cases {
        let output = hub.cli(args);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stderr).starts_with("error: "));
    }
    // Wrong token: 6; unreachable hub: 7; bad command line: 2.
    let output = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["users", "list", "--server", &hub.base_url, "--token", "pvo_wrong"])
        .env("PROVISIO_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6));
    let output = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["users", "list", "--server", "http://127.0.0.1:9", "--token", "x"])
        .env("PROVISIO_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(7));
    assert_eq!(hub.cli(&["users", "frobnicate"]).status.code(), Some(2));
    hub.stop().await;
}

async fn cli_tokens(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let secret = ok(hub.cli(&["tokens", "create", "ci-bot"])).trim().to_owned();
    assert!(
        secret.starts_with("pvo_") && !secret.contains(' '),
        "only the token is printed: {secret}"
    );
    let tokens = json(hub.cli(&["tokens", "list", "--json"]));
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci-bot")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!tokens.to_string().contains(&secret));
    let with_new = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["users", "list", "--server", &hub.base_url, "--token", &secret])
        .env("PROVISIO_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert!(with_new.status.success());
    ok(hub.cli(&["tokens", "revoke", &id]));
    let after = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["users", "list", "--server", &hub.base_url, "--token", &secret])
        .env("PROVISIO_CLI_CONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(6));
    hub.stop().await;
}

fn store_flags(db: &TestDatabase) -> Vec<String> {
    match &db.data_dir {
        Some(dir) => vec!["--data-dir".into(), dir.path().display().to_string()],
        None => vec!["--database-url".into(), db.url.clone()],
    }
}

async fn offline_admin_token_and_migrate(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let flags = store_flags(&db);
    let migrate = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .arg("migrate")
        .args(&flags)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let token = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .arg("admin-token")
        .args(&flags)
        .args(["--name", "bootstrap"])
        .output()
        .unwrap();
    assert!(token.status.success());
    let secret = stdout(&token).trim().to_owned();
    assert!(secret.starts_with("pvo_") && stdout(&token).lines().count() == 1);

    // The token works against a hub on the same store.
    let store = db.store().await;
    let auth = provisio::service::AuthService::new(store.clone());
    let actor = auth.authenticate(&secret).await.expect("token authenticates");
    assert_eq!(actor.actor.label(), "token:bootstrap");

    // A schema newer than this binary is refused, by migrate and by serve.
    store
        .execute_raw(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             SELECT 9999, 'future', success, checksum, execution_time FROM _sqlx_migrations WHERE version = 1",
        )
        .await
        .expect("record a future migration");
    store.close().await;
    let migrate = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .arg("migrate")
        .args(&flags)
        .output()
        .unwrap();
    assert!(!migrate.status.success());
    let stderr = String::from_utf8_lossy(&migrate.stderr);
    assert!(stderr.contains("newer than this binary"), "{stderr}");
    let serve = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .arg("serve")
        .args(&flags)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!serve.status.success());
}

/// Starts `provisio serve` on a free port and waits until it answers; returns the child and its URL.
fn spawn_serve(data_dir: &std::path::Path) -> (std::process::Child, String, std::sync::mpsc::Receiver<String>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = common::tied_to_test(&mut Command::new(env!("CARGO_BIN_EXE_provisio")))
        .args([
            "serve",
            "--data-dir",
            &data_dir.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "debug",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    let tx_out = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx_out.send(format!("OUT {line}"));
        }
    });
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        for line in text.lines() {
            let _ = tx.send(format!("ERR {line}"));
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "provisio serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, url, rx)
}

fn stop(mut child: std::process::Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_prints_first_admin_once_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url, lines) = spawn_serve(dir.path());
    // The process answers HTTP (a plain request, so that no tool outside the project is needed).
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    std::io::Write::write_all(
        &mut stream,
        format!("GET /healthz HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 200") && answer.ends_with("ok"), "{answer}");
    let status = stop(child);
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let first_run: Vec<String> = lines.try_iter().collect();
    let password = first_run
        .iter()
        .find_map(|l| l.strip_prefix("OUT   password: "))
        .unwrap_or_else(|| panic!("the password is printed on stdout: {first_run:#?}"))
        .trim()
        .to_owned();
    assert!(password.len() >= 20);
    let printed = first_run.iter().filter(|l| l.contains(&password)).count();
    assert_eq!(printed, 1, "printed exactly once");
    assert!(
        first_run
            .iter()
            .filter(|l| l.starts_with("ERR"))
            .all(|l| !l.contains(&password)),
        "never in the log"
    );
    assert!(
        first_run
            .iter()
            .any(|l| l.starts_with("ERR") && l.contains("listening")),
        "the log is written: {first_run:#?}"
    );
    assert!(
        common::files_containing(dir.path(), &password).is_empty(),
        "the password is in no file"
    );
    let stored = common::files_containing(dir.path(), "$argon2id$");
    assert!(!stored.is_empty(), "its Argon2id hash is stored");

    // Second start: no new admin, nothing printed.
    let (child, _, lines) = spawn_serve(dir.path());
    assert!(stop(child).success());
    let second_run: Vec<String> = lines.try_iter().collect();
    assert!(second_run.iter().all(|l| !l.contains("password")), "{second_run:#?}");
}
