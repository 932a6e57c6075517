//! SCIM Bulk (RFC 7644 §3.7): reading a BulkRequest, ordering operations by their `bulkId`
//! references, running each through the service's writes, and the BulkResponse.

use super::{BULK_REQUEST, BULK_RESPONSE, ResourceKind, ScimResource, ScimService};
use crate::domain::admin::Actor;
use crate::domain::error::ScimErrorType;
use crate::domain::{Error, Result};
use crate::store::{AttributeStore, ChangeLogStore, GroupStore, ScimStore, UserStore};
use serde_json::{Value, json};
use std::collections::HashMap;

/// One operation of a Bulk request, as read.
#[derive(Debug, Clone)]
struct BulkOperation {
    method: String,
    bulk_id: Option<String>,
    path: String,
    data: Option<Value>,
    version: Option<String>,
}

fn bulk_operations(body: &Value, max: usize) -> Result<(Vec<BulkOperation>, Option<usize>)> {
    let bad = |detail: String| Error::scim(ScimErrorType::InvalidSyntax, detail);
    let Some(object) = body.as_object() else {
        return Err(bad("a Bulk request must be a JSON object".into()));
    };
    let schemas_ok = object
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(BULK_REQUEST)));
    if !schemas_ok {
        return Err(bad(format!("'schemas' must be [\"{BULK_REQUEST}\"]")));
    }
    let fail_on_errors = match object.get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad("'failOnErrors' must be a positive integer".into()))?,
        ),
    };
    let operations = object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array())
        .ok_or_else(|| bad("'Operations' must be a list".into()))?;
    if operations.len() > max {
        return Err(Error::TooManyOperations { limit: max });
    }
    let mut out = Vec::with_capacity(operations.len());
    for (i, op) in operations.iter().enumerate() {
        let field = |name: &str| op.get(name).and_then(Value::as_str).map(str::to_owned);
        let method = field("method").ok_or_else(|| bad(format!("operation {i} has no 'method'")))?;
        let path = field("path").ok_or_else(|| bad(format!("operation {i} has no 'path'")))?;
        out.push(BulkOperation {
            method: method.to_ascii_uppercase(),
            bulk_id: field("bulkId"),
            path,
            data: op.get("data").cloned(),
            version: field("version"),
        });
    }
    Ok((out, fail_on_errors))
}

/// Every `bulkId:X` reference in `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:") {
                out.push(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(map) => map.values().for_each(|v| references(v, out)),
        _ => {}
    }
}

fn substitute(value: &mut Value, created: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix("bulkId:").and_then(|b| created.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, created)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, created)),
        _ => {}
    }
}

impl<S> ScimService<S>
where
    S: AttributeStore + UserStore + GroupStore + ChangeLogStore + ScimStore + Clone,
{
    /// `POST /Bulk` (RFC 7644 §3.7): runs the operations, an operation that references another's
    /// `bulkId` (also one further down the list) after it, and stops once `failOnErrors` errors
    /// happened. `error_body` renders a failed operation's status and SCIM error body.
    pub async fn bulk(
        &self,
        body: &Value,
        actor: &Actor,
        base: &str,
        error_body: &(dyn Fn(&Error) -> (u16, Value) + Sync),
    ) -> Result<Value> {
        let (operations, fail_on_errors) = bulk_operations(body, self.limits.max_operations)?;
        let declared: Vec<String> = operations.iter().filter_map(|o| o.bulk_id.clone()).collect();
        let mut created: HashMap<String, String> = HashMap::new();
        let mut failed_ids: Vec<String> = Vec::new();
        let mut results: Vec<Option<Value>> = vec![None; operations.len()];
        let mut errors = 0usize;
        let mut pending: Vec<usize> = (0..operations.len()).collect();
        'passes: while !pending.is_empty() {
            let mut progressed = false;
            let mut still = Vec::new();
            for index in pending {
                let op = &operations[index];
                let mut refs = Vec::new();
                references(&Value::String(op.path.clone()), &mut refs);
                if let Some(data) = &op.data {
                    references(data, &mut refs);
                }
                let waiting = refs.iter().any(|r| {
                    !created.contains_key(r)
                        && !failed_ids.contains(r)
                        && declared.contains(r)
                        && op.bulk_id.as_ref() != Some(r)
                });
                if waiting {
                    still.push(index);
                    continue;
                }
                progressed = true;
                let outcome = match refs.iter().find(|r| !created.contains_key(*r)) {
                    Some(missing) => Err(Error::Conflict {
                        field: None,
                        message: format!("bulkId '{missing}' does not name an operation that succeeded"),
                    }),
                    None => self.bulk_one(op, &created, actor, base).await,
                };
                let mut result = json!({"method": op.method});
                if let Some(bulk_id) = &op.bulk_id {
                    result["bulkId"] = Value::String(bulk_id.clone());
                }
                match outcome {
                    Ok((status, resource)) => {
                        if let Some(resource) = resource {
                            if let (Some(bulk_id), "POST") = (&op.bulk_id, op.method.as_str()) {
                                created.insert(bulk_id.clone(), resource.id.to_string());
                            }
                            result["version"] = Value::String(crate::domain::scim::resource::etag(resource.version));
                            if let Some(location) = resource.body.pointer("/meta/location") {
                                result["location"] = location.clone();
                            }
                        }
                        result["status"] = Value::String(status.to_string());
                    }
                    Err(error) => {
                        if let Some(bulk_id) = &op.bulk_id {
                            failed_ids.push(bulk_id.clone());
                        }
                        let (status, body) = error_body(&error);
                        result["status"] = Value::String(status.to_string());
                        result["response"] = body;
                        errors += 1;
                    }
                }
                results[index] = Some(result);
                if fail_on_errors.is_some_and(|limit| errors >= limit) {
                    break 'passes;
                }
            }
            if !progressed {
                // The rest only wait on each other: a circular reference.
                for index in still {
                    let op = &operations[index];
                    let error = Error::Conflict {
                        field: None,
                        message: "the operation's bulkId references form a cycle".into(),
                    };
                    let (status, body) = error_body(&error);
                    let mut result = json!({"method": op.method, "status": status.to_string(), "response": body});
                    if let Some(bulk_id) = &op.bulk_id {
                        result["bulkId"] = Value::String(bulk_id.clone());
                    }
                    results[index] = Some(result);
                }
                break;
            }
            pending = still;
        }
        Ok(json!({
            "schemas": [BULK_RESPONSE],
            "Operations": results.into_iter().flatten().collect::<Vec<_>>(),
        }))
    }

    async fn bulk_one(
        &self,
        op: &BulkOperation,
        created: &HashMap<String, String>,
        actor: &Actor,
        base: &str,
    ) -> Result<(u16, Option<ScimResource>)> {
        let mut path = Value::String(op.path.clone());
        substitute(&mut path, created);
        let path = path.as_str().unwrap_or_default().trim_matches('/').to_owned();
        let (kind, id) = match path.split_once('/') {
            Some((kind, id)) => (kind, Some(id.to_owned())),
            None => (path.as_str(), None),
        };
        let kind = match kind {
            "Users" => ResourceKind::User,
            "Groups" => ResourceKind::Group,
            other => {
                return Err(Error::scim(
                    ScimErrorType::InvalidPath,
                    format!("'/{other}' is not a resource endpoint"),
                ));
            }
        };
        let id = id.map(|i| created.get(i.trim_start_matches("bulkId:")).cloned().unwrap_or(i));
        let mut data = op.data.clone();
        if let Some(data) = &mut data {
            substitute(data, created);
        }
        let need_data = || {
            data.clone()
                .ok_or_else(|| Error::scim(ScimErrorType::InvalidSyntax, "the operation needs 'data'"))
        };
        let need_id = || {
            id.clone()
                .ok_or_else(|| Error::scim(ScimErrorType::InvalidPath, "the path needs a resource id"))
        };
        let version = op.version.as_deref();
        match op.method.as_str() {
            "POST" => {
                if id.is_some() {
                    return Err(Error::scim(
                        ScimErrorType::InvalidPath,
                        "POST goes to /Users or /Groups",
                    ));
                }
                if op.bulk_id.is_none() {
                    return Err(Error::scim(
                        ScimErrorType::InvalidSyntax,
                        "a POST operation needs a 'bulkId'",
                    ));
                }
                let resource = self.create(kind, need_data()?, actor, base).await?;
                Ok((201, Some(resource)))
            }
            "PUT" => {
                let resource = self
                    .replace(kind, &need_id()?, need_data()?, version, actor, base)
                    .await?;
                Ok((200, Some(resource)))
            }
            "PATCH" => {
                let resource = self
                    .patch(kind, &need_id()?, &need_data()?, version, actor, base)
                    .await?;
                Ok((200, Some(resource)))
            }
            "DELETE" => {
                self.delete(kind, &need_id()?, version, actor).await?;
                Ok((204, None))
            }
            other => Err(Error::scim(
                ScimErrorType::InvalidSyntax,
                format!("'{other}' is not a Bulk method (POST, PUT, PATCH or DELETE)"),
            )),
        }
    }
}
