//! Input that looks like something else is refused and changes nothing: names with invisible or
//! format characters (through the admin API and the SCIM server), names in another Unicode
//! normal form (stored as NFC, so they clash with the name they look like), and page sizes out of
//! range. Both databases.

mod common;

use common::{Backend, TestHub};
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_tests!(look_alike_names_are_refused, page_sizes_out_of_range_are_refused);

async fn look_alike_names_are_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    let scim_token = hub.post("/api/v1/scim-tokens", json!({"name": "idp"})).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    hub.post("/api/v1/users", json!({"username": "admin"})).await;
    hub.post("/api/v1/groups", json!({"name": "Admins"})).await;
    let changes = hub.changes().await.len();

    for name in [
        "adm\u{200b}in",
        "admin\u{200d}",
        "\u{202e}nimda",
        "ad\u{00a0}min",
        "\u{feff}admin",
    ] {
        let (status, body) = hub
            .call(Method::POST, "/api/v1/users", Some(json!({"username": name})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        assert_eq!(body["error"]["field"], "username");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("invisible"),
            "{body}"
        );
        let (status, body) = hub
            .call(Method::PATCH, "/api/v1/users/admin", Some(json!({"username": name})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        let (status, body) = hub
            .call(
                Method::POST,
                "/api/v1/groups",
                Some(json!({"name": format!("Admins{name}")})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        let response = hub
            .http
            .post(format!("{}/scim/v2/Users", hub.base_url))
            .bearer_auth(&scim_token)
            .header("Content-Type", "application/scim+json")
            .body(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "SCIM {name:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["scimType"], "invalidValue", "{body}");
    }
    assert_eq!(hub.changes().await.len(), changes, "refused names change nothing");
    assert_eq!(hub.get("/api/v1/users").await["items"].as_array().unwrap().len(), 1);

    // The same name in another normal form is the same name.
    let created = hub.post("/api/v1/users", json!({"username": "jose\u{301}"})).await;
    assert_eq!(created["username"], "jos\u{e9}");
    let (status, body) = hub
        .call(Method::POST, "/api/v1/users", Some(json!({"username": "jos\u{e9}"})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(hub.get("/api/v1/users/jos%C3%A9").await["id"], created["id"]);
    hub.stop().await;
}

async fn page_sizes_out_of_range_are_refused(backend: Backend) {
    let hub = TestHub::start(backend).await;
    for path in [
        "/api/v1/users?limit=0",
        "/api/v1/users?limit=1001",
        "/api/v1/groups?limit=0",
        "/api/v1/changes?limit=0",
        "/api/v1/reports?limit=0",
        "/api/v1/reports?limit=5000",
    ] {
        let (status, body) = hub.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("limit"),
            "{path}: {body}"
        );
    }
    let (status, _) = hub.call(Method::GET, "/api/v1/users?limit=1000", None).await;
    assert_eq!(status, StatusCode::OK);
    hub.stop().await;
}
