//! LDAP source benchmark: a private OpenLDAP server (slapd) holding `--users` (10,000) people and
//! `--groups` (200) groups, each person in one group, synced by the `provisio serve` binary
//! through the admin API. Measured from the request that queues each run to the run's end:
//!
//! 1. the first full sync (every user and group created, every membership added);
//! 2. a full sync with no change;
//! 3. an incremental sync with no change;
//! 4. an incremental sync after 1% of the people changed their email.
//!
//! On SQLite, then on PostgreSQL when `--postgres URL` or `PROVISIO_TEST_POSTGRES_URL` names a
//! server (`--postgres none` skips it). Run with `cargo bench --bench ldap`; slapd comes from
//! `scripts/ensure-slapd` (the binary `PROVISIO_SLAPD` names). The directory's entries are loaded
//! with ldapadd before anything is measured.

mod common;

use common::hub::{Database, Hub};
use common::slapd::{self, Slapd};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Options {
    users: usize,
    groups: usize,
    postgres: Option<String>,
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("ldap")? else {
        return Ok(None);
    };
    let mut o = Options {
        users: 10_000,
        groups: 200,
        postgres: std::env::var("PROVISIO_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty()),
    };
    for (flag, value) in flags {
        match flag.as_str() {
            "--users" => o.users = common::positive(&flag, &value)?,
            "--groups" => o.groups = common::positive(&flag, &value)?,
            "--postgres" => o.postgres = Some(value).filter(|v| v != "none"),
            other => common::unknown(other)?,
        }
    }
    if o.groups > o.users {
        return Err("--groups must not exceed --users".into());
    }
    Ok(Some(o))
}

fn uid(i: usize) -> String {
    format!("user{i:06}")
}

/// Loads the people, then (a second later, so that they do not share the latest second of
/// `modifyTimestamp`) the groups, each person in group `i % groups`.
fn load(server: &Slapd, o: &Options) {
    let started = Instant::now();
    let people: String = (0..o.users)
        .map(|i| {
            slapd::person_ldif(
                &uid(i),
                "Pat",
                &format!("Person{i}"),
                &format!("{}@example.org", uid(i)),
            )
        })
        .collect();
    server.add_bulk(&people);
    std::thread::sleep(Duration::from_millis(1100));
    let groups: String = (0..o.groups)
        .map(|g| {
            let members: Vec<String> = (g..o.users)
                .step_by(o.groups)
                .map(|i| slapd::person_dn(&uid(i)))
                .collect();
            slapd::group_ldif(&format!("group{g:04}"), &members)
        })
        .collect();
    server.add_bulk(&groups);
    println!(
        "  loaded {} people and {} groups into slapd in {:.1} s (not measured)",
        o.users,
        o.groups,
        started.elapsed().as_secs_f64()
    );
}

/// Queues a sync and waits for its end; returns the run and the seconds it took.
async fn sync(hub: &Hub, body: Value) -> (Value, f64) {
    let started = Instant::now();
    let queued = hub
        .expect(Method::POST, "/api/v1/ldap-sources/corp/syncs", Some(body))
        .await;
    let id = queued["id"].as_str().expect("run id").to_owned();
    loop {
        let (_, run) = hub.call(Method::GET, &format!("/api/v1/ldap-runs/{id}"), None).await;
        match run["status"].as_str() {
            Some("done") => return (run, started.elapsed().as_secs_f64()),
            Some("failed") => panic!("the sync failed: {run}"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn print(label: &str, run: &Value, seconds: f64, bar: f64) {
    let c = &run["counts"];
    println!(
        "{label}: {seconds:.2} s (bar: under {bar} s) - read {} users, {} groups; created {}, updated {}, groups created {}, members added {}",
        c["users_read"],
        c["groups_read"],
        c["users_created"],
        c["users_updated"],
        c["groups_created"],
        c["members_added"]
    );
}

async fn measure(o: &Options, server: &Slapd, database: &Database) {
    println!("{}:", database.kind());
    let hub = Hub::start(database, &[]).await;
    hub.expect(
        Method::POST,
        "/api/v1/ldap-sources",
        Some(json!({
            "name": "corp",
            "preset": "openldap",
            "bind_password": slapd::READER_PASSWORD,
            "settings": {
                "url": server.url(),
                "bind_dn": slapd::READER_DN,
                "user_base": slapd::PEOPLE_DN,
                "group_base": slapd::GROUPS_DN,
            },
        })),
    )
    .await;
    let (run, seconds) = sync(&hub, json!({})).await;
    assert_eq!(run["counts"]["users_created"].as_u64(), Some(o.users as u64), "{run}");
    print("  1. full sync, first", &run, seconds, 10.0);
    let (run, seconds) = sync(&hub, json!({})).await;
    print("  2. full sync, no change", &run, seconds, 10.0);
    let (run, seconds) = sync(&hub, json!({"mode": "incremental"})).await;
    print("  3. incremental, no change", &run, seconds, 1.0);
    // 1% of the people change their email (a new value per database, so that each run sees a change).
    let changed = (o.users / 100).max(1);
    let suffix = database.kind().to_lowercase();
    let ldif: String = (0..changed)
        .map(|k| {
            let who = uid(k * o.users / changed);
            format!(
                "dn: {}\nchangetype: modify\nreplace: mail\nmail: {who}@{suffix}.example.org\n\n",
                slapd::person_dn(&who)
            )
        })
        .collect();
    server.modify(&ldif);
    let (run, seconds) = sync(&hub, json!({"mode": "incremental"})).await;
    assert_eq!(run["counts"]["users_updated"].as_u64(), Some(changed as u64), "{run}");
    print("  4. incremental, 1% changed", &run, seconds, 2.0);
    hub.stop();
    database.drop_database().await;
}

#[tokio::main]
async fn main() {
    let Some(o) = common::parse_or_exit(options()) else {
        return;
    };
    provisio::install_crypto_provider();
    println!("ldap benchmark: {} users, {} groups in slapd", o.users, o.groups);
    let server = Slapd::start();
    load(&server, &o);
    measure(&o, &server, &Database::sqlite()).await;
    match &o.postgres {
        Some(url) => measure(&o, &server, &Database::postgres(url).await).await,
        None => println!("PostgreSQL: skipped (pass --postgres URL or set PROVISIO_TEST_POSTGRES_URL)"),
    }
}
