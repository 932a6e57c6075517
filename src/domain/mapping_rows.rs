//! The attribute mapping as a table an administrator edits row by row: one row per target
//! attribute (source, transform, whether SCIM requires it), setting or removing one rule while
//! the rest stay, and the short source syntax of the CLI (`email`, `constant:true`).

use super::error::{Error, Result};
use super::mapping::{Mapping, MappingRule, Source, TargetPath};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One rule of a mapping, as a table row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MappingRow {
    /// The SCIM attribute path the rule sets.
    pub target: String,
    /// Where the value comes from, in the short syntax (`email`, `constant:true`) or, for
    /// composed sources, as JSON.
    pub source: String,
    /// `lower` or `upper` when the value is converted.
    pub transform: Option<String>,
    /// Whether SCIM requires the attribute (`userName`): its rule cannot be removed.
    pub required: bool,
    /// The rule as stored.
    #[schema(value_type = Object)]
    pub rule: MappingRule,
}

/// A case conversion applied to a mapped value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Lower case.
    Lower,
    /// Upper case.
    Upper,
}

impl Transform {
    /// Parses `lower` or `upper`.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "lower" => Ok(Transform::Lower),
            "upper" => Ok(Transform::Upper),
            other => Err(Error::invalid(
                "transform",
                format!("'{other}' is not a transform; use lower or upper"),
            )),
        }
    }

    /// `source` converted by this transform.
    pub fn apply(self, source: Source) -> Source {
        match self {
            Transform::Lower => Source::Lower(Box::new(source)),
            Transform::Upper => Source::Upper(Box::new(source)),
        }
    }
}

impl Source {
    /// Reads the short source syntax: `constant:JSON` for a fixed value (`constant:true`,
    /// `constant:"work"`; text that is not JSON is taken as a string), a JSON object for a composed
    /// source (`{"concat": [...]}`), anything else as the name of a profile attribute.
    pub fn from_short(text: &str) -> Result<Source> {
        let text = text.trim();
        if let Some(constant) = text.strip_prefix("constant:") {
            let value = serde_json::from_str(constant).unwrap_or_else(|_| Value::String(constant.to_owned()));
            return Ok(Source::Constant(value));
        }
        if text.starts_with('{') {
            return serde_json::from_str(text)
                .map_err(|e| Error::invalid("source", format!("the source is not a valid source object: {e}")));
        }
        if text.is_empty() {
            return Err(Error::invalid(
                "source",
                "name a profile attribute, constant:VALUE or a JSON source",
            ));
        }
        Ok(Source::Attribute(text.to_owned()))
    }

    /// The short syntax of a source and its transform, the way [`Source::from_short`] reads it back.
    fn to_short(&self) -> (String, Option<Transform>) {
        match self {
            Source::Attribute(name) => (name.clone(), None),
            Source::Constant(value) => (format!("constant:{value}"), None),
            Source::Lower(inner) if matches!(**inner, Source::Attribute(_) | Source::Constant(_)) => {
                (inner.to_short().0, Some(Transform::Lower))
            }
            Source::Upper(inner) if matches!(**inner, Source::Attribute(_) | Source::Constant(_)) => {
                (inner.to_short().0, Some(Transform::Upper))
            }
            composed => (serde_json::to_string(composed).unwrap_or_default(), None),
        }
    }
}

impl Mapping {
    /// The rules as table rows, in order.
    pub fn rows(&self) -> Vec<MappingRow> {
        self.rules
            .iter()
            .map(|rule| {
                let (source, transform) = rule.source.to_short();
                MappingRow {
                    target: rule.target.clone(),
                    source,
                    transform: transform.map(|t| match t {
                        Transform::Lower => "lower".to_owned(),
                        Transform::Upper => "upper".to_owned(),
                    }),
                    required: is_required(&rule.target),
                    rule: rule.clone(),
                }
            })
            .collect()
    }

    /// This mapping with `rule` set: it replaces the rule for the same target (attribute names
    /// compared regardless of case), else it is added at the end. Validate the result.
    pub fn with_rule(&self, rule: MappingRule) -> Result<Mapping> {
        let mut rules = self.rules.clone();
        match self.position(&rule.target)? {
            Some(index) => rules[index] = rule,
            None => rules.push(rule),
        }
        Ok(Mapping { rules })
    }

    /// This mapping without the rule for `target`. Validate the result.
    pub fn without_rule(&self, target: &str) -> Result<Mapping> {
        let index = self
            .position(target)?
            .ok_or_else(|| Error::not_found("mapping rule", target))?;
        let mut rules = self.rules.clone();
        rules.remove(index);
        Ok(Mapping { rules })
    }

    /// This mapping with the rule for `target` moved one place up (`up`) or down; at the top or
    /// the bottom already it stays. Rules are applied in order: the order decides the order of
    /// the entries of multi-valued attributes (`emails[type eq "work"]` before `emails[type eq
    /// "home"]`) and is the order the rows are shown in.
    pub fn with_rule_moved(&self, target: &str, up: bool) -> Result<Mapping> {
        let index = self
            .position(target)?
            .ok_or_else(|| Error::not_found("mapping rule", target))?;
        let mut rules = self.rules.clone();
        let other = if up { index.checked_sub(1) } else { Some(index + 1) };
        if let Some(other) = other.filter(|o| *o < rules.len()) {
            rules.swap(index, other);
        }
        Ok(Mapping { rules })
    }

    /// Where the rule for `target` is.
    fn position(&self, target: &str) -> Result<Option<usize>> {
        let wanted = TargetPath::parse(target)?.key();
        Ok(self
            .rules
            .iter()
            .position(|rule| TargetPath::parse(&rule.target).is_ok_and(|path| path.key() == wanted)))
    }
}

/// Whether SCIM requires the attribute `target` sets (the core `userName`).
fn is_required(target: &str) -> bool {
    TargetPath::parse(target).is_ok_and(|path| {
        path.schema().is_none()
            && path.filter().is_empty()
            && path.sub_attribute().is_none()
            && path.attribute().eq_ignore_ascii_case("userName")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> Mapping {
        serde_json::from_value(json!([
            {"target": "userName", "source": {"lower": {"attribute": "username"}}},
            {"target": "emails[type eq \"work\"].value", "source": {"attribute": "email"}},
            {"target": "emails[type eq \"work\"].primary", "source": {"constant": true}},
            {"target": "displayName", "source": {"concat": [{"attribute": "given_name"}, {"constant": " "}, {"attribute": "family_name"}]}}
        ]))
        .unwrap()
    }

    #[test]
    fn rows_show_source_transform_and_required() {
        let rows = mapping().rows();
        assert_eq!(rows[0].source, "username");
        assert_eq!(rows[0].transform.as_deref(), Some("lower"));
        assert!(rows[0].required);
        assert_eq!(rows[1].source, "email");
        assert!(!rows[1].required);
        assert_eq!(rows[2].source, "constant:true");
        assert!(rows[3].source.starts_with("{\"concat\""));
        // The short syntax reads back to the same source.
        for row in &rows {
            let mut source = Source::from_short(&row.source).unwrap();
            if let Some(t) = &row.transform {
                source = Transform::parse(t).unwrap().apply(source);
            }
            assert_eq!(source, row.rule.source, "{}", row.target);
        }
    }

    #[test]
    fn setting_replaces_the_same_target_regardless_of_case() {
        let rule = MappingRule {
            target: "EMAILS[TYPE eq \"work\"].VALUE".into(),
            source: Source::from_short("username").unwrap(),
        };
        let changed = mapping().with_rule(rule.clone()).unwrap();
        assert_eq!(changed.rules.len(), 4);
        assert_eq!(changed.rules[1], rule);
        let added = mapping()
            .with_rule(MappingRule {
                target: "title".into(),
                source: Source::from_short("constant:\"Engineer\"").unwrap(),
            })
            .unwrap();
        assert_eq!(added.rules.len(), 5);
        assert_eq!(added.rules[4].source, Source::Constant(json!("Engineer")));
    }

    #[test]
    fn removing_needs_an_existing_rule_and_a_valid_target() {
        assert_eq!(mapping().without_rule("displayname").unwrap().rules.len(), 3);
        assert!(matches!(mapping().without_rule("title"), Err(Error::NotFound { .. })));
        assert!(matches!(mapping().without_rule("a[b"), Err(Error::Validation { .. })));
    }

    #[test]
    fn moving_a_rule_swaps_it_with_its_neighbour() {
        let up = mapping()
            .with_rule_moved("emails[type eq \"work\"].primary", true)
            .unwrap();
        assert_eq!(up.rules[1].target, "emails[type eq \"work\"].primary");
        assert_eq!(up.rules[2].target, "emails[type eq \"work\"].value");
        assert_eq!(mapping().with_rule_moved("userName", true).unwrap(), mapping());
        assert_eq!(mapping().with_rule_moved("displayName", false).unwrap(), mapping());
        assert!(matches!(
            mapping().with_rule_moved("title", false),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn short_sources() {
        assert_eq!(
            Source::from_short("constant:work").unwrap(),
            Source::Constant(json!("work"))
        );
        assert_eq!(Source::from_short("constant:3").unwrap(), Source::Constant(json!(3)));
        assert!(Source::from_short(" ").is_err());
        assert!(Source::from_short("{\"nope\": 1}").is_err());
        assert!(Transform::parse("title").is_err());
    }
}
