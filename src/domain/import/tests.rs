use super::*;
use crate::domain::mapping::{MappingRule, Source};
use crate::domain::user::{NewUser, UserSource};
use serde_json::json;

fn user(username: &str, email: Option<&str>, external_id: Option<&str>) -> User {
    User::create(
        NewUser {
            username: username.into(),
            email: email.map(Into::into),
            external_id: external_id.map(Into::into),
            ..Default::default()
        },
        &[],
        UserSource::Local,
        crate::domain::now(),
    )
    .unwrap()
}

fn account(id: &str, user_name: Option<&str>, email: Option<&str>) -> TargetAccount {
    let mut resource = json!({"id": id, "meta": {"resourceType": "User"}});
    if let Some(name) = user_name {
        resource["userName"] = json!(name);
    }
    if let Some(email) = email {
        resource["emails"] = json!([{"value": email, "primary": true}]);
    }
    TargetAccount::from_resource(resource).unwrap()
}

fn mapping() -> Mapping {
    Mapping {
        rules: vec![
            MappingRule {
                target: "userName".into(),
                source: Source::Attribute("username".into()),
            },
            MappingRule {
                target: "emails[type eq \"work\"].value".into(),
                source: Source::Attribute("email".into()),
            },
        ],
    }
}

fn outcomes(items: &[ImportItem]) -> Vec<(String, &'static str)> {
    items.iter().map(|i| (i.account.id.clone(), i.outcome.name())).collect()
}

#[test]
fn each_account_gets_the_outcome_its_rule_says() {
    let users = [
        user("alice", Some("alice@example.com"), None),
        user("bob", Some("bob@example.com"), None),
        user("carol", Some("carol@example.com"), None),
        user("frank", Some("frank@example.com"), None),
        user("linked", Some("linked@example.com"), None),
    ];
    let settings = ImportSettings::default();
    let index = DirectoryIndex::new(&users, &settings, &mapping());
    let links = Links::new([(users[4].id, "t-linked".to_owned())]);
    let accounts = vec![
        account("t1", Some("ALICE"), None),                      // userName, other case
        account("t2", Some("robert"), Some("Bob@Example.com")),  // email only
        account("t3", Some("zed"), Some("zed@example.com")),     // nobody
        account("t4", Some("carol"), Some("frank@example.com")), // two users
        account("t5", Some("alice"), None),                      // alice is taken by t1
        account("t-linked", Some("someone-else"), None),         // linked before
        account("t6", Some("Linked"), None),                     // its user has another account
        account("t7", None, None),                               // nothing to match on
        account("t8", Some("ignored-one"), None),                // ignored by an admin
    ];
    let ignored = HashSet::from(["t8".to_owned()]);
    let items = plan_import(accounts, &index, &links, &ignored, &settings);
    assert_eq!(
        outcomes(&items),
        [
            ("t1".into(), "linked"),
            ("t2".into(), "linked"),
            ("t3".into(), "unmatched"),
            ("t4".into(), "conflict"),
            ("t5".into(), "conflict"),
            ("t-linked".into(), "already_linked"),
            ("t6".into(), "conflict"),
            ("t7".into(), "unmatched"),
            ("t8".into(), "ignored"),
        ]
    );
    assert_eq!(items[0].outcome, ImportOutcome::Linked { user_id: users[0].id });
    assert_eq!(items[1].outcome, ImportOutcome::Linked { user_id: users[1].id });
    match &items[3].outcome {
        ImportOutcome::Conflict { candidates, .. } => assert_eq!(candidates, &vec![users[2].id, users[3].id]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unmatched_accounts_create_users_only_when_allowed_and_free() {
    let users = [user("taken", None, None)];
    let settings = ImportSettings {
        match_on: vec![MatchAttribute::Email],
        create_users: true,
        assign_group: None,
        create_groups: false,
    };
    let index = DirectoryIndex::new(&users, &settings, &mapping());
    let accounts = vec![
        account("t1", Some("newbie"), Some("newbie@example.com")),
        account("t2", Some("NEWBIE"), Some("other@example.com")), // same username as t1's new user
        account("t3", Some("Taken"), Some("taken2@example.com")), // username of a user the rule does not match
        account("t4", None, Some("x@example.com")),
    ];
    let items = plan_import(accounts, &index, &Links::default(), &HashSet::new(), &settings);
    assert_eq!(
        outcomes(&items),
        [
            ("t1".into(), "created"),
            ("t2".into(), "conflict"),
            ("t3".into(), "conflict"),
            ("t4".into(), "unmatched"),
        ]
    );
    assert_eq!(
        items[0].outcome,
        ImportOutcome::Created {
            username: "newbie".into()
        }
    );
}

#[test]
fn external_ids_match_exactly_and_follow_the_mapping() {
    let users = [user("u1", None, Some("E-1")), user("u2", None, Some("e-2"))];
    let settings = ImportSettings {
        match_on: vec![MatchAttribute::ExternalId],
        ..Default::default()
    };
    let index = DirectoryIndex::new(&users, &settings, &mapping());
    let with_external = |id: &str, external: &str| {
        TargetAccount::from_resource(json!({"id": id, "userName": id, "externalId": external})).unwrap()
    };
    let items = plan_import(
        vec![with_external("a", "E-1"), with_external("b", "E-2")],
        &index,
        &Links::default(),
        &HashSet::new(),
        &settings,
    );
    assert_eq!(outcomes(&items), [("a".into(), "linked"), ("b".into(), "unmatched")]);

    // A mapping that sends the hub's id as externalId matches on the id.
    let mut by_id = mapping();
    by_id.rules.push(MappingRule {
        target: "externalId".into(),
        source: Source::Attribute("id".into()),
    });
    let index = DirectoryIndex::new(&users, &settings, &by_id);
    let items = plan_import(
        vec![with_external("c", &users[1].id.to_string())],
        &index,
        &Links::default(),
        &HashSet::new(),
        &settings,
    );
    assert_eq!(items[0].outcome, ImportOutcome::Linked { user_id: users[1].id });
}

#[test]
fn the_rule_is_checked() {
    assert!(ImportSettings::default().validate().is_ok());
    let empty = ImportSettings {
        match_on: vec![],
        ..Default::default()
    };
    assert!(empty.validate().is_err());
    let twice = ImportSettings {
        match_on: vec![MatchAttribute::Email, MatchAttribute::Email],
        ..Default::default()
    };
    assert!(twice.validate().is_err());
    let parsed: ImportSettings = serde_json::from_value(json!({"match_on": ["userName", "externalId"]})).unwrap();
    assert_eq!(parsed.match_on, [MatchAttribute::UserName, MatchAttribute::ExternalId]);
    assert!(serde_json::from_value::<ImportSettings>(json!({"match_on": ["phone"]})).is_err());
}

#[test]
fn listed_accounts_are_read_without_meta_and_need_an_id() {
    assert!(TargetAccount::from_resource(json!({"userName": "x"})).is_none());
    assert!(TargetAccount::from_resource(json!({"id": ""})).is_none());
    let account = TargetAccount::from_resource(json!({
        "ID": "7", "USERNAME": "x", "Active": false, "meta": {"version": "1"},
        "Emails": [{"Value": "a@b.example"}, {"value": ""}]
    }))
    .unwrap();
    assert_eq!(account.id, "7");
    assert_eq!(account.user_name.as_deref(), Some("x"));
    assert_eq!(account.active, Some(false));
    assert_eq!(account.emails, ["a@b.example"]);
    assert!(account.resource().get("meta").is_none());
    assert_eq!(account.resource()["USERNAME"], "x");
}

#[test]
fn groups_are_linked_by_name_or_created_once() {
    let engineering = Uuid::now_v7();
    let sales = Uuid::now_v7();
    let directory: HashMap<String, Uuid> =
        [("engineering".to_owned(), engineering), ("sales".to_owned(), sales)].into();
    let linked: HashMap<String, Uuid> = [("g-sales-old".to_owned(), sales)].into();
    let group = |id: &str, name: &str| TargetGroup {
        id: id.into(),
        display_name: name.into(),
        members: vec![],
    };
    let groups = vec![
        group("g1", "ENGINEERING"),
        group("g-sales-old", "Sales"),
        group("g2", "sales"),
        group("g3", "Support"),
        group("g4", "SUPPORT"),
    ];
    let names = |plan: &[(TargetGroup, GroupImportOutcome)]| plan.iter().map(|(_, o)| o.name()).collect::<Vec<_>>();
    let managed: HashSet<Uuid> = [engineering, sales].into();
    let plan = plan_group_import(groups.clone(), &directory, &linked, &managed, true);
    assert_eq!(
        names(&plan),
        [
            "group_linked",
            "group_already_linked",
            "group_unmatched",
            "group_created",
            "group_unmatched"
        ]
    );
    assert_eq!(plan[0].1, GroupImportOutcome::GroupLinked { group_id: engineering });
    let plan = plan_group_import(groups.clone(), &directory, &linked, &managed, false);
    assert_eq!(plan[3].1.name(), "group_unmatched");
    let plan = plan_group_import(groups, &directory, &linked, &HashSet::new(), true);
    assert_eq!(plan[0].1.name(), "group_unmatched", "no policy names engineering");
    let listed = TargetGroup::from_resource(
        &json!({"id": "g", "displayName": "X", "members": [{"value": "u1"}, {"VALUE": "u2"}]}),
    );
    assert_eq!(listed.unwrap().members, ["u1", "u2"]);
    assert!(TargetGroup::from_resource(&json!({"id": "g"})).is_none());
}
