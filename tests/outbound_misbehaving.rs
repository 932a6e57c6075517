//! Targets that misbehave are reported truthfully, on SQLite and PostgreSQL: a create answered
//! 201 without an id fails the job (and the account is found by look-up afterwards, never
//! created twice), an answer larger than the cap fails the job without being read whole; and app
//! base URLs at link-local addresses (cloud metadata) are refused unless the server allows them.
//! Each misbehaving target is a small SCIM server started here on 127.0.0.1.

mod common;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Json, Path, Query, State};
use axum::http::StatusCode as AxumStatus;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{Backend, TestDatabase, TestHub};
use provisio::domain::Error;
use provisio::domain::admin::Actor;
use provisio::secrets::SecretKey;
use provisio::service::apps::{AppService, NewApp};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

backend_tests!(
    create_without_id_fails_and_is_never_duplicated,
    an_oversized_answer_fails_and_is_not_read_whole,
    link_local_urls_are_refused_and_change_nothing,
    link_local_urls_are_accepted_when_allowed,
);

/// Size of the oversized answer.
const FLOOD_BYTES: u64 = 50 * 1024 * 1024;
/// The engine's default answer cap.
const CAP: usize = provisio::outbound::scim::MAX_ANSWER_BYTES;

/// How the target misbehaves on `POST /Users`.
#[derive(Clone, Copy, PartialEq)]
enum Misbehaviour {
    /// Stores the user but answers 201 without its id.
    NoId,
    /// Answers 201 with a 50 MB body.
    Flood,
}

/// A SCIM target that answers the connection check and look-ups properly and misbehaves on create.
struct Target {
    mode: Misbehaviour,
    users: Mutex<Vec<Value>>,
    creates: AtomicUsize,
    /// Bytes of the flood handed to the HTTP server.
    flooded: Arc<AtomicU64>,
}

struct Flood {
    left: u64,
    sent: Arc<AtomicU64>,
}

static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];

impl futures_core::Stream for Flood {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK.len() as u64);
        self.left -= n;
        self.sent.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Bytes::from_static(&CHUNK[..n as usize]))))
    }
}

fn list(resources: Vec<Value>) -> Json<Value> {
    Json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": resources.len(),
        "Resources": resources,
    }))
}

async fn service_provider_config() -> Json<Value> {
    Json(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "filter": {"supported": true, "maxResults": 100},
        "bulk": {"supported": false},
        "etag": {"supported": false},
    }))
}

async fn search(State(target): State<Arc<Target>>, Query(query): Query<HashMap<String, String>>) -> Json<Value> {
    let users = target.users.lock().unwrap().clone();
    match query.get("filter") {
        // `userName eq "alice"`
        Some(filter) => {
            let wanted = filter.split('"').nth(1).unwrap_or_default().to_lowercase();
            list(
                users
                    .into_iter()
                    .filter(|u| u["userName"].as_str().map(str::to_lowercase) == Some(wanted.clone()))
                    .collect(),
            )
        }
        None => list(users),
    }
}

async fn create(State(target): State<Arc<Target>>, Json(mut user): Json<Value>) -> Response {
    target.creates.fetch_add(1, Ordering::SeqCst);
    let answer = user.clone();
    match target.mode {
        Misbehaviour::NoId => {
            user["id"] = json!(uuid::Uuid::now_v7().to_string());
            target.users.lock().unwrap().push(user);
            (AxumStatus::CREATED, Json(answer)).into_response()
        }
        Misbehaviour::Flood => {
            let flood = Flood {
                left: FLOOD_BYTES,
                sent: target.flooded.clone(),
            };
            (AxumStatus::CREATED, Body::from_stream(flood)).into_response()
        }
    }
}

async fn patch(State(target): State<Arc<Target>>, Path(id): Path<String>) -> Response {
    let users = target.users.lock().unwrap();
    match users.iter().find(|u| u["id"] == id.as_str()) {
        Some(user) => Json(user.clone()).into_response(),
        None => AxumStatus::NOT_FOUND.into_response(),
    }
}

/// Starts a target; returns its SCIM base URL.
async fn start_target(mode: Misbehaviour) -> (String, Arc<Target>) {
    let target = Arc::new(Target {
        mode,
        users: Mutex::new(Vec::new()),
        creates: AtomicUsize::new(0),
        flooded: Arc::new(AtomicU64::new(0)),
    });
    let app = Router::new()
        .route("/scim/ServiceProviderConfig", get(service_provider_config))
        .route("/scim/Users", get(search).post(create))
        .route("/scim/Users/{id}", get(patch).patch(patch))
        .with_state(target.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/scim"), target)
}

/// Connects an app to a new target and assigns `username` to it; returns the app id.
async fn provision_one(hub: &TestHub, name: &str, base_url: &str, username: &str) -> String {
    let app = hub
        .connect_app(json!({"name": name, "base_url": base_url, "token": "target-token"}))
        .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    hub.post("/api/v1/groups", json!({"name": "Staff"})).await;
    hub.post("/api/v1/policies", json!({"app": name, "group": "Staff"}))
        .await;
    hub.post(
        "/api/v1/users",
        json!({"username": username, "email": format!("{username}@example.com")}),
    )
    .await;
    let (status, _) = hub
        .call(Method::PUT, &format!("/api/v1/groups/Staff/members/{username}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.settle(&app_id).await;
    app_id
}

async fn dead_letters(hub: &TestHub, app: &str) -> Vec<Value> {
    hub.get(&format!("/api/v1/apps/{app}/dead-letters"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn reports(hub: &TestHub, query: &str) -> Vec<Value> {
    hub.get(&format!("/api/v1/reports?{query}")).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn create_without_id_fails_and_is_never_duplicated(backend: Backend) {
    let (base_url, target) = start_target(Misbehaviour::NoId).await;
    let hub = TestHub::start(backend).await;
    let app_id = provision_one(&hub, "NoId", &base_url, "alice").await;
    assert_eq!(target.creates.load(Ordering::SeqCst), 1);

    // The job failed (a dead letter) and the report says why, with the target's status.
    let dead = dead_letters(&hub, "NoId").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("without an id"),
        "{dead:?}"
    );
    let failures = reports(&hub, "user=alice&outcome=failure").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["operation"], "create");
    assert_eq!(failures[0]["http_status"], 201);
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap()
            .contains("the target answered 201 without an id"),
        "{failures:?}"
    );
    assert!(
        reports(&hub, "user=alice&outcome=success").await.is_empty(),
        "no successful create is on record"
    );
    assert!(
        hub.get("/api/v1/apps/NoId/accounts")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Asked again: the account is found by look-up and adopted, not created a second time.
    let (status, body) = hub
        .call(Method::POST, "/api/v1/apps/NoId/dead-letters/retry", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    hub.settle(&app_id).await;
    assert_eq!(target.creates.load(Ordering::SeqCst), 1, "no duplicate create");
    assert!(dead_letters(&hub, "NoId").await.is_empty());
    let accounts = hub.get("/api/v1/apps/NoId/accounts").await;
    let remote_id = target.users.lock().unwrap()[0]["id"].clone();
    assert_eq!(accounts[0]["target_id"], remote_id, "{accounts}");
    let adopted = reports(&hub, "user=alice&operation=adopt&outcome=success").await;
    assert_eq!(adopted.len(), 1, "{adopted:?}");

    // The next change updates the same account.
    let (status, _) = hub
        .call(
            Method::PATCH,
            "/api/v1/users/alice",
            Some(json!({"given_name": "Alice"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    hub.settle(&app_id).await;
    assert_eq!(target.creates.load(Ordering::SeqCst), 1);
    assert_eq!(target.users.lock().unwrap().len(), 1);
    assert_eq!(
        reports(&hub, "user=alice&operation=update&outcome=success").await.len(),
        1
    );
    hub.stop().await;
}

async fn an_oversized_answer_fails_and_is_not_read_whole(backend: Backend) {
    let (base_url, target) = start_target(Misbehaviour::Flood).await;
    let hub = TestHub::start(backend).await;
    provision_one(&hub, "Flood", &base_url, "bob").await;
    assert_eq!(
        target.creates.load(Ordering::SeqCst),
        1,
        "a permanent failure is not retried"
    );
    let reason = format!("the target's answer exceeded {CAP} bytes");
    let failures = reports(&hub, "user=bob&outcome=failure").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["operation"], "create");
    assert_eq!(failures[0]["http_status"], 201);
    assert!(
        failures[0]["message"].as_str().unwrap().contains(&reason),
        "{failures:?}"
    );
    let dead = dead_letters(&hub, "Flood").await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0]["last_error"].as_str().unwrap().contains(&reason), "{dead:?}");
    // The hub hung up after the cap: most of the answer was never even handed to the socket.
    let sent = target.flooded.load(Ordering::SeqCst);
    println!("the target produced {sent} of {FLOOD_BYTES} bytes");
    assert!(sent < FLOOD_BYTES / 2, "the target produced {sent} bytes");
    hub.stop().await;
}

const REFUSED: [&str; 3] = [
    "http://169.254.169.254/scim",
    "http://[fe80::1]/scim",
    "http://[::ffff:169.254.169.254]/",
];

async fn link_local_urls_are_refused_and_change_nothing(backend: Backend) {
    let (base_url, _target) = start_target(Misbehaviour::NoId).await;
    let hub = TestHub::start(backend).await;
    // Loopback stays allowed.
    let app = hub
        .connect_app(json!({"name": "Local", "base_url": base_url, "token": "target-token"}))
        .await;
    let id = app["id"].as_str().unwrap().to_owned();
    let before = hub.get("/api/v1/apps").await;
    for url in REFUSED {
        let (status, body) = hub
            .call(
                Method::POST,
                "/api/v1/apps",
                Some(json!({"name": "Metadata", "base_url": url, "token": "t"})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["error"]["field"], "base_url", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("link-local") && message.contains("--allow-link-local-targets"),
            "{message}"
        );
        let (status, body) = hub
            .call(
                Method::PATCH,
                &format!("/api/v1/apps/{id}"),
                Some(json!({"name": "Renamed", "base_url": url})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("link-local"),
            "{body}"
        );
        assert_eq!(hub.get("/api/v1/apps").await, before, "{url}: nothing changed");
    }
    hub.stop().await;
}

async fn link_local_urls_are_accepted_when_allowed(backend: Backend) {
    // Through the service, without a running engine: with the setting on, the app is stored (a
    // hub would then connect to the address, which these tests must not).
    let db = TestDatabase::new(backend).await;
    let store = db.store().await;
    let key_dir = tempfile::tempdir().unwrap();
    let key = SecretKey::load_or_create(&key_dir.path().join("secret.key")).unwrap();
    let new_app = |name: &str, url: &str| NewApp {
        name: name.into(),
        base_url: url.into(),
        token: "t".to_owned().into(),
        preset: None,
        mapping: None,
        features: None,
        deprovision: None,
        enabled: Some(false),
        flow: None,
        create_attributes: false,
    };
    let refusing = AppService::new(store.clone(), key.clone());
    let refused = refusing
        .create_app(new_app("Refused", REFUSED[0]), &Actor::System)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, Error::Validation { ref field, .. } if field == "base_url"),
        "{refused}"
    );
    let allowing = AppService::new(store.clone(), key).allow_link_local_targets(true);
    for (i, url) in REFUSED.iter().enumerate() {
        let app = allowing
            .create_app(new_app(&format!("Metadata {i}"), url), &Actor::System)
            .await
            .unwrap();
        assert_eq!(app.base_url, url.trim_end_matches('/'));
    }
    assert_eq!(allowing.list_apps().await.unwrap().len(), REFUSED.len());
    store.close().await;
}
