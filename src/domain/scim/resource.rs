//! The SCIM JSON form of directory users and groups, both ways. A user's profile columns
//! (userName, name parts, displayName, active, externalId, the primary email) and custom
//! attributes (the Provisio extension) are projected in and out; every other attribute of the
//! resource (phone numbers, addresses, the whole `emails` list, the enterprise extension, ...)
//! lives in the user's `extensions` document, in SCIM form, so a resource round-trips unchanged.

use super::schema::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PROVISIO_USER_SCHEMA, USER_SCHEMA};
use crate::domain::error::{Error, Result, ScimErrorType};
use crate::domain::group::Group;
use crate::domain::user::{NewUser, User};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// Attributes of a User resource that the hub computes and never stores from input.
const USER_COMPUTED: &[&str] = &["id", "meta", "schemas", "groups", "password"];

/// Attributes of a User resource held in the profile columns (or, for `name` and `emails`,
/// partly): whatever `extensions` holds under these names is replaced when the resource is built.
const PROJECTED: &[&str] = &[
    "userName",
    "externalId",
    "displayName",
    "active",
    "name",
    "emails",
    PROVISIO_USER_SCHEMA,
];

/// Key in a user's `extensions` recording that the source sent no `active` attribute: the user
/// counts as active, and the resource is shown without `active`, as it was written.
pub const ACTIVE_OMITTED: &str = "urn:provisio:internal:activeOmitted";

/// The weak ETag of a resource version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn meta(
    resource_type: &str,
    location: String,
    created: OffsetDateTime,
    modified: OffsetDateTime,
    version: i64,
) -> Value {
    json!({
        "resourceType": resource_type,
        "created": timestamp(created),
        "lastModified": timestamp(modified),
        "location": location,
        "version": etag(version),
    })
}

/// A member or group reference as shown in `members` and `groups`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The referenced resource's id.
    pub id: Uuid,
    /// Its display text.
    pub display: String,
}

fn key_of<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a String> {
    object.keys().find(|k| k.eq_ignore_ascii_case(name))
}

/// Removes every key equal to `name` regardless of case; returns the value of the first.
fn take(object: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let keys: Vec<String> = object
        .keys()
        .filter(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .collect();
    let mut first = None;
    for key in keys {
        let value = object.remove(&key);
        if first.is_none() {
            first = value;
        }
    }
    first
}

/// Keeps one of each set of keys that differ only in case (attribute names ignore case, so a
/// resource never shows two of them), also inside extension objects.
fn dedupe_keys(object: &mut Map<String, Value>) {
    let mut seen: Vec<String> = Vec::new();
    object.retain(|key, _| {
        let folded = key.to_ascii_lowercase();
        if seen.contains(&folded) {
            false
        } else {
            seen.push(folded);
            true
        }
    });
    for (key, value) in object.iter_mut() {
        if key.starts_with("urn:")
            && let Value::Object(inner) = value
        {
            dedupe_keys(inner);
        }
    }
}

/// The full SCIM resource of `user` (before `attributes`/`excludedAttributes` projection).
/// `groups` are the user's groups; `base` is the SCIM base URL (`https://host/scim/v2`).
pub fn user_resource(user: &User, groups: &[Reference], base: &str) -> Value {
    let mut out = user.extensions.clone();
    for computed in USER_COMPUTED.iter().chain(PROJECTED) {
        if *computed != "name" && *computed != "emails" {
            take(&mut out, computed);
        }
    }
    dedupe_keys(&mut out);
    let id = user.id.to_string();
    out.insert("id".into(), Value::String(id.clone()));
    if let Some(external) = &user.external_id {
        out.insert("externalId".into(), Value::String(external.clone()));
    }
    out.insert("userName".into(), Value::String(user.username.clone()));
    let mut name = match take(&mut out, "name") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    for (key, value) in [
        ("givenName", &user.given_name),
        ("familyName", &user.family_name),
        ("formatted", &user.formatted_name),
    ] {
        take(&mut name, key);
        if let Some(v) = value {
            name.insert(key.into(), Value::String(v.clone()));
        }
    }
    if !name.is_empty() {
        out.insert("name".into(), Value::Object(name));
    }
    if let Some(display) = &user.display_name {
        out.insert("displayName".into(), Value::String(display.clone()));
    }
    let omitted = matches!(take(&mut out, ACTIVE_OMITTED), Some(Value::Bool(true)));
    if !(omitted && user.active) {
        out.insert("active".into(), Value::Bool(user.active));
    }
    let mut emails = match take(&mut out, "emails") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let primary = primary_index(&emails);
    match (&user.email, primary) {
        (Some(email), Some(i)) => {
            if let Some(Value::Object(entry)) = emails.get_mut(i) {
                entry.insert("value".into(), Value::String(email.clone()));
            }
        }
        (Some(email), None) => emails.push(json!({"value": email, "type": "work", "primary": true})),
        (None, Some(i)) => {
            emails.remove(i);
        }
        (None, None) => {}
    }
    if !emails.is_empty() {
        out.insert("emails".into(), Value::Array(emails));
    }
    if !user.attributes.is_empty() {
        let custom: Map<String, Value> = user.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.insert(PROVISIO_USER_SCHEMA.into(), Value::Object(custom));
    }
    if !groups.is_empty() {
        let list = groups
            .iter()
            .map(|g| json!({"value": g.id.to_string(), "display": g.display, "$ref": format!("{base}/Groups/{}", g.id), "type": "direct"}))
            .collect();
        out.insert("groups".into(), Value::Array(list));
    }
    let mut schemas = vec![Value::String(USER_SCHEMA.into())];
    for urn in [ENTERPRISE_USER_SCHEMA, PROVISIO_USER_SCHEMA] {
        if out.contains_key(urn) {
            schemas.push(Value::String(urn.into()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert(
        "meta".into(),
        meta(
            "User",
            format!("{base}/Users/{id}"),
            user.created_at,
            user.updated_at,
            user.version,
        ),
    );
    Value::Object(out)
}

/// The element of `emails` that the profile's email is: the one marked primary, else the first.
fn primary_index(emails: &[Value]) -> Option<usize> {
    if emails.is_empty() {
        return None;
    }
    let primary = emails
        .iter()
        .position(|e| e.get("primary").and_then(Value::as_bool) == Some(true));
    Some(primary.unwrap_or(0))
}

fn text(value: Option<Value>, field: &str) -> Result<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::scim(
            ScimErrorType::InvalidValue,
            format!("'{field}' must be a string"),
        )),
    }
}

/// Splits a canonical User resource (as the PATCH engine produces it) into the directory's input
/// for the user: profile fields, custom attributes (the Provisio extension), and the rest of the
/// resource as `extensions`. `active` is always given (true when the resource leaves it out).
pub fn user_fields(resource: &Value) -> Result<NewUser> {
    let Some(object) = resource.as_object() else {
        return Err(Error::scim(
            ScimErrorType::InvalidSyntax,
            "a User must be a JSON object",
        ));
    };
    let mut rest = object.clone();
    for computed in USER_COMPUTED {
        take(&mut rest, computed);
    }
    let username = text(take(&mut rest, "userName"), "userName")?
        .ok_or_else(|| Error::scim(ScimErrorType::InvalidValue, "'userName' is required"))?;
    let external_id = text(take(&mut rest, "externalId"), "externalId")?;
    let display_name = text(take(&mut rest, "displayName"), "displayName")?;
    take(&mut rest, ACTIVE_OMITTED);
    let active = match take(&mut rest, "active") {
        None | Some(Value::Null) => {
            rest.insert(ACTIVE_OMITTED.into(), Value::Bool(true));
            true
        }
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(Error::scim(
                ScimErrorType::InvalidValue,
                "'active' must be true or false",
            ));
        }
    };
    let (mut given_name, mut family_name, mut formatted_name) = (None, None, None);
    if let Some(name) = take(&mut rest, "name") {
        let Value::Object(mut name) = name else {
            return Err(Error::scim(ScimErrorType::InvalidValue, "'name' must be an object"));
        };
        given_name = text(take(&mut name, "givenName"), "name.givenName")?;
        family_name = text(take(&mut name, "familyName"), "name.familyName")?;
        formatted_name = text(take(&mut name, "formatted"), "name.formatted")?;
        if !name.is_empty() {
            rest.insert("name".into(), Value::Object(name));
        }
    }
    let mut email = None;
    if let Some(Value::Array(items)) = key_of(&rest, "emails").and_then(|key| rest.get(key))
        && let Some(i) = primary_index(items)
    {
        email = text(items.get(i).and_then(|e| e.get("value")).cloned(), "emails.value")?;
    }
    let mut attributes = BTreeMap::new();
    if let Some(custom) = take(&mut rest, PROVISIO_USER_SCHEMA) {
        let Value::Object(custom) = custom else {
            return Err(Error::scim(
                ScimErrorType::InvalidValue,
                format!("'{PROVISIO_USER_SCHEMA}' must be an object"),
            ));
        };
        attributes = custom.into_iter().filter(|(_, v)| !v.is_null()).collect();
    }
    Ok(NewUser {
        username,
        given_name,
        family_name,
        display_name,
        formatted_name,
        email,
        active: Some(active),
        external_id,
        attributes,
        extensions: Some(rest),
    })
}

/// The full SCIM resource of `group` with its `members`.
pub fn group_resource(group: &Group, members: &[Uuid], base: &str) -> Value {
    let id = group.id.to_string();
    let mut out = Map::new();
    out.insert("schemas".into(), json!([GROUP_SCHEMA]));
    out.insert("id".into(), Value::String(id.clone()));
    if let Some(external) = &group.external_id {
        out.insert("externalId".into(), Value::String(external.clone()));
    }
    out.insert("displayName".into(), Value::String(group.name.clone()));
    if !members.is_empty() {
        let list = members
            .iter()
            .map(|m| json!({"value": m.to_string(), "$ref": format!("{base}/Users/{m}"), "type": "User"}))
            .collect();
        out.insert("members".into(), Value::Array(list));
    }
    out.insert(
        "meta".into(),
        meta(
            "Group",
            format!("{base}/Groups/{id}"),
            group.created_at,
            group.updated_at,
            group.version,
        ),
    );
    Value::Object(out)
}

/// The directory fields held by a Group resource.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFields {
    /// `displayName`.
    pub name: String,
    /// `externalId`.
    pub external_id: Option<String>,
    /// The member user ids, in the order given, without repeats.
    pub members: Vec<Uuid>,
}

/// Splits a canonical Group resource into directory fields. Members must be users (by id).
pub fn group_fields(resource: &Value) -> Result<GroupFields> {
    let Some(object) = resource.as_object() else {
        return Err(Error::scim(
            ScimErrorType::InvalidSyntax,
            "a Group must be a JSON object",
        ));
    };
    let mut rest = object.clone();
    let name = text(take(&mut rest, "displayName"), "displayName")?
        .ok_or_else(|| Error::scim(ScimErrorType::InvalidValue, "'displayName' is required"))?;
    let external_id = text(take(&mut rest, "externalId"), "externalId")?;
    let mut members = Vec::new();
    let mut seen = std::collections::HashSet::new();
    match take(&mut rest, "members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let kind = item.get("type").and_then(Value::as_str).unwrap_or("User");
                if !kind.eq_ignore_ascii_case("User") {
                    return Err(Error::scim(
                        ScimErrorType::InvalidValue,
                        format!("members of type '{kind}' are not supported: a group's members are users"),
                    ));
                }
                let value = item.get("value").and_then(Value::as_str).ok_or_else(|| {
                    Error::scim(
                        ScimErrorType::InvalidValue,
                        "every member needs a string 'value' (a user id)",
                    )
                })?;
                let id = Uuid::parse_str(value).map_err(|_| {
                    Error::scim(
                        ScimErrorType::InvalidValue,
                        format!("member '{value}' is not a user of this directory"),
                    )
                })?;
                if seen.insert(id) {
                    members.push(id);
                }
            }
        }
        Some(_) => return Err(Error::scim(ScimErrorType::InvalidValue, "'members' must be a list")),
    }
    Ok(GroupFields {
        name,
        external_id,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::UserSource;

    #[test]
    fn a_user_round_trips() {
        let input = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"},
            "emails": [{"value": "b@example.com", "type": "home"}, {"value": "bj@example.com", "type": "work", "primary": true}],
            "phoneNumbers": [{"value": "555", "type": "work"}],
            "active": false,
            ENTERPRISE_USER_SCHEMA: {"department": "Tour"},
            PROVISIO_USER_SCHEMA: {"title": "Lead"},
        });
        let fields = user_fields(&input).unwrap();
        assert_eq!(fields.email.as_deref(), Some("bj@example.com"));
        assert_eq!(fields.given_name.as_deref(), Some("Barbara"));
        assert_eq!(fields.active, Some(false));
        let user = User {
            id: Uuid::nil(),
            username: fields.username.clone(),
            given_name: fields.given_name.clone(),
            family_name: fields.family_name.clone(),
            display_name: None,
            formatted_name: None,
            email: fields.email.clone(),
            active: false,
            external_id: None,
            source: UserSource::Scim,
            attributes: fields.attributes.clone(),
            extensions: fields.extensions.clone().unwrap_or_default(),
            version: 3,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        let out = user_resource(&user, &[], "http://h/scim/v2");
        for key in [
            "userName",
            "name",
            "emails",
            "phoneNumbers",
            "active",
            ENTERPRISE_USER_SCHEMA,
            PROVISIO_USER_SCHEMA,
        ] {
            assert_eq!(out[key], input[key], "{key}");
        }
        assert_eq!(out["meta"]["version"], "W/\"3\"");
        assert_eq!(out["schemas"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn group_members_must_be_user_ids() {
        let bad = json!({"displayName": "g", "members": [{"value": "x"}]});
        assert!(group_fields(&bad).is_err());
        let nested = json!({"displayName": "g", "members": [{"value": Uuid::nil().to_string(), "type": "Group"}]});
        assert!(group_fields(&nested).is_err());
    }
}
