//! SCIM filters and `sortBy` translated into parameterised SQL over the search index
//! (`scim_index`, written by `index.rs`), and the paged id search the SCIM store runs with them.
//!
//! Filter semantics are those of `domain::scim::eval` (a property test compares the two): a
//! comparison holds when some indexed value of the attribute satisfies it, `ne` is `not eq`,
//! strings compare folded (lower case unless case-exact) byte by byte, numbers and dateTimes
//! numerically. `meta.created` and `meta.lastModified` are read from the resource's own columns,
//! memberships (`User.groups`, `Group.members`) from `group_members`. No filter text ever becomes
//! SQL text: fixed fragments only, every value bound.

use super::ScimSearch;
use super::sql::{Sql, SqlStore, get, get_uuid};
use crate::domain::error::ScimErrorType;
use crate::domain::scim::ast::{AttrPath, CompareOp, Filter};
use crate::domain::scim::eval::{Operand, literal_operand};
use crate::domain::scim::index::{Column, attr_key, operand_column};
use crate::domain::scim::schema::{AttrType, AttributeDef, Resolved, ResourceSchema};
use crate::domain::{Error, Result};
use uuid::Uuid;

/// Which table a search runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `users`
    Users,
    /// `groups`
    Groups,
}

impl Kind {
    /// The membership attribute of this resource type, read from `group_members`.
    fn membership_attr(self) -> &'static str {
        match self {
            Kind::Users => "groups",
            Kind::Groups => "members",
        }
    }
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::scim(ScimErrorType::InvalidFilter, detail)
}

fn resolve<'a>(schema: &'a ResourceSchema, path: &AttrPath) -> Result<Resolved<'a>> {
    schema.resolve(path).map_err(|e| invalid(e.to_string()))
}

/// The index coordinates a comparison or presence test reads: attribute key, sub key, leaf definition.
fn target<'a>(resolved: &Resolved<'a>, comparing: bool) -> Result<(String, String, &'a AttributeDef)> {
    let attr = resolved.attr;
    let key = attr_key(resolved.container(), &attr.name);
    if let Some(sub) = resolved.sub {
        return Ok((key, sub.name.to_lowercase(), sub));
    }
    if attr.kind == AttrType::Complex && comparing {
        if !attr.multi_valued {
            return Err(invalid(format!(
                "'{}' is complex: compare one of its sub-attributes",
                attr.name
            )));
        }
        let value = attr
            .sub("value")
            .ok_or_else(|| invalid(format!("'{}' has no 'value' sub-attribute to compare", attr.name)))?;
        return Ok((key, "value".into(), value));
    }
    Ok((key, String::new(), attr))
}

/// Appends the predicate on index row `x` (or `v`) for `op` against `operand`.
fn predicate(sql: Sql, column_alias: Alias, op: CompareOp, operand: &Operand) -> Sql {
    let comparison = |sql: Sql| match op {
        CompareOp::Gt => sql.push(" > "),
        CompareOp::Ge => sql.push(" >= "),
        CompareOp::Lt => sql.push(" < "),
        CompareOp::Le => sql.push(" <= "),
        _ => sql.push(" = "),
    };
    match operand_column(operand) {
        Column::Txt(text) => {
            let sql = sql.push(column_alias.txt());
            match op {
                CompareOp::Co => sql.push(" LIKE ").bind_text(format!("%{text}%")),
                CompareOp::Sw => sql.push(" LIKE ").bind_text(format!("{text}%")),
                CompareOp::Ew => sql.push(" LIKE ").bind_text(format!("%{text}")),
                _ => comparison(sql).bind_text(text),
            }
        }
        Column::Num(number) => comparison(sql.push(column_alias.num())).bind_opt_float(Some(number)),
        Column::Tim(micros) => comparison(sql.push(column_alias.tim())).bind_int(micros),
    }
}

/// The alias of the index row a predicate reads.
#[derive(Debug, Clone, Copy)]
enum Alias {
    X,
    V,
}

impl Alias {
    fn txt(self) -> &'static str {
        match self {
            Alias::X => "x.txt",
            Alias::V => "v.txt",
        }
    }
    fn num(self) -> &'static str {
        match self {
            Alias::X => "x.num",
            Alias::V => "v.num",
        }
    }
    fn tim(self) -> &'static str {
        match self {
            Alias::X => "x.tim",
            Alias::V => "v.tim",
        }
    }
}

/// Translates filters into SQL conditions on the resource alias `r`.
struct Translator<'a> {
    schema: &'a ResourceSchema,
    kind: Kind,
}

impl Translator<'_> {
    fn condition(&self, sql: Sql, filter: &Filter) -> Result<Sql> {
        match filter {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let sql = self.condition(sql.push("("), a)?;
                let sql = sql.push(if matches!(filter, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                });
                Ok(self.condition(sql, b)?.push(")"))
            }
            Filter::Not(inner) => Ok(self.condition(sql.push("NOT ("), inner)?.push(")")),
            Filter::Present(path) => self.present(sql, path),
            Filter::Compare { path, op, value } => self.compare(sql, path, *op, value),
            Filter::ValuePath { path, filter } => self.value_path(sql, path, filter),
        }
    }

    fn is_membership(&self, resolved: &Resolved<'_>) -> bool {
        resolved.schema.is_some()
            && !resolved.in_extension
            && resolved.attr.name.eq_ignore_ascii_case(self.kind.membership_attr())
    }

    fn meta_column(&self, resolved: &Resolved<'_>) -> Result<Option<&'static str>> {
        if resolved.schema.is_some() || !resolved.attr.name.eq_ignore_ascii_case("meta") {
            return Ok(None);
        }
        match resolved.sub.map(|s| s.name.as_str()) {
            Some("created") => Ok(Some("r.created_at")),
            Some("lastModified") => Ok(Some("r.updated_at")),
            _ => Err(invalid("only meta.created and meta.lastModified can be filtered on")),
        }
    }

    fn membership(&self, sql: Sql, op: Option<(CompareOp, &serde_json::Value)>) -> Result<Sql> {
        let (own, other) = match self.kind {
            Kind::Users => ("r.id IN (SELECT m.user_id FROM group_members m", "m.group_id"),
            Kind::Groups => ("r.id IN (SELECT m.group_id FROM group_members m", "m.user_id"),
        };
        match op {
            None => Ok(sql.push(own).push(")")),
            Some((op @ (CompareOp::Eq | CompareOp::Ne), serde_json::Value::String(id))) => {
                let sql = if op == CompareOp::Ne { sql.push("NOT ") } else { sql };
                Ok(sql
                    .push(own)
                    .push(" WHERE ")
                    .push(other)
                    .push(" = ")
                    .bind_text(id.to_lowercase())
                    .push(")"))
            }
            _ => Err(invalid(format!(
                "'{}' can be filtered with 'pr', or 'eq'/'ne' on its value with a string id",
                self.kind.membership_attr()
            ))),
        }
    }

    fn present(&self, sql: Sql, path: &AttrPath) -> Result<Sql> {
        let resolved = resolve(self.schema, path)?;
        if self.is_membership(&resolved) {
            if resolved.sub.is_some_and(|s| !s.name.eq_ignore_ascii_case("value")) {
                return Err(invalid("memberships can be filtered on their value only"));
            }
            return self.membership(sql, None);
        }
        if resolved.schema.is_none() && resolved.attr.name.eq_ignore_ascii_case("meta") {
            self.meta_column(&resolved)?;
            return Ok(sql.push("1 = 1"));
        }
        let (attr, sub, _) = target(&resolved, false)?;
        Ok(sql
            .push("r.id IN (SELECT x.resource_id FROM scim_index x WHERE x.attr = ")
            .bind_text(attr)
            .push(" AND x.sub = ")
            .bind_text(sub)
            .push(")"))
    }

    fn compare(&self, sql: Sql, path: &AttrPath, op: CompareOp, value: &serde_json::Value) -> Result<Sql> {
        let resolved = resolve(self.schema, path)?;
        if self.is_membership(&resolved) {
            if resolved.sub.is_some_and(|s| !s.name.eq_ignore_ascii_case("value")) {
                return Err(invalid("memberships can be filtered on their value only"));
            }
            return self.membership(sql, Some((op, value)));
        }
        if let Some(column) = self.meta_column(&resolved)? {
            let leaf = resolved.leaf();
            let Operand::DateTime(micros) = literal_operand(leaf, op, value)? else {
                return Err(invalid("meta times compare with dateTime values"));
            };
            let sql = if op == CompareOp::Ne {
                sql.push("NOT (")
            } else {
                sql.push("(")
            };
            let sql = sql.push(column).push(match op {
                CompareOp::Gt => " > ",
                CompareOp::Ge => " >= ",
                CompareOp::Lt => " < ",
                CompareOp::Le => " <= ",
                _ => " = ",
            });
            return Ok(sql.bind_int(micros).push(")"));
        }
        let (attr, sub, leaf) = target(&resolved, true)?;
        let operand = literal_operand(leaf, op, value)?;
        let sql = if op == CompareOp::Ne { sql.push("NOT ") } else { sql };
        let sql = sql
            .push("r.id IN (SELECT x.resource_id FROM scim_index x WHERE x.attr = ")
            .bind_text(attr)
            .push(" AND x.sub = ")
            .bind_text(sub)
            .push(" AND ");
        Ok(predicate(sql, Alias::X, op, &operand).push(")"))
    }

    fn value_path(&self, sql: Sql, path: &AttrPath, inner: &Filter) -> Result<Sql> {
        let resolved = resolve(self.schema, path)?;
        if self.is_membership(&resolved) {
            return match inner {
                Filter::Compare { path, op, value }
                    if path.attr.eq_ignore_ascii_case("value") && path.sub.is_none() =>
                {
                    self.membership(sql, Some((*op, value)))
                }
                _ => Err(invalid(format!(
                    "a '{}' value filter can only compare 'value' with eq or ne",
                    self.kind.membership_attr()
                ))),
            };
        }
        let attr = resolved.attr;
        if resolved.sub.is_some() {
            return Err(invalid(
                "a value filter applies to an attribute, not to a sub-attribute",
            ));
        }
        let key = attr_key(resolved.container(), &attr.name);
        let sql = sql
            .push("r.id IN (SELECT e.resource_id FROM scim_index e WHERE e.attr = ")
            .bind_text(key)
            .push(" AND e.sub = '' AND ");
        Ok(self.element_condition(sql, attr, inner)?.push(")"))
    }

    /// A condition on element `e` of the multi-valued attribute `attr`.
    fn element_condition(&self, sql: Sql, attr: &AttributeDef, filter: &Filter) -> Result<Sql> {
        match filter {
            Filter::And(a, b) | Filter::Or(a, b) => {
                let sql = self.element_condition(sql.push("("), attr, a)?;
                let sql = sql.push(if matches!(filter, Filter::And(..)) {
                    " AND "
                } else {
                    " OR "
                });
                Ok(self.element_condition(sql, attr, b)?.push(")"))
            }
            Filter::Not(inner) => Ok(self.element_condition(sql.push("NOT ("), attr, inner)?.push(")")),
            Filter::ValuePath { .. } => Err(invalid("value filters cannot be nested")),
            Filter::Present(path) => {
                let (sub, _) = element_sub(attr, path)?;
                Ok(sql
                    .push("EXISTS (SELECT 1 FROM scim_index v WHERE v.resource_id = e.resource_id AND v.attr = e.attr AND v.elem = e.elem AND v.sub = ")
                    .bind_text(sub)
                    .push(")"))
            }
            Filter::Compare { path, op, value } => {
                let (sub, leaf) = element_sub(attr, path)?;
                let operand = literal_operand(leaf, *op, value)?;
                let sql = if *op == CompareOp::Ne { sql.push("NOT ") } else { sql };
                let sql = sql
                    .push("EXISTS (SELECT 1 FROM scim_index v WHERE v.resource_id = e.resource_id AND v.attr = e.attr AND v.elem = e.elem AND v.sub = ")
                    .bind_text(sub)
                    .push(" AND ");
                Ok(predicate(sql, Alias::V, *op, &operand).push(")"))
            }
        }
    }
}

/// The index sub key and definition of a path inside a value filter on `attr`.
fn element_sub<'a>(attr: &'a AttributeDef, path: &AttrPath) -> Result<(String, &'a AttributeDef)> {
    if path.urn.is_some() || path.sub.is_some() {
        return Err(invalid(format!("'{path}' is not a sub-attribute of '{}'", attr.name)));
    }
    if attr.kind != AttrType::Complex {
        if path.attr.eq_ignore_ascii_case("value") {
            return Ok((String::new(), attr));
        }
        return Err(invalid(format!(
            "'{}' has only 'value' inside a value filter",
            attr.name
        )));
    }
    let sub = attr
        .sub(&path.attr)
        .ok_or_else(|| invalid(format!("'{}' has no sub-attribute '{}'", attr.name, path.attr)))?;
    Ok((sub.name.to_lowercase(), sub))
}

/// The ORDER BY clause for `sortBy`.
fn order_by(sql: Sql, schema: &ResourceSchema, kind: Kind, sort: Option<(&AttrPath, bool)>) -> Result<Sql> {
    let Some((path, descending)) = sort else {
        return Ok(sql.push(" ORDER BY r.id"));
    };
    let bad = |e: String| Error::scim(ScimErrorType::InvalidValue, format!("sortBy: {e}"));
    let resolved = schema.resolve(path).map_err(|e| bad(e.to_string()))?;
    let direction = if descending { " DESC" } else { " ASC" };
    let translator = Translator { schema, kind };
    if translator.is_membership(&resolved) {
        return Err(bad("memberships cannot be sorted on".into()));
    }
    if resolved.schema.is_none() && resolved.attr.name.eq_ignore_ascii_case("meta") {
        let column = translator.meta_column(&resolved).map_err(|e| bad(e.to_string()))?;
        let column = column.unwrap_or("r.id");
        return Ok(sql.push(" ORDER BY ").push(column).push(direction).push(", r.id"));
    }
    let (attr, sub, leaf) = target(&resolved, true).map_err(|e| bad(e.to_string()))?;
    let column = match leaf.kind {
        AttrType::Integer | AttrType::Decimal => "MIN(s.num)",
        AttrType::DateTime => "MIN(s.tim)",
        _ => "MIN(s.txt)",
    };
    let key = |sql: Sql| {
        sql.push("(SELECT ")
            .push(column)
            .push(" FROM scim_index s WHERE s.resource_id = r.id AND s.attr = ")
            .bind_text(attr.clone())
            .push(" AND s.sub = ")
            .bind_text(sub.clone())
            .push(")")
    };
    let sql = key(sql.push(" ORDER BY CASE WHEN ")).push(" IS NULL THEN 1 ELSE 0 END, ");
    Ok(key(sql).push(direction).push(", r.id"))
}

impl SqlStore {
    /// The number of `kind` resources matching `search`, and the ids of the page it asks for.
    pub(super) async fn search_ids(
        &self,
        kind: Kind,
        schema: &ResourceSchema,
        search: &ScimSearch<'_>,
    ) -> Result<(u64, Vec<Uuid>)> {
        let translator = Translator { schema, kind };
        let from = match kind {
            Kind::Users => " FROM users r WHERE ",
            Kind::Groups => " FROM groups r WHERE ",
        };
        if let Some(filter) = search.filter {
            crate::domain::scim::supported::check(filter, schema)?;
        }
        let with_filter = |sql: Sql| -> Result<Sql> {
            match search.filter {
                Some(filter) => translator.condition(sql.push(from), filter),
                None => Ok(sql.push(from).push("1 = 1")),
            }
        };
        let count_row = with_filter(Sql::new("SELECT COUNT(*) AS total"))?
            .fetch_optional(&self.pool)
            .await?;
        let total: i64 = match count_row {
            Some(row) => get(&row, "total")?,
            None => 0,
        };
        if search.limit == 0 || total == 0 {
            return Ok((u64::try_from(total).unwrap_or(0), Vec::new()));
        }
        let sql = order_by(with_filter(Sql::new("SELECT r.id"))?, schema, kind, search.sort)?;
        let rows = sql
            .push(" LIMIT ")
            .bind_int(i64::try_from(search.limit).unwrap_or(i64::MAX))
            .push(" OFFSET ")
            .bind_int(i64::try_from(search.offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let ids = rows.iter().map(|row| get_uuid(row, "id")).collect::<Result<Vec<_>>>()?;
        Ok((u64::try_from(total).unwrap_or(0), ids))
    }
}
