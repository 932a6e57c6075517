//! Group commit on the directory write path, on SQLite and PostgreSQL: concurrent writers from the
//! admin API and the SCIM server share transactions, each is answered after its commit, and a
//! writer that fails (a username taken inside its own batch, a group naming a user that does not
//! exist after its row was written) is undone alone while the rest of its batch is stored.

mod common;

use common::{Backend, TestHub};
use provisio::domain::Error;
use provisio::domain::admin::Actor;
use provisio::domain::user::{NewUser, UserSource};
use provisio::service::DirectoryService;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

backend_tests!(
    concurrent_writers_share_commits_and_a_failing_one_harms_none,
    a_batch_of_new_users_is_one_write_and_a_clash_fails_alone,
);

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The value of the counter `name` in the hub's `/metrics`.
async fn counter(hub: &TestHub, name: &str) -> u64 {
    let value = common::metric(&hub.http, &hub.base_url, name).await;
    value.unwrap_or_else(|| panic!("{name} in /metrics")) as u64
}

/// What one concurrent writer was answered.
enum Answer {
    User {
        name: String,
        status: StatusCode,
    },
    Group {
        name: String,
        valid: bool,
        status: StatusCode,
    },
}

async fn concurrent_writers_share_commits_and_a_failing_one_harms_none(backend: Backend) {
    let hub = Arc::new(TestHub::start(backend).await);
    let issued = hub.post("/api/v1/scim-tokens", json!({"name": "okta"})).await;
    let scim_token = issued["secret"].as_str().expect("secret").to_owned();
    let member = hub.post("/api/v1/users", json!({"username": "member"})).await;
    let member_id = member["id"].as_str().expect("id").to_owned();
    let batches_before = counter(&hub, "provisio_directory_write_batches_total").await;
    let writes_before = counter(&hub, "provisio_directory_writes_total").await;

    let mut writers = Vec::new();
    // 48 users through the admin API; 16 of the names asked for twice, the second time in
    // another case, so that exactly one of each pair is stored.
    for i in 0..64 {
        let hub = hub.clone();
        let name = if i < 48 {
            format!("user{i:02}")
        } else {
            format!("USER{:02}", i - 48)
        };
        writers.push(tokio::spawn(async move {
            let (status, body) = hub
                .call(Method::POST, "/api/v1/users", Some(json!({"username": name})))
                .await;
            assert!(
                status == StatusCode::CREATED || status == StatusCode::CONFLICT,
                "{name}: {status} {body}"
            );
            Answer::User { name, status }
        }));
    }
    // 24 groups through the SCIM server; every third names a member that does not exist, which
    // is found only after the group's row was written.
    for i in 0..24 {
        let (hub, token, member_id) = (hub.clone(), scim_token.clone(), member_id.clone());
        writers.push(tokio::spawn(async move {
            let name = format!("group{i:02}");
            let valid = i % 3 != 0;
            let value = if valid {
                member_id
            } else {
                format!("0192f0c4-0000-7000-8000-{i:012}")
            };
            let body = json!({"schemas": [GROUP], "displayName": name, "members": [{"value": value}]});
            let response = hub
                .http
                .post(format!("{}/scim/v2/Groups", hub.base_url))
                .bearer_auth(&token)
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .send()
                .await
                .expect("SCIM create");
            Answer::Group {
                name,
                valid,
                status: response.status(),
            }
        }));
    }
    let mut answers = Vec::new();
    for writer in writers {
        answers.push(writer.await.expect("writer"));
    }

    // Every answer says what is stored.
    let mut created_users = BTreeSet::new();
    for answer in &answers {
        match answer {
            Answer::User { name, status } => {
                let (found, body) = hub.call(Method::GET, &format!("/api/v1/users/{name}"), None).await;
                assert_eq!(found, StatusCode::OK, "{name}: either spelling is stored: {body}");
                if *status == StatusCode::CREATED {
                    assert_eq!(
                        body["username"],
                        name.as_str(),
                        "the stored spelling is the one answered 201"
                    );
                    created_users.insert(name.to_lowercase());
                }
            }
            Answer::Group { name, valid, status } => {
                let expected = if *valid {
                    StatusCode::CREATED
                } else {
                    StatusCode::BAD_REQUEST
                };
                assert_eq!(*status, expected, "{name}");
                let (found, body) = hub.call(Method::GET, &format!("/api/v1/groups/{name}"), None).await;
                if *valid {
                    assert_eq!(found, StatusCode::OK, "{name}: {body}");
                    assert_eq!(body["member_count"], 1, "{name}: {body}");
                } else {
                    assert_eq!(
                        found,
                        StatusCode::NOT_FOUND,
                        "{name} was refused, so nothing of it is stored"
                    );
                }
            }
        }
    }
    assert_eq!(created_users.len(), 48, "one of each pair of names was created");

    // The change log holds exactly the stored changes, gap-free: 1 user, 48 users, 16 groups and
    // their 16 memberships (before that: the member's creation).
    let changes = hub.changes().await;
    let seqs: Vec<i64> = changes.iter().map(|c| c["seq"].as_i64().expect("seq")).collect();
    assert_eq!(
        seqs,
        (1..=81).collect::<Vec<_>>(),
        "gap-free: nothing of a refused writer"
    );
    let count = |entity: &str, op: &str| {
        changes
            .iter()
            .filter(|c| c["entity"] == entity && c["operation"] == op)
            .count()
    };
    assert_eq!(count("user", "created"), 49);
    assert_eq!(count("group", "created"), 16);
    assert_eq!(count("membership", "added"), 16);

    // The writers shared transactions: fewer batches than writes.
    let batches = counter(&hub, "provisio_directory_write_batches_total").await - batches_before;
    let writes = counter(&hub, "provisio_directory_writes_total").await - writes_before;
    assert!(writes >= 64, "every stored write went through a batch: {writes}");
    assert!(
        batches < writes,
        "{writes} writes in {batches} batches: some shared one"
    );
}

fn new_user(body: serde_json::Value) -> NewUser {
    serde_json::from_value(body).expect("a new user")
}

/// `DirectoryService::create_users` (an LDAP source's first sync creates thousands this way):
/// a batch is one write whose users are stored with their attribute values, SCIM index rows and
/// change events; when one of a batch is refused, the others are still created, one by one.
async fn a_batch_of_new_users_is_one_write_and_a_clash_fails_alone(backend: Backend) {
    let hub = TestHub::start(backend).await;
    hub.post("/api/v1/attributes", json!({"name": "title", "type": "string"}))
        .await;
    let issued = hub.post("/api/v1/scim-tokens", json!({"name": "okta"})).await;
    let scim_token = issued["secret"].as_str().expect("secret").to_owned();
    let directory = DirectoryService::new(hub.store.clone());
    let actor = Actor::System;
    let counters = hub.store.write_batch_counters();

    let inputs: Vec<NewUser> = (0..120)
        .map(|i| {
            new_user(json!({
                "username": format!("bulk{i:03}"),
                "email": format!("bulk{i:03}@example.com"),
                "given_name": "Bulk",
                "family_name": format!("User {i}"),
                "attributes": {"title": format!("Engineer {i}")}
            }))
        })
        .collect();
    let writes_before = counters.writes.get();
    let created = directory.create_users(inputs, UserSource::Ldap, &actor).await;
    assert_eq!(counters.writes.get() - writes_before, 1, "the batch is one write");
    let created: Vec<_> = created
        .into_iter()
        .map(|outcome| outcome.expect("every user of the batch is created"))
        .collect();
    assert_eq!(created.len(), 120);

    // Stored with the attribute values: the admin API reads them back.
    let bulk7 = hub.get(&format!("/api/v1/users/{}", created[7].id)).await;
    assert_eq!(bulk7["username"], "bulk007");
    assert_eq!(bulk7["attributes"]["title"], "Engineer 7");
    assert_eq!(bulk7["source"], "ldap");
    // Indexed: the SCIM server's filters find them.
    let (status, found) = hub
        .call_with(
            Method::GET,
            "/scim/v2/Users?filter=emails%20eq%20%22bulk042@example.com%22",
            None,
            Some(&scim_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["userName"], "bulk042");
    // Logged: one creation per user, in the change log the outbound engine follows.
    let changes = hub.changes().await;
    let creations = changes
        .iter()
        .filter(|c| c["entity"] == "user" && c["operation"] == "created")
        .filter(|c| {
            c["entity_id"]
                .as_str()
                .is_some_and(|id| created.iter().any(|u| u.id.to_string() == id))
        })
        .count();
    assert_eq!(creations, 120, "one change event per user");

    // A batch with a name taken before it (in another case), a name twice within it, and an
    // invalid input: only those fail, each with its own error; the others are created.
    let inputs = vec![
        new_user(json!({"username": "fresh1"})),
        new_user(json!({"username": "BULK005"})),
        new_user(json!({"username": "fresh2"})),
        new_user(json!({"username": "FRESH2"})),
        new_user(json!({"username": "fresh3", "attributes": {"unknown": "x"}})),
    ];
    let outcomes = directory.create_users(inputs, UserSource::Ldap, &actor).await;
    assert_eq!(outcomes.len(), 5);
    assert_eq!(outcomes[0].as_ref().expect("fresh1").username, "fresh1");
    assert!(
        matches!(outcomes[1], Err(Error::Conflict { .. })),
        "{:?}",
        outcomes[1].as_ref().err()
    );
    assert_eq!(outcomes[2].as_ref().expect("fresh2").username, "fresh2");
    assert!(
        matches!(outcomes[3], Err(Error::Conflict { .. })),
        "{:?}",
        outcomes[3].as_ref().err()
    );
    assert!(
        matches!(outcomes[4], Err(Error::Validation { .. })),
        "{:?}",
        outcomes[4].as_ref().err()
    );
    for (name, stored) in [("fresh1", true), ("fresh2", true), ("FRESH2", true), ("fresh3", false)] {
        let (status, body) = hub.call(Method::GET, &format!("/api/v1/users/{name}"), None).await;
        let expected = if stored { StatusCode::OK } else { StatusCode::NOT_FOUND };
        assert_eq!(status, expected, "{name}: {body}");
        if stored {
            assert_eq!(body["username"], name.to_lowercase(), "one fresh2 only, as first asked");
        }
    }
    hub.stop().await;
}
