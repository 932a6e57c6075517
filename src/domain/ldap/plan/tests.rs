use super::*;
use crate::domain::ldap::{DisabledRule, LdapPreset, MembershipStyle};

const NOW: i64 = 1_790_000_000;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

fn settings() -> LdapSettings {
    LdapSettings {
        url: "ldap://127.0.0.1".into(),
        bind_dn: "cn=reader,dc=example,dc=org".into(),
        user_base: "ou=people,dc=example,dc=org".into(),
        group_base: Some("ou=groups,dc=example,dc=org".into()),
        disabled: DisabledRule::AttributeEquals {
            attribute: "employeeType".into(),
            value: "disabled".into(),
        },
        delete_after_days: Some(7),
        ..LdapPreset::Openldap.settings()
    }
}

fn person(id: &str, uid: &str, mail: &str) -> LdapEntry {
    let attributes = [
        ("uid", uid.to_owned()),
        ("givenname", "Ann".to_owned()),
        ("sn", uid.to_uppercase()),
        ("cn", format!("Ann {}", uid.to_uppercase())),
        ("mail", mail.to_owned()),
    ];
    LdapEntry {
        dn: format!("uid={uid},ou=people,dc=example,dc=org"),
        id: id.into(),
        attributes: attributes.into_iter().map(|(k, v)| (k.to_owned(), vec![v])).collect(),
    }
}

fn group(id: &str, cn: &str, members: &[&LdapEntry]) -> LdapEntry {
    LdapEntry {
        dn: format!("cn={cn},ou=groups,dc=example,dc=org"),
        id: id.into(),
        attributes: HashMap::from([
            ("cn".to_owned(), vec![cn.to_owned()]),
            (
                "member".to_owned(),
                members.iter().map(|m| m.dn.to_uppercase()).collect(),
            ),
        ]),
    }
}

fn read(users: Vec<LdapEntry>, groups: Vec<LdapEntry>) -> SourceRead {
    SourceRead {
        present_users: users.iter().map(|e| (e.id.clone(), e.dn.clone())).collect(),
        present_groups: groups.iter().map(|e| (e.id.clone(), e.dn.clone())).collect(),
        users,
        groups,
        groups_read: true,
    }
}

/// The hub state a first sync of `entries` leaves: each user created from its entry.
fn synced(entries: &[LdapEntry]) -> Current {
    let mut current = Current::default();
    let plan = plan_sync(&settings(), &[], &read(entries.to_vec(), vec![]), &current, now());
    for step in plan.users {
        let UserStep::Create { ldap_id, dn, user } = step else {
            panic!("expected creates only, got {step:?}")
        };
        let user = User::create(*user, &[], UserSource::Ldap, now()).unwrap();
        current.users.insert(
            ldap_id,
            LinkedUser {
                user,
                dn,
                gone_since: None,
            },
        );
    }
    current
}

#[test]
fn new_entries_become_users_with_their_mapped_values() {
    let plan = plan_sync(
        &settings(),
        &[],
        &read(vec![person("1", "ann", "ann@example.org")], vec![]),
        &Current::default(),
        now(),
    );
    let [UserStep::Create { ldap_id, user, .. }] = plan.users.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(ldap_id, "1");
    assert_eq!(user.username, "ann");
    assert_eq!(user.email.as_deref(), Some("ann@example.org"));
    assert_eq!(user.family_name.as_deref(), Some("ANN"));
    assert_eq!(user.display_name.as_deref(), Some("Ann ANN"));
    assert_eq!(user.active, Some(true));
}

#[test]
fn an_unchanged_source_plans_nothing() {
    let entries = vec![
        person("1", "ann", "ann@example.org"),
        person("2", "bob", "bob@example.org"),
    ];
    let current = synced(&entries);
    let plan = plan_sync(&settings(), &[], &read(entries, vec![]), &current, now());
    assert_eq!(plan, SyncPlan::default());
}

#[test]
fn changes_renames_and_moves_follow_the_unique_id() {
    let ann = person("1", "ann", "ann@example.org");
    let current = synced(std::slice::from_ref(&ann));
    // Renamed (uid and DN change), new email.
    let mut renamed = person("1", "anne", "anne@example.org");
    renamed.dn = "uid=anne,ou=staff,dc=example,dc=org".into();
    let plan = plan_sync(&settings(), &[], &read(vec![renamed], vec![]), &current, now());
    let [
        UserStep::Update {
            user_id,
            update: Some(update),
            changed,
            moved,
            ..
        },
    ] = plan.users.as_slice()
    else {
        panic!("{plan:?}")
    };
    assert_eq!(*user_id, current.users["1"].user.id);
    assert_eq!(update.username.as_deref(), Some("anne"));
    assert!(
        changed.contains(&"username".to_owned()) && changed.contains(&"email".to_owned()),
        "{changed:?}"
    );
    assert!(*moved);
    // Only moved: no profile change, the link's DN is updated.
    let mut moved_only = ann.clone();
    moved_only.dn = "uid=ann,ou=staff,dc=example,dc=org".into();
    let plan = plan_sync(&settings(), &[], &read(vec![moved_only], vec![]), &current, now());
    assert!(
        matches!(
            plan.users.as_slice(),
            [UserStep::Update {
                update: None,
                moved: true,
                ..
            }]
        ),
        "{plan:?}"
    );
}

#[test]
fn disabled_entries_deactivate_their_users() {
    let mut ann = person("1", "ann", "ann@example.org");
    let current = synced(std::slice::from_ref(&ann));
    ann.attributes.insert("employeetype".into(), vec!["Disabled".into()]);
    let plan = plan_sync(&settings(), &[], &read(vec![ann], vec![]), &current, now());
    let [
        UserStep::Update {
            update: Some(update),
            changed,
            ..
        },
    ] = plan.users.as_slice()
    else {
        panic!("{plan:?}")
    };
    assert_eq!(update.active, Some(false));
    assert_eq!(changed, &vec!["active".to_owned()]);
}

#[test]
fn gone_users_are_deactivated_then_deleted_after_the_grace_period() {
    let ann = person("1", "ann", "ann@example.org");
    let mut current = synced(&[ann]);
    let plan = plan_sync(&settings(), &[], &read(vec![], vec![]), &current, now());
    assert!(
        matches!(plan.users.as_slice(), [UserStep::Deactivate { active: true, .. }]),
        "{plan:?}"
    );
    // Deactivated six days ago: nothing more until the seventh day.
    let linked = current.users.get_mut("1").unwrap();
    linked.user.active = false;
    linked.gone_since = Some(now() - time::Duration::days(6));
    let plan = plan_sync(&settings(), &[], &read(vec![], vec![]), &current, now());
    assert_eq!(plan, SyncPlan::default());
    current.users.get_mut("1").unwrap().gone_since = Some(now() - time::Duration::days(7));
    let plan = plan_sync(&settings(), &[], &read(vec![], vec![]), &current, now());
    assert!(matches!(plan.users.as_slice(), [UserStep::Delete { .. }]), "{plan:?}");
    // Without a grace period, never deleted.
    let forever = LdapSettings {
        delete_after_days: None,
        ..settings()
    };
    let plan = plan_sync(&forever, &[], &read(vec![], vec![]), &current, now());
    assert_eq!(plan, SyncPlan::default());
}

#[test]
fn a_returning_entry_is_reactivated() {
    let ann = person("1", "ann", "ann@example.org");
    let mut current = synced(std::slice::from_ref(&ann));
    let linked = current.users.get_mut("1").unwrap();
    linked.user.active = false;
    linked.gone_since = Some(now());
    let plan = plan_sync(&settings(), &[], &read(vec![ann], vec![]), &current, now());
    let [
        UserStep::Update {
            update: Some(update),
            returned: true,
            ..
        },
    ] = plan.users.as_slice()
    else {
        panic!("{plan:?}")
    };
    assert_eq!(update.active, Some(true));
}

#[test]
fn entries_that_cannot_be_users_are_refused_alone() {
    let mut nameless = person("1", "ann", "ann@example.org");
    nameless.attributes.remove("uid");
    let bad_mail = person("2", "bob", "not-an-email");
    let twin = person("3", "BOB", "bob2@example.org");
    let good = person("4", "cy", "cy@example.org");
    let plan = plan_sync(
        &settings(),
        &[],
        &read(vec![nameless, bad_mail, twin, good], vec![]),
        &Current::default(),
        now(),
    );
    let reasons: Vec<&str> = plan
        .users
        .iter()
        .filter_map(|step| match step {
            UserStep::Refuse { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1 + 1, "{plan:?}");
    assert!(reasons[0].contains("no uid"), "{reasons:?}");
    assert!(reasons[1].contains("email"), "{reasons:?}");
    // The refused bob leaves the name to the next entry that has it.
    let created: Vec<&str> = plan
        .users
        .iter()
        .filter_map(|step| match step {
            UserStep::Create { user, .. } => Some(user.username.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(created, ["BOB", "cy"]);
}

#[test]
fn a_hub_user_of_the_same_name_is_adopted_unless_a_source_owns_it() {
    let local = User::create(
        NewUser {
            username: "ann".into(),
            ..Default::default()
        },
        &[],
        UserSource::Local,
        now(),
    )
    .unwrap();
    let mut current = Current::default();
    current.users_by_name.insert("ann".into(), (local.clone(), false));
    let entries = vec![person("1", "Ann", "ann@example.org")];
    let plan = plan_sync(&settings(), &[], &read(entries.clone(), vec![]), &current, now());
    let [
        UserStep::Adopt {
            user_id,
            update: Some(update),
            ..
        },
    ] = plan.users.as_slice()
    else {
        panic!("{plan:?}")
    };
    assert_eq!(*user_id, local.id);
    assert_eq!(update.email, Some(Some("ann@example.org".into())));
    current.users_by_name.insert("ann".into(), (local, true));
    let plan = plan_sync(&settings(), &[], &read(entries, vec![]), &current, now());
    assert!(matches!(plan.users.as_slice(), [UserStep::Refuse { .. }]), "{plan:?}");
}

#[test]
fn groups_and_their_members_follow_the_source() {
    let ann = person("1", "ann", "ann@example.org");
    let bob = person("2", "bob", "bob@example.org");
    let users = vec![ann.clone(), bob.clone()];
    let first = plan_sync(
        &settings(),
        &[],
        &read(users.clone(), vec![group("g1", "Staff", &[&ann, &bob])]),
        &Current::default(),
        now(),
    );
    assert!(
        matches!(first.groups.as_slice(), [GroupStep::Create { name, .. }] if name == "Staff"),
        "{first:?}"
    );
    assert_eq!(
        first.memberships,
        vec![MembershipStep {
            group: "g1".into(),
            add: vec!["1".into(), "2".into()],
            remove: vec![]
        }]
    );

    // Synced; then bob leaves the group and it is renamed.
    let mut current = synced(&users);
    current.groups.insert(
        "g1".into(),
        LinkedGroup {
            id: Uuid::now_v7(),
            name: "Staff".into(),
            dn: "cn=Staff,ou=groups,dc=example,dc=org".into(),
            members: vec![current.users["1"].user.id, current.users["2"].user.id, Uuid::now_v7()],
        },
    );
    let plan = plan_sync(
        &settings(),
        &[],
        &read(users.clone(), vec![group("g1", "Team", &[&ann])]),
        &current,
        now(),
    );
    assert!(
        matches!(plan.groups.as_slice(), [GroupStep::Update { rename: Some(name), .. }] if name == "Team"),
        "{plan:?}"
    );
    // The member nobody owns (added by hand) stays.
    assert_eq!(
        plan.memberships,
        vec![MembershipStep {
            group: "g1".into(),
            add: vec![],
            remove: vec!["2".into()]
        }]
    );

    // The group is gone from the source.
    let plan = plan_sync(&settings(), &[], &read(users, vec![]), &current, now());
    assert!(
        matches!(plan.groups.as_slice(), [GroupStep::Delete { name, .. }] if name == "Staff"),
        "{plan:?}"
    );
}

#[test]
fn member_of_on_users_gives_memberships() {
    let member_of = LdapSettings {
        membership: MembershipStyle::UserMemberOf,
        member_attribute: "memberOf".into(),
        ..settings()
    };
    let mut ann = person("1", "ann", "ann@example.org");
    ann.attributes
        .insert("memberof".into(), vec!["CN=Staff, OU=groups,DC=example,DC=org".into()]);
    let bob = person("2", "bob", "bob@example.org");
    let staff = LdapEntry {
        dn: "cn=Staff,ou=groups,dc=example,dc=org".into(),
        id: "g1".into(),
        attributes: HashMap::from([("cn".to_owned(), vec!["Staff".to_owned()])]),
    };
    let plan = plan_sync(
        &member_of,
        &[],
        &read(vec![ann, bob], vec![staff]),
        &Current::default(),
        now(),
    );
    assert_eq!(
        plan.memberships,
        vec![MembershipStep {
            group: "g1".into(),
            add: vec!["1".into()],
            remove: vec![]
        }]
    );
}

#[test]
fn generalized_times_read_as_rfc3339() {
    assert_eq!(
        generalized_to_rfc3339("20261201120304Z").as_deref(),
        Some("2026-12-01T12:03:04Z")
    );
    assert_eq!(
        generalized_to_rfc3339("20261201120304.5Z").as_deref(),
        Some("2026-12-01T12:03:04.5Z")
    );
    assert_eq!(generalized_to_rfc3339("2026-12-01"), None);
}

#[test]
fn nested_groups_count_their_members_once_even_in_a_cycle() {
    let ann = person("1", "ann", "ann@example.org");
    let bob = person("2", "bob", "bob@example.org");
    let mut staff = group("g1", "Staff", &[&ann]);
    let mut team = group("g2", "Team", &[&bob]);
    // Staff contains Team, and Team (a cycle) contains Staff.
    staff.attributes.get_mut("member").unwrap().push(team.dn.clone());
    team.attributes.get_mut("member").unwrap().push(staff.dn.clone());
    let users = vec![ann, bob];
    let nested = LdapSettings {
        nested_groups: true,
        ..settings()
    };
    let plan = plan_sync(
        &nested,
        &[],
        &read(users.clone(), vec![staff.clone(), team.clone()]),
        &Current::default(),
        now(),
    );
    let staff_members = plan.memberships.iter().find(|m| m.group == "g1").unwrap();
    assert_eq!(staff_members.add, vec!["1".to_owned(), "2".to_owned()]);
    let team_members = plan.memberships.iter().find(|m| m.group == "g2").unwrap();
    assert_eq!(team_members.add, vec!["1".to_owned(), "2".to_owned()]);
    // Without nesting, only direct members.
    let plan = plan_sync(
        &settings(),
        &[],
        &read(users, vec![staff, team]),
        &Current::default(),
        now(),
    );
    let staff_members = plan.memberships.iter().find(|m| m.group == "g1").unwrap();
    assert_eq!(staff_members.add, vec!["1".to_owned()]);
}

#[test]
fn custom_attributes_are_read_as_their_type() {
    use crate::domain::attribute::AttributeType;
    let def = |name: &str, kind: AttributeType| AttributeDefinition {
        name: name.into(),
        display_name: name.into(),
        kind,
        required: false,
        description: None,
        created_at: now(),
        updated_at: now(),
    };
    let definitions = vec![
        def("title", AttributeType::String),
        def("languages", AttributeType::StringList),
        def("remote", AttributeType::Boolean),
        def("floor", AttributeType::Integer),
        def("hired", AttributeType::Datetime),
    ];
    let mut mapped = settings();
    for (field, attribute) in [
        ("title", "title"),
        ("languages", "preferredLanguage"),
        ("remote", "remoteWorker"),
        ("floor", "roomNumber"),
        ("hired", "hireDate"),
    ] {
        mapped.profile.insert(field.into(), attribute.into());
    }
    let mut ann = person("1", "ann", "ann@example.org");
    for (name, values) in [
        ("title", vec!["Engineer"]),
        ("preferredlanguage", vec!["en", "fr"]),
        ("remoteworker", vec!["TRUE"]),
        ("roomnumber", vec!["4"]),
        ("hiredate", vec!["20240102030405Z"]),
    ] {
        ann.attributes
            .insert(name.into(), values.into_iter().map(str::to_owned).collect());
    }
    let plan = plan_sync(
        &mapped,
        &definitions,
        &read(vec![ann.clone()], vec![]),
        &Current::default(),
        now(),
    );
    let [UserStep::Create { user, .. }] = plan.users.as_slice() else {
        panic!("{plan:?}")
    };
    assert_eq!(user.attributes["title"], serde_json::json!("Engineer"));
    assert_eq!(user.attributes["languages"], serde_json::json!(["en", "fr"]));
    assert_eq!(user.attributes["remote"], serde_json::json!(true));
    assert_eq!(user.attributes["floor"], serde_json::json!(4));
    assert_eq!(user.attributes["hired"], serde_json::json!("2024-01-02T03:04:05Z"));
    // A value of the wrong type refuses the entry alone.
    ann.attributes.insert("roomnumber".into(), vec!["fourth".into()]);
    let plan = plan_sync(
        &mapped,
        &definitions,
        &read(vec![ann], vec![]),
        &Current::default(),
        now(),
    );
    assert!(
        matches!(plan.users.as_slice(), [UserStep::Refuse { reason, .. }] if reason.contains("fourth")),
        "{plan:?}"
    );
}
