//! Large-group benchmark: what one membership change and one group read cost through the hub's
//! SCIM server when the group has tens of thousands of members, and how much memory the hub
//! needs meanwhile.
//!
//! Run with `cargo bench --bench group_scale -- [--members N] [--samples S] [--clients C]
//! [--database sqlite|postgres]` (defaults: 30,000 members, 200 samples, 8 clients, SQLite; also
//! `PROVISIO_BENCH_MEMBERS`, `PROVISIO_BENCH_SAMPLES`, `PROVISIO_BENCH_DATABASE`). PostgreSQL is
//! reached at `PROVISIO_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! where a fresh database is created and dropped.
//!
//! The real `provisio serve` binary runs as a child process (so that its memory is its own), with
//! an admin token from `provisio admin-token` and a SCIM token issued through the admin API.
//! Through the SCIM server, C clients create N + S users (`POST /Users`), one group is created and
//! filled with the first N users by PATCH `add members` 1,000 at a time. Then, one request at a
//! time, S times: add one user (`PATCH add members`, answer without members), remove a member
//! picked at random (`PATCH remove members[value eq "id"]`), and read the group without its members
//! (`GET /Groups/{id}?excludedAttributes=members`). p50/p95/max of each are printed, then the
//! size of a full read of the group (checked to hold exactly N members) and the hub's peak
//! resident memory over the whole run (`VmHWM`). Any unexpected answer fails the run (exit 1).

mod common;

use common::{Rng, peak_rss_kib, percentiles};
use provisio::domain::Result as ProvisioResult;
use provisio::store::SqlStore;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCIM_JSON: &str = "application/scim+json";
/// Members added per PATCH while filling the group.
const FILL_BATCH: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Database {
    Sqlite,
    Postgres,
}

struct Options {
    members: usize,
    samples: usize,
    clients: usize,
    database: Database,
}

fn parse_database(text: &str) -> Result<Database, String> {
    match text {
        "sqlite" => Ok(Database::Sqlite),
        "postgres" | "postgresql" => Ok(Database::Postgres),
        other => Err(format!("--database must be sqlite or postgres, not {other}")),
    }
}

fn options() -> Result<Option<Options>, String> {
    let Some(flags) = common::flags("group_scale")? else {
        return Ok(None);
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut options = Options {
        members: 30_000,
        samples: 200,
        clients: 8,
        database: Database::Sqlite,
    };
    if let Some(v) = env("PROVISIO_BENCH_MEMBERS") {
        options.members = common::positive("PROVISIO_BENCH_MEMBERS", &v)?;
    }
    if let Some(v) = env("PROVISIO_BENCH_SAMPLES") {
        options.samples = common::positive("PROVISIO_BENCH_SAMPLES", &v)?;
    }
    if let Some(v) = env("PROVISIO_BENCH_DATABASE") {
        options.database = parse_database(&v)?;
    }
    for (flag, value) in flags {
        match flag.as_str() {
            "--members" => options.members = common::positive(&flag, &value)?,
            "--samples" => options.samples = common::positive(&flag, &value)?,
            "--clients" => options.clients = common::positive(&flag, &value)?,
            "--database" => options.database = parse_database(&value)?,
            other => common::unknown(other)?,
        }
    }
    if options.samples > options.members {
        return Err("--samples must not exceed --members".into());
    }
    Ok(Some(options))
}

/// The database the hub runs on, and how to remove it afterwards.
struct Storage {
    flags: Vec<String>,
    _dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Storage {
    async fn new(database: Database) -> ProvisioResult<Storage> {
        let dir =
            tempfile::tempdir().map_err(|e| provisio::domain::Error::Storage(format!("temporary directory: {e}")))?;
        match database {
            Database::Sqlite => Ok(Storage {
                flags: vec!["--data-dir".into(), dir.path().display().to_string()],
                _dir: dir,
                postgres: None,
            }),
            Database::Postgres => {
                let admin_url = std::env::var("PROVISIO_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
                let name = format!("provisio_bench_{}", uuid::Uuid::now_v7().simple());
                let admin = SqlStore::connect(&admin_url).await?;
                admin.execute_raw(&format!("CREATE DATABASE {name}")).await?;
                admin.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .unwrap_or(admin_url.clone());
                Ok(Storage {
                    flags: vec!["--database-url".into(), format!("{base}/{name}")],
                    _dir: dir,
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    async fn remove(self) {
        if let Some((admin_url, name)) = &self.postgres
            && let Ok(admin) = SqlStore::connect(admin_url).await
        {
            let _ = admin.execute_raw(&format!("DROP DATABASE IF EXISTS {name}")).await;
            admin.close().await;
        }
    }
}

/// Where SCIM requests go, and the token they carry.
#[derive(Clone)]
struct Scim {
    base_url: String,
    token: String,
}

/// `provisio serve` as a child process.
struct Hub {
    child: Child,
    scim: Scim,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_hub(storage: &Storage) -> Result<Hub, String> {
    let binary = env!("CARGO_BIN_EXE_provisio");
    let output = Command::new(binary)
        .arg("admin-token")
        .args(&storage.flags)
        .output()
        .map_err(|e| format!("provisio admin-token: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "provisio admin-token: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let admin_token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let key_file = storage._dir.path().join("secret.key");
    let child = Command::new(binary)
        .arg("serve")
        .args(&storage.flags)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--secret-key-file",
            &key_file.display().to_string(),
            "--log-level",
            "error",
            // One token drives the hub far beyond the default 1,000 requests a second.
            "--rate-limit",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("provisio serve: {e}"))?;
    let base_url = format!("http://127.0.0.1:{port}");
    let mut hub = Hub {
        child,
        scim: Scim {
            base_url: format!("{base_url}/scim/v2"),
            token: String::new(),
        },
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = http.get(format!("{base_url}/healthz")).send().await
            && response.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("provisio serve did not answer within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let issued: Value = http
        .post(format!("{base_url}/api/v1/scim-tokens"))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "group-scale bench"}))
        .send()
        .await
        .map_err(|e| format!("SCIM token: {e}"))?
        .json()
        .await
        .map_err(|e| format!("SCIM token: {e}"))?;
    hub.scim.token = issued["secret"]
        .as_str()
        .ok_or_else(|| format!("no SCIM token secret in {issued}"))?
        .to_owned();
    Ok(hub)
}

/// One SCIM request; the status and the parsed body (`Null` when empty).
async fn send(
    http: &reqwest::Client,
    scim: &Scim,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value, usize), String> {
    let mut request = http
        .request(method.clone(), format!("{}{path}", scim.base_url))
        .bearer_auth(&scim.token)
        .header("accept", SCIM_JSON);
    if let Some(body) = body {
        request = request.header("content-type", SCIM_JSON).body(body.to_string());
    }
    let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).map_err(|e| format!("{method} {path}: {status} answer is not JSON: {e}"))?
    };
    Ok((status, value, text.len()))
}

fn expect(status: u16, wanted: u16, what: &str, body: &Value) -> Result<(), String> {
    if status == wanted {
        Ok(())
    } else {
        Err(format!("{what}: expected {wanted}, got {status}: {body}"))
    }
}

/// Creates `count` users with `clients` concurrent clients; returns their ids in order.
async fn create_users(scim: &Scim, count: usize, clients: usize) -> Result<Vec<String>, String> {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let http = reqwest::Client::new();
        let scim = scim.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (client..count).step_by(clients) {
                let body = json!({"schemas": [USER_SCHEMA], "userName": format!("member{i:06}"),
                    "name": {"givenName": "Member", "familyName": format!("{i}")},
                    "emails": [{"value": format!("member{i:06}@example.com"), "type": "work", "primary": true}]});
                let (status, created, _) = send(&http, &scim, reqwest::Method::POST, "/Users", Some(body)).await?;
                expect(status, 201, "POST /Users", &created)?;
                let id = created["id"].as_str().ok_or("a created user without id")?.to_owned();
                out.push((i, id));
            }
            Ok::<_, String>(out)
        }));
    }
    let mut ids = vec![String::new(); count];
    for task in tasks {
        for (i, id) in task.await.map_err(|e| e.to_string())?? {
            ids[i] = id;
        }
    }
    Ok(ids)
}

fn members_patch(op: &str, path: String, ids: &[String]) -> Value {
    let mut operation = json!({"op": op, "path": path});
    if !ids.is_empty() {
        operation["value"] = Value::Array(ids.iter().map(|id| json!({"value": id})).collect());
    }
    json!({"schemas": [PATCH_SCHEMA], "Operations": [operation]})
}

fn report(name: &str, samples: Vec<f64>) -> f64 {
    let (p50, p95, max) = percentiles(samples, 95.0);
    println!("  {name:<44} p50 {p50:>8.2} ms   p95 {p95:>8.2} ms   max {max:>8.2} ms");
    p50
}

async fn run(options: &Options, hub: &Hub) -> Result<(), String> {
    let http = reqwest::Client::new();
    let scim = &hub.scim;
    let started = Instant::now();
    let users = create_users(scim, options.members + options.samples, options.clients).await?;
    let seeded = started.elapsed().as_secs_f64();
    println!(
        "  created {} users in {seeded:.1} s ({:.0}/s, {} clients)",
        users.len(),
        users.len() as f64 / seeded,
        options.clients
    );
    let (status, group, _) = send(
        &http,
        scim,
        reqwest::Method::POST,
        "/Groups",
        Some(json!({"schemas": [GROUP_SCHEMA], "displayName": "All employees"})),
    )
    .await?;
    expect(status, 201, "POST /Groups", &group)?;
    let group_id = group["id"].as_str().ok_or("a created group without id")?.to_owned();
    let lean = format!("/Groups/{group_id}?excludedAttributes=members");
    let fill_started = Instant::now();
    for batch in users[..options.members].chunks(FILL_BATCH) {
        let body = members_patch("add", "members".into(), batch);
        let (status, answer, _) = send(&http, scim, reqwest::Method::PATCH, &lean, Some(body)).await?;
        expect(status, 200, "PATCH add members (fill)", &answer)?;
    }
    println!(
        "  filled the group with {} members in {:.1} s ({FILL_BATCH} per PATCH)",
        options.members,
        fill_started.elapsed().as_secs_f64()
    );
    let (mut adds, mut removes, mut reads) = (Vec::new(), Vec::new(), Vec::new());
    let mut version = String::new();
    // Each sample adds a new user and removes a member picked at random (each at most once), so
    // that the group keeps its size.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut pool: Vec<usize> = (0..options.members).collect();
    for user in &users[options.members..] {
        let t = Instant::now();
        let body = members_patch("add", "members".into(), std::slice::from_ref(user));
        let (status, answer, _) = send(&http, scim, reqwest::Method::PATCH, &lean, Some(body)).await?;
        adds.push(t.elapsed().as_secs_f64() * 1000.0);
        expect(status, 200, "PATCH add one member", &answer)?;
        if answer.get("members").is_some() {
            return Err(format!(
                "the answer carries members although they were excluded: {answer}"
            ));
        }
        let t = Instant::now();
        let leaving = &users[pool.swap_remove(rng.below(pool.len()))];
        let body = members_patch("remove", format!("members[value eq \"{leaving}\"]"), &[]);
        let (status, answer, _) = send(&http, scim, reqwest::Method::PATCH, &lean, Some(body)).await?;
        removes.push(t.elapsed().as_secs_f64() * 1000.0);
        expect(status, 200, "PATCH remove one member", &answer)?;
        let t = Instant::now();
        let (status, answer, _) = send(&http, scim, reqwest::Method::GET, &lean, None).await?;
        reads.push(t.elapsed().as_secs_f64() * 1000.0);
        expect(status, 200, "GET group without members", &answer)?;
        let now = answer["meta"]["version"].as_str().unwrap_or_default().to_owned();
        if now == version {
            return Err(format!("the group's version did not move: {now}"));
        }
        version = now;
    }
    println!(
        "  with {} members, {} samples each, one request at a time:",
        options.members, options.samples
    );
    let add = report("PATCH add one member", adds);
    let remove = report("PATCH remove one member (value filter)", removes);
    let read = report("GET group, excludedAttributes=members", reads);
    let t = Instant::now();
    let (status, full, bytes) = send(&http, scim, reqwest::Method::GET, &format!("/Groups/{group_id}"), None).await?;
    let full_ms = t.elapsed().as_secs_f64() * 1000.0;
    expect(status, 200, "GET group with members", &full)?;
    let count = full["members"].as_array().map_or(0, Vec::len);
    if count != options.members {
        return Err(format!("the group has {count} members, not {}", options.members));
    }
    println!(
        "  GET group with its {count} members: {full_ms:.1} ms, {:.1} MB",
        bytes as f64 / 1e6
    );
    let peak = peak_rss_kib(hub.child.id()).ok_or("no VmHWM in /proc")?;
    println!(
        "  hub peak resident memory (VmHWM), whole run: {:.1} MB",
        peak as f64 / 1024.0
    );
    println!(
        "  acceptance: add p50 {add:.2} ms < 10, remove p50 {remove:.2} ms < 10, read p50 {read:.2} ms < 5, peak {:.0} MB < 150",
        peak as f64 / 1024.0
    );
    Ok(())
}

#[tokio::main]
async fn main() {
    provisio::install_crypto_provider();
    let Some(options) = common::parse_or_exit(options()) else {
        return;
    };
    println!(
        "group_scale: {} members, {} samples, {:?}, provisio serve (release)",
        options.members, options.samples, options.database
    );
    let storage = match Storage::new(options.database).await {
        Ok(storage) => storage,
        Err(e) => {
            eprintln!("group_scale: cannot prepare the database: {e}");
            std::process::exit(1);
        }
    };
    let outcome = match start_hub(&storage).await {
        Ok(hub) => {
            let outcome = run(&options, &hub).await;
            drop(hub);
            outcome
        }
        Err(e) => Err(e),
    };
    storage.remove().await;
    if let Err(message) = outcome {
        eprintln!("group_scale failed: {message}");
        std::process::exit(1);
    }
}
