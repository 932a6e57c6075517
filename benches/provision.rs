//! Provisioning benchmark: the acceptance scenarios of outbound throughput and latency, each
//! printed beside its reference measured in the same run, against the real `provisio serve`
//! binary (started as a child process with default settings) and SCIM targets served by this
//! benchmark over HTTP on loopback.
//!
//! Run with `cargo bench --bench provision` (all scenarios; see the README for the options).
//!
//! Scenarios:
//! - a. fast: `--users` (10,000) members of a group, then a policy links the group to an app on
//!   the in-memory target (app concurrency `--concurrency`, 8): users per second from the policy
//!   change to the last account stored, beside the target's raw capacity for the same requests
//!   (each user's look-up `GET /Users?filter=userName eq` and create `POST /Users`, sent by this
//!   benchmark with a Rust client over `--concurrency` connections to a fresh target). On SQLite,
//!   then on PostgreSQL when `--postgres URL` or `PROVISIO_TEST_POSTGRES_URL` names a server (a
//!   fresh database is created there and dropped afterwards).
//! - b. slow: the same into a target that answers every request after `--delay-ms` (50 ms), app
//!   concurrency 8, `--slow-users` (1,000) users: users per second beside the bound
//!   `concurrency / (requests per user x delay)`, with the requests per user counted by the
//!   target itself during the run.
//! - c. ten slow apps: `--slow-apps` (10) such apps, each with its own slow target, get
//!   policies at once (concurrent requests) for one group of `--slow-apps-users` (1,000, as in
//!   b) users: the sum of their users per second (all accounts over the time to the last one)
//!   beside the sum of their bounds.
//! - d. change to target: `--changes` (200) single changes made through the admin API (create a
//!   user, add them to a group linked to the fast app), 20 per second; the time from sending the
//!   membership change to the target receiving the user's create, p50/p99, first at idle, then
//!   while a second app (a second in-memory target) provisions the `--users` group initially.
//!
//! Scenarios a (SQLite), d, b and c run on one hub over one SQLite store, in that order.
//! `--scenarios a,b,c,d` picks some; `--serve-flags "--max-in-flight 16"` passes flags to
//! `provisio serve` (default: none); `--target scim2` runs scenario a against scim2-server instead of the
//! in-memory target.

mod common;
use common::hub::{Database, Hub};
use common::percentiles;
use common::seed::seed;
use common::target::{Shared, Target, start_memory_target, start_scim2_target};

use provisio::outbound::scim::{encode_query, eq_filter};
use provisio::store::SqlStore;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Options {
    users: usize,
    concurrency: usize,
    delay_ms: u64,
    slow_users: usize,
    slow_apps: usize,
    slow_apps_users: usize,
    changes: usize,
    postgres: Option<String>,
    serve_flags: Vec<String>,
    target: String,
    scenarios: String,
}

impl Options {
    fn runs(&self, scenario: char) -> bool {
        self.scenarios.contains(scenario)
    }
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("provision")? else {
        return Ok(None);
    };
    let mut o = Options {
        users: 10_000,
        concurrency: 8,
        delay_ms: 50,
        slow_users: 1_000,
        slow_apps: 10,
        slow_apps_users: 1_000,
        changes: 200,
        postgres: std::env::var("PROVISIO_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty()),
        serve_flags: Vec::new(),
        target: "memory".into(),
        scenarios: "abcd".into(),
    };
    for (flag, value) in flags {
        match flag.as_str() {
            "--users" => o.users = common::positive(&flag, &value)?,
            "--concurrency" => o.concurrency = common::positive(&flag, &value)?,
            "--delay-ms" => o.delay_ms = common::positive(&flag, &value)? as u64,
            "--slow-users" => o.slow_users = common::positive(&flag, &value)?,
            "--slow-apps" => o.slow_apps = common::positive(&flag, &value)?,
            "--slow-apps-users" => o.slow_apps_users = common::positive(&flag, &value)?,
            "--changes" => o.changes = common::positive(&flag, &value)?,
            "--postgres" => o.postgres = Some(value).filter(|v| v != "none"),
            "--serve-flags" => o.serve_flags = value.split_whitespace().map(str::to_owned).collect(),
            "--target" => o.target = value,
            "--scenarios" => o.scenarios = value.replace(',', ""),
            other => common::unknown(other)?,
        }
    }
    if !matches!(o.target.as_str(), "memory" | "scim2") {
        return Err("--target must be memory or scim2".into());
    }
    if o.scenarios.is_empty() || !o.scenarios.chars().all(|c| "abcd".contains(c)) {
        return Err("--scenarios takes letters among a, b, c, d".into());
    }
    Ok(Some(o))
}

// ------------------------------------------------------------------ measurements

fn resource(username: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": username,
        "externalId": username,
        "name": {"givenName": "Bench", "familyName": username},
        "displayName": format!("Bench {username}"),
        "emails": [{"type": "work", "value": format!("{username}@bench.example"), "primary": true}],
        "active": true
    })
}

/// Sends each user's look-up and create straight to the target over `concurrency` connections.
async fn raw_capacity(target: &Target, users: usize, concurrency: usize) -> (f64, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        // One client per task: each keeps its own keep-alive connection.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let (next, base, token) = (next.clone(), target.base_url.clone(), target.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= users {
                    break errors;
                }
                let name = format!("raw{i:06}");
                let lookup = http
                    .get(format!(
                        "{base}/Users?filter={}",
                        encode_query(&eq_filter("userName", &name))
                    ))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let lookup_ok = match lookup {
                    Ok(answer) => answer.status().is_success() && answer.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let create = http
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(resource(&name).to_string())
                    .send()
                    .await;
                let create_ok = match create {
                    Ok(answer) => answer.status().as_u16() == 201 && answer.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !lookup_ok || !create_ok {
                    errors += 1;
                }
            }
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap_or(0);
    }
    (users as f64 / started.elapsed().as_secs_f64(), errors)
}

/// Accounts the hub stored for each app, and its failed jobs.
async fn progress(store: &SqlStore, app: &str) -> (usize, usize) {
    let accounts = store
        .query_scalar(&format!("SELECT COUNT(*) FROM app_accounts WHERE app_id = '{app}'"))
        .await
        .expect("count accounts");
    let failed = store
        .query_scalar(&format!(
            "SELECT COUNT(*) FROM sync_jobs WHERE app_id = '{app}' AND status = 'failed'"
        ))
        .await
        .expect("count failed jobs");
    (
        usize::try_from(accounts).unwrap_or(0),
        usize::try_from(failed).unwrap_or(0),
    )
}

/// Waits until each app (its id, and its in-memory target when it has one) has `expected` accounts
/// stored (or failed jobs), printing progress every 5 s; returns the seconds from `started` to each
/// app's last account. Gives up after `limit`. The store is asked often only once the target
/// holds every user (or when there is no in-memory target to ask), otherwise once a second, so
/// that watching costs the hub next to nothing.
async fn wait_for_accounts(
    store: &SqlStore,
    apps: &[(String, Option<Shared>)],
    expected: usize,
    started: Instant,
    limit: Duration,
) -> Vec<f64> {
    let mut finished: Vec<Option<f64>> = vec![None; apps.len()];
    let mut last_look = Instant::now();
    let mut last_print = Instant::now();
    let mut failures = 0;
    while finished.iter().any(Option::is_none) {
        let look = last_look.elapsed() >= Duration::from_secs(1);
        let print = last_print.elapsed() >= Duration::from_secs(5);
        let mut done_total = 0;
        if look {
            failures = 0;
            last_look = Instant::now();
        }
        for (i, (app, target)) in apps.iter().enumerate() {
            if finished[i].is_some() {
                done_total += expected;
                continue;
            }
            let target_done = target.as_ref().is_none_or(|t| t.memory().users.len() >= expected);
            if !(look || print || target_done) {
                continue;
            }
            let (accounts, failed) = progress(store, app).await;
            done_total += accounts;
            failures += failed;
            if accounts + failed >= expected {
                finished[i] = Some(started.elapsed().as_secs_f64());
            }
        }
        if print {
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "  ... {done_total}/{} accounts after {seconds:.0} s ({:.0} users/s so far, {failures} failed jobs)",
                expected * apps.len(),
                done_total as f64 / seconds
            );
            last_print = Instant::now();
        }
        assert!(
            started.elapsed() < limit,
            "provisioning did not finish within {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if failures > 0 {
        println!("  warning: {failures} jobs failed (dead letters): counted as done");
    }
    finished.into_iter().map(|s| s.unwrap_or(f64::NAN)).collect()
}

/// Scenario a on one store: `users` into the in-memory (or scim2) target.
async fn fast(o: &Options, hub: &Hub, store: &SqlStore, kind: &str, raw: f64) -> (String, Target) {
    let target = start_target(&o.target).await;
    let app = hub.connect_app("fast", &target, o.concurrency).await;
    let before = target.requests();
    let started = Instant::now();
    hub.link("fast", "bench").await;
    let seconds = wait_for_accounts(
        store,
        &[(app.clone(), target.state.clone())],
        o.users,
        started,
        Duration::from_secs(3600),
    )
    .await[0];
    let rate = o.users as f64 / seconds;
    let per_user = (target.requests() - before) as f64 / o.users as f64;
    println!(
        "a. fast target, {kind}: {rate:.0} users/s ({} users in {seconds:.1} s, {per_user:.2} requests per user) \
         beside the target's raw capacity {raw:.0} users/s: {:.1}%",
        o.users,
        rate / raw * 100.0
    );
    (app, target)
}

async fn start_target(kind: &str) -> Target {
    match kind {
        "scim2" => start_scim2_target(),
        _ => start_memory_target(Duration::ZERO).await,
    }
}

/// Provisions `users` of `group` into `apps` fresh slow targets at once; prints users/s beside
/// the bound.
async fn slow(o: &Options, hub: &Hub, store: &SqlStore, group: &str, apps: usize, users: usize) {
    let label = if apps == 1 {
        "b. slow target".to_owned()
    } else {
        format!("c. {apps} slow apps at once")
    };
    let name = group;
    let delay = Duration::from_millis(o.delay_ms);
    let mut targets = Vec::new();
    let mut ids = Vec::new();
    for i in 0..apps {
        let target = start_memory_target(delay).await;
        ids.push(hub.connect_app(&format!("{name}{i:02}"), &target, o.concurrency).await);
        targets.push(target);
    }
    let before: Vec<u64> = targets.iter().map(Target::requests).collect();
    let started = Instant::now();
    let names: Vec<String> = (0..apps).map(|i| format!("{name}{i:02}")).collect();
    hub.link_all(&names, group).await;
    let linked = started.elapsed().as_secs_f64() * 1000.0;
    let watched: Vec<_> = ids
        .iter()
        .cloned()
        .zip(targets.iter().map(|t| t.state.clone()))
        .collect();
    let finished = wait_for_accounts(store, &watched, users, started, Duration::from_secs(3600)).await;
    let wall = finished.iter().copied().fold(0.0, f64::max);
    let mut bounds = 0.0;
    let mut per_user_all = Vec::new();
    for (target, before) in targets.iter().zip(&before) {
        let per_user = (target.requests() - before) as f64 / users as f64;
        per_user_all.push(per_user);
        bounds += o.concurrency as f64 / (per_user * delay.as_secs_f64());
    }
    let rate = (users * apps) as f64 / wall;
    let per_user = per_user_all.iter().sum::<f64>() / per_user_all.len() as f64;
    let rates: Vec<f64> = finished.iter().map(|s| users as f64 / s).collect();
    let (p50, _, max) = percentiles(rates.clone(), 100.0);
    let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "{label}: {rate:.0} users/s ({} accounts in {wall:.1} s; {per_user:.2} requests per user counted by the targets) \
         beside the bound {bounds:.0} users/s ({} x concurrency {} / (requests per user x {} ms)): {:.1}%",
        users * apps,
        apps,
        o.concurrency,
        o.delay_ms,
        rate / bounds * 100.0
    );
    if apps > 1 {
        println!("   per app: min {min:.1}, median {p50:.1}, max {max:.1} users/s");
    }
    // Where the wall time went: before the first create, creating, and after the last create
    // until its account was stored (the slowest app's).
    let spans: Vec<(f64, f64)> = targets
        .iter()
        .filter_map(Target::create_span)
        .map(|(first, last)| {
            let ms = |at: Instant| at.saturating_duration_since(started).as_secs_f64() * 1000.0;
            (ms(first), ms(last))
        })
        .collect();
    let first = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let latest_first = spans.iter().map(|s| s.0).fold(0.0, f64::max);
    let earliest_last = spans.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let last = spans.iter().map(|s| s.1).fold(0.0, f64::max);
    let waited = targets.iter().map(Target::mean_wait_ms).sum::<f64>() / targets.len() as f64;
    println!(
        "   first create {first:.0} ms after the policy, last create at {last:.0} ms, last account stored at {:.0} ms; \
         the targets' answers waited {waited:.2} ms on average ({} ms asked)",
        wall * 1000.0,
        o.delay_ms
    );
    if apps > 1 {
        println!(
            "   the {apps} policies were created at once (concurrent requests, all answered within {linked:.0} ms); the apps' first creates came between {first:.0} and \
             {latest_first:.0} ms, their last creates between {earliest_last:.0} and {last:.0} ms"
        );
    }
    for target in targets {
        (target.stop)();
    }
}

/// Makes `count` single changes through the admin API at 20 per second (user created, then added
/// to `group`), while `keep_going` holds; returns the time from each membership change being sent
/// to the target receiving the user's create, in milliseconds.
async fn changes(
    hub: &Hub,
    target: &Target,
    group: &str,
    prefix: &str,
    count: usize,
    keep_going: impl Fn() -> bool,
) -> Vec<f64> {
    let mut sent = Vec::new();
    for i in 0..count {
        if !keep_going() {
            break;
        }
        let tick = Instant::now();
        let name = format!("{prefix}{i:05}");
        hub.expect(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": name, "email": format!("{name}@bench.example")})),
        )
        .await;
        let at = Instant::now();
        hub.expect(
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{group}/members/{name}"),
            None,
        )
        .await;
        sent.push((name, at));
        if let Some(rest) = Duration::from_millis(50).checked_sub(tick.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut latencies = Vec::new();
    for (name, at) in sent {
        let created = loop {
            if let Some(created) = target.created_at(&name) {
                break created;
            }
            assert!(Instant::now() < deadline, "{name} never reached the target");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        latencies.push(created.saturating_duration_since(at).as_secs_f64() * 1000.0);
    }
    latencies
}

fn print_latency(label: &str, latencies: Vec<f64>) {
    if latencies.is_empty() {
        println!("{label}: no samples");
        return;
    }
    let samples = latencies.len();
    let (p50, p99, max) = percentiles(latencies, 99.0);
    println!("{label}: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms over {samples} changes");
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(o) = common::parse_or_exit(options()) else {
        return;
    };
    println!(
        "provision benchmark: scenarios {}, {} users, app concurrency {}, slow targets {} ms, hub `provisio serve` {}",
        o.scenarios,
        o.users,
        o.concurrency,
        o.delay_ms,
        if o.serve_flags.is_empty() {
            "with default settings".to_owned()
        } else {
            o.serve_flags.join(" ")
        }
    );
    let begun = Instant::now();

    // The reference for scenario a: the target's own capacity for the same requests.
    let mut raw = f64::NAN;
    if o.runs('a') {
        let target = start_target(&o.target).await;
        let (rate, errors) = raw_capacity(&target, o.users, o.concurrency).await;
        (target.stop)();
        raw = rate;
        println!(
            "raw target capacity ({} target, {} connections, look-up + create): {rate:.0} users/s ({:.0} requests/s, {errors} errors)",
            o.target,
            o.concurrency,
            rate * 2.0
        );
    }

    // One hub over SQLite for a, d, b and c.
    let database = Database::sqlite();
    let store = provisio::server::open_store(&database.config)
        .await
        .expect("open store");
    println!("seeding the SQLite store");
    if o.runs('a') || o.runs('d') {
        seed(&store, "bench", "user", o.users).await;
        seed(&store, "latency", "none", 0).await;
    }
    if o.runs('b') {
        seed(&store, "slow", "slow", o.slow_users).await;
    }
    if o.runs('c') {
        seed(&store, "slowapps", "many", o.slow_apps_users).await;
    }
    let hub = Hub::start(&database, &o.serve_flags).await;

    let mut fast_app = None;
    if o.runs('a') {
        fast_app = Some(fast(&o, &hub, &store, "SQLite", raw).await);
    }
    if o.runs('d') {
        // The target the changes go to: scenario a's, or a fresh in-memory one.
        let (target, app) = match fast_app.take() {
            Some((_, target)) if target.state.is_some() => (target, "fast"),
            other => {
                if let Some((_, target)) = other {
                    (target.stop)();
                }
                let target = start_memory_target(Duration::ZERO).await;
                hub.connect_app("changes", &target, o.concurrency).await;
                (target, "changes")
            }
        };
        hub.link(app, "latency").await;
        let idle = changes(&hub, &target, "latency", "idle", o.changes, || true).await;
        print_latency("d. change to target at idle", idle);

        let second = start_memory_target(Duration::ZERO).await;
        let busy = hub.connect_app("busy", &second, o.concurrency).await;
        let started = Instant::now();
        hub.link("busy", "bench").await;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (store, busy, done, state) = (store.clone(), busy.clone(), done.clone(), second.state.clone());
            let users = o.users;
            tokio::spawn(async move {
                let seconds =
                    wait_for_accounts(&store, &[(busy, state)], users, started, Duration::from_secs(3600)).await[0];
                done.store(true, Ordering::Relaxed);
                seconds
            })
        };
        let flag = done.clone();
        let loaded = changes(&hub, &target, "latency", "busy", o.changes * 100, move || {
            !flag.load(Ordering::Relaxed)
        })
        .await;
        let seconds = watcher.await.expect("watcher");
        print_latency(
            &format!(
                "d. change to target while another app provisions {} users ({:.0} users/s, {seconds:.1} s)",
                o.users,
                o.users as f64 / seconds
            ),
            loaded,
        );
        println!(
            "   (the second target holds {} users; changes stop when its provisioning ends)",
            second.users()
        );
        (second.stop)();
        (target.stop)();
    }
    if let Some((_, target)) = fast_app {
        (target.stop)();
    }
    if o.runs('b') {
        slow(&o, &hub, &store, "slow", 1, o.slow_users).await;
    }
    if o.runs('c') {
        slow(&o, &hub, &store, "slowapps", o.slow_apps, o.slow_apps_users).await;
    }
    hub.stop();
    store.close().await;

    // Scenario a again on PostgreSQL.
    if o.runs('a') {
        match &o.postgres {
            Some(url) => {
                let database = Database::postgres(url).await;
                let store = provisio::server::open_store(&database.config)
                    .await
                    .expect("open store");
                println!("seeding the {} store", database.kind());
                seed(&store, "bench", "user", o.users).await;
                let hub = Hub::start(&database, &o.serve_flags).await;
                let (_, target) = fast(&o, &hub, &store, "PostgreSQL", raw).await;
                (target.stop)();
                hub.stop();
                store.close().await;
                database.drop_database().await;
            }
            None => println!(
                "a. PostgreSQL: skipped (pass --postgres postgres://user@host/postgres or set PROVISIO_TEST_POSTGRES_URL)"
            ),
        }
    }
    println!("provision benchmark done in {:.0} s", begun.elapsed().as_secs_f64());
}
