//! The PATCH path parser (RFC 7644 §3.5.2) and the canonical text form of a [`PatchPath`].
//!
//! ```text
//! PATH = attrPath / valuePath [ "." subAttr ]
//! ```
//!
//! so `name.familyName`, `urn:...:enterprise:2.0:User:manager`, `members[value eq "2819c223"]` and
//! `emails[type eq "work"].value`. Attribute paths follow the filter grammar (`filter.rs`: the URN is
//! everything before the last `:`, names are `ALPHA *(ALPHA / DIGIT / "-" / "_")`, `$ref` is a
//! valid sub-attribute), the bracket holds a filter whose paths are relative to one element, and
//! surrounding whitespace is ignored. The same length, depth and term limits as for filters apply.
//! Every error is `invalidPath`.

use crate::ast::PatchPath;
use crate::error::{Result, ScimErrorType};
use crate::filter::Parser;
use std::fmt;

/// Parses a PATCH operation's `path`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath> {
    let mut parser = Parser::new(input, ScimErrorType::InvalidPath, "path")?;
    parser.skip_ws();
    let attr = parser.parse_attr_path()?;
    let mut filter = None;
    let mut sub_after_filter = None;
    if parser.peek() == Some('[') {
        let (parsed, _) = parser.parse_value_filter(&attr)?;
        filter = Some(parsed);
        if parser.eat('.') {
            sub_after_filter = Some(parser.parse_sub_name()?);
        }
    }
    parser.skip_ws();
    if !parser.at_end() {
        let expected = if filter.is_some() {
            "'.' and a sub-attribute, or the end of the path"
        } else {
            "'[', or the end of the path"
        };
        return Err(parser.expected(expected));
    }
    Ok(PatchPath {
        attr,
        filter,
        sub_after_filter,
    })
}

/// The canonical text, e.g. `emails[type eq "work"].value`; it parses back to the same path.
impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_after_filter {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{AttrPath, CompareOp, Filter};
    use crate::error::Error;
    use crate::filter::MAX_FILTER_LENGTH;
    use proptest::prelude::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn parse(text: &str) -> PatchPath {
        match parse_patch_path(text) {
            Ok(p) => p,
            Err(e) => panic!("{text:?} did not parse: {e}"),
        }
    }

    /// The error detail; panics unless it is an invalidPath.
    fn error(text: &str) -> String {
        match parse_patch_path(text) {
            Ok(p) => panic!("{text:?} parsed as {p:?}"),
            Err(Error::Scim {
                scim_type: ScimErrorType::InvalidPath,
                detail,
            }) => detail,
            Err(other) => panic!("{text:?}: unexpected error {other:?}"),
        }
    }

    fn eq(attr: &str, value: &str) -> Filter {
        Filter::Compare {
            path: AttrPath::simple(attr),
            op: CompareOp::Eq,
            value: json!(value),
        }
    }

    fn attr(urn: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(str::to_owned),
            attr: attr.into(),
            sub: sub.map(str::to_owned),
        }
    }

    #[test]
    fn plain_paths() {
        let expected = |a: AttrPath| PatchPath {
            attr: a,
            filter: None,
            sub_after_filter: None,
        };
        assert_eq!(parse("userName"), expected(attr(None, "userName", None)));
        assert_eq!(
            parse("name.familyName"),
            expected(attr(None, "name", Some("familyName")))
        );
        assert_eq!(parse("members.$ref"), expected(attr(None, "members", Some("$ref"))));
        assert_eq!(
            parse(&format!("{ENTERPRISE}:manager")),
            expected(attr(Some(ENTERPRISE), "manager", None))
        );
        assert_eq!(
            parse(&format!("{ENTERPRISE}:manager.value")),
            expected(attr(Some(ENTERPRISE), "manager", Some("value")))
        );
        assert_eq!(parse("  active  "), expected(attr(None, "active", None)));
    }

    #[test]
    fn value_paths() {
        assert_eq!(
            parse(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#),
            PatchPath {
                attr: attr(None, "members", None),
                filter: Some(eq("value", "2819c223-7f76-453a-919d-413861904646")),
                sub_after_filter: None,
            }
        );
        assert_eq!(
            parse(r#"emails[type eq "work"].value"#),
            PatchPath {
                attr: attr(None, "emails", None),
                filter: Some(eq("type", "work")),
                sub_after_filter: Some("value".into()),
            }
        );
        assert_eq!(
            parse(r#"addresses[type eq "work"].streetAddress"#),
            PatchPath {
                attr: attr(None, "addresses", None),
                filter: Some(eq("type", "work")),
                sub_after_filter: Some("streetAddress".into()),
            }
        );
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        assert_eq!(
            parse(&format!(r#"{core}:emails[type eq "work" and primary eq true].display"#)),
            PatchPath {
                attr: attr(Some(core), "emails", None),
                filter: Some(Filter::And(
                    Box::new(eq("type", "work")),
                    Box::new(Filter::Compare {
                        path: AttrPath::simple("primary"),
                        op: CompareOp::Eq,
                        value: json!(true)
                    })
                )),
                sub_after_filter: Some("display".into()),
            }
        );
    }

    #[test]
    fn errors() {
        assert!(error("").contains("attribute path"));
        assert!(error("   ").contains("attribute path"));
        assert!(error("1abc").contains("not a valid attribute name"));
        assert!(error("name.").contains("sub-attribute"));
        assert!(error("a.b.c").contains("'b.c'"));
        assert!(error("urn:x:").contains("no attribute name"));
        assert!(error("foo:bar").contains("schema URN"));
        assert!(error("userName eq \"x\"").contains("'[', or the end"));
        assert!(error("emails[type eq \"work\"]value").contains("'.' and a sub-attribute"));
        assert!(error("emails[type eq \"work\"].").contains("sub-attribute name"));
        assert!(error("emails[type eq \"work\"].value.x").contains("sub-attribute name"));
        assert!(error("emails[type eq \"work\"].value[type pr]").contains("'.' and a sub-attribute"));
        assert!(error("emails[type eq \"work\"").contains("']' (to close"));
        assert!(error("emails[]").contains("attribute path"));
        assert!(error("emails[type eq work]").contains("value after 'eq'"));
        assert!(error("emails.value[type pr]").contains("not to a sub-attribute"));
        assert!(error("emails[type[value pr]]").contains("cannot be nested"));
        assert!(error("emails [type pr]").contains("'[', or the end"));
        assert!(error(&format!("a{}", " ".repeat(MAX_FILTER_LENGTH))).contains("limit is 4096"));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "userName",
            "name.familyName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            r#"emails[type eq "work"].value"#,
            r#"emails[type eq "work" or not (primary eq false)].$ref"#,
        ] {
            let parsed = parse(text);
            assert_eq!(parsed.to_string(), text);
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in ".{0,120}") {
            let _ = parse_patch_path(&text);
        }

        #[test]
        fn never_panics_on_path_like_text(text in "[a-z:.$\\[\\] \"()]{0,60}") {
            if let Ok(path) = parse_patch_path(&text) {
                prop_assert_eq!(parse_patch_path(&path.to_string()).ok(), Some(path));
            }
        }

        #[test]
        fn round_trips(
            urn in proptest::option::of("urn(:[a-zA-Z0-9._-]{1,6}){1,3}"),
            name in "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
            sub in proptest::option::of("[a-zA-Z][a-zA-Z0-9_-]{0,8}|\\$ref"),
            value in ".{0,10}",
            bracket in any::<bool>(),
        ) {
            let path = if bracket {
                PatchPath {
                    attr: AttrPath { urn, attr: name, sub: None },
                    filter: Some(Filter::Compare {
                        path: AttrPath::simple("type"),
                        op: CompareOp::Eq,
                        value: json!(value),
                    }),
                    sub_after_filter: sub,
                }
            } else {
                PatchPath { attr: AttrPath { urn, attr: name, sub }, filter: None, sub_after_filter: None }
            };
            prop_assert_eq!(parse_patch_path(&path.to_string()).ok(), Some(path));
        }
    }
}
