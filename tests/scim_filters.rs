//! SCIM filters give the same answer in the database as in memory, on SQLite and PostgreSQL.
//!
//! The hub's SCIM server translates filters to SQL over the `scim_index` table (`store::scim`);
//! `domain::scim::eval::matches` is the reference. Here a random but reproducible directory (users
//! with mixed-case and non-ASCII names, `%`, `_`, `'` and `\` in their values, emails, phone
//! numbers, the enterprise extension, custom attributes of every type, odd extension documents
//! written through the directory API, groups with members) is stored through the services, and
//! a list of edge filters plus hundreds of generated ones (every operator, `pr`, value paths,
//! `and`/`or`/`not` nesting, literals drawn mostly from the stored values) are run both through
//! `ScimStore::search_users` / `search_groups` and through the evaluator over the resources built
//! as the service builds them. Each filter must be refused by both (`invalidFilter`) or give
//! exactly the same resources, and the total must count them; every disagreement is cut down to a
//! minimal filter and reported, once per distinct minimal filter, with the resources concerned.
//! Fixed cases cover injection-looking literals, `%`/`_` in `co` literals, case-exact versus
//! case-insensitive attributes, date-times compared as instants, `ne` on missing attributes, and
//! index rows mixing numbers and NULLs on PostgreSQL.
//!
//! `PROVISIO_SCIM_FILTER_SEED` (a number) replays another directory and filter sequence;
//! `PROVISIO_SCIM_FILTER_CASES` changes the number of user filters per backend.

mod common;

use common::{Backend, TestDatabase};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use provisio::domain::Error;
use provisio::domain::admin::Actor;
use provisio::domain::attribute::AttributeType;
use provisio::domain::error::ScimErrorType;
use provisio::domain::scim::ast::{AttrPath, Filter};
use provisio::domain::scim::discovery::group_resource_schema;
use provisio::domain::scim::eval;
use provisio::domain::scim::filter::parse_filter;
use provisio::domain::scim::schema::{
    AttrType, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PROVISIO_USER_SCHEMA, ResourceSchema, USER_SCHEMA,
};
use provisio::domain::user::{NewUser, UserSource};
use provisio::service::directory::NewAttribute;
use provisio::service::scim::{ResourceKind, ScimLimits};
use provisio::service::{DirectoryService, ScimService};
use provisio::store::{ScimSearch, ScimStore, SqlStore};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

backend_tests!(
    sql_filters_agree_with_the_evaluator,
    injection_looking_literals_are_plain_strings,
    like_wildcards_are_literal_characters,
    case_sensitivity_follows_the_schema,
    date_times_compare_as_instants,
    ne_matches_resources_without_the_attribute,
    index_rows_mixing_numbers_and_nulls_are_stored,
);

const BASE: &str = "https://hub.example/scim/v2";
const ENT: &str = ENTERPRISE_USER_SCHEMA;
const PRV: &str = PROVISIO_USER_SCHEMA;
/// Users created through the SCIM service in the random directory (plus the odd ones of [`odd_users`]).
const SCIM_USERS: usize = 56;
/// User filters per backend, unless `PROVISIO_SCIM_FILTER_CASES` says otherwise.
const USER_CASES: u32 = 400;
/// Group filters per backend.
const GROUP_CASES: u32 = 120;
/// Filters in Entra ID's form compared with their standard equivalent per backend (a quarter of
/// them on groups).
const ENTRA_CASES: u32 = 120;
/// Disagreements shrunk by proptest before being cut down part by part (later ones are only cut down).
const MAX_SHRUNK: usize = 8;
/// Evaluations spent shrinking one disagreement.
const MAX_SHRINK_STEPS: u32 = 400;

fn seed() -> u64 {
    std::env::var("PROVISIO_SCIM_FILTER_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0x5C1F_F11E)
}

fn user_cases() -> u32 {
    std::env::var("PROVISIO_SCIM_FILTER_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(USER_CASES)
}

// ---------------------------------------------------------------------------------------------
// A small deterministic generator for the directory (SplitMix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut rng = Rng(seed);
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next().to_le_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The directory: a fresh database, the services over it, and every resource as the service shows it.

struct Directory {
    _db: TestDatabase,
    store: SqlStore,
    scim: ScimService<SqlStore>,
    directory: DirectoryService<SqlStore>,
    user_schema: ResourceSchema,
    group_schema: ResourceSchema,
    users: Vec<(Uuid, Value)>,
    groups: Vec<(Uuid, Value)>,
}

/// What happened to one filter when both sides agreed.
enum Verdict {
    Rejected,
    Matched(usize),
}

fn is_invalid_filter(error: &Error) -> bool {
    matches!(
        error,
        Error::Scim {
            scim_type: ScimErrorType::InvalidFilter,
            ..
        }
    )
}

impl Directory {
    /// An empty directory with one custom attribute of each type: `costCode` (string), `level`
    /// (integer), `remote` (boolean), `hiredAt` (datetime) and `tags` (string list).
    async fn new(backend: Backend) -> Self {
        let db = TestDatabase::new(backend).await;
        let store = db.store().await;
        let directory = DirectoryService::new(store.clone());
        for (name, kind) in [
            ("costCode", AttributeType::String),
            ("level", AttributeType::Integer),
            ("remote", AttributeType::Boolean),
            ("hiredAt", AttributeType::Datetime),
            ("tags", AttributeType::StringList),
        ] {
            let input = NewAttribute {
                name: name.into(),
                display_name: None,
                kind,
                required: false,
                description: None,
            };
            directory
                .create_attribute(input, &Actor::System)
                .await
                .expect("define a custom attribute");
        }
        let scim = ScimService::new(store.clone(), ScimLimits::default());
        let user_schema = scim.user_schema().await.expect("user schema");
        Directory {
            _db: db,
            store,
            scim,
            directory,
            user_schema,
            group_schema: group_resource_schema().expect("group schema"),
            users: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Creates a user through the SCIM service (`POST /Users`).
    async fn scim_user(&self, body: Value) -> Uuid {
        match self
            .scim
            .create(ResourceKind::User, body.clone(), &Actor::System, BASE)
            .await
        {
            Ok(created) => created.id,
            Err(e) => panic!("creating the SCIM user {body}: {e}"),
        }
    }

    /// Creates a user through the directory service (the admin API's way), `input` being a `NewUser`.
    async fn plain_user(&self, input: Value) -> Uuid {
        let user: NewUser = serde_json::from_value(input.clone()).expect("a NewUser");
        match self
            .directory
            .create_user(user, UserSource::Local, &Actor::System)
            .await
        {
            Ok(user) => user.id,
            Err(e) => panic!("creating the user {input}: {e}"),
        }
    }

    /// Creates a group with members through the SCIM service (`POST /Groups`).
    async fn scim_group(&self, name: &str, external_id: Option<&str>, members: &[Uuid]) -> Uuid {
        let mut body = json!({
            "schemas": [GROUP_SCHEMA],
            "displayName": name,
            "members": members.iter().map(|m| json!({"value": m.to_string()})).collect::<Vec<_>>(),
        });
        if let Some(external_id) = external_id {
            body["externalId"] = json!(external_id);
        }
        match self
            .scim
            .create(ResourceKind::Group, body.clone(), &Actor::System, BASE)
            .await
        {
            Ok(created) => created.id,
            Err(e) => panic!("creating the SCIM group {body}: {e}"),
        }
    }

    /// Reads every user and group back and builds their resources exactly as the SCIM service does.
    async fn reload(&mut self) {
        self.user_schema = self.scim.user_schema().await.expect("user schema");
        let everything = ScimSearch {
            filter: None,
            sort: None,
            offset: 0,
            limit: 1_000_000,
        };
        let (_, users) = self
            .store
            .search_users(&self.user_schema, &everything)
            .await
            .expect("all users");
        let resources = self.scim.user_resources(&users, BASE).await.expect("user resources");
        self.users = users.iter().map(|u| u.id).zip(resources).collect();
        let (_, groups) = self
            .store
            .search_groups(&self.group_schema, &everything)
            .await
            .expect("all groups");
        let resources = self.scim.group_resources(&groups, BASE).await.expect("group resources");
        self.groups = groups.iter().map(|g| g.id).zip(resources).collect();
    }

    fn of(&self, kind: ResourceKind) -> (&ResourceSchema, &[(Uuid, Value)]) {
        match kind {
            ResourceKind::User => (&self.user_schema, &self.users),
            ResourceKind::Group => (&self.group_schema, &self.groups),
        }
    }

    fn resource(&self, kind: ResourceKind, id: Uuid) -> Option<&Value> {
        self.of(kind).1.iter().find(|(i, _)| *i == id).map(|(_, r)| r)
    }

    fn user_id(&self, user_name: &str) -> Uuid {
        self.users
            .iter()
            .find(|(_, r)| r["userName"] == user_name)
            .map(|(id, _)| *id)
            .unwrap_or_else(|| panic!("no user {user_name}"))
    }

    fn user_name(&self, id: Uuid) -> String {
        self.resource(ResourceKind::User, id)
            .and_then(|r| r["userName"].as_str())
            .map_or_else(|| id.to_string(), str::to_owned)
    }

    /// The filter run in the database: the total and the ids of every match.
    async fn sql_ids(&self, kind: ResourceKind, filter: &Filter) -> provisio::domain::Result<(u64, BTreeSet<Uuid>)> {
        let search = ScimSearch {
            filter: Some(filter),
            sort: None,
            offset: 0,
            limit: 1_000_000,
        };
        Ok(match kind {
            ResourceKind::User => {
                let (total, users) = self.store.search_users(&self.user_schema, &search).await?;
                (total, users.iter().map(|u| u.id).collect())
            }
            ResourceKind::Group => {
                let (total, groups) = self.store.search_groups(&self.group_schema, &search).await?;
                (total, groups.iter().map(|g| g.id).collect())
            }
        })
    }

    /// The filter run by the evaluator over every resource.
    fn memory_ids(&self, kind: ResourceKind, filter: &Filter) -> provisio::domain::Result<BTreeSet<Uuid>> {
        let (schema, resources) = self.of(kind);
        eval::validate(filter, schema)?;
        let mut out = BTreeSet::new();
        for (id, resource) in resources {
            if eval::matches(filter, resource, schema)? {
                out.insert(*id);
            }
        }
        Ok(out)
    }

    /// Runs `text` on both sides: `Ok` when they agree, else what differs.
    async fn compare(&self, kind: ResourceKind, text: &str) -> Result<Verdict, String> {
        let filter = parse_filter(text).map_err(|e| format!("the generated filter does not parse: {e}"))?;
        let sql = self.sql_ids(kind, &filter).await;
        let memory = self.memory_ids(kind, &filter);
        match (sql, memory) {
            (Err(s), Err(m)) if is_invalid_filter(&s) && is_invalid_filter(&m) => Ok(Verdict::Rejected),
            (Ok((total, found)), Ok(expected)) => {
                if found == expected && usize::try_from(total).ok() == Some(found.len()) {
                    Ok(Verdict::Matched(found.len()))
                } else {
                    Err(self.difference(kind, total, &found, &expected))
                }
            }
            (Ok((_, found)), Err(m)) => Err(format!(
                "the evaluator refuses it ({m}) but SQL accepts it and finds {} resources",
                found.len()
            )),
            (Err(s), Ok(expected)) => Err(format!(
                "SQL refuses it ({s:?}) but the evaluator accepts it and finds {} of {} resources",
                expected.len(),
                self.of(kind).1.len()
            )),
            (Err(s), Err(m)) => Err(format!(
                "both refuse it, but not both with invalidFilter: SQL {s:?}, evaluator {m:?}"
            )),
        }
    }

    fn difference(&self, kind: ResourceKind, total: u64, found: &BTreeSet<Uuid>, expected: &BTreeSet<Uuid>) -> String {
        let mut out = format!(
            "SQL finds {} (total {total}), the evaluator {}",
            found.len(),
            expected.len()
        );
        for (label, ids) in [
            ("only SQL finds", found.difference(expected).collect::<Vec<_>>()),
            (
                "only the evaluator finds",
                expected.difference(found).collect::<Vec<_>>(),
            ),
        ] {
            if ids.is_empty() {
                continue;
            }
            let _ = write!(out, "\n  {label} {}:", ids.len());
            for id in ids.iter().take(3) {
                let mut resource = self.resource(kind, **id).map(Value::to_string).unwrap_or_default();
                if let Some((cut, _)) = resource.char_indices().nth(1500) {
                    resource.truncate(cut);
                    resource.push_str("...");
                }
                let _ = write!(out, "\n    {resource}");
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The random directory.

const USER_STEMS: &[&str] = &[
    "alice",
    "Alice",
    "al",
    "albert",
    "bob",
    "Bobby",
    "émile",
    "Émilie",
    "zoë",
    "ÅSA",
    "o'brien",
    "100%",
    "100_",
    "under_score",
    "back\\slash",
    "quote\"d",
    "a_c",
    "abc",
    "x%y",
    "DUP",
    "李雷",
    "ß",
    "SS",
    "ΣΊΣΥΦΟΣ",
];
const USER_SUFFIXES: &[&str] = &["", "", "", ".admin", "@corp", "_ext", "%", "-2", ".Admin", " jr"];
const GIVEN: &[&str] = &[
    "Émile",
    "Emile",
    "emile",
    "Anna",
    "ANNA",
    "Zoë",
    "Ørjan",
    "李",
    "Mary-Jane",
    "O'Neil",
    "Straße",
    "İlker",
    "José",
    "50%",
    "a_b",
    "Al",
    "back\\slash",
];
const FAMILY: &[&str] = &[
    "Jensen",
    "jensen",
    "Müller",
    "MULLER",
    "O'Brien",
    "Smith-Jones",
    "de la Cruz",
    "100%",
    "x_y",
    "Nguyễn",
    "Ångström",
    "Doe",
];
const TITLES: &[&str] = &[
    "Engineer",
    "engineer",
    "Senior Engineer",
    "Lead_Dev",
    "VP, Sales",
    "Ärztin",
    "100% Remote",
    "it's me",
    "C:\\Users",
    "ENGINEER",
];
const DISPLAY: &[&str] = &["Dr. Who", "ÉMILE Z", "Ops 50%", "o'brien", "a_c display", "Zoë K."];
const LOCALS: &[&str] = &[
    "alice",
    "Alice.Smith",
    "a_b",
    "x%y",
    "o'brien",
    "émile",
    "ANNA",
    "bob+tag",
    "z",
];
const DOMAINS: &[&str] = &["example.com", "Example.ORG", "corp.example.com", "exämple.de"];
const EMAIL_TYPES: &[&str] = &["work", "work", "home", "Work", "other"];
const PHONES: &[&str] = &["+1 555 0100", "+44 20 7946 0958", "555-0101", "(555) 0102"];
const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "engineering",
    "R&D",
    "Sales_EU",
    "Sales%EU",
    "50% Ops",
    "Ünits",
    "Ops",
];
const MANAGERS: &[&str] = &["EMP-7", "emp-7", "Emp-7", "EMP-70"];
const COST_CODES: &[&str] = &["A-1", "a-1", "B_2", "b%2", "Ç-3", "A-10"];
const LEVELS: &[i64] = &[
    -5,
    -1,
    0,
    1,
    2,
    3,
    3,
    10,
    42,
    1000,
    9_007_199_254_740_993,
    i64::MAX,
    i64::MIN,
];
const HIRED: &[&str] = &[
    "2024-01-31T23:30:00-02:00",
    "2024-02-01T01:30:00Z",
    "2024-02-01T01:30:00.000001Z",
    "1969-12-31T23:59:59.999999Z",
    "1900-01-01T00:00:00Z",
    "2020-02-29T12:00:00+05:30",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59.999998Z",
    "2300-01-01T00:00:00.000001Z",
    "2300-01-01T00:00:00.000002Z",
    "2024-06-15T08:00:00.123456789Z",
];
const TAGS: &[&str] = &["VIP", "remote", "on-call", "50%", "a_b", "ß", "Oslo", "back\\slash"];

/// The body of a random SCIM user.
fn random_scim_user(rng: &mut Rng, i: usize, taken: &mut BTreeSet<String>, earlier: &[Uuid]) -> Value {
    let mut user_name = format!("{}{}", rng.pick(USER_STEMS), rng.pick(USER_SUFFIXES));
    if !taken.insert(user_name.to_lowercase()) {
        user_name = format!("{user_name}{i}");
        taken.insert(user_name.to_lowercase());
    }
    let mut schemas = vec![json!(USER_SCHEMA)];
    let mut body = Map::new();
    body.insert("userName".into(), json!(user_name));
    let (given, family) = (rng.pick(GIVEN), rng.pick(FAMILY));
    if rng.chance(85) {
        let mut name = Map::new();
        if rng.chance(80) {
            name.insert("givenName".into(), json!(given));
        }
        if rng.chance(70) {
            name.insert("familyName".into(), json!(family));
        }
        if rng.chance(20) {
            name.insert("formatted".into(), json!(format!("{given} {family}")));
        }
        if rng.chance(15) {
            name.insert("middleName".into(), json!(rng.pick(&["Q", "van", "Ü"])));
        }
        if !name.is_empty() {
            body.insert("name".into(), Value::Object(name));
        }
    }
    if rng.chance(60) {
        let display = if rng.chance(50) {
            format!("{given} {family}")
        } else {
            rng.pick(DISPLAY).to_owned()
        };
        body.insert("displayName".into(), json!(display));
    }
    if rng.chance(20) {
        body.insert("nickName".into(), json!(rng.pick(&["Babs", "babs", "Z", "ßig"])));
    }
    if rng.chance(60) {
        body.insert("title".into(), json!(rng.pick(TITLES)));
    }
    match rng.below(5) {
        0 | 1 => {
            body.insert("active".into(), json!(true));
        }
        2 | 3 => {
            body.insert("active".into(), json!(false));
        }
        _ => {}
    }
    let emails = rng.below(4);
    if emails > 0 {
        let primary = if rng.chance(50) { Some(rng.below(emails)) } else { None };
        let list: Vec<Value> = (0..emails)
            .map(|n| {
                let mut email = json!({"value": format!("{}{i}{n}@{}", rng.pick(LOCALS), rng.pick(DOMAINS))});
                if rng.chance(80) {
                    email["type"] = json!(rng.pick(EMAIL_TYPES));
                }
                if primary == Some(n) {
                    email["primary"] = json!(true);
                } else if rng.chance(15) {
                    email["primary"] = json!(false);
                }
                if rng.chance(15) {
                    email["display"] = json!(rng.pick(&["Work mail", "privé", "x_y"]));
                }
                email
            })
            .collect();
        body.insert("emails".into(), Value::Array(list));
    }
    let phones = rng.below(3);
    if phones > 0 {
        let list: Vec<Value> = (0..phones)
            .map(|n| {
                let mut phone = json!({"value": format!("{} {i}{n}", rng.pick(PHONES)), "type": rng.pick(&["work", "mobile", "home"])});
                if n == 0 && rng.chance(30) {
                    phone["primary"] = json!(true);
                }
                phone
            })
            .collect();
        body.insert("phoneNumbers".into(), Value::Array(list));
    }
    if rng.chance(25) {
        let mut address = json!({
            "locality": rng.pick(&["Oslo", "München", "São Paulo", "oslo"]),
            "country": rng.pick(&["NO", "DE", "BR"]),
            "type": rng.pick(&["work", "home"]),
        });
        if rng.chance(40) {
            address["primary"] = json!(true);
        }
        body.insert("addresses".into(), json!([address]));
    }
    if rng.chance(20) {
        body.insert(
            "roles".into(),
            json!([{"value": rng.pick(&["admin", "Admin", "auditor"]), "primary": rng.chance(50)}]),
        );
    }
    if rng.chance(10) {
        body.insert(
            "x509Certificates".into(),
            json!([{"value": rng.pick(&["TUlJQw==", "AAEC", "aGk="])}]),
        );
    }
    if rng.chance(15) {
        body.insert("profileUrl".into(), json!(format!("https://Example.com/u/{i}")));
    }
    if rng.chance(40) {
        let external = match rng.below(4) {
            0 => rng.pick(&["EXT-1", "ext-1", "Ext-1"]).to_owned(),
            1 => format!("EXT-{i}"),
            2 => format!("ext-{i}"),
            _ => format!("Ext_%{i}"),
        };
        body.insert("externalId".into(), json!(external));
    }
    if rng.chance(60) {
        let mut enterprise = Map::new();
        if rng.chance(70) {
            enterprise.insert("department".into(), json!(rng.pick(DEPARTMENTS)));
        }
        if rng.chance(50) {
            enterprise.insert("employeeNumber".into(), json!(format!("{:05}", i * 7)));
        }
        if rng.chance(20) {
            enterprise.insert("costCenter".into(), json!(rng.pick(&["CC-1", "cc-1"])));
        }
        if rng.chance(10) {
            enterprise.insert("organization".into(), json!("Provisio AS"));
        }
        if rng.chance(40) {
            let value = if !earlier.is_empty() && rng.chance(60) {
                rng.pick(earlier).to_string()
            } else {
                rng.pick(MANAGERS).to_owned()
            };
            let mut manager = json!({"value": value});
            if rng.chance(30) {
                manager["$ref"] = json!(format!("../Users/{value}"));
            }
            if rng.chance(30) {
                manager["displayName"] = json!("ignored: read-only");
            }
            enterprise.insert("manager".into(), manager);
        }
        if !enterprise.is_empty() {
            schemas.push(json!(ENT));
            body.insert(ENT.into(), Value::Object(enterprise));
        }
    }
    if rng.chance(75) {
        let mut custom = Map::new();
        if rng.chance(50) {
            custom.insert("costCode".into(), json!(rng.pick(COST_CODES)));
        }
        if rng.chance(60) {
            custom.insert("level".into(), json!(rng.pick(LEVELS)));
        }
        if rng.chance(50) {
            custom.insert("remote".into(), json!(rng.chance(50)));
        }
        if rng.chance(50) {
            custom.insert("hiredAt".into(), json!(rng.pick(HIRED)));
        }
        if rng.chance(40) {
            let tags: BTreeSet<&str> = (0..=rng.below(3)).map(|_| rng.pick(TAGS)).collect();
            custom.insert("tags".into(), json!(tags));
        }
        if !custom.is_empty() {
            schemas.push(json!(PRV));
            body.insert(PRV.into(), Value::Object(custom));
        }
    }
    body.insert("schemas".into(), Value::Array(schemas));
    Value::Object(body)
}

/// Users written through the directory service with extension documents the SCIM service would
/// not produce: empty values, keys differing only in case, wrong JSON types, odd list shapes.
fn odd_users() -> Vec<Value> {
    let ent_lower = ENT.to_lowercase();
    vec![
        json!({"username": "odd.empty", "extensions": {"title": "", "nickName": null, "phoneNumbers": [], "name": {}}}),
        json!({"username": "odd.Twins", "extensions": {"Title": "Boss", "title": "boss two", "USERNAME": "shadow"}}),
        json!({"username": "odd.types", "extensions": {"nickName": 42, "title": ["a", "b"], "DisplayName": "Shadow Display"}, "attributes": {"level": 7}}),
        json!({"username": "odd.emails", "email": "Odd.Primary@Example.com", "extensions": {"emails": [
            {"value": "", "type": "work"}, {"type": "home"}, {}, "not an object",
            {"value": "odd.second@example.com", "primary": "True", "type": "WORK"}, null]}}),
        json!({"username": "odd.ent", "extensions": {ent_lower: {"Department": "Ops", "manager": {"value": ""}, "employeeNumber": 12}}}),
        json!({"username": "odd.shapes", "extensions": {"addresses": {"locality": "Oslo", "type": "home"}, ENT: {"department": ["Sales", "Ops"]},
            "roles": [{"value": "admin"}, {"value": "ADMIN", "primary": true}], "x509Certificates": [{"value": "AAEC"}]}}),
        json!({"username": "odd.both", "extensions": {ENT: {"department": "Legal"}, "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:User": {"department": "Audit"}}}),
        json!({"username": "odd.extid", "extensions": {"externalId": "from-extensions", "EXTERNALID": "SHOUT"}}),
        json!({"username": "odd.middle", "extensions": {"name": {"middleName": "Q", "honorificPrefix": "Dr."}}}),
        json!({"username": "odd.computed", "extensions": {"groups": [{"value": "fake"}], "id": "fake-id", "meta": {"created": "2000-01-01T00:00:00Z"}}}),
        json!({"username": "odd.active", "active": false, "extensions": {"Active": "yes", "primary": 1}}),
        json!({"username": "odd.phone", "extensions": {"phoneNumbers": [{"value": "+1 555 0100", "primary": true, "type": "work"}, {"value": "+1 555 0100", "type": "WORK"}]}}),
        json!({"username": "odd.tags", "attributes": {"tags": ["", "X", "x"], "remote": false}}),
        json!({"username": "odd.dates", "attributes": {"hiredAt": "2024-02-01T03:30:00+02:00"}, "external_id": "EXT-1"}),
    ]
}

/// Builds the random directory: SCIM users, odd directory users, a few later changes, groups.
async fn random_directory(backend: Backend, seed: u64) -> Directory {
    let mut dir = Directory::new(backend).await;
    let mut rng = Rng(seed);
    let mut taken = BTreeSet::new();
    let mut ids = Vec::new();
    for i in 0..SCIM_USERS {
        let body = random_scim_user(&mut rng, i, &mut taken, &ids);
        ids.push(dir.scim_user(body).await);
    }
    for input in odd_users() {
        ids.push(dir.plain_user(input).await);
    }
    // Later changes: deactivations, PATCHes, a deletion; each rewrites or removes index rows.
    for _ in 0..4 {
        let id = rng.pick(&ids).to_string();
        let user = dir.directory.get_user(&id).await.expect("user");
        dir.directory
            .set_active(&id, !user.active, &Actor::System)
            .await
            .expect("toggle active");
    }
    for _ in 0..3 {
        // SCIM users only: an odd user's `"Active": "yes"` makes its resource unpatchable.
        let id = rng.pick(&ids[..SCIM_USERS]).to_string();
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "title", "value": rng.pick(TITLES)},
                {"op": "add", "path": "emails", "value": [{"value": format!("patched{}@example.com", rng.below(100)), "type": "home"}]},
            ],
        });
        dir.scim
            .patch(ResourceKind::User, &id, &patch, None, &Actor::System, BASE)
            .await
            .unwrap_or_else(|e| panic!("PATCH {patch}: {e}"));
    }
    let doomed = dir
        .scim_user(json!({"schemas": [USER_SCHEMA], "userName": "doomed", "title": "Engineer"}))
        .await;
    dir.scim
        .delete(ResourceKind::User, &doomed.to_string(), None, &Actor::System)
        .await
        .expect("delete");
    // Groups, some members in several, some users in none.
    let mut pick_members = |share: u64| -> Vec<Uuid> { ids.iter().copied().filter(|_| rng.chance(share)).collect() };
    let admins = pick_members(20);
    let engineering = pick_members(35);
    let club = pick_members(10);
    let unicode = pick_members(15);
    dir.scim_group("Admins", Some("GRP-1"), &admins).await;
    dir.scim_group("Engineering", Some("grp-1"), &engineering).await;
    dir.scim_group("100%_Club", None, &club).await;
    dir.scim_group("Ünicode Team", Some("Grüppe"), &unicode).await;
    dir.scim_group("Empty", None, &[]).await;
    let renamed = dir.scim_group("Old name", None, &admins[..admins.len().min(2)]).await;
    dir.directory
        .rename_group(&renamed.to_string(), "Renamed's", &Actor::System)
        .await
        .expect("rename");
    dir.reload().await;
    dir
}

// ---------------------------------------------------------------------------------------------
// Filter generation: what can be compared, with literals drawn from the stored values.

/// An attribute path as the generator knows it.
#[derive(Debug, Clone, Copy)]
struct Attr {
    urn: Option<&'static str>,
    name: &'static str,
    sub: Option<&'static str>,
}

const fn core(name: &'static str) -> Attr {
    Attr {
        urn: None,
        name,
        sub: None,
    }
}

const fn core_sub(name: &'static str, sub: &'static str) -> Attr {
    Attr {
        urn: None,
        name,
        sub: Some(sub),
    }
}

const fn ext(urn: &'static str, name: &'static str, sub: Option<&'static str>) -> Attr {
    Attr {
        urn: Some(urn),
        name,
        sub,
    }
}

impl Attr {
    fn path(self) -> AttrPath {
        AttrPath {
            urn: self.urn.map(str::to_owned),
            attr: self.name.to_owned(),
            sub: self.sub.map(str::to_owned),
        }
    }

    /// The path as written in a filter; `style` varies the case of names and URN qualification.
    fn render(self, style: u8, core_urn: &str) -> String {
        let mut out = String::new();
        match (self.urn, style) {
            (Some(urn), 3) => {
                out.push_str(&urn.to_ascii_lowercase());
                out.push(':');
            }
            (Some(urn), _) => {
                out.push_str(urn);
                out.push(':');
            }
            (None, 3) => {
                out.push_str(core_urn);
                out.push(':');
            }
            (None, _) => {}
        }
        out.push_str(&name_case(self.name, style));
        if let Some(sub) = self.sub {
            out.push('.');
            out.push_str(&name_case(sub, style));
        }
        out
    }
}

/// Names ignore case: style 1 writes them in lower case, 2 in upper case (`$ref` stays as it is).
fn name_case(name: &str, style: u8) -> String {
    match style {
        _ if name.starts_with('$') => name.to_owned(),
        1 => name.to_ascii_lowercase(),
        2 => name.to_ascii_uppercase(),
        _ => name.to_owned(),
    }
}

/// The values a comparison target holds in the directory, by kind.
#[derive(Debug, Clone)]
enum Values {
    Text(Vec<String>),
    Number(Vec<i64>),
    Boolean,
    Date(Vec<i64>),
}

#[derive(Debug, Clone)]
struct Target {
    attr: Attr,
    values: Values,
}

/// A value path: the attribute and its element sub-attributes (`value` for a simple attribute).
#[derive(Debug, Clone)]
struct ValuePathSpec {
    attr: Attr,
    subs: Vec<(&'static str, Values)>,
}

/// Everything the filter generator draws from for one resource type.
#[derive(Debug)]
struct Catalogue {
    core_urn: &'static str,
    text: Vec<Target>,
    numbers: Vec<Target>,
    booleans: Vec<Target>,
    dates: Vec<Target>,
    present: Vec<Attr>,
    value_paths: Vec<ValuePathSpec>,
    edges: Vec<String>,
    all_text: Vec<String>,
}

/// The values at `container` / `attr` / `sub` of a resource: keys matched ignoring ASCII case,
/// arrays flattened; without `sub`, an object element stands for its `value`.
fn leaves(resource: &Value, container: Option<&str>, attr: &str, sub: Option<&str>) -> Vec<Value> {
    fn get<'a>(value: &'a Value, key: &str) -> Vec<&'a Value> {
        value
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }
    fn flat(value: &Value) -> Vec<&Value> {
        match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        }
    }
    let scopes = match container {
        Some(urn) => get(resource, urn),
        None => vec![resource],
    };
    let mut out = Vec::new();
    for scope in scopes {
        for value in get(scope, attr) {
            for element in flat(value) {
                match sub {
                    Some(sub) => {
                        for v in get(element, sub) {
                            out.extend(flat(v).into_iter().cloned());
                        }
                    }
                    None if element.is_object() => out.extend(get(element, "value").into_iter().cloned()),
                    None => out.push(element.clone()),
                }
            }
        }
    }
    out
}

fn all_strings(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| all_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| all_strings(v, out)),
        _ => {}
    }
}

/// The values of `attr` in `resources`, typed by the schema's definition of its leaf.
fn values_of(schema: &ResourceSchema, resources: &[(Uuid, Value)], attr: Attr, all: &[String]) -> Values {
    let kind = match schema.resolve(&attr.path()) {
        Ok(resolved) => resolved.leaf().kind,
        Err(_) => AttrType::String,
    };
    let found: Vec<Value> = resources
        .iter()
        .flat_map(|(_, r)| leaves(r, attr.urn, attr.name, attr.sub))
        .collect();
    values_from(kind, &found, all)
}

fn values_from(kind: AttrType, found: &[Value], all: &[String]) -> Values {
    match kind {
        AttrType::Boolean => Values::Boolean,
        AttrType::Integer | AttrType::Decimal => {
            let mut numbers: Vec<i64> = found.iter().filter_map(Value::as_i64).collect();
            numbers.sort_unstable();
            numbers.dedup();
            if numbers.is_empty() {
                numbers.push(0);
            }
            Values::Number(numbers)
        }
        AttrType::DateTime => {
            let mut dates: Vec<i64> = found
                .iter()
                .filter_map(Value::as_str)
                .filter_map(eval::date_time_micros)
                .collect();
            dates.sort_unstable();
            dates.dedup();
            if dates.is_empty() {
                dates.push(1_706_745_600_000_000);
            }
            Values::Date(dates)
        }
        _ => {
            let texts: BTreeSet<String> = found.iter().filter_map(Value::as_str).map(str::to_owned).collect();
            if texts.is_empty() {
                Values::Text(all.to_vec())
            } else {
                Values::Text(texts.into_iter().collect())
            }
        }
    }
}

fn catalogue(
    schema: &ResourceSchema,
    resources: &[(Uuid, Value)],
    core_urn: &'static str,
    compared: &[Attr],
    present: &[Attr],
    value_paths: &[(Attr, &[&'static str])],
    edges: Vec<String>,
) -> Catalogue {
    let mut strings = BTreeSet::new();
    for (_, resource) in resources {
        all_strings(resource, &mut strings);
    }
    let all_text: Vec<String> = strings.into_iter().collect();
    let mut cat = Catalogue {
        core_urn,
        text: Vec::new(),
        numbers: Vec::new(),
        booleans: Vec::new(),
        dates: Vec::new(),
        present: present.to_vec(),
        value_paths: Vec::new(),
        edges,
        all_text: all_text.clone(),
    };
    for attr in compared {
        let values = values_of(schema, resources, *attr, &all_text);
        let target = Target { attr: *attr, values };
        match target.values {
            Values::Text(_) => cat.text.push(target),
            Values::Number(_) => cat.numbers.push(target),
            Values::Boolean => cat.booleans.push(target),
            Values::Date(_) => cat.dates.push(target),
        }
    }
    for (attr, subs) in value_paths {
        let def = schema.resolve(&attr.path()).expect("value path attribute").attr;
        let subs = subs
            .iter()
            .map(|sub| {
                let (kind, leaf_sub) = match def.sub(sub) {
                    Some(s) => (s.kind, Some(*sub)),
                    None => (def.kind, None),
                };
                let found: Vec<Value> = resources
                    .iter()
                    .flat_map(|(_, r)| leaves(r, attr.urn, attr.name, leaf_sub))
                    .collect();
                (*sub, values_from(kind, &found, &all_text))
            })
            .collect();
        cat.value_paths.push(ValuePathSpec { attr: *attr, subs });
    }
    cat
}

const USER_COMPARED: &[Attr] = &[
    core("userName"),
    core_sub("name", "givenName"),
    core_sub("name", "familyName"),
    core_sub("name", "formatted"),
    core_sub("name", "middleName"),
    core("displayName"),
    core("nickName"),
    core("title"),
    core("profileUrl"),
    core_sub("emails", "value"),
    core_sub("emails", "type"),
    core_sub("emails", "display"),
    core("emails"),
    core_sub("phoneNumbers", "value"),
    core_sub("phoneNumbers", "type"),
    core_sub("addresses", "locality"),
    core_sub("addresses", "country"),
    core_sub("roles", "value"),
    core_sub("x509Certificates", "value"),
    core_sub("groups", "value"),
    core("groups"),
    core("id"),
    core("externalId"),
    ext(ENT, "department", None),
    ext(ENT, "employeeNumber", None),
    ext(ENT, "costCenter", None),
    ext(ENT, "organization", None),
    ext(ENT, "manager", Some("value")),
    ext(ENT, "manager", Some("$ref")),
    ext(PRV, "costCode", None),
    ext(PRV, "tags", None),
    // numbers
    ext(PRV, "level", None),
    // booleans
    core("active"),
    ext(PRV, "remote", None),
    core_sub("emails", "primary"),
    core_sub("phoneNumbers", "primary"),
    core_sub("roles", "primary"),
    // dates
    core_sub("meta", "created"),
    core_sub("meta", "lastModified"),
    ext(PRV, "hiredAt", None),
];

const USER_PRESENT: &[Attr] = &[
    core("userName"),
    core("name"),
    core_sub("name", "givenName"),
    core_sub("name", "familyName"),
    core_sub("name", "middleName"),
    core("displayName"),
    core("nickName"),
    core("title"),
    core("active"),
    core("emails"),
    core_sub("emails", "value"),
    core_sub("emails", "type"),
    core_sub("emails", "primary"),
    core("phoneNumbers"),
    core("addresses"),
    core("roles"),
    core("ims"),
    core("x509Certificates"),
    core("password"),
    core("profileUrl"),
    core("groups"),
    core_sub("groups", "value"),
    core("id"),
    core("externalId"),
    core_sub("meta", "created"),
    core_sub("meta", "lastModified"),
    ext(ENT, "department", None),
    ext(ENT, "employeeNumber", None),
    ext(ENT, "manager", None),
    ext(ENT, "manager", Some("value")),
    ext(PRV, "costCode", None),
    ext(PRV, "level", None),
    ext(PRV, "remote", None),
    ext(PRV, "hiredAt", None),
    ext(PRV, "tags", None),
];

const USER_VALUE_PATHS: &[(Attr, &[&str])] = &[
    (core("emails"), &["value", "type", "display", "primary"]),
    (core("phoneNumbers"), &["value", "type", "primary"]),
    (core("addresses"), &["locality", "country", "type", "primary"]),
    (core("roles"), &["value", "primary"]),
    (core("x509Certificates"), &["value"]),
    (ext(ENT, "manager", None), &["value", "$ref"]),
    (ext(PRV, "tags", None), &["value"]),
    (core("groups"), &["value"]),
    (core("name"), &["givenName", "familyName", "middleName"]),
];

const GROUP_COMPARED: &[Attr] = &[
    core("displayName"),
    core("externalId"),
    core("id"),
    core_sub("members", "value"),
    core("members"),
    core_sub("meta", "created"),
    core_sub("meta", "lastModified"),
];

const GROUP_PRESENT: &[Attr] = &[
    core("displayName"),
    core("externalId"),
    core("members"),
    core_sub("members", "value"),
    core("id"),
    core_sub("meta", "created"),
];

const GROUP_VALUE_PATHS: &[(Attr, &[&str])] = &[(core("members"), &["value"])];

fn user_catalogue(dir: &Directory) -> Catalogue {
    let group = dir.groups.first().map(|(id, _)| id.to_string()).unwrap_or_default();
    let user = dir.users.first().map(|(id, _)| id.to_string()).unwrap_or_default();
    let edges = vec![
        r#"nope eq "x""#.to_owned(),
        r#"department eq "Ops""#.to_owned(),
        r#"name eq "x""#.to_owned(),
        "emails.nope pr".to_owned(),
        r#"urn:example:ext:1.0:User:x eq "1""#.to_owned(),
        r#"emails[nope eq "x"]"#.to_owned(),
        "meta pr".to_owned(),
        "meta.version pr".to_owned(),
        "meta[created pr]".to_owned(),
        r#"meta.resourceType eq "User""#.to_owned(),
        "groups.display pr".to_owned(),
        "groups[display pr]".to_owned(),
        format!(r#"groups[value ne "{group}"]"#),
        format!(r#"groups.value eq "{}""#, group.to_uppercase()),
        format!(r#"id eq "{}""#, user.to_uppercase()),
        "userName eq null".to_owned(),
        "title eq 5".to_owned(),
        "active gt true".to_owned(),
        format!(r#"{ENT}:manager eq "x""#),
        r#"emails eq "x""#.to_owned(),
        "userName[value pr]".to_owned(),
        "password pr".to_owned(),
        r#"x509Certificates.value gt "A""#.to_owned(),
        format!("{USER_SCHEMA}:id pr"),
        format!("{PRV}:hiredAt eq \"9999-12-31T23:59:59.999998Z\""),
        format!("{PRV}:level eq 9007199254740992"),
        r#"emails[type eq "work" and value co "example"]"#.to_owned(),
        r#"emails[not (type eq "work")]"#.to_owned(),
        // Values under keys that differ only in case (odd.Twins, odd.both) are separate elements.
        r#"userName[value eq "shadow" and value eq "odd.Twins"]"#.to_owned(),
        r#"userName[not (value co "odd.Twins")]"#.to_owned(),
        format!(r#"{ENT}:department[value eq "Legal" and value eq "Audit"]"#),
        r#"title[value eq "Boss" and value eq "boss two"]"#.to_owned(),
        // Entra ID's form: a sub-attribute comparison after the value filter.
        r#"emails[type eq "work"].value co "example""#.to_owned(),
        r#"addresses[type eq "work"].locality pr"#.to_owned(),
        r#"phoneNumbers[type eq "work" or primary eq true].value sw "+""#.to_owned(),
        format!(r#"{ENT}:manager[value pr].$ref pr"#),
    ];
    catalogue(
        &dir.user_schema,
        &dir.users,
        USER_SCHEMA,
        USER_COMPARED,
        USER_PRESENT,
        USER_VALUE_PATHS,
        edges,
    )
}

fn group_catalogue(dir: &Directory) -> Catalogue {
    let member = dir
        .groups
        .iter()
        .find_map(|(_, g)| g["members"][0]["value"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let edges = vec![
        format!(r#"members[value ne "{member}"]"#),
        format!(r#"members.value eq "{}""#, member.to_uppercase()),
        "members.display pr".to_owned(),
        r#"members[type eq "User"]"#.to_owned(),
        "meta pr".to_owned(),
        r#"userName eq "x""#.to_owned(),
        r#"displayName co "%""#.to_owned(),
        r#"displayName co "_""#.to_owned(),
    ];
    catalogue(
        &dir.group_schema,
        &dir.groups,
        GROUP_SCHEMA,
        GROUP_COMPARED,
        GROUP_PRESENT,
        GROUP_VALUE_PATHS,
        edges,
    )
}

/// Characters random literals are made of: ASCII, LIKE wildcards, quotes, backslash, non-ASCII,
/// a NUL and a newline (written as JSON escapes).
const ALPHABET: &[char] = &[
    'a', 'B', 'x', '1', '.', '@', '-', ' ', '%', '_', '\'', '\\', '"', 'é', 'É', 'ß', 'Σ', 'ς', '*', '(', ']', '\0',
    '\n', '李',
];
const DELTAS: &[i64] = &[
    0,
    0,
    0,
    1,
    -1,
    999,
    -1000,
    1_000_000,
    -1_000_000,
    86_400_000_000,
    -3_600_000_000,
];
const OFFSETS: &[(i8, i8)] = &[(0, 0), (2, 0), (-5, -30), (14, 0), (-12, 0)];
const BOOLEANS: &[&str] = &["true", "false", "TRUE", "False", "\"true\"", "\"FALSE\""];
const NOT_BOOLEANS: &[&str] = &["\"yes\"", "1", "null"];
const NOT_TEXTS: &[&str] = &["1", "true", "null", "2.5"];
const NOT_NUMBERS: &[&str] = &["\"3\"", "null", "true", "\"x\""];
const NOT_DATES: &[&str] = &[
    "\"2024-13-01T00:00:00Z\"",
    "\"yesterday\"",
    "\"2024-01-01\"",
    "1700000000",
    "\"\"",
    "null",
];
const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
const ORDERED_OPS: &[&str] = &["eq", "ne", "gt", "ge", "lt", "le"];

/// Random choices behind one literal; how they are used depends on the target's kind.
#[derive(Debug, Clone)]
struct LiteralSeed {
    pick: Index,
    how: u8,
    a: Index,
    b: Index,
    noise: Vec<char>,
    escape: bool,
    delta: i64,
    offset: usize,
    nanos: u32,
    wrong: bool,
}

fn literal_seed() -> impl Strategy<Value = LiteralSeed> {
    (
        any::<Index>(),
        0u8..14,
        any::<Index>(),
        any::<Index>(),
        proptest::collection::vec(select(ALPHABET), 0..5),
        proptest::bool::weighted(0.1),
        select(DELTAS),
        0..OFFSETS.len(),
        0u32..1000,
        proptest::bool::weighted(0.05),
    )
        .prop_map(
            |(pick, how, a, b, noise, escape, delta, offset, nanos, wrong)| LiteralSeed {
                pick,
                how,
                a,
                b,
                noise,
                escape,
                delta,
                offset,
                nanos,
                wrong,
            },
        )
}

fn swap_case(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_lowercase() {
                c.to_uppercase().collect::<Vec<_>>()
            } else {
                c.to_lowercase().collect::<Vec<_>>()
            }
        })
        .collect()
}

/// A text literal: a stored value as it is, case-changed, cut to a substring, prefix or suffix,
/// extended with noise, or noise alone.
fn text_literal(pool: &[String], all: &[String], seed: &LiteralSeed) -> String {
    let base = &pool[seed.pick.index(pool.len())];
    let chars: Vec<char> = base.chars().collect();
    let n = chars.len();
    let noise: String = seed.noise.iter().collect();
    let start = seed.a.index(n + 1);
    let end = start + seed.b.index(n - start + 1);
    match seed.how {
        0 | 1 => base.clone(),
        2 => base.to_uppercase(),
        3 => base.to_lowercase(),
        4 => swap_case(base),
        5 | 6 => chars[start..end].iter().collect(),
        7 => chars[..start].iter().collect(),
        8 => chars[start..].iter().collect(),
        9 => format!("{base}{noise}"),
        10 => format!("{noise}{base}"),
        11 => all[seed.pick.index(all.len())].clone(),
        12 => noise,
        _ => swap_case(&chars[start..end].iter().collect::<String>()),
    }
}

/// A JSON string literal; with `escape_all`, everything but letters, digits and spaces as `\uXXXX`.
fn json_text(text: &str, escape_all: bool) -> String {
    if !escape_all {
        return Value::String(text.to_owned()).to_string();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == ' ' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out.push('"');
    out
}

/// An instant (microseconds plus `nanos`) written in RFC 3339 at one of [`OFFSETS`].
fn instant_text(micros: i64, nanos: u32, offset: usize) -> Option<String> {
    let (hours, minutes) = OFFSETS[offset % OFFSETS.len()];
    let offset = UtcOffset::from_hms(hours, minutes, 0).ok()?;
    let instant = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000 + i128::from(nanos)).ok()?;
    instant.checked_to_offset(offset)?.format(&Rfc3339).ok()
}

fn date_literal(pool: &[i64], seed: &LiteralSeed) -> String {
    let base = if seed.how == 13 {
        // Anywhere from 1870 to 2270.
        (i64::try_from(seed.a.index(400)).unwrap_or(0) - 100) * 31_556_952_000_000
    } else {
        pool[seed.pick.index(pool.len())]
    };
    let micros = base.saturating_add(seed.delta);
    let nanos = if seed.how.is_multiple_of(3) { seed.nanos } else { 0 };
    instant_text(micros, nanos, seed.offset)
        .or_else(|| instant_text(base, 0, 0))
        .map_or_else(|| "\"1970-01-01T00:00:00Z\"".to_owned(), |t| format!("\"{t}\""))
}

fn number_literal(pool: &[i64], seed: &LiteralSeed) -> String {
    let base = i128::from(pool[seed.pick.index(pool.len())]);
    match seed.how {
        0..=5 => base.to_string(),
        6 | 7 => (base + 1).to_string(),
        8 => (base - 1).to_string(),
        9 => format!("{base}.5"),
        10 => format!("{base}e0"),
        11 => format!("{}", i64::try_from(seed.a.index(21)).unwrap_or(0) - 10),
        12 => "9007199254740993".to_owned(),
        _ => "-0.25".to_owned(),
    }
}

fn literal(values: &Values, seed: &LiteralSeed, all: &[String]) -> String {
    let wrong = |choices: &[&str]| choices[seed.a.index(choices.len())].to_owned();
    match values {
        Values::Text(_) | Values::Number(_) | Values::Date(_) if seed.wrong => match values {
            Values::Text(_) => wrong(NOT_TEXTS),
            Values::Number(_) => wrong(NOT_NUMBERS),
            _ => wrong(NOT_DATES),
        },
        Values::Text(pool) => json_text(&text_literal(pool, all, seed), seed.escape),
        Values::Number(pool) => number_literal(pool, seed),
        Values::Date(pool) => date_literal(pool, seed),
        Values::Boolean if seed.wrong => wrong(NOT_BOOLEANS),
        Values::Boolean => wrong(BOOLEANS),
    }
}

/// An operator suited to the kind most of the time (numbers, dates and booleans sometimes get one
/// they refuse), in lower or upper case.
fn operator(values: &Values, seed: u8, upper: bool) -> String {
    let i = usize::from(seed);
    let op = match values {
        Values::Text(_) => OPS[i % OPS.len()],
        Values::Number(_) | Values::Date(_) if seed < 90 => ORDERED_OPS[i % ORDERED_OPS.len()],
        Values::Boolean if seed < 85 => ["eq", "ne"][i % 2],
        _ => OPS[i % OPS.len()],
    };
    if upper { op.to_uppercase() } else { op.to_owned() }
}

fn compare_leaf(cat: &Arc<Catalogue>, pick: fn(&Catalogue) -> &Vec<Target>) -> BoxedStrategy<String> {
    let n = pick(cat).len().max(1);
    let cat = Arc::clone(cat);
    (0..n, 0u8..8, 0u8..100, proptest::bool::weighted(0.15), literal_seed())
        .prop_map(move |(i, style, op, upper, seed)| {
            let targets = pick(&cat);
            let Some(target) = targets.get(i) else {
                return "userName pr".to_owned();
            };
            format!(
                "{} {} {}",
                target.attr.render(style, cat.core_urn),
                operator(&target.values, op, upper),
                literal(&target.values, &seed, &cat.all_text)
            )
        })
        .boxed()
}

fn present_leaf(cat: &Arc<Catalogue>) -> BoxedStrategy<String> {
    let cat = Arc::clone(cat);
    (0..cat.present.len(), 0u8..8, proptest::bool::weighted(0.15))
        .prop_map(move |(i, style, upper)| {
            format!(
                "{} {}",
                cat.present[i].render(style, cat.core_urn),
                if upper { "PR" } else { "pr" }
            )
        })
        .boxed()
}

/// Joins two filters with `and`/`or` (parenthesised or not) or negates one, up to `depth` levels.
fn nest(leaf: BoxedStrategy<String>, depth: u32, size: u32) -> BoxedStrategy<String> {
    leaf.prop_recursive(depth, size, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                inner.clone(),
                any::<bool>(),
                proptest::bool::weighted(0.1)
            )
                .prop_map(|(a, b, parens, upper)| {
                    let and = if upper { "AND" } else { "and" };
                    if parens {
                        format!("({a}) {and} ({b})")
                    } else {
                        format!("{a} {and} {b}")
                    }
                }),
            (
                inner.clone(),
                inner.clone(),
                any::<bool>(),
                proptest::bool::weighted(0.1)
            )
                .prop_map(|(a, b, parens, upper)| {
                    let or = if upper { "OR" } else { "or" };
                    if parens {
                        format!("({a}) {or} ({b})")
                    } else {
                        format!("{a} {or} {b}")
                    }
                }),
            (inner, proptest::bool::weighted(0.1))
                .prop_map(|(a, upper)| { format!("{} ({a})", if upper { "NOT" } else { "not" }) }),
        ]
    })
    .boxed()
}

/// How often a generated value path takes the form Entra ID sends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EntraForm {
    /// Now and then, on attributes with several sub-attributes (`members[value ...].value ...`
    /// is only ever refused); other attributes get exactly the choices they got before the form.
    Sometimes,
    /// Always.
    Always,
}

/// The parts of a value path: the attribute as written, an element filter over its
/// sub-attributes, and for Entra ID's form one more comparison (or `pr`) of a sub-attribute.
fn value_path_parts(cat: &Arc<Catalogue>, form: EntraForm) -> BoxedStrategy<(String, String, Option<String>)> {
    let outer = Arc::clone(cat);
    (0..cat.value_paths.len(), 0u8..8)
        .prop_flat_map(move |(i, style)| {
            let cat = Arc::clone(&outer);
            let spec = cat.value_paths[i].clone();
            let subs = Arc::new(spec.subs.clone());
            let compare_subs = Arc::clone(&subs);
            let compare_cat = Arc::clone(&cat);
            let compare = (0..subs.len(), 0u8..100, literal_seed()).prop_map(move |(j, op, seed)| {
                let (name, values) = &compare_subs[j];
                format!(
                    "{} {} {}",
                    name_case(name, style),
                    operator(values, op, false),
                    literal(values, &seed, &compare_cat.all_text)
                )
            });
            let present_subs = Arc::clone(&subs);
            let present = (0..subs.len()).prop_map(move |j| format!("{} pr", name_case(present_subs[j].0, style)));
            let single = prop_oneof![4 => compare, 1 => present].boxed();
            let inner = nest(single.clone(), 2, 6);
            let path = spec.attr.render(style, cat.core_urn);
            match form {
                EntraForm::Sometimes if subs.len() < 2 => {
                    inner.prop_map(move |inner| (path.clone(), inner, None)).boxed()
                }
                _ => {
                    let chance = if form == EntraForm::Always { 1.0 } else { 0.3 };
                    (inner, single, proptest::bool::weighted(chance))
                        .prop_map(move |(inner, last, entra)| (path.clone(), inner, entra.then_some(last)))
                        .boxed()
                }
            }
        })
        .boxed()
}

/// `attr[...]`, or in the form Entra ID sends, `attr[...].sub op value`.
fn value_path_leaf(cat: &Arc<Catalogue>) -> BoxedStrategy<String> {
    value_path_parts(cat, EntraForm::Sometimes)
        .prop_map(|(path, inner, last)| match last {
            Some(last) => format!("{path}[{inner}].{last}"),
            None => format!("{path}[{inner}]"),
        })
        .boxed()
}

/// A filter in Entra ID's form, `attr[...].sub op value`, and the standard filter it stands for,
/// `attr[(...) and sub op value]`.
fn entra_pairs(cat: Catalogue) -> BoxedStrategy<(String, String)> {
    value_path_parts(&Arc::new(cat), EntraForm::Always)
        .prop_map(|(path, inner, last)| {
            let last = last.unwrap_or_default();
            (
                format!("{path}[{inner}].{last}"),
                format!("{path}[({inner}) and {last}]"),
            )
        })
        .boxed()
}

fn filters(cat: Catalogue) -> BoxedStrategy<String> {
    let cat = Arc::new(cat);
    let mut leaves: Vec<(u32, BoxedStrategy<String>)> = vec![
        (30, compare_leaf(&cat, |c| &c.text)),
        (10, present_leaf(&cat)),
        (14, value_path_leaf(&cat)),
        (2, select(cat.edges.clone()).boxed()),
    ];
    if !cat.numbers.is_empty() {
        leaves.push((8, compare_leaf(&cat, |c| &c.numbers)));
    }
    if !cat.booleans.is_empty() {
        leaves.push((8, compare_leaf(&cat, |c| &c.booleans)));
    }
    if !cat.dates.is_empty() {
        leaves.push((10, compare_leaf(&cat, |c| &c.dates)));
    }
    let leaf = proptest::strategy::Union::new_weighted(leaves).boxed();
    nest(leaf, 3, 12)
}

// ---------------------------------------------------------------------------------------------
// Running generated filters on both sides, shrinking disagreements.

#[derive(Debug, Default)]
struct Summary {
    cases: u32,
    rejected: u32,
    none: u32,
    some: u32,
    all: u32,
    failures: Vec<(String, String, String)>,
}

async fn shrink(
    dir: &Directory,
    kind: ResourceKind,
    tree: &mut dyn ValueTree<Value = String>,
    mut minimal: String,
    mut why: String,
) -> (String, String) {
    let mut steps = 0;
    if !tree.simplify() {
        return (minimal, why);
    }
    loop {
        steps += 1;
        let candidate = tree.current();
        let more = match dir.compare(kind, &candidate).await {
            Err(reason) => {
                minimal = candidate;
                why = reason;
                tree.simplify()
            }
            Ok(_) => tree.complicate(),
        };
        if !more || steps >= MAX_SHRINK_STEPS {
            return (minimal, why);
        }
    }
}

/// Smaller filters than `filter`: a branch of an `and`/`or`, the inside of a `not`, or the same
/// shape with one part made smaller (inside a value path too).
fn smaller(filter: &Filter) -> Vec<Filter> {
    let mut out = Vec::new();
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            let rebuild = |a: Filter, b: Filter| match filter {
                Filter::And(..) => Filter::And(Box::new(a), Box::new(b)),
                _ => Filter::Or(Box::new(a), Box::new(b)),
            };
            out.push((**a).clone());
            out.push((**b).clone());
            out.extend(smaller(a).into_iter().map(|a| rebuild(a, (**b).clone())));
            out.extend(smaller(b).into_iter().map(|b| rebuild((**a).clone(), b)));
        }
        Filter::Not(inner) => {
            out.push((**inner).clone());
            out.extend(smaller(inner).into_iter().map(|i| Filter::Not(Box::new(i))));
        }
        Filter::ValuePath { path, filter } => {
            out.extend(smaller(filter).into_iter().map(|f| Filter::ValuePath {
                path: path.clone(),
                filter: Box::new(f),
            }));
        }
        Filter::Compare { .. } | Filter::Present(_) => {}
    }
    out
}

/// Cuts a disagreeing filter down, part by part, while SQL and the evaluator still disagree.
async fn minimize(dir: &Directory, kind: ResourceKind, text: String, why: String) -> (String, String) {
    let (mut text, mut why) = (text, why);
    let Ok(mut filter) = parse_filter(&text) else {
        return (text, why);
    };
    'outer: loop {
        for candidate in smaller(&filter) {
            let candidate_text = candidate.to_string();
            if let Err(reason) = dir.compare(kind, &candidate_text).await {
                filter = candidate;
                text = candidate_text;
                why = reason;
                continue 'outer;
            }
        }
        return (text, why);
    }
}

impl Summary {
    fn count(&mut self, verdict: &Verdict, population: usize) {
        match verdict {
            Verdict::Rejected => self.rejected += 1,
            Verdict::Matched(0) => self.none += 1,
            Verdict::Matched(n) if *n == population => self.all += 1,
            Verdict::Matched(_) => self.some += 1,
        }
    }
}

/// Runs the catalogue's fixed edge filters, then `cases` generated ones.
async fn explore(dir: &Directory, kind: ResourceKind, cat: Catalogue, cases: u32, seed: u64) -> Summary {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)));
    let population = dir.of(kind).1.len();
    let mut summary = Summary::default();
    for edge in cat.edges.clone() {
        summary.cases += 1;
        match dir.compare(kind, &edge).await {
            Ok(verdict) => summary.count(&verdict, population),
            Err(why) => {
                let (minimal, why) = minimize(dir, kind, edge.clone(), why).await;
                summary.failures.push((edge, minimal, why));
            }
        }
    }
    let strategy = filters(cat);
    for _ in 0..cases {
        let mut tree = strategy.new_tree(&mut runner).expect("a filter");
        let original = tree.current();
        summary.cases += 1;
        match dir.compare(kind, &original).await {
            Ok(verdict) => summary.count(&verdict, population),
            Err(why) => {
                let (shrunk, why) = if summary.failures.len() < MAX_SHRUNK {
                    shrink(dir, kind, tree.as_mut(), original.clone(), why).await
                } else {
                    (original.clone(), why)
                };
                let (minimal, why) = minimize(dir, kind, shrunk, why).await;
                summary.failures.push((original, minimal, why));
            }
        }
    }
    summary
}

/// Runs `cases` filters in Entra ID's form (`emails[type eq "work"].value eq "x"`) and their
/// standard equivalents (`emails[(type eq "work") and value eq "x"]`): both must be refused alike
/// or find the same resources, in the database and in the evaluator. Returns how many matched
/// some resource and every problem found.
async fn entra_equivalence(
    dir: &Directory,
    kind: ResourceKind,
    cat: Catalogue,
    cases: u32,
    seed: u64,
) -> (u32, Vec<String>) {
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)));
    let strategy = entra_pairs(cat);
    let mut problems = Vec::new();
    let mut matched = 0;
    for _ in 0..cases {
        let (entra, standard) = strategy.new_tree(&mut runner).expect("a filter pair").current();
        let (Ok(entra_filter), Ok(standard_filter)) = (parse_filter(&entra), parse_filter(&standard)) else {
            problems.push(format!("Entra form: {entra} or {standard} does not parse"));
            continue;
        };
        if entra_filter != standard_filter {
            problems.push(format!(
                "Entra form: {entra} parses as {entra_filter}, not as {standard_filter}"
            ));
        }
        let sql = (
            dir.sql_ids(kind, &entra_filter).await,
            dir.sql_ids(kind, &standard_filter).await,
        );
        let memory = (
            dir.memory_ids(kind, &entra_filter),
            dir.memory_ids(kind, &standard_filter),
        );
        match (sql, memory) {
            ((Ok((_, a)), Ok((_, b))), (Ok(c), Ok(d))) if a == b && b == c && c == d => {
                if !a.is_empty() {
                    matched += 1;
                }
            }
            ((Err(a), Err(b)), (Err(c), Err(d))) if [&a, &b, &c, &d].into_iter().all(is_invalid_filter) => {}
            (sql, memory) => problems.push(format!(
                "Entra form: {entra} and {standard} differ: SQL {:?} / {:?}, evaluator {:?} / {:?}",
                sql.0.map(|(_, ids)| ids.len()),
                sql.1.map(|(_, ids)| ids.len()),
                memory.0.map(|ids| ids.len()),
                memory.1.map(|ids| ids.len()),
            )),
        }
    }
    (matched, problems)
}

fn report(label: &str, summary: &Summary) -> Vec<String> {
    eprintln!(
        "{label}: {} filters: {} refused by both, {} matching nothing, {} matching some, {} matching all, {} disagreements",
        summary.cases,
        summary.rejected,
        summary.none,
        summary.some,
        summary.all,
        summary.failures.len()
    );
    // One entry per shape of minimal filter (names in lower case, string literals elided).
    let mut seen: BTreeMap<String, (&str, &str, &str, usize)> = BTreeMap::new();
    for (original, minimal, why) in &summary.failures {
        seen.entry(shape(minimal)).or_insert((minimal, original, why, 0)).3 += 1;
    }
    seen.into_values()
        .map(|(minimal, original, why, times)| {
            format!(
                "{label}: {minimal}\n  ({times} disagreement(s) of this shape; this one found as: {original})\n  {why}"
            )
        })
        .collect()
}

/// A filter with its string literals replaced by `"…"` and in lower case: what one bug looks like.
fn shape(filter: &str) -> String {
    let mut out = String::new();
    let mut chars = filter.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.extend(c.to_lowercase());
            continue;
        }
        out.push_str("\"…\"");
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
    }
    out
}

async fn sql_filters_agree_with_the_evaluator(backend: Backend) {
    let started = Instant::now();
    let seed = seed();
    let dir = random_directory(backend, seed).await;
    let built = started.elapsed();
    let users = explore(&dir, ResourceKind::User, user_catalogue(&dir), user_cases(), seed).await;
    let groups = explore(
        &dir,
        ResourceKind::Group,
        group_catalogue(&dir),
        GROUP_CASES,
        seed ^ 0xA5A5,
    )
    .await;
    eprintln!(
        "{backend:?}: seed {seed}, {} users and {} groups built in {built:.1?}, all filters run in {:.1?}",
        dir.users.len(),
        dir.groups.len(),
        started.elapsed()
    );
    let mut problems = report("users", &users);
    problems.extend(report("groups", &groups));
    let entra_users = entra_equivalence(
        &dir,
        ResourceKind::User,
        user_catalogue(&dir),
        ENTRA_CASES,
        seed ^ 0xE17A,
    )
    .await;
    let entra_groups = entra_equivalence(
        &dir,
        ResourceKind::Group,
        group_catalogue(&dir),
        ENTRA_CASES / 4,
        seed ^ 0xE17B,
    )
    .await;
    eprintln!(
        "Entra ID's form: {ENTRA_CASES} user and {} group filters compared with the standard form, {} and {} matching something, {} problems",
        ENTRA_CASES / 4,
        entra_users.0,
        entra_groups.0,
        entra_users.1.len() + entra_groups.1.len()
    );
    problems.extend(entra_users.1);
    problems.extend(entra_groups.1);
    // Group value filters are mostly refused (members support only pr and eq/ne on value); the
    // user catalogue must give the comparison something to find.
    assert!(
        entra_users.0 * 4 >= ENTRA_CASES,
        "too few user filters in Entra ID's form match anything: {}",
        entra_users.0
    );
    assert!(
        problems.is_empty(),
        "{} shapes of filter where SQL and the evaluator disagree (seed {seed}):\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    // The generator must exercise something: most filters valid, many matching some but not all.
    assert!(
        users.some * 4 >= users.cases && users.rejected * 2 <= users.cases,
        "the user filters are too trivial: {users:?}"
    );
    assert!(
        groups.some * 8 >= groups.cases,
        "the group filters are too trivial: {groups:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Fixed cases.

/// Checks filters against expected user names on both sides, collecting every problem.
struct Expectations<'a> {
    dir: &'a Directory,
    problems: Vec<String>,
}

impl<'a> Expectations<'a> {
    fn new(dir: &'a Directory) -> Self {
        Expectations {
            dir,
            problems: Vec::new(),
        }
    }

    async fn users(&mut self, filter: &str, expected: &[&str]) {
        let want: BTreeSet<Uuid> = expected.iter().map(|name| self.dir.user_id(name)).collect();
        self.ids(filter, &want).await;
    }

    async fn ids(&mut self, filter: &str, want: &BTreeSet<Uuid>) {
        let dir = self.dir;
        let names = |ids: &BTreeSet<Uuid>| ids.iter().map(|id| dir.user_name(*id)).collect::<BTreeSet<_>>();
        let parsed = match parse_filter(filter) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.problems.push(format!("{filter}: does not parse: {e}"));
                return;
            }
        };
        match dir.sql_ids(ResourceKind::User, &parsed).await {
            Ok((_, found)) if found == *want => {}
            Ok((_, found)) => self.problems.push(format!(
                "{filter}: SQL finds {:?}, expected {:?}",
                names(&found),
                names(want)
            )),
            Err(e) => self.problems.push(format!("{filter}: SQL refuses it: {e}")),
        }
        match dir.memory_ids(ResourceKind::User, &parsed) {
            Ok(found) if found == *want => {}
            Ok(found) => self.problems.push(format!(
                "{filter}: the evaluator finds {:?}, expected {:?}",
                names(&found),
                names(want)
            )),
            Err(e) => self.problems.push(format!("{filter}: the evaluator refuses it: {e}")),
        }
    }

    fn finish(self) {
        assert!(self.problems.is_empty(), "{}", self.problems.join("\n"));
    }
}

/// A SCIM User body: `user` with the `schemas` its keys need.
fn with_schemas(mut user: Value) -> Value {
    let mut schemas = vec![json!(USER_SCHEMA)];
    schemas.extend(
        [ENT, PRV]
            .into_iter()
            .filter(|urn| user.get(*urn).is_some())
            .map(|urn| json!(urn)),
    );
    user["schemas"] = Value::Array(schemas);
    user
}

async fn small_directory(backend: Backend, users: Vec<Value>) -> Directory {
    let mut dir = Directory::new(backend).await;
    for user in users {
        dir.scim_user(with_schemas(user)).await;
    }
    dir.reload().await;
    dir
}

async fn row_counts(store: &SqlStore) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "groups",
        "group_members",
        "scim_index",
        "change_log",
        "user_attribute_values",
    ] {
        counts.push(
            store
                .query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .await
                .expect("count"),
        );
    }
    counts
}

async fn injection_looking_literals_are_plain_strings(backend: Backend) {
    let dir = small_directory(
        backend,
        vec![
            json!({"userName": "alice", "title": "x' OR 1=1 --"}),
            json!({"userName": "bob", "displayName": "Robert'); DROP TABLE users;--"}),
            json!({"userName": "o'brien"}),
        ],
    )
    .await;
    let before = row_counts(&dir.store).await;
    let mut check = Expectations::new(&dir);
    check.users(r#"userName eq "x' OR 1=1 --""#, &[]).await;
    check.users(r#"userName eq "alice' OR '1'='1""#, &[]).await;
    check
        .users(r#"userName co "' OR 1=1; DROP TABLE users; --""#, &[])
        .await;
    check
        .users(r#"displayName eq "\"; DELETE FROM scim_index; --""#, &[])
        .await;
    check.users(r#"userName sw "%' --""#, &[]).await;
    check.users(r#"userName ew "' OR ''='""#, &[]).await;
    check
        .users(r#"not (userName eq "x' OR 1=1 --")"#, &["alice", "bob", "o'brien"])
        .await;
    // The same text as a stored value is found like any other.
    check.users(r#"title eq "x' OR 1=1 --""#, &["alice"]).await;
    check
        .users(r#"displayName co "); drop table users;--""#, &["bob"])
        .await;
    check.users(r#"userName eq "o'brien""#, &["o'brien"]).await;
    check.users(r#"userName co "'""#, &["o'brien"]).await;
    check.finish();
    // Unquoted, it is not a filter at all.
    let refused = parse_filter("userName eq x' OR 1=1").map_err(Error::from);
    assert!(
        refused.as_ref().is_err_and(is_invalid_filter),
        "an unquoted literal is refused: {refused:?}"
    );
    assert_eq!(row_counts(&dir.store).await, before, "searching changes nothing");
}

async fn like_wildcards_are_literal_characters(backend: Backend) {
    let names = [
        "100%",
        "1000",
        "a_c",
        "abc",
        "back\\slash",
        "backXslash",
        "pct%x",
        "under_score",
    ];
    let users = names.iter().map(|n| json!({"userName": n})).collect();
    let dir = small_directory(backend, users).await;
    let mut check = Expectations::new(&dir);
    check.users(r#"userName co "%""#, &["100%", "pct%x"]).await;
    check.users(r#"userName co "0%""#, &["100%"]).await;
    check.users(r#"userName ew "%""#, &["100%"]).await;
    check.users(r#"userName sw "%""#, &[]).await;
    check.users(r#"userName co "%%""#, &[]).await;
    check.users(r#"userName eq "100%""#, &["100%"]).await;
    check.users(r#"userName eq "100_""#, &[]).await;
    check.users(r#"userName co "_""#, &["a_c", "under_score"]).await;
    check.users(r#"userName co "a_c""#, &["a_c"]).await;
    check.users(r#"userName sw "_""#, &[]).await;
    check.users(r#"userName sw "a_""#, &["a_c"]).await;
    check.users(r#"userName ew "_c""#, &["a_c"]).await;
    check.users(r#"userName co "\\""#, &["back\\slash"]).await;
    check.users(r#"userName co "k\\s""#, &["back\\slash"]).await;
    check.users(r#"userName co "\\\\""#, &[]).await;
    check.users(r#"userName co "*""#, &[]).await;
    check.users(r#"userName co "[a]""#, &[]).await;
    check.users(r#"userName co """#, &names).await;
    check.users(r#"userName eq """#, &[]).await;
    check.finish();
}

async fn case_sensitivity_follows_the_schema(backend: Backend) {
    let mut dir = small_directory(
        backend,
        vec![
            json!({"userName": "Alice", "externalId": "EXT-1", "name": {"givenName": "Émile"},
                   "emails": [{"value": "Alice@Example.COM", "type": "Work"}],
                   ENT: {"manager": {"value": "EMP-7"}, "department": "Straße"}, PRV: {"costCode": "AbC", "tags": ["VIP"]}}),
            json!({"userName": "bob", "externalId": "ext-1", "name": {"givenName": "ÉMILIE"},
                   ENT: {"manager": {"value": "emp-7"}, "department": "STRASSE"}, PRV: {"costCode": "abc"}}),
        ],
    )
    .await;
    let alice = dir.user_id("Alice");
    let group = dir.scim_group("Team", None, &[alice]).await;
    dir.reload().await;
    let mut check = Expectations::new(&dir);
    // userName, names, emails, custom strings: case-insensitive (Unicode lower case).
    check.users(r#"userName eq "ALICE""#, &["Alice"]).await;
    check.users(r#"userName eq "alice""#, &["Alice"]).await;
    check.users(r#"USERNAME eq "alice""#, &["Alice"]).await;
    check.users(r#"userName gt "BOB""#, &[]).await;
    check.users(r#"userName lt "BOB""#, &["Alice"]).await;
    check.users(r#"name.givenName eq "émile""#, &["Alice"]).await;
    check.users(r#"name.givenName sw "ÉMI""#, &["Alice", "bob"]).await;
    check.users(r#"emails.value eq "alice@example.com""#, &["Alice"]).await;
    check.users(r#"emails[type eq "WORK"]"#, &["Alice"]).await;
    check
        .users(&format!(r#"{PRV}:costCode eq "ABC""#), &["Alice", "bob"])
        .await;
    check.users(&format!(r#"{PRV}:tags eq "vip""#), &["Alice"]).await;
    check
        .users(&format!(r#"{ENT}:department eq "strasse""#), &["bob"])
        .await;
    check
        .users(&format!(r#"{ENT}:department eq "straße""#), &["Alice"])
        .await;
    // id, externalId and manager.value are case-exact.
    check.users(r#"externalId eq "EXT-1""#, &["Alice"]).await;
    check.users(r#"externalId eq "ext-1""#, &["bob"]).await;
    check.users(r#"externalId eq "Ext-1""#, &[]).await;
    check.users(r#"externalId co "xt-""#, &["bob"]).await;
    check.users(r#"externalId gt "a""#, &["bob"]).await;
    check.users(&format!(r#"id eq "{alice}""#), &["Alice"]).await;
    check
        .users(&format!(r#"id eq "{}""#, alice.to_string().to_uppercase()), &[])
        .await;
    check
        .users(&format!(r#"{ENT}:manager.value eq "EMP-7""#), &["Alice"])
        .await;
    check
        .users(&format!(r#"{ENT}:manager.value eq "emp-7""#), &["bob"])
        .await;
    check
        .users(
            &format!(r#"{}:MANAGER.VALUE eq "EMP-7""#, ENT.to_lowercase()),
            &["Alice"],
        )
        .await;
    // groups.value is not case-exact in the core User schema (RFC 7643 §8.7.1).
    check.users(&format!(r#"groups.value eq "{group}""#), &["Alice"]).await;
    check
        .users(
            &format!(r#"groups.value eq "{}""#, group.to_string().to_uppercase()),
            &["Alice"],
        )
        .await;
    check.finish();
}

async fn date_times_compare_as_instants(backend: Backend) {
    let dir = small_directory(
        backend,
        vec![
            // 01:00Z, and 00:00Z written at +02:00: as text the second sorts after the first.
            json!({"userName": "a", PRV: {"hiredAt": "2024-02-01T01:00:00Z"}}),
            json!({"userName": "b", PRV: {"hiredAt": "2024-02-01T02:00:00+02:00"}}),
            json!({"userName": "c"}),
        ],
    )
    .await;
    let hired = format!("{PRV}:hiredAt");
    let mut check = Expectations::new(&dir);
    check
        .users(&format!(r#"{hired} gt "2024-02-01T00:30:00Z""#), &["a"])
        .await;
    check
        .users(&format!(r#"{hired} gt "2024-02-01T02:30:00+02:00""#), &["a"])
        .await;
    check
        .users(&format!(r#"{hired} eq "2024-02-01T03:00:00+02:00""#), &["a"])
        .await;
    check
        .users(&format!(r#"{hired} eq "2024-02-01T00:00:00.000000999Z""#), &["b"])
        .await;
    check
        .users(&format!(r#"{hired} lt "2024-01-31T19:00:01-05:00""#), &["b"])
        .await;
    check
        .users(&format!(r#"{hired} ge "2024-01-31T19:00:00-05:00""#), &["a", "b"])
        .await;
    check
        .users(&format!(r#"{hired} ne "2024-02-01T00:00:00Z""#), &["a", "c"])
        .await;
    // meta times: each user's own lastModified, written at +02:00 and shifted by a microsecond.
    let modified: Vec<(Uuid, i64)> = dir
        .users
        .iter()
        .map(|(id, r)| {
            let text = r["meta"]["lastModified"].as_str().expect("lastModified");
            (*id, eval::date_time_micros(text).expect("an RFC 3339 time"))
        })
        .collect();
    for (_, micros) in &modified {
        let at = |m: i64, nanos: u32| instant_text(m, nanos, 1).expect("a time");
        let matching = |keep: &dyn Fn(i64) -> bool| -> BTreeSet<Uuid> {
            modified.iter().filter(|(_, m)| keep(*m)).map(|(id, _)| *id).collect()
        };
        let m = *micros;
        check
            .ids(
                &format!(r#"meta.lastModified eq "{}""#, at(m, 0)),
                &matching(&|x| x == m),
            )
            .await;
        check
            .ids(
                &format!(r#"meta.lastModified eq "{}""#, at(m, 999)),
                &matching(&|x| x == m),
            )
            .await;
        check
            .ids(
                &format!(r#"meta.lastModified gt "{}""#, at(m - 1, 0)),
                &matching(&|x| x > m - 1),
            )
            .await;
        check
            .ids(
                &format!(r#"meta.lastModified gt "{}""#, at(m, 0)),
                &matching(&|x| x > m),
            )
            .await;
        check
            .ids(&format!(r#"meta.created le "{}""#, at(m, 500)), &{
                let created: BTreeSet<Uuid> = dir
                    .users
                    .iter()
                    .filter(|(_, r)| {
                        r["meta"]["created"]
                            .as_str()
                            .and_then(eval::date_time_micros)
                            .is_some_and(|c| c <= m)
                    })
                    .map(|(id, _)| *id)
                    .collect();
                created
            })
            .await;
    }
    check.finish();
}

async fn ne_matches_resources_without_the_attribute(backend: Backend) {
    let mut dir = small_directory(
        backend,
        vec![
            json!({"userName": "t1", "title": "boss", "active": true, "emails": [{"value": "t1@example.com", "type": "work"}], PRV: {"level": 3}}),
            json!({"userName": "t2", "title": "Boss Two", "active": false, "emails": [{"value": "t2@example.com", "type": "home"}], PRV: {"level": 4}}),
            json!({"userName": "t3"}),
            json!({"userName": "t4", "emails": [{"value": "t4@example.com", "type": "work"}, {"value": "t4@home.example.com", "type": "home"}]}),
        ],
    )
    .await;
    let (t1, t2) = (dir.user_id("t1"), dir.user_id("t2"));
    let first = dir.scim_group("First", None, &[t1, t2]).await;
    dir.scim_group("Second", None, &[t2]).await;
    dir.reload().await;
    let level = format!("{PRV}:level");
    let mut check = Expectations::new(&dir);
    check.users(r#"title ne "boss""#, &["t2", "t3", "t4"]).await;
    check.users(r#"title ne "BOSS""#, &["t2", "t3", "t4"]).await;
    check.users("not (title pr)", &["t3", "t4"]).await;
    check.users(r#"emails.type ne "work""#, &["t2", "t3"]).await;
    check.users(r#"emails[type ne "work"]"#, &["t2", "t4"]).await;
    check.users(r#"not (emails[type eq "work"])"#, &["t2", "t3"]).await;
    check.users(&format!("{level} ne 3"), &["t2", "t3", "t4"]).await;
    check.users(&format!("{level} ne 3.0"), &["t2", "t3", "t4"]).await;
    check
        .users(&format!(r#"{ENT}:department ne "x""#), &["t1", "t2", "t3", "t4"])
        .await;
    // t3 and t4 were created without `active`: absent, so `ne true` holds for them too.
    check.users("active ne true", &["t2", "t3", "t4"]).await;
    check.users("active eq true", &["t1"]).await;
    check.users("active ne false", &["t1", "t3", "t4"]).await;
    check.users("not (active pr)", &["t3", "t4"]).await;
    // Memberships: `ne` on the attribute is `not eq`; inside brackets it is about one element.
    check
        .users(&format!(r#"groups.value ne "{first}""#), &["t3", "t4"])
        .await;
    check
        .users(&format!(r#"groups[value eq "{first}"]"#), &["t1", "t2"])
        .await;
    check
        .users(&format!(r#"not (groups[value eq "{first}"])"#), &["t3", "t4"])
        .await;
    check.finish();
}

/// Users whose index rows hold a number where earlier users' rows held none (a custom integer
/// after a custom string) are stored, found and counted. On PostgreSQL, sqlx's Any driver declares
/// a NULL `f64` as float4: a cached INSERT prepared with a NULL `num` then failed ("incorrect
/// binary data format in bind parameter N") for a later user with a number in that place.
async fn index_rows_mixing_numbers_and_nulls_are_stored(backend: Backend) {
    let mut dir = Directory::new(backend).await;
    let mut refused = Vec::new();
    for i in 0..6 {
        for user in [
            json!({"userName": format!("text{i}"), PRV: {"costCode": "x"}}),
            json!({"userName": format!("number{i}"), PRV: {"level": i}}),
            json!({"userName": format!("date{i}"), PRV: {"hiredAt": "2024-02-01T01:00:00Z"}}),
        ] {
            let body = with_schemas(user);
            if let Err(e) = dir
                .scim
                .create(ResourceKind::User, body.clone(), &Actor::System, BASE)
                .await
            {
                refused.push(format!("{body}: {e}"));
            }
        }
    }
    assert!(
        refused.is_empty(),
        "{} of 18 users could not be stored:\n{}",
        refused.len(),
        refused.join("\n")
    );
    dir.reload().await;
    let numbers = ["number0", "number1", "number2", "number3", "number4", "number5"];
    let mut check = Expectations::new(&dir);
    check.users(&format!("{PRV}:level ge 0"), &numbers).await;
    check.finish();
}
