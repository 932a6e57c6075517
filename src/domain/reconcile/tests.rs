use super::*;
use serde_json::json;

fn account(resource: Value) -> TargetAccount {
    TargetAccount::from_resource(resource).unwrap()
}

fn present(user: Uuid, name: &str, linked: Option<&str>, desired: Value) -> ExpectedAccount {
    ExpectedAccount {
        user_id: user,
        username: name.into(),
        linked: linked.map(Into::into),
        expectation: Expectation::Present(desired),
    }
}

#[test]
fn every_kind_of_difference_is_found() {
    let [alice, bob, carol, dave, erin, frank] = [0; 6].map(|_| Uuid::now_v7());
    let desired = |name: &str, title: &str| json!({"schemas": ["x"], "userName": name, "title": title, "active": true});
    let expected = vec![
        present(alice, "alice", Some("t-alice"), desired("alice", "CEO")), // in step
        present(bob, "bob", Some("t-bob"), desired("bob", "CTO")),         // title changed by hand
        present(carol, "carol", Some("t-carol"), desired("carol", "CFO")), // deactivated by hand
        present(dave, "dave", Some("t-dave-gone"), desired("dave", "COO")), // deleted by hand
        present(erin, "erin", None, desired("erin", "CIO")),               // created by hand, not linked
        present(frank, "frank", None, desired("frank", "CMO")),            // never created
        ExpectedAccount {
            user_id: Uuid::now_v7(),
            username: "gina".into(),
            linked: Some("t-gina".into()),
            expectation: Expectation::Inactive, // deprovisioned, reactivated by hand
        },
    ];
    let accounts = vec![
        account(json!({"id": "t-alice", "userName": "alice", "title": "CEO", "active": true, "nickName": "al"})),
        account(json!({"id": "t-bob", "userName": "bob", "title": "Chief", "active": true})),
        account(json!({"id": "t-carol", "userName": "carol", "title": "CFO", "active": false})),
        account(json!({"id": "t-erin", "userName": "ERIN", "title": "CIO", "active": true})),
        account(json!({"id": "t-gina", "userName": "gina", "active": true})),
        account(json!({"id": "t-stranger", "userName": "stranger"})),
        account(json!({"id": "t-gone", "userName": "gone", "active": false})), // deprovisioned already
    ];
    let links: HashMap<String, Uuid> = [("t-alice", alice), ("t-bob", bob), ("t-carol", carol)]
        .into_iter()
        .map(|(t, u)| (t.to_owned(), u))
        .collect();
    let plan = plan_reconcile(expected, &accounts, &links, &[], &HashMap::new(), true);
    assert_eq!(plan.in_step, 1, "alice");
    let drifts = plan.drifts;
    let kinds: Vec<&str> = drifts.iter().map(Drift::kind).collect();
    assert_eq!(
        kinds,
        [
            "drifted",
            "wrong_active",
            "missing",
            "unlinked",
            "missing",
            "wrong_active",
            "extra"
        ]
    );
    match &drifts[0] {
        Drift::Drifted {
            user_id,
            attributes,
            operations,
            ..
        } => {
            assert_eq!(*user_id, bob);
            assert_eq!(attributes, &["title"]);
            assert_eq!(operations.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&drifts[1], Drift::WrongActive { user_id, expected: true, .. } if *user_id == carol));
    assert!(matches!(&drifts[2], Drift::Missing { target_id: Some(t), .. } if t == "t-dave-gone"));
    assert!(matches!(&drifts[3], Drift::Unlinked { target_id, .. } if target_id == "t-erin"));
    assert!(matches!(&drifts[4], Drift::Missing { target_id: None, user_id, .. } if *user_id == frank));
    assert!(matches!(&drifts[5], Drift::WrongActive { expected: false, .. }));
    assert!(matches!(&drifts[6], Drift::Extra { target_id, .. } if target_id == "t-stranger"));
}

#[test]
fn group_members_are_compared_as_sets() {
    let group = |target: &str, members: &[&str]| ExpectedGroup {
        group_id: Uuid::now_v7(),
        name: target.into(),
        target_id: target.into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    };
    let groups = [
        group("g1", &["a", "b"]),
        group("g2", &["a", "b", "c"]),
        group("g3", &[]),
    ];
    let held: HashMap<String, Vec<String>> = [("g1", vec!["b", "a"]), ("g2", vec!["a", "d"])]
        .into_iter()
        .map(|(g, m)| (g.to_owned(), m.into_iter().map(str::to_owned).collect()))
        .collect();
    let drifts = plan_reconcile([], &[], &HashMap::new(), &groups, &held, true).drifts;
    assert_eq!(drifts.len(), 2, "{drifts:?}");
    match &drifts[0] {
        Drift::Membership {
            target_id,
            missing,
            unexpected,
            ..
        } => {
            assert_eq!(target_id, "g2");
            assert_eq!(missing, &["b", "c"]);
            assert_eq!(unexpected, &["d"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(drifts[1].kind(), "group_missing");
}

#[test]
fn what_each_setting_fixes() {
    let extra = Drift::Extra {
        target_id: "t".into(),
        user_name: None,
    };
    let missing = Drift::Missing {
        user_id: Uuid::now_v7(),
        username: "a".into(),
        target_id: None,
    };
    assert!(!missing.fixed_by(ReconcileApply::ReportOnly) && !extra.fixed_by(ReconcileApply::ReportOnly));
    assert!(missing.fixed_by(ReconcileApply::FixDrift) && !extra.fixed_by(ReconcileApply::FixDrift));
    assert!(missing.fixed_by(ReconcileApply::FixAndDeprovision) && extra.fixed_by(ReconcileApply::FixAndDeprovision));
}

#[test]
fn an_inactive_account_nobody_owns_is_extra_only_where_deprovisioning_deletes() {
    let accounts = vec![account(json!({"id": "t1", "userName": "old", "active": false}))];
    assert!(
        plan_reconcile([], &accounts, &HashMap::new(), &[], &HashMap::new(), true)
            .drifts
            .is_empty()
    );
    let drifts = plan_reconcile([], &accounts, &HashMap::new(), &[], &HashMap::new(), false).drifts;
    assert_eq!(drifts.len(), 1);
    assert_eq!(drifts[0].kind(), "extra");
}
