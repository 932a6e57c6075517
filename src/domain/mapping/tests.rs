//! Tests of the mapping: target paths, sources, rendering, PATCH operations, presets.

use super::*;
use crate::domain::attribute::AttributeType;
use crate::domain::user::UserSource;
use proptest::prelude::*;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn definition(name: &str) -> AttributeDefinition {
    AttributeDefinition {
        name: name.into(),
        display_name: name.into(),
        kind: AttributeType::String,
        required: false,
        description: None,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn definitions(names: &[&str]) -> Vec<AttributeDefinition> {
    names.iter().map(|name| definition(name)).collect()
}

fn user() -> User {
    User {
        id: Uuid::from_u128(0x0196_0000_0000_7000_8000_0000_0000_0001),
        username: "Alice.Smith".into(),
        given_name: Some("Alice".into()),
        family_name: Some("Smith".into()),
        display_name: Some("Alice Smith".into()),
        formatted_name: Some("Ms. Alice Smith".into()),
        email: Some("Alice.Smith@Example.com".into()),
        active: true,
        external_id: None,
        source: UserSource::Local,
        attributes: [
            ("title".to_owned(), json!("Engineer")),
            ("language".to_owned(), json!("en")),
            ("timezone".to_owned(), json!("Europe/Berlin")),
        ]
        .into_iter()
        .collect(),
        extensions: Map::new(),
        version: 1,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn mapping(rules: Value) -> Mapping {
    serde_json::from_value(rules).unwrap()
}

fn rule(target: &str, source: Value) -> Value {
    json!({"target": target, "source": source})
}

fn validation_error(result: Result<()>) -> (String, String) {
    match result {
        Err(Error::Validation { field, message }) => (field, message),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn parses_plain_sub_attribute_and_filter_paths() {
    let path = TargetPath::parse("userName").unwrap();
    assert_eq!(
        (path.schema(), path.attribute(), path.sub_attribute()),
        (None, "userName", None)
    );

    let path = TargetPath::parse("name.givenName").unwrap();
    assert_eq!((path.attribute(), path.sub_attribute()), ("name", Some("givenName")));

    let path = TargetPath::parse(r#"emails[type eq "work"].value"#).unwrap();
    assert_eq!(path.attribute(), "emails");
    assert_eq!(
        path.filter(),
        &[FilterTerm {
            attribute: "type".into(),
            value: json!("work")
        }]
    );
    assert_eq!(path.sub_attribute(), Some("value"));
    assert_eq!(path.as_str(), r#"emails[type eq "work"].value"#);

    let path =
        TargetPath::parse(r#"addresses[type EQ "work" AnD primary eq true and rank eq -1.5e2].locality"#).unwrap();
    let literals: Vec<&Value> = path.filter().iter().map(|t| &t.value).collect();
    assert_eq!(literals, vec![&json!("work"), &json!(true), &json!(-150.0)]);

    let path = TargetPath::parse(r#"emails[type eq "a\"]b"].value"#).unwrap();
    assert_eq!(path.filter()[0].value, json!("a\"]b"));
}

#[test]
fn parses_schema_urns_without_splitting_on_dots() {
    let path = TargetPath::parse(&format!("{ENTERPRISE}:department")).unwrap();
    assert_eq!((path.schema(), path.attribute()), (Some(ENTERPRISE), "department"));

    let path = TargetPath::parse(&format!("{ENTERPRISE}:manager.value")).unwrap();
    assert_eq!(
        (path.schema(), path.attribute(), path.sub_attribute()),
        (Some(ENTERPRISE), "manager", Some("value"))
    );

    let custom = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    let path = TargetPath::parse(&format!("{custom}:costCenter")).unwrap();
    assert_eq!((path.schema(), path.attribute()), (Some(custom), "costCenter"));

    let path = TargetPath::parse("URN:ietf:params:scim:schemas:core:2.0:User:name.givenName").unwrap();
    assert_eq!((path.schema(), path.attribute()), (None, "name"));

    let path = TargetPath::parse(&format!(r#"{custom}:phones[type eq "a:b"].value"#)).unwrap();
    assert_eq!((path.schema(), path.attribute()), (Some(custom), "phones"));
}

#[test]
fn refuses_malformed_paths() {
    let cases = [
        ("", "empty"),
        ("1abc", "attribute name"),
        ("name.", "sub-attribute"),
        ("name.given.more", "not a valid sub-attribute name"),
        (r#"emails[type eq "work".value"#, "']'"),
        (r#"emails[type eq "work"#, "not closed"),
        ("emails[type", "operator"),
        (r#"emails[type ne "work"].value"#, "unsupported filter"),
        (
            r#"emails[type eq "work" or primary eq true].value"#,
            "unsupported filter",
        ),
        ("emails[type pr].value", "unsupported filter"),
        ("emails[type eq null].value", "unsupported filter"),
        (r#"emails[type eq "a" and type eq "b"].value"#, "twice"),
        ("urn:x", "schema URN"),
        ("urn:a::b:c", "schema URN"),
        ("urn:a:b:", "no attribute name"),
        ("na me", "expected '['"),
    ];
    for (text, expected) in cases {
        let error = TargetPath::parse(text).unwrap_err().to_string();
        assert!(error.contains(expected), "{text:?}: {error}");
    }
    let long = "a".repeat(MAX_TARGET_LEN + 1);
    assert!(
        TargetPath::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("longer than 512")
    );
    assert!(TargetPath::parse(&"a".repeat(MAX_TARGET_LEN)).is_ok());
}

#[test]
fn renders_the_monday_preset() {
    let monday = preset("monday").unwrap().unwrap();
    monday
        .mapping
        .validate(&definitions(&["title", "language", "timezone"]))
        .unwrap();
    assert_eq!(
        monday.mapping.render(&user()).unwrap(),
        json!({
            "schemas": [CORE_USER_SCHEMA],
            "userName": "alice.smith",
            "displayName": "Alice Smith",
            "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Ms. Alice Smith"},
            "emails": [{"type": "work", "value": "alice.smith@example.com", "primary": true}],
            "title": "Engineer",
            "preferredLanguage": "en",
            "active": true,
            "timezone": "Europe/Berlin"
        })
    );
}

#[test]
fn presets_load_and_list_their_custom_attributes() {
    let all = presets().unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["generic", "monday"]);
    let monday = preset("monday").unwrap().unwrap();
    assert_eq!(monday.title, "Monday.com");
    assert_eq!(monday.deprovision, "deactivate");
    assert_eq!(monday.custom_attributes_used(), vec!["title", "language", "timezone"]);
    let generic = preset("generic").unwrap().unwrap();
    assert!(generic.custom_attributes_used().is_empty());
    generic.mapping.validate(&[]).unwrap();
    assert!(preset("nope").unwrap().is_none());
    let rendered = generic.mapping.render(&user()).unwrap();
    assert_eq!(rendered["externalId"], json!(user().id.to_string()));
    assert_eq!(rendered["userName"], json!("Alice.Smith"));
}

#[test]
fn absent_values_set_nothing() {
    let mut sparse = user();
    sparse.given_name = None;
    sparse.family_name = Some(String::new());
    sparse.formatted_name = None;
    sparse.email = None;
    sparse.attributes.clear();
    sparse.attributes.insert("title".into(), Value::Null);
    let monday = preset("monday").unwrap().unwrap();
    assert_eq!(
        monday.mapping.render(&sparse).unwrap(),
        json!({
            "schemas": [CORE_USER_SCHEMA],
            "userName": "alice.smith",
            "displayName": "Alice Smith",
            "active": true
        })
    );
}

#[test]
fn extensions_are_listed_in_schemas_only_when_set() {
    let custom = "urn:example:params:scim:schemas:extension:acme:2.0:User";
    let rules = mapping(json!([
        rule("userName", json!({"attribute": "username"})),
        rule(&format!("{custom}:costCenter"), json!({"attribute": "cost_center"})),
        rule(&format!("{ENTERPRISE}:department"), json!({"constant": "R&D"})),
        rule(&format!("{ENTERPRISE}:manager.value"), json!({"constant": "m-1"})),
        rule(&format!("{ENTERPRISE}:manager.displayName"), json!({"constant": "Bob"})),
    ]));
    rules.validate(&definitions(&["cost_center"])).unwrap();
    assert_eq!(
        rules.render(&user()).unwrap(),
        json!({
            "schemas": [CORE_USER_SCHEMA, ENTERPRISE],
            "userName": "Alice.Smith",
            ENTERPRISE: {"department": "R&D", "manager": {"value": "m-1", "displayName": "Bob"}}
        })
    );
}

#[test]
fn sources_combine() {
    let mut person = user();
    person.attributes.insert("level".into(), json!(3));
    let evaluate = |source: Value| serde_json::from_value::<Source>(source).unwrap().evaluate(&person);

    assert_eq!(
        evaluate(
            json!({"concat": [{"attribute": "given_name"}, {"constant": " "}, {"attribute": "nope"}, {"attribute": "level"}, {"constant": false}]})
        ),
        Some(json!("Alice 3false"))
    );
    assert_eq!(
        evaluate(json!({"concat": [{"attribute": "external_id"}, {"attribute": "nope"}]})),
        None
    );
    assert_eq!(
        evaluate(json!({"lower": {"attribute": "email"}})),
        Some(json!("alice.smith@example.com"))
    );
    assert_eq!(
        evaluate(json!({"upper": {"attribute": "given_name"}})),
        Some(json!("ALICE"))
    );
    assert_eq!(evaluate(json!({"upper": {"attribute": "level"}})), Some(json!(3)));
    assert_eq!(evaluate(json!({"lower": {"attribute": "external_id"}})), None);
    assert_eq!(
        evaluate(json!({"default": [{"attribute": "external_id"}, {"constant": ""}, {"attribute": "username"}]})),
        Some(json!("Alice.Smith"))
    );
    assert_eq!(evaluate(json!({"default": [{"attribute": "external_id"}]})), None);
    let lookup = |default: Option<Value>| {
        let mut source =
            json!({"lookup": {"input": {"attribute": "language"}, "table": {"en": "English", "de": "German"}}});
        if let Some(default) = default {
            source["lookup"]["default"] = default;
        }
        source
    };
    assert_eq!(evaluate(lookup(None)), Some(json!("English")));
    person.attributes.insert("language".into(), json!("fr"));
    let evaluate = |source: Value| serde_json::from_value::<Source>(source).unwrap().evaluate(&person);
    assert_eq!(evaluate(lookup(None)), None);
    assert_eq!(evaluate(lookup(Some(json!("Other")))), Some(json!("Other")));
    assert_eq!(evaluate(json!({"constant": null})), None);
    assert_eq!(evaluate(json!({"attribute": "active"})), Some(json!(true)));
}

#[test]
fn sources_round_trip_through_json() {
    let text = r#"{"lookup":{"input":{"lower":{"attribute":"language"}},"table":{"en":"English"},"default":"x"}}"#;
    let source: Source = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_string(&source).unwrap(), text);
    let rules = mapping(json!([rule("userName", json!({"attribute": "username"}))]));
    assert_eq!(
        serde_json::to_value(&rules).unwrap(),
        json!([{"target": "userName", "source": {"attribute": "username"}}])
    );
}

#[test]
fn active_must_render_as_a_boolean() {
    let rules = |source: Value| {
        mapping(json!([
            rule("userName", json!({"attribute": "username"})),
            rule("active", source)
        ]))
    };
    let rendered = rules(json!({"constant": "FALSE"})).render(&user()).unwrap();
    assert_eq!(rendered["active"], json!(false));
    match rules(json!({"constant": "yes"})).render(&user()) {
        Err(Error::Validation { field, message }) => {
            assert_eq!(field, "active");
            assert!(message.contains("mapping[1]"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let extension = mapping(json!([
        rule("userName", json!({"attribute": "username"})),
        rule("urn:example:ext:Active", json!({"constant": 1}))
    ]));
    assert!(extension.render(&user()).is_err());
}

#[test]
fn validate_reports_problems_per_rule() {
    let base = || rule("userName", json!({"attribute": "username"}));

    let (field, message) = validation_error(
        mapping(json!([base(), rule("costCenter", json!({"attribute": "costcenter"}))])).validate(&[]),
    );
    assert_eq!(field, "mapping[1].source");
    assert_eq!(
        message,
        "'costcenter' is neither a default profile attribute nor a defined custom attribute"
    );

    let nested = json!({"concat": [{"constant": "x"}, {"lower": {"attribute": "costcenter"}}]});
    let (field, _) = validation_error(mapping(json!([base(), rule("title", nested)])).validate(&[]));
    assert_eq!(field, "mapping[1].source");

    let (field, message) = validation_error(
        mapping(json!([
            base(),
            rule("name.givenName", json!({"attribute": "given_name"})),
            rule("Name.GIVENNAME", json!({"attribute": "given_name"}))
        ]))
        .validate(&[]),
    );
    assert_eq!(field, "mapping[2].target");
    assert!(message.contains("mapping[1]"), "{message}");

    let (field, _) = validation_error(
        mapping(json!([
            base(),
            rule(&format!("{CORE_USER_SCHEMA}:username"), json!({"attribute": "email"}))
        ]))
        .validate(&[]),
    );
    assert_eq!(field, "mapping[1].target");

    let (field, _) = validation_error(
        mapping(json!([
            base(),
            rule(r#"emails[type eq "work"].value"#, json!({"attribute": "email"})),
            rule(r#"emails[TYPE eq "WORK"].Value"#, json!({"attribute": "email"}))
        ]))
        .validate(&[]),
    );
    assert_eq!(field, "mapping[2].target");

    let (field, message) = validation_error(
        mapping(json!([
            base(),
            rule("name", json!({"constant": {}})),
            rule("name.givenName", json!({"constant": "x"}))
        ]))
        .validate(&[]),
    );
    assert_eq!(field, "mapping[2].target");
    assert!(message.contains("not a mix"), "{message}");

    let (field, message) =
        validation_error(mapping(json!([rule("displayName", json!({"attribute": "display_name"}))])).validate(&[]));
    assert_eq!(field, "mapping");
    assert!(message.contains("userName"), "{message}");

    for read_only in ["id", "meta.created", "Schemas", "groups"] {
        let (field, message) =
            validation_error(mapping(json!([base(), rule(read_only, json!({"constant": "x"}))])).validate(&[]));
        assert_eq!(field, "mapping[1].target");
        assert!(message.contains("read-only"), "{message}");
    }

    let (field, message) =
        validation_error(mapping(json!([base(), rule("emails[type eq", json!({"constant": "x"}))])).validate(&[]));
    assert_eq!(field, "mapping[1].target");
    assert!(message.contains("expected a value after 'eq'"), "{message}");

    let (_, message) = validation_error(
        mapping(json!([
            base(),
            rule(r#"emails[type eq "work"]"#, json!({"constant": "x"}))
        ]))
        .validate(&[]),
    );
    assert!(message.contains("no sub-attribute"), "{message}");

    let (_, message) = validation_error(
        mapping(json!([
            base(),
            rule(r#"emails[type eq "work"].type"#, json!({"constant": "x"}))
        ]))
        .validate(&[]),
    );
    assert!(message.contains("filter already fixes"), "{message}");

    let mut deep = json!({"attribute": "username"});
    for _ in 0..MAX_SOURCE_DEPTH {
        deep = json!({"lower": deep});
    }
    let (_, message) = validation_error(mapping(json!([base(), rule("title", deep)])).validate(&[]));
    assert!(message.contains("nested"), "{message}");

    mapping(json!([
        base(),
        rule("title", json!({"attribute": "costcenter"})),
        rule(&format!("{ENTERPRISE}:id"), json!({"constant": "x"}))
    ]))
    .validate(&definitions(&["costcenter"]))
    .unwrap();
}

#[test]
fn patch_changes_a_name_sub_attribute() {
    let before =
        json!({"schemas": [CORE_USER_SCHEMA], "userName": "a", "name": {"givenName": "Al", "familyName": "S"}});
    let after =
        json!({"schemas": [CORE_USER_SCHEMA], "userName": "a", "name": {"givenName": "Alice", "familyName": "S"}});
    assert_eq!(
        wire(&before, &after),
        vec![json!({"op": "replace", "path": "name.givenName", "value": "Alice"})]
    );
}

#[test]
fn patch_replaces_the_emails_array_whole() {
    let before = json!({"userName": "a", "emails": [{"type": "work", "value": "a@x.io", "primary": true}]});
    let after = json!({"userName": "a", "emails": [{"type": "work", "value": "b@x.io", "primary": true}]});
    assert_eq!(
        wire(&before, &after),
        vec![
            json!({"op": "replace", "path": "emails", "value": [{"type": "work", "value": "b@x.io", "primary": true}]})
        ]
    );
}

#[test]
fn patch_adds_and_removes_attributes() {
    let before = json!({"userName": "a", "title": "Engineer", "name": {"givenName": "A", "formatted": "A"}, "id": "1"});
    let after = json!({"userName": "a", "displayName": "A", "name": {"givenName": "A", "familyName": "B"}, "meta": {}});
    assert_eq!(
        wire(&before, &after),
        vec![
            json!({"op": "add", "path": "displayName", "value": "A"}),
            json!({"op": "add", "path": "name.familyName", "value": "B"}),
            json!({"op": "remove", "path": "name.formatted"}),
            json!({"op": "remove", "path": "title"}),
        ]
    );
    let without_name = json!({"userName": "a", "displayName": "A"});
    assert_eq!(
        wire(&after, &without_name),
        vec![json!({"op": "remove", "path": "name"})]
    );
    assert_eq!(
        wire(&without_name, &after),
        vec![json!({"op": "add", "path": "name", "value": {"givenName": "A", "familyName": "B"}})]
    );
}

#[test]
fn patch_changes_extension_attributes() {
    let before = json!({
        "schemas": [CORE_USER_SCHEMA, ENTERPRISE],
        "userName": "a",
        ENTERPRISE: {"department": "R&D", "manager": {"value": "m-1"}, "costCenter": "7"}
    });
    let after = json!({
        "schemas": [CORE_USER_SCHEMA, ENTERPRISE],
        "userName": "a",
        ENTERPRISE: {"department": "Sales", "manager": {"value": "m-2"}, "division": "EU"}
    });
    assert_eq!(
        wire(&before, &after),
        vec![
            json!({"op": "remove", "path": format!("{ENTERPRISE}:costCenter")}),
            json!({"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}),
            json!({"op": "add", "path": format!("{ENTERPRISE}:division"), "value": "EU"}),
            json!({"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "m-2"}}),
        ]
    );
    let core_only = json!({"schemas": [CORE_USER_SCHEMA], "userName": "a"});
    assert_eq!(
        wire(&after, &core_only),
        vec![
            json!({"op": "remove", "path": format!("{ENTERPRISE}:department")}),
            json!({"op": "remove", "path": format!("{ENTERPRISE}:division")}),
            json!({"op": "remove", "path": format!("{ENTERPRISE}:manager")}),
        ]
    );
}

#[test]
fn patch_without_changes_is_empty() {
    let rendered = preset("monday").unwrap().unwrap().mapping.render(&user()).unwrap();
    assert!(patch_operations(&rendered, &rendered).is_empty());
    let mut other_schemas = rendered.clone();
    other_schemas["schemas"] = json!([]);
    assert!(patch_operations(&rendered, &other_schemas).is_empty());
}

#[test]
fn patch_matches_attribute_names_ignoring_case() {
    let before = json!({"userName": "a", "Title": "x"});
    let after = json!({"userName": "a", "title": "y"});
    assert_eq!(
        wire(&before, &after),
        vec![json!({"op": "replace", "path": "title", "value": "y"})]
    );
}

#[test]
fn mapping_schema_is_an_array_of_rules() {
    use utoipa::PartialSchema;
    let schema = serde_json::to_value(Mapping::schema()).unwrap();
    assert_eq!(schema["type"], json!("array"));
    assert_eq!(schema["items"]["$ref"], json!("#/components/schemas/MappingRule"));
    let mut schemas = Vec::new();
    <Preset as utoipa::ToSchema>::schemas(&mut schemas);
    let names: Vec<&str> = schemas.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"MappingRule") && names.contains(&"Source"), "{names:?}");
}

/// Applies exactly the operation forms [`patch_operations`] emits.
fn apply_patch(resource: &Value, operations: &[Value]) -> Value {
    let mut resource = resource.as_object().unwrap().clone();
    for operation in operations {
        let path = operation["path"].as_str().unwrap();
        let (container, name) = if path.to_ascii_lowercase().starts_with("urn:") {
            let colon = path.rfind(':').unwrap();
            (Some(&path[..colon]), &path[colon + 1..])
        } else {
            (None, path)
        };
        let (attribute, sub) = match (container, name.split_once('.')) {
            (None, Some((attribute, sub))) => (attribute, Some(sub)),
            _ => (name, None),
        };
        let mut scope: Vec<&str> = container.into_iter().collect();
        scope.push(attribute);
        scope.extend(sub);
        let (leaf, parents) = scope.split_last().unwrap();
        let mut target = &mut resource;
        for parent in parents {
            target = target
                .entry(parent.to_string())
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .unwrap();
        }
        match operation["op"].as_str().unwrap() {
            "add" => {
                assert!(!target.contains_key(*leaf), "add of an existing {path}");
                target.insert(leaf.to_string(), operation["value"].clone());
            }
            "replace" => {
                assert!(target.contains_key(*leaf), "replace of a missing {path}");
                target.insert(leaf.to_string(), operation["value"].clone());
            }
            "remove" => {
                assert!(target.remove(*leaf).is_some(), "remove of a missing {path}");
            }
            other => panic!("unexpected op {other}"),
        }
        resource.retain(|_, value| value.as_object().is_none_or(|object| !object.is_empty()));
    }
    Value::Object(resource)
}

fn without_schemas(value: &Value) -> Value {
    let mut value = value.clone();
    value.as_object_mut().unwrap().remove("schemas");
    value
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-zA-Z ]{0,4}")
}

fn arbitrary_user() -> impl Strategy<Value = User> {
    (
        (any::<u128>(), "[a-zA-Z][a-zA-Z0-9._-]{0,5}", any::<bool>()),
        (optional_text(), optional_text(), optional_text(), optional_text()),
        (
            proptest::option::of("[a-c]{1,2}@x\\.io"),
            optional_text(),
            optional_text(),
        ),
    )
        .prop_map(
            |((id, username, active), (given, family, display, formatted), (email, department, manager))| {
                let mut user = user();
                user.id = Uuid::from_u128(id % 4);
                user.username = username;
                user.active = active;
                user.given_name = given;
                user.family_name = family;
                user.display_name = display;
                user.formatted_name = formatted;
                user.email = email;
                user.attributes.clear();
                if let Some(department) = department {
                    user.attributes.insert("department".into(), json!(department));
                }
                if let Some(manager) = manager {
                    user.attributes.insert("manager".into(), json!(manager));
                }
                user
            },
        )
}

fn generic_with_extension() -> Mapping {
    let mut rules = preset("generic").unwrap().unwrap().mapping;
    rules.rules.extend(
        mapping(json!([
            rule(&format!("{ENTERPRISE}:department"), json!({"attribute": "department"})),
            rule(&format!("{ENTERPRISE}:manager.value"), json!({"attribute": "manager"})),
        ]))
        .rules,
    );
    rules
}

proptest! {
    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = TargetPath::parse(&text);
    }

    #[test]
    fn parse_never_panics_on_path_like_text(text in r#"(urn:[a-z:.]{0,12}:)?[a-zA-Z0-9.\[\]" :=é\\-]{0,30}"#) {
        if let Ok(path) = TargetPath::parse(&text) {
            prop_assert_eq!(path.as_str(), text.as_str());
        }
    }

    #[test]
    fn patch_turns_previous_into_desired(previous in arbitrary_user(), desired in arbitrary_user()) {
        for rules in [preset("generic").unwrap().unwrap().mapping, generic_with_extension()] {
            let before = rules.render(&previous).unwrap();
            let after = rules.render(&desired).unwrap();
            let operations = wire(&before, &after);
            prop_assert_eq!(without_schemas(&apply_patch(&before, &operations)), without_schemas(&after));
            prop_assert!(wire(&after, &after).is_empty());
        }
    }
}

/// The operations as a PATCH request carries them.
fn wire(previous: &Value, desired: &Value) -> Vec<Value> {
    patch_operations(previous, desired)
        .iter()
        .map(crate::domain::scim::patch::PatchOperation::to_json)
        .collect()
}
