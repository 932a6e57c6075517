//! Seeding a benchmark's directory before the hub starts (not measured): users named
//! `{prefix}NNNNNN`, stored through the directory service by 64 concurrent writers so that the
//! group commit batches them, then made members of one new group with one membership write per
//! thousand.

use provisio::domain::admin::Actor;
use provisio::domain::group::NewGroup;
use provisio::domain::scim::members::MemberOp;
use provisio::domain::user::{NewUser, UserSource};
use provisio::service::DirectoryService;
use provisio::store::SqlStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use uuid::Uuid;

/// Writers that store users at once.
const WRITERS: usize = 64;

/// Stores `count` users named `{prefix}NNNNNN` in a new group `group`; returns the group's id.
pub async fn seed(store: &SqlStore, group: &str, prefix: &str, count: usize) -> Uuid {
    let started = Instant::now();
    let directory = DirectoryService::new(store.clone());
    let group_id = directory
        .create_group(
            NewGroup {
                name: group.into(),
                external_id: None,
            },
            UserSource::Local,
            &Actor::System,
        )
        .await
        .expect("group")
        .id;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (directory, next, prefix) = (directory.clone(), next.clone(), prefix.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break ids;
                }
                let name = format!("{prefix}{i:06}");
                let user = directory
                    .create_user(
                        NewUser {
                            username: name.clone(),
                            given_name: Some("Bench".into()),
                            family_name: Some(name.clone()),
                            display_name: Some(format!("Bench {name}")),
                            email: Some(format!("{name}@bench.example")),
                            ..Default::default()
                        },
                        UserSource::Local,
                        &Actor::System,
                    )
                    .await
                    .expect("seed user");
                ids.push(user.id);
                if (i + 1) % 20_000 == 0 {
                    println!("  seeded {} users", i + 1);
                }
            }
        }));
    }
    let mut members = Vec::with_capacity(count);
    for task in tasks {
        members.extend(task.await.expect("seeding task"));
    }
    for part in members.chunks(1000) {
        directory
            .change_members(group_id, None, &[MemberOp::Add(part.to_vec())], &Actor::System)
            .await
            .expect("seed memberships");
    }
    if count > 0 {
        println!(
            "  seeded {count} users in group {group} in {:.1} s (not measured)",
            started.elapsed().as_secs_f64()
        );
    }
    group_id
}
