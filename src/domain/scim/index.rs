//! The search index of SCIM resources: every leaf value of a user's or group's resource as a row
//! (attribute, element number, sub-attribute, comparable text or number). The store keeps these
//! rows beside the resource and translates filters and sorting into queries over them, so a filter
//! is evaluated in the database with the same rules as [`super::eval`].

use super::eval::{Operand, stored_operand};
use super::schema::{AttrType, AttributeDef, ResourceSchema, common_attributes};
use serde_json::Value;

/// One indexed value.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// Lower-cased attribute name; URN-qualified (`urn:...:user:manager`) for extension attributes.
    pub attr: String,
    /// Element number within a multi-valued attribute (0 for single-valued ones).
    pub elem: i64,
    /// Lower-cased sub-attribute name, or empty for the attribute itself.
    pub sub: String,
    /// Comparable text ([`hex_key`] of the folded value) for strings, references, binaries and booleans.
    pub txt: Option<String>,
    /// Numbers.
    pub num: Option<f64>,
    /// DateTimes, as microseconds since the epoch.
    pub tim: Option<i64>,
}

/// Encodes text byte by byte as lower-case hex pairs each followed by `.`: byte order is kept,
/// and a `LIKE '%..%'` pattern built the same way can only match at byte boundaries.
pub fn hex_key(text: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        out.push('.');
    }
    out
}

/// The index key of an attribute: its lower-cased name, prefixed with its schema URN when it sits
/// in an extension.
pub fn attr_key(extension: Option<&str>, name: &str) -> String {
    match extension {
        Some(urn) => format!("{}:{}", urn.to_lowercase(), name.to_lowercase()),
        None => name.to_lowercase(),
    }
}

/// The stored value of an operand: which column holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// `txt`: hex-encoded folded text (strings, references, binaries, booleans).
    Txt(String),
    /// `num`: numbers.
    Num(f64),
    /// `tim`: dateTimes in microseconds since the epoch.
    Tim(i64),
}

/// The column and value an operand is stored and compared as.
pub fn operand_column(operand: &Operand) -> Column {
    match operand {
        Operand::Text(text) => Column::Txt(hex_key(text)),
        Operand::Boolean(b) => Column::Txt(hex_key(if *b { "true" } else { "false" })),
        Operand::Number(n) => Column::Num(*n),
        Operand::DateTime(micros) => Column::Tim(*micros),
    }
}

fn entry(attr: &str, elem: i64, sub: String, column: Option<Column>) -> IndexEntry {
    let (mut txt, mut num, mut tim) = (None, None, None);
    match column {
        Some(Column::Txt(t)) => txt = Some(t),
        Some(Column::Num(n)) => num = Some(n),
        Some(Column::Tim(t)) => tim = Some(t),
        None => {}
    }
    IndexEntry {
        attr: attr.to_owned(),
        elem,
        sub,
        txt,
        num,
        tim,
    }
}

/// The index rows of `resource`. `meta`, `schemas` and the attributes named in `skip`
/// (memberships, which the store reads from its own table) are left out; unknown keys are ignored.
pub fn entries(resource: &Value, schema: &ResourceSchema, skip: &[&str]) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    let Some(object) = resource.as_object() else {
        return out;
    };
    for (key, value) in object {
        if key.eq_ignore_ascii_case("schemas") || key.eq_ignore_ascii_case("meta") {
            continue;
        }
        if skip.iter().any(|s| s.eq_ignore_ascii_case(key)) {
            continue;
        }
        if let Some(ext) = schema.extension(key) {
            if let Some(inner) = value.as_object() {
                for (name, value) in inner {
                    if let Some(def) = ext.schema.attribute(name) {
                        push_attribute(&mut out, attr_key(Some(&ext.schema.id), &def.name), def, value);
                    }
                }
            }
            continue;
        }
        let def = common_attributes()
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(key))
            .or_else(|| schema.core.attribute(key));
        if let Some(def) = def {
            push_attribute(&mut out, attr_key(None, &def.name), def, value);
        }
    }
    out
}

fn push_attribute(out: &mut Vec<IndexEntry>, attr: String, def: &AttributeDef, value: &Value) {
    match (def.multi_valued, value) {
        (true, Value::Array(items)) => {
            for (elem, item) in items.iter().enumerate() {
                push_value(out, &attr, i64::try_from(elem).unwrap_or(i64::MAX), def, item);
            }
        }
        (true, single) => push_value(out, &attr, 0, def, single),
        (false, value) => push_value(out, &attr, 0, def, value),
    }
}

fn push_value(out: &mut Vec<IndexEntry>, attr: &str, elem: i64, def: &AttributeDef, value: &Value) {
    if is_absent(value) {
        return;
    }
    if def.kind == AttrType::Complex {
        let Some(object) = value.as_object() else { return };
        if object.values().all(is_absent) {
            return;
        }
        out.push(entry(attr, elem, String::new(), None));
        for (name, value) in object {
            let Some(sub) = def.sub(name) else { continue };
            if is_absent(value) {
                continue;
            }
            let column = stored_operand(sub, value).map(|o| operand_column(&o));
            out.push(entry(attr, elem, sub.name.to_lowercase(), column));
        }
        return;
    }
    let column = stored_operand(def, value).map(|o| operand_column(&o));
    out.push(entry(attr, elem, String::new(), column));
}

/// Whether a JSON value counts as absent (null, "", [] or {}).
pub fn is_absent(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_key_keeps_byte_order_and_boundaries() {
        assert_eq!(hex_key("aZ"), "61.5a.");
        let mut words = ["b", "a", "ab", "", "é", "z", "a\u{0}"];
        let mut keys: Vec<String> = words.iter().map(|w| hex_key(w)).collect();
        words.sort();
        keys.sort();
        assert_eq!(keys, words.iter().map(|w| hex_key(w)).collect::<Vec<_>>());
        // "\u{12}\u{34}" must not contain "\u{23}" at an odd offset.
        assert!(!hex_key("\u{12}\u{34}").contains(&hex_key("\u{23}")));
    }
}
