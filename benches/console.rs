//! Console benchmark: fills a store like a large customer's (default 10,000 users, 200 groups,
//! 20 apps with policies and accounts, 1,000,000 provisioning report records), serves it with the
//! real server, logs in like a browser and times every console page it can reach from the
//! dashboard (one page per route, ids and query strings folded), plus the searches an
//! administrator makes. For each page it prints the server's answer time (p50, p95, max over
//! `--repeat` loads on loopback, so network time is nil) and the bytes a browser loads for it
//! (the HTML and every asset it links).
//!
//! Run with `cargo bench --bench console -- [--users N] [--groups G] [--apps A] [--records R]
//! [--repeat K] [--database-url postgres://...]`. See the README.

mod common;
use common::{Rng, percentiles};

use provisio::config::{Config, DatabaseConfig, LogFormat};
use provisio::domain::admin::{Actor, Principal, Role};
use provisio::domain::app::{AccountState, AppAccount};
use provisio::domain::job::{Operation, Outcome, Report, SubjectKind};
use provisio::domain::user::UserSource;
use provisio::service::{AppService, AuthService, DirectoryService};
use provisio::store::{AppStore, ReportStore, SqlStore};
use secrecy::SecretString;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

struct Options {
    users: usize,
    groups: usize,
    apps: usize,
    records: usize,
    repeat: usize,
    database_url: Option<String>,
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("console")? else {
        return Ok(None);
    };
    let mut o = Options {
        users: 10_000,
        groups: 200,
        apps: 20,
        records: 1_000_000,
        repeat: 20,
        database_url: None,
    };
    for (flag, value) in flags {
        let number = || common::number(&flag, &value);
        match flag.as_str() {
            "--users" => o.users = number()?.max(1),
            "--groups" => o.groups = number()?.max(1),
            "--apps" => o.apps = number()?.max(1),
            "--records" => o.records = number()?,
            "--repeat" => o.repeat = number()?.max(1),
            "--database-url" => o.database_url = Some(value),
            other => common::unknown(other)?,
        }
    }
    Ok(Some(o))
}

fn user_name(i: usize) -> String {
    format!("user{i:05}")
}

async fn fill(store: &SqlStore, key: provisio::secrets::SecretKey, o: &Options) {
    let started = Instant::now();
    let directory = DirectoryService::new(store.clone());
    let apps = AppService::new(store.clone(), key);
    let actor = Actor::System;
    for (name, kind) in [("title", "string"), ("language", "string"), ("timezone", "string")] {
        let input = serde_json::from_value(serde_json::json!({"name": name, "type": kind})).expect("attribute");
        directory.create_attribute(input, &actor).await.expect("attribute");
    }
    let mut rng = Rng(0x5eed_0fc0_1450_1e00);
    let mut user_ids = Vec::with_capacity(o.users);
    for i in 0..o.users {
        let input = serde_json::from_value(serde_json::json!({
            "username": user_name(i), "given_name": "Given", "family_name": format!("Family{i}"),
            "display_name": format!("Given Family{i}"), "email": format!("{}@example.com", user_name(i)),
            "attributes": {"title": "Engineer", "language": "en", "timezone": "Europe/Paris"}
        }))
        .expect("user");
        let user = directory
            .create_user(input, UserSource::Local, &actor)
            .await
            .expect("user");
        user_ids.push(user.id);
    }
    println!("  {} users in {:.0} s", o.users, started.elapsed().as_secs_f64());
    let mut group_names = Vec::with_capacity(o.groups);
    for g in 0..o.groups {
        let name = format!("Group {g:03}");
        let input = serde_json::from_value(serde_json::json!({"name": name})).expect("group");
        directory
            .create_group(input, UserSource::Local, &actor)
            .await
            .expect("group");
        group_names.push(name);
    }
    // Every user in two groups.
    for (i, _) in user_ids.iter().enumerate() {
        for g in [i % o.groups, rng.below(o.groups)] {
            directory
                .add_member(&group_names[g], &user_name(i), &actor)
                .await
                .expect("member");
        }
    }
    println!(
        "  {} groups and memberships in {:.0} s",
        o.groups,
        started.elapsed().as_secs_f64()
    );
    let mut app_ids = Vec::with_capacity(o.apps);
    for a in 0..o.apps {
        let input = serde_json::from_value(serde_json::json!({
            "name": format!("App {a:02}"), "base_url": "http://127.0.0.1:9/scim/v2", "token": "bench-token",
            "preset": if a % 2 == 0 { "monday" } else { "generic" }, "enabled": false
        }))
        .expect("app");
        let app = apps.create_app(input, &actor).await.expect("app");
        let policy =
            serde_json::from_value(serde_json::json!({"app": app.id.to_string(), "group": group_names[a % o.groups]}))
                .expect("policy");
        apps.create_policy(policy, &actor).await.expect("policy");
        app_ids.push(app.id);
    }
    // Accounts: every user has one in one app.
    let now = provisio::domain::now();
    for (i, user_id) in user_ids.iter().enumerate() {
        let account = AppAccount {
            app_id: app_ids[i % o.apps],
            user_id: *user_id,
            target_id: format!("t-{i}"),
            target_username: user_name(i),
            state: AccountState::Active,
            fingerprint: String::new(),
            pushed: serde_json::json!({"userName": user_name(i)}),
            deactivated_at: None,
            lost_access: None,
            updated_at: now,
        };
        store.save_account(&account).await.expect("account");
    }
    println!(
        "  {} apps, policies, accounts in {:.0} s",
        o.apps,
        started.elapsed().as_secs_f64()
    );
    let operations = [
        Operation::Create,
        Operation::Update,
        Operation::Update,
        Operation::Deactivate,
    ];
    let mut batch = Vec::with_capacity(4000);
    for n in 0..o.records {
        let app = rng.below(o.apps);
        let user = rng.below(o.users);
        let ago = i64::try_from(rng.next() % (30 * 86_400_000_000u64)).unwrap_or(0);
        let failed = rng.below(40) == 0;
        batch.push(Report {
            id: Uuid::now_v7(),
            started_at: now - time::Duration::microseconds(ago),
            duration_ms: i64::try_from(rng.below(400)).unwrap_or(0),
            app_id: app_ids[app],
            app_name: format!("App {app:02}"),
            subject_kind: SubjectKind::User,
            subject_id: user_ids[user].to_string(),
            username: Some(user_name(user)),
            email: Some(format!("{}@example.com", user_name(user))),
            target_id: Some(format!("t-{user}")),
            operation: operations[rng.below(operations.len())],
            outcome: if failed { Outcome::Failure } else { Outcome::Success },
            attempt: 1,
            http_method: Some("PATCH".into()),
            http_path: Some(format!("/Users/t-{user}")),
            http_status: Some(if failed { 500 } else { 200 }),
            diff: Some(serde_json::json!({"title": {"old": "Engineer", "new": "Lead Engineer"}})),
            message: failed.then(|| "the target failed".to_owned()),
            request_body: None,
            response_body: None,
            correlation_id: Uuid::now_v7().to_string(),
            cause: format!("change:{n}"),
        });
        if batch.len() == 4000 {
            store.insert_reports(&batch).await.expect("reports");
            batch.clear();
        }
    }
    store.insert_reports(&batch).await.expect("reports");
    println!(
        "  {} report records; filled in {:.0} s",
        o.records,
        started.elapsed().as_secs_f64()
    );
}

/// A browser-like visitor: keeps the session cookie.
struct Visitor {
    base: String,
    http: reqwest::Client,
    cookie: String,
}

impl Visitor {
    async fn get(&self, path: &str) -> (u16, String, Duration) {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        (status, body, started.elapsed())
    }
}

fn value_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let from = text.find(key)? + key.len();
    let to = from + text[from..].find('"')?;
    Some(&text[from..to])
}

async fn log_in(base: &str, username: &str, password: &str) -> Visitor {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .expect("login page");
    let login_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("provisio_login="))
        .and_then(|c| c.split(';').next())
        .expect("login cookie")
        .to_owned();
    let html = page.text().await.expect("login html");
    let token = value_after(&html, "name=\"_csrf\" value=\"").expect("login token");
    let answer = http
        .post(format!("{base}/console/login"))
        .header("Cookie", login_cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("username", username), ("password", password), ("_csrf", token)])
                .expect("form"),
        )
        .send()
        .await
        .expect("login");
    let cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("provisio_session="))
        .and_then(|c| c.split(';').next())
        .expect("a session: the login failed")
        .to_owned();
    Visitor {
        base: base.to_owned(),
        http,
        cookie,
    }
}

/// The searches the benchmark asks for by name (a user search, report filters).
fn is_named_search(path: &str) -> bool {
    path.starts_with("/console/users?q=") || path.starts_with("/console/reports?")
}

/// `/console/users/0193...?cursor=x` -> `/console/users/{id}?cursor`: ids folded, query values
/// dropped.
fn route_of(path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let names: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .filter(|name| !name.is_empty())
        .collect();
    let query = if names.is_empty() {
        String::new()
    } else {
        format!("?{}", names.join("&"))
    };
    path.split('/')
        .map(|s| {
            let id_like = s.len() >= 16 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            if id_like { "{id}".to_owned() } else { s.to_owned() }
        })
        .collect::<Vec<_>>()
        .join("/")
        + &query
}

fn links(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("href=\"/console/") {
        let start = at + "href=\"".len();
        let end = start + rest[start..].find('"').unwrap_or(0);
        found.push(rest[start..end].replace("&amp;", "&"));
        rest = &rest[end..];
    }
    found
}

fn assets(page: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for key in ["href=\"/console/assets/", "src=\"/console/assets/"] {
        let mut rest = page;
        while let Some(at) = rest.find(key) {
            let start = at + key.len() - "/console/assets/".len();
            let end = start + rest[start..].find('"').unwrap_or(0);
            found.insert(rest[start..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(o) = common::parse_or_exit(options()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = match &o.database_url {
        Some(url) => DatabaseConfig::Url(SecretString::from(url.clone())),
        None => DatabaseConfig::Sqlite {
            data_dir: dir.path().to_owned(),
        },
    };
    let store = provisio::server::open_store(&database).await.expect("open store");
    println!(
        "console benchmark: {} users, {} groups, {} apps, {} report records, store {}",
        o.users,
        o.groups,
        o.apps,
        o.records,
        if o.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let key_file = dir.path().join("secret.key");
    let key = provisio::secrets::SecretKey::load_or_create(&key_file).expect("key");
    fill(&store, key, &o).await;
    let auth = AuthService::new(store.clone());
    let admin = auth
        .create_admin("bench", Role::Administrator, &Principal::system())
        .await
        .expect("admin");
    let password = "a benchmark password";
    auth.change_password("bench", &admin.password, &SecretString::from(password.to_owned()), None)
        .await
        .expect("password");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let config = Config {
        backups: None,
        network: provisio::config::NetworkConfig::default(),
        listen: listener.local_addr().expect("address"),
        database,
        log_format: LogFormat::Human,
        log_level: "warn".into(),
        max_body_bytes: 1024 * 1024,
        shutdown_timeout: Duration::from_secs(5),
        secret_key_file: key_file,
        request_timeout: Duration::from_secs(5),
        engine: provisio::outbound::EngineConfig::default(),
        report_retention: time::Duration::days(180),
        workers: provisio::outbound::WorkerConfig::default(),
        secure_cookies: false,
        sessions: Default::default(),
        login_throttle: Default::default(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let server_stop = stop.clone();
    let server_store = store.clone();
    let server = tokio::spawn(async move { provisio::server::run(server_store, listener, &config, server_stop).await });
    let visitor = log_in(&base, "bench", password).await;

    // One page per route, found from the dashboard, plus the searches people make.
    let some_user = user_name(o.users / 2);
    let mut queue = vec![
        "/console/".to_owned(),
        format!("/console/users?q={some_user}"),
        "/console/reports".to_owned(),
        format!("/console/reports?user={some_user}"),
        "/console/reports?app=App+03&outcome=failure".to_owned(),
    ];
    let mut routes: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop() {
        if !seen.insert(path.clone()) || path.contains(".csv") || path.starts_with("/console/assets/") {
            continue;
        }
        // The searches listed above are timed each; other pages once per route (ids and the
        // values of query parameters such as paging cursors folded).
        let key = if is_named_search(&path) {
            path.clone()
        } else {
            route_of(&path)
        };
        if routes.contains_key(&key) {
            continue;
        }
        let (status, body, _) = visitor.get(&path).await;
        if status != 200 {
            continue;
        }
        routes.insert(key, path.clone());
        queue.extend(links(&body).into_iter().filter(|l| !seen.contains(l)));
    }
    let mut asset_sizes: BTreeMap<String, usize> = BTreeMap::new();
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>10}",
        "page (route)", "p50 ms", "p95 ms", "max ms", "KB loaded"
    );
    let mut worst = 0.0f64;
    let mut heaviest = 0usize;
    for (route, path) in &routes {
        let mut samples = Vec::with_capacity(o.repeat);
        let mut body = String::new();
        for _ in 0..o.repeat {
            let (status, page, took) = visitor.get(path).await;
            assert_eq!(status, 200, "{path}");
            samples.push(took.as_secs_f64() * 1000.0);
            body = page;
        }
        let mut bytes = body.len();
        for asset in assets(&body) {
            if !asset_sizes.contains_key(&asset) {
                let (_, content, _) = visitor.get(&asset).await;
                asset_sizes.insert(asset.clone(), content.len());
            }
            bytes += asset_sizes[&asset];
        }
        let (p50, p95, max) = percentiles(samples, 95.0);
        worst = worst.max(p95);
        heaviest = heaviest.max(bytes);
        println!(
            "{:<52} {p50:>9.2} {p95:>9.2} {max:>9.2} {:>10.1}",
            route.chars().take(52).collect::<String>(),
            bytes as f64 / 1024.0
        );
    }
    println!(
        "{} pages; slowest p95 {worst:.2} ms; heaviest page with its assets {:.1} KB",
        routes.len(),
        heaviest as f64 / 1024.0
    );
    stop.cancel();
    let _ = server.await;
}
