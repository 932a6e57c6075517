//! Report search benchmark: fills a store with provisioning report records and measures the
//! searches an administrator makes, through the same service the API calls.
//!
//! Run with `cargo bench --bench reports -- [--records N] [--apps A] [--users U] [--days D]
//! [--queries Q] [--database-url postgres://...]` (defaults: 1,000,000 records, 100 apps,
//! 100,000 users, over 180 days, 200 queries of each kind). See the README.

mod common;
use common::{Rng, percentiles};

use provisio::domain::admin::Actor;
use provisio::domain::job::{Operation, Outcome, Report, SubjectKind};
use provisio::secrets::SecretKey;
use provisio::service::apps::NewApp;
use provisio::service::reports::ReportParams;
use provisio::service::{AppService, ReportService};
use provisio::store::{ReportStore, SqlStore};
use std::time::Instant;
use time::Duration;
use uuid::Uuid;

struct Options {
    records: usize,
    apps: usize,
    users: usize,
    days: i64,
    queries: usize,
    database_url: Option<String>,
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("reports")? else {
        return Ok(None);
    };
    let mut o = Options {
        records: 1_000_000,
        apps: 100,
        users: 100_000,
        days: 180,
        queries: 200,
        database_url: None,
    };
    for (flag, value) in flags {
        let number = || common::number(&flag, &value);
        match flag.as_str() {
            "--records" => o.records = number()?,
            "--apps" => o.apps = number()?.max(1),
            "--users" => o.users = number()?.max(1),
            "--days" => o.days = i64::try_from(number()?.max(1)).map_err(|e| e.to_string())?,
            "--queries" => o.queries = number()?.max(1),
            "--database-url" => o.database_url = Some(value),
            other => common::unknown(other)?,
        }
    }
    Ok(Some(o))
}

fn app_name(i: usize) -> String {
    format!("app{i:03}")
}

fn user_name(i: usize) -> String {
    format!("user{i:06}")
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(o) = common::parse_or_exit(options()) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = match &o.database_url {
        Some(url) => SqlStore::connect(url).await,
        None => SqlStore::open_data_dir(dir.path()).await,
    }
    .expect("open store");
    store.migrate().await.expect("migrate");
    println!(
        "reports benchmark: {} records, {} apps, {} users, {} days, store {}",
        o.records,
        o.apps,
        o.users,
        o.days,
        if o.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );

    // Apps exist in the store, as the app filter resolves names.
    let key = SecretKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").expect("key");
    let apps = AppService::new(store.clone(), key);
    let mut app_ids = Vec::with_capacity(o.apps);
    for i in 0..o.apps {
        let input: NewApp = serde_json::from_value(serde_json::json!({
            "name": app_name(i), "base_url": "http://127.0.0.1:9/v2", "token": "t", "enabled": false
        }))
        .expect("app input");
        app_ids.push(apps.create_app(input, &Actor::System).await.expect("app").id);
    }
    let now = provisio::domain::now();
    let span_micros = o.days * 86_400_000_000;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(4000);
    let operations = [
        Operation::Create,
        Operation::Update,
        Operation::Update,
        Operation::Deactivate,
        Operation::Reactivate,
        Operation::Delete,
    ];
    for n in 0..o.records {
        let app = rng.below(o.apps);
        let user = rng.below(o.users);
        let ago = i64::try_from(rng.next() % span_micros as u64).unwrap_or(0);
        let failed = rng.below(50) == 0;
        batch.push(Report {
            id: Uuid::now_v7(),
            started_at: now - Duration::microseconds(ago),
            duration_ms: i64::try_from(rng.below(400)).unwrap_or(0),
            app_id: app_ids[app],
            app_name: app_name(app),
            subject_kind: SubjectKind::User,
            subject_id: format!("00000000-0000-0000-0000-{user:012}"),
            username: Some(user_name(user)),
            email: Some(format!("{}@example.com", user_name(user))),
            target_id: Some(format!("{app}-{user}")),
            operation: operations[rng.below(operations.len())],
            outcome: if failed { Outcome::Failure } else { Outcome::Success },
            attempt: 1,
            http_method: Some("PATCH".into()),
            http_path: Some(format!("/Users/{app}-{user}")),
            http_status: Some(if failed { 500 } else { 200 }),
            diff: Some(serde_json::json!({"title": {"old": "Engineer", "new": "Lead Engineer"}})),
            message: failed.then(|| "the target failed".to_owned()),
            request_body: Some(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Lead Engineer"}]}"#.into()),
            response_body: None,
            correlation_id: Uuid::now_v7().to_string(),
            cause: format!("change:{n}"),
        });
        if batch.len() == 4000 {
            store.insert_reports(&batch).await.expect("insert");
            batch.clear();
        }
    }
    store.insert_reports(&batch).await.expect("insert");
    let fill = started.elapsed().as_secs_f64();
    println!(
        "filled {} records in {fill:.0} s ({:.0} records/s)",
        o.records,
        o.records as f64 / fill
    );

    let reports = ReportService::new(store.clone());
    let measure = |name: &'static str, params: Vec<ReportParams>| {
        let reports = reports.clone();
        async move {
            let mut samples = Vec::with_capacity(params.len());
            let mut found = 0;
            for p in params {
                let t = Instant::now();
                let page = reports.search(&p).await.expect("search");
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
                found += page.items.len();
            }
            let count = samples.len();
            let (p50, p99, max) = percentiles(samples, 99.0);
            println!(
                "{name:<38} p50 {p50:7.2} ms   p99 {p99:7.2} ms   max {max:7.2} ms   ({count} queries, {found} rows)"
            );
        }
    };
    let pick = |rng: &mut Rng| (user_name(rng.below(o.users)), app_name(rng.below(o.apps)));
    let user_app: Vec<ReportParams> = (0..o.queries)
        .map(|_| {
            let (user, app) = pick(&mut rng);
            ReportParams {
                user: Some(user),
                app: Some(app),
                since: Some("30d".into()),
                ..Default::default()
            }
        })
        .collect();
    measure("user + app + 30 days", user_app).await;
    let recent: Vec<ReportParams> = (0..o.queries)
        .map(|_| ReportParams {
            since: Some("24h".into()),
            ..Default::default()
        })
        .collect();
    measure("no filter, 24 hours, first page", recent).await;
    let by_user: Vec<ReportParams> = (0..o.queries)
        .map(|_| ReportParams {
            user: Some(format!("{}@EXAMPLE.com", pick(&mut rng).0)),
            since: Some("30d".into()),
            ..Default::default()
        })
        .collect();
    measure("email (any case) + 30 days", by_user).await;
    let by_prefix: Vec<ReportParams> = (0..o.queries)
        .map(|_| ReportParams {
            user: Some(pick(&mut rng).0[..9].to_owned()),
            match_mode: Some("prefix".into()),
            ..Default::default()
        })
        .collect();
    measure("username prefix, all time, first page", by_prefix).await;
    let failures: Vec<ReportParams> = (0..o.queries)
        .map(|_| ReportParams {
            app: Some(pick(&mut rng).1),
            outcome: Some("failure".into()),
            since: Some("7d".into()),
            ..Default::default()
        })
        .collect();
    measure("app + failures + 7 days", failures).await;
    store.close().await;
}
