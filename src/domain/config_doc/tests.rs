//! The document read and written without a hub: lines of refusals, export read back to the same
//! state, declared groups.

use super::*;
use crate::domain::mapping::preset;

fn known<'a>(current: &'a ConfigState, groups: &'a [String], digests: &'a BTreeMap<String, String>) -> Known<'a> {
    Known {
        current,
        groups,
        prune: false,
        token_digests: digests,
        password_digests: digests,
        allow_link_local: false,
    }
}

fn line_of(error: Error) -> usize {
    match error {
        Error::Document { line, .. } => line,
        other => panic!("not a document refusal: {other}"),
    }
}

#[test]
fn syntax_errors_and_unknown_keys_name_their_line() {
    assert_eq!(line_of(parse("version = 1\n\n[[apps]\n").unwrap_err()), 3);
    let unknown = "[[attributes]]\nname = \"title\"\ntype = \"string\"\ncolour = \"red\"\n";
    assert_eq!(line_of(parse(unknown).unwrap_err()), 4);
    assert_eq!(line_of(parse("version = 2\n").unwrap_err()), 1);
}

#[test]
fn an_export_reads_back_to_the_same_state() {
    let state = ConfigState {
        attributes: vec![AttributeSpec {
            name: "title".into(),
            display_name: "Title".into(),
            kind: AttributeType::String,
            required: false,
            description: Some("Job title".into()),
        }],
        apps: vec![AppSpec {
            name: "Monday".into(),
            preset: "generic".into(),
            base_url: "https://acme.monday.com/scim/v2".into(),
            enabled: false,
            features: Features::default(),
            deprovision: Deprovisioning::uniform(DeprovisionAction::Delete),
            flow: FlowControl::default(),
            mapping: preset("monday").unwrap().unwrap().mapping,
            token_digest: Some("d".into()),
        }],
        groups: vec![GroupSpec { name: "Sales".into() }],
        policies: vec![PolicySpec {
            name: "Monday for Sales".into(),
            app: "Monday".into(),
            group: "Sales".into(),
        }],
        ldap_sources: Vec::new(),
    };
    let text = export(&state).unwrap();
    let document = parse(&text).unwrap();
    assert_eq!(
        document.token_refs(),
        vec![("Monday".to_owned(), SecretRef::Env("PROVISIO_APP_TOKEN_MONDAY".into()))]
    );
    let groups = vec!["Sales".to_owned()];
    let digests: BTreeMap<String, String> = [("Monday".to_owned(), "d".to_owned())].into();
    let mut current = state.clone();
    current.attributes.push(AttributeSpec {
        name: "language".into(),
        ..state.attributes[0].clone()
    });
    current.attributes.push(AttributeSpec {
        name: "timezone".into(),
        ..state.attributes[0].clone()
    });
    let desired = desired_state(&text, &document, &known(&current, &groups, &digests)).unwrap();
    assert_eq!(desired, state);
    assert_eq!(export(&desired).unwrap(), text);
    let declared = text
        .find("[[groups]]\nname = \"Sales\"\n")
        .expect("the group is declared");
    assert!(declared < text.find("[[policies]]").expect("a policy"), "{text}");
    let no_groups = desired_state(&text, &document, &known(&current, &[], &digests)).unwrap();
    assert_eq!(no_groups, state, "a declared group needs no group in the hub");
}

#[test]
fn declared_groups_are_checked_at_their_line_and_take_the_hubs_spelling() {
    let app = "[[apps]]\nname = \"Wiki\"\nbase_url = \"https://w.example.com/scim\"\ntoken_env = \"W\"\n";
    let digests: BTreeMap<String, String> = [("Wiki".to_owned(), "w".to_owned())].into();
    let empty = ConfigState::default();
    let hub_groups = vec!["Sales".to_owned()];
    let check = |text: &str, groups: &[String]| {
        let document = parse(text)?;
        desired_state(text, &document, &known(&empty, groups, &digests))
    };
    let invisible = format!("{app}\n[[groups]]\nname = \"Sa{}les\"\n", '\u{200b}');
    assert_eq!(line_of(check(&invisible, &[]).unwrap_err()), 7);
    let blank = format!("{app}\n[[groups]]\nname = \" \"\n");
    assert_eq!(line_of(check(&blank, &[]).unwrap_err()), 7);
    let twice = format!("{app}\n[[groups]]\nname = \"Sales\"\n\n[[groups]]\nname = \"SALES\"\n");
    assert_eq!(line_of(check(&twice, &[]).unwrap_err()), 10);
    let unknown_key = format!("{app}\n[[groups]]\nname = \"Sales\"\nmembers = [\"ann\"]\n");
    assert_eq!(line_of(check(&unknown_key, &[]).unwrap_err()), 8);
    let undeclared =
        format!("{app}\n[[groups]]\nname = \"Sales\"\n\n[[policies]]\napp = \"Wiki\"\ngroup = \"Support\"\n");
    let error = check(&undeclared, &hub_groups).unwrap_err();
    assert!(error.to_string().contains("Support"), "{error}");
    assert_eq!(line_of(error), 11);

    let declared = format!("{app}\n[[groups]]\nname = \"sales\"\n\n[[policies]]\napp = \"Wiki\"\ngroup = \"SALES\"\n");
    let new = check(&declared, &[]).unwrap();
    assert_eq!(new.groups, vec![GroupSpec { name: "sales".into() }]);
    assert_eq!(new.policies[0].group, "sales", "the declared spelling");
    let existing = check(&declared, &hub_groups).unwrap();
    assert_eq!(existing.groups, vec![GroupSpec { name: "Sales".into() }]);
    assert_eq!(existing.policies[0].group, "Sales", "the hub's spelling");
    let composed = format!(
        "{app}\n[[groups]]\nname = \"Cafe{}\"\n\n[[policies]]\napp = \"Wiki\"\ngroup = \"caf{}\"\n",
        '\u{301}', '\u{e9}'
    );
    let normalised = check(&composed, &[]).unwrap();
    assert_eq!(
        normalised.groups[0].name, "Caf\u{e9}",
        "stored as the directory stores it"
    );
    assert_eq!(normalised.policies[0].group, "Caf\u{e9}");
}

#[test]
fn literal_secrets_and_unknown_names_are_refused_at_their_line() {
    let empty = ConfigState::default();
    let digests = BTreeMap::new();
    let groups: Vec<String> = Vec::new();
    let check = |text: &str| {
        let document = parse(text)?;
        desired_state(text, &document, &known(&empty, &groups, &digests))
    };
    let literal = "[[apps]]\nname = \"Wiki\"\nbase_url = \"https://wiki.example.com/scim\"\ntoken = \"s3cret\"\n";
    assert_eq!(line_of(check(literal).unwrap_err()), 4);
    let preset = "[[apps]]\nname = \"Wiki\"\n\npreset = \"myspace\"\nbase_url = \"https://w.example.com/scim\"\ntoken_env = \"W\"\n";
    assert_eq!(line_of(check(preset).unwrap_err()), 4);
    let no_token = "[[apps]]\nname = \"Wiki\"\nbase_url = \"https://w.example.com/scim\"\n";
    assert_eq!(line_of(check(no_token).unwrap_err()), 2);
    let no_group = "[[policies]]\napp = \"Wiki\"\ngroup = \"Sales\"\n";
    assert_eq!(line_of(check(no_group).unwrap_err()), 2, "no app named Wiki");
}

#[test]
fn the_readme_example_is_a_valid_document() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("## Configuration as code")
        .nth(1)
        .expect("the README section");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the example");
    let document = parse(example).unwrap();
    let groups: Vec<String> = Vec::new();
    let digests: BTreeMap<String, String> = [
        ("Monday".to_owned(), "t".to_owned()),
        ("corp".to_owned(), "p".to_owned()),
    ]
    .into();
    let empty = ConfigState::default();
    let desired = desired_state(example, &document, &known(&empty, &groups, &digests)).unwrap();
    assert_eq!(desired.apps[0].name, "Monday");
    assert_eq!(desired.ldap_sources[0].settings.unique_id, "objectGUID");
    assert_eq!(desired.groups[0].name, "Sales", "declared, so no hub group is needed");
}
