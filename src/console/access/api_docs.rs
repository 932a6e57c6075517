//! The API documentation: the OpenAPI document of the admin API (generated from the handlers)
//! rendered on the server as a browsable page: operations grouped by tag, each with its method,
//! path, summary, description, parameters, request body and responses. No script bundle.

use crate::console::{Layout, PageError, Viewer, render};
use askama::Template;
use axum::response::Response;
use serde_json::Value;
use std::sync::OnceLock;

/// One parameter.
#[derive(Debug, Clone)]
pub struct Param {
    name: String,
    location: String,
    required: bool,
    kind: String,
    description: String,
}

/// One response.
#[derive(Debug, Clone)]
pub struct Answer {
    status: String,
    description: String,
    schema: String,
}

/// One operation.
#[derive(Debug, Clone)]
pub struct Operation {
    anchor: String,
    method: String,
    path: String,
    summary: String,
    description: String,
    params: Vec<Param>,
    body: String,
    answers: Vec<Answer>,
}

/// The operations of one tag.
#[derive(Debug, Clone)]
pub struct Group {
    name: String,
    description: String,
    operations: Vec<Operation>,
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A schema's name: the last part of a `$ref`, `[Name]` for arrays, or its type.
pub fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(items) = schema.get("items") {
        return format!("[{}]", schema_name(items));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(parts)) = schema.get(key) {
            let names: Vec<String> = parts.iter().map(schema_name).filter(|n| !n.is_empty()).collect();
            return names.join(" | ");
        }
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types.iter().map(text).collect::<Vec<_>>().join(" | "),
        _ => String::new(),
    }
}

/// The first schema of a body's or response's `content`, by media type.
fn content_schema(holder: &Value) -> String {
    holder
        .get("content")
        .and_then(Value::as_object)
        .and_then(|content| content.values().next())
        .and_then(|media| media.get("schema"))
        .map(schema_name)
        .unwrap_or_default()
}

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// The operations of an OpenAPI document (as JSON), grouped by their first tag in the order of
/// the document's tag list (then by name), each group in path order.
pub fn groups(spec: &Value) -> Vec<Group> {
    let mut groups: Vec<Group> = spec
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| Group {
            name: text(&t["name"]),
            description: text(&t["description"]),
            operations: Vec::new(),
        })
        .collect();
    let paths = spec.get("paths").and_then(Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .map(text)
                .unwrap_or_else(|| "other".to_owned());
            let params = item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
                .map(|p| Param {
                    name: text(&p["name"]),
                    location: text(&p["in"]),
                    required: p["required"].as_bool().unwrap_or(false),
                    kind: p.get("schema").map(schema_name).unwrap_or_default(),
                    description: text(&p["description"]),
                })
                .collect();
            let answers = op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(status, r)| Answer {
                    status: status.clone(),
                    description: text(&r["description"]),
                    schema: content_schema(r),
                })
                .collect();
            let operation = Operation {
                anchor: format!(
                    "op-{method}-{}",
                    path.chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                        .collect::<String>()
                ),
                method: method.to_uppercase(),
                path: path.clone(),
                summary: text(&op["summary"]),
                description: text(&op["description"]),
                params,
                body: op.get("requestBody").map(content_schema).unwrap_or_default(),
                answers,
            };
            match groups.iter_mut().find(|g| g.name == tag) {
                Some(group) => group.operations.push(operation),
                None => groups.push(Group {
                    name: tag,
                    description: String::new(),
                    operations: vec![operation],
                }),
            }
        }
    }
    groups.retain(|g| !g.operations.is_empty());
    groups
}

/// The admin API's operations, read once from the generated document.
fn api_groups() -> &'static (String, Vec<Group>) {
    static GROUPS: OnceLock<(String, Vec<Group>)> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let spec = serde_json::to_value(crate::api::openapi()).unwrap_or(Value::Null);
        let title = format!("{} {}", text(&spec["info"]["title"]), text(&spec["info"]["version"]));
        (title, groups(&spec))
    })
}

#[derive(Template)]
#[template(path = "access/api_docs.html")]
struct ApiDocsPage {
    layout: Layout,
    title: &'static str,
    groups: &'static [Group],
}

/// `GET /console/api-docs`.
pub async fn page(viewer: Viewer) -> Result<Response, PageError> {
    let (title, groups) = api_groups();
    Ok(render(&ApiDocsPage {
        layout: viewer.layout("API", "api"),
        title,
        groups,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_are_grouped_by_tag_with_their_parts() {
        let spec = json!({
            "tags": [{"name": "users", "description": "Directory users"}, {"name": "empty"}],
            "paths": {
                "/api/v1/users/{user}": {
                    "get": {
                        "tags": ["users"], "summary": "One user",
                        "parameters": [{"name": "user", "in": "path", "required": true, "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "The user", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}}}
                    },
                    "patch": {
                        "tags": ["users"],
                        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserUpdate"}}}},
                        "responses": {"200": {"description": "ok"}}
                    }
                },
                "/api/v1/x": {"get": {"responses": {"200": {"description": "list", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/c/X"}}}}}}}}
            }
        });
        let groups = groups(&spec);
        assert_eq!(
            groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            ["users", "other"]
        );
        let users = &groups[0];
        assert_eq!(users.description, "Directory users");
        assert_eq!(users.operations.len(), 2);
        let get = &users.operations[0];
        assert_eq!(
            (get.method.as_str(), get.path.as_str()),
            ("GET", "/api/v1/users/{user}")
        );
        assert_eq!(get.anchor, "op-get--api-v1-users--user-");
        assert_eq!(
            (get.params[0].name.as_str(), get.params[0].kind.as_str()),
            ("user", "string")
        );
        assert_eq!(get.answers[0].schema, "User");
        assert_eq!(users.operations[1].body, "UserUpdate");
        assert_eq!(groups[1].operations[0].answers[0].schema, "[X]");
    }

    #[test]
    fn the_hubs_own_document_lists_the_user_operations() {
        let (_, groups) = api_groups();
        assert!(
            groups
                .iter()
                .flat_map(|g| &g.operations)
                .any(|o| o.path == "/api/v1/users" && o.method == "POST")
        );
    }
}
