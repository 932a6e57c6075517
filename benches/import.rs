//! Import and reconciliation benchmark: `--accounts` (100,000) accounts in the in-memory SCIM
//! target (served by this benchmark on loopback, paged in creation order), the same number of
//! directory users, and the real `provisio serve` binary with default settings.
//!
//! Run with `cargo bench --bench import` (see the README for the options).
//!
//! Per database (SQLite unless `--sqlite none`, then PostgreSQL when `--postgres URL` or
//! `PROVISIO_TEST_POSTGRES_URL` names a server; a fresh database is created there and dropped
//! afterwards), once the hub has dispatched the seeding's change events:
//! - seeding (not measured): the directory users, members of one group, stored through the
//!   directory service before the hub starts; the target filled with one account per user,
//!   as the app's mapping renders them;
//! - import: an app with the import feature on (match on userName) imports every account;
//!   measured from the request to the run's end, with the outcome counts;
//! - reconcile: the group's policy row is written straight into the store (as a hub that
//!   provisioned these accounts long ago holds it; no job is queued), then a report-only
//!   reconciliation compares every account with its user's rendering; measured the same way;
//! - the hub's peak memory (VmHWM) over both runs, seeding included.

mod common;
use common::hub::{Database, Hub};
use common::seed::seed;
use common::target::{Target, start_memory_target};

use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Options {
    accounts: usize,
    sqlite: bool,
    postgres: Option<String>,
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("import")? else {
        return Ok(None);
    };
    let mut o = Options {
        accounts: 100_000,
        sqlite: true,
        postgres: std::env::var("PROVISIO_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty()),
    };
    for (flag, value) in flags {
        match flag.as_str() {
            "--accounts" => o.accounts = common::positive(&flag, &value)?,
            "--postgres" => o.postgres = Some(value).filter(|v| v != "none"),
            "--sqlite" => o.sqlite = value != "none",
            other => common::unknown(other)?,
        }
    }
    Ok(Some(o))
}

/// The app's mapping: what the hub renders and the target holds.
fn mapping() -> Value {
    json!([
        {"target": "userName", "source": {"attribute": "username"}},
        {"target": "name.givenName", "source": {"attribute": "given_name"}},
        {"target": "name.familyName", "source": {"attribute": "family_name"}},
        {"target": "displayName", "source": {"attribute": "display_name"}},
        {"target": "emails[type eq \"work\"].value", "source": {"attribute": "email"}},
        {"target": "active", "source": {"attribute": "active"}}
    ])
}

fn name(i: usize) -> String {
    format!("imp{i:06}")
}

/// The account the target holds for user `i`.
fn account(i: usize) -> Value {
    let name = name(i);
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "name": {"givenName": "Bench", "familyName": name},
        "displayName": format!("Bench {name}"),
        "emails": [{"type": "work", "value": format!("{name}@bench.example")}],
        "active": true
    })
}

/// Queues a run with `body` at `path` and waits for its end; returns it and the seconds from
/// the request to its end as the hub recorded it.
async fn run(hub: &Hub, path: &str, body: Value) -> (Value, f64) {
    let started = Instant::now();
    let queued = hub.expect(reqwest::Method::POST, path, Some(body)).await;
    let id = queued["id"].as_str().expect("run id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let run = hub
            .expect(reqwest::Method::GET, &format!("/api/v1/runs/{id}"), None)
            .await;
        match run["status"].as_str() {
            Some("done") => return (run, started.elapsed().as_secs_f64()),
            Some("failed") => panic!("the run failed: {run}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the run did not end: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scenario(database: Database, o: &Options) {
    println!("{}:", database.kind());
    let store = provisio::server::open_store(&database.config)
        .await
        .expect("open the store");
    let group = seed(&store, "Imported", "imp", o.accounts).await;
    store.close().await;
    let target: Target = start_memory_target(Duration::ZERO).await;
    let held = target.fill((0..o.accounts).map(account));
    let hub = Hub::start(&database, &[]).await;
    let app = hub
        .expect(
            reqwest::Method::POST,
            "/api/v1/apps",
            Some(
                json!({"name": "Legacy", "base_url": target.base_url, "token": target.token,
                        "mapping": mapping(), "features": {"import_users": true}}),
            ),
        )
        .await;
    let app_id = app["id"].as_str().expect("app id").to_owned();
    hub.expect(
        reqwest::Method::PATCH,
        &format!("/api/v1/apps/{app_id}"),
        Some(json!({"sync": {"import": {"match_on": ["userName"]}}})),
    )
    .await;
    // The seeding's change events are dispatched before anything is measured.
    let store = provisio::server::open_store(&database.config)
        .await
        .expect("open the store");
    let deadline = Instant::now() + Duration::from_secs(1800);
    while store
        .query_scalar(
            "SELECT COUNT(*) FROM change_log WHERE seq > (SELECT last_seq FROM change_cursors WHERE name = 'outbound')",
        )
        .await
        .expect("count undispatched changes")
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the hub did not dispatch the seeding's changes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    store.close().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub
        .expect(reqwest::Method::GET, &format!("/api/v1/apps/{app_id}"), None)
        .await["connection_status"]
        != "ok"
    {
        assert!(Instant::now() < deadline, "the app's connection check did not pass");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (import, import_seconds) = run(&hub, &format!("/api/v1/apps/{app_id}/imports"), json!({})).await;
    let linked = import["counts"]["linked"].as_u64().unwrap_or(0);
    assert_eq!(linked as usize, o.accounts, "every account is linked: {import}");
    println!(
        "  import: {} accounts read, {linked} linked in {import_seconds:.1} s ({:.0} accounts/s); counts {}",
        import["accounts_read"],
        o.accounts as f64 / import_seconds,
        import["counts"]
    );

    let store = provisio::server::open_store(&database.config)
        .await
        .expect("open the store");
    store
        .execute_raw(&format!(
            "INSERT INTO policies (id, name, app_id, group_id, created_at) VALUES ('{}', 'bench', '{app_id}', '{group}', 0)",
            uuid::Uuid::now_v7()
        ))
        .await
        .expect("the policy row");
    store.close().await;
    let (reconcile, reconcile_seconds) = run(&hub, &format!("/api/v1/apps/{app_id}/reconciliations"), json!({})).await;
    let in_step = reconcile["counts"]["in_step"].as_u64().unwrap_or(0);
    assert_eq!(in_step as usize, o.accounts, "every account is in step: {reconcile}");
    println!(
        "  reconcile (report only): {} accounts read, {in_step} in step in {reconcile_seconds:.1} s ({:.0} accounts/s); counts {}",
        reconcile["accounts_read"],
        o.accounts as f64 / reconcile_seconds,
        reconcile["counts"]
    );
    let peak = common::peak_rss_kib(hub.child.id()).unwrap_or(0) as f64 / 1024.0;
    println!(
        "  import + reconcile: {:.1} s (bar: under 60 s); hub peak memory {peak:.0} MB (bar: under 300 MB); target held {held}",
        import_seconds + reconcile_seconds
    );
    hub.stop();
    (target.stop)();
    database.drop_database().await;
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(o) = common::parse_or_exit(options()) else {
        return;
    };
    println!(
        "import benchmark: {} accounts, hub `provisio serve` with default settings",
        o.accounts
    );
    if o.sqlite {
        scenario(Database::sqlite(), &o).await;
    }
    if let Some(url) = o.postgres.clone() {
        scenario(Database::postgres(&url).await, &o).await;
    } else {
        println!("PostgreSQL: skipped (no --postgres URL and no PROVISIO_TEST_POSTGRES_URL)");
    }
}
