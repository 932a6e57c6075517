//! Parse-once value types: once constructed, a username, email or name is known to be valid.

use super::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

const MAX_NAME_LEN: usize = 256;

fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Whether `c` shows as nothing (or as another character) where names are displayed: Unicode
/// format characters (category Cf: zero-width spaces and joiners, direction marks and overrides,
/// the byte-order mark, tags), fillers that render blank, and spaces other than U+0020.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    ) || (c.is_whitespace() && c != ' ')
}

/// A name as stored: in Unicode NFC (so that the same name typed on two systems is one name),
/// refused when it holds characters that are invisible or look like something else.
fn normalized_name(field: &str, value: &str) -> Result<String> {
    use unicode_normalization::UnicodeNormalization;
    if let Some(c) = value.chars().find(|c| is_invisible(*c)) {
        return Err(Error::invalid(
            field,
            format!(
                "must not contain invisible or format characters (found U+{:04X}), which would make it look like another name",
                u32::from(c)
            ),
        ));
    }
    Ok(value.nfc().collect())
}

/// The page size a list request asks for: `default` when not given; 0 or more than `max` is the
/// client's error (not silently replaced).
pub fn page_limit(value: Option<u32>, default: u32, max: u32) -> Result<u32> {
    match value {
        None => Ok(default),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(limit) => Err(Error::BadRequest(format!(
            "limit must be between 1 and {max}, not {limit}"
        ))),
    }
}

/// A user's login name: 1 to 256 characters, no surrounding white space, no control, format or
/// other invisible characters, stored in Unicode NFC.
/// Unique in the directory regardless of letter case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Validates `value` as a username.
    pub fn parse(value: &str) -> Result<Self> {
        if value.is_empty() {
            return Err(Error::invalid("username", "must not be empty"));
        }
        if value.trim() != value {
            return Err(Error::invalid("username", "must not start or end with white space"));
        }
        check_text("username", value, MAX_NAME_LEN)?;
        Ok(Self(normalized_name("username", value)?))
    }

    /// The case-folded form that uniqueness and look-ups use.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// The name as entered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A syntactically valid email address (`local@domain.tld`), kept as entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Validates `value` as an email address.
    pub fn parse(value: &str) -> Result<Self> {
        let bad = |why: &str| {
            Err(Error::invalid(
                "email",
                format!("'{value}' is not a valid email address: {why}"),
            ))
        };
        if value.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return bad("missing '@'");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("the part before '@' must be 1 to 64 characters");
        }
        if local.contains('@') && !(local.starts_with('"') && local.ends_with('"')) {
            return bad("more than one '@'");
        }
        if local.chars().any(|c| c.is_whitespace() || c.is_control())
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            return bad("invalid characters before '@'");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return bad("the domain needs a dot");
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return bad("invalid domain");
            }
        }
        Ok(Self(value.to_owned()))
    }

    /// The case-folded form used for look-ups.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// The address as entered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates an optional free-text profile field (names): at most 256 characters, no control characters.
/// Empty or blank text counts as absent.
pub fn profile_text(field: &str, value: Option<String>) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => {
            check_text(field, &v, MAX_NAME_LEN)?;
            Ok(Some(v))
        }
    }
}

/// A group's display name: 1 to 256 characters, trimmed, no invisible characters, in Unicode NFC,
/// unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    /// Validates `value` as a group name.
    pub fn parse(value: &str) -> Result<Self> {
        if value.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        if value.trim() != value {
            return Err(Error::invalid("name", "must not start or end with white space"));
        }
        check_text("name", value, MAX_NAME_LEN)?;
        Ok(Self(normalized_name("name", value)?))
    }

    /// The case-folded form that uniqueness uses.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// The name as entered.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<GroupName> for String {
    fn from(value: GroupName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_nfc_and_never_invisible() {
        // "é" typed as e + combining acute is stored as the one precomposed character.
        assert_eq!(Username::parse("jose\u{0301}").unwrap().as_str(), "jos\u{e9}");
        assert_eq!(GroupName::parse("Cafe\u{0301}").unwrap().as_str(), "Caf\u{e9}");
        for bad in [
            "adm\u{200b}in",
            "admin\u{200d}",
            "\u{feff}admin",
            "ad\u{202e}nim",
            "ad\u{00ad}min",
            "adm\u{00a0}in",
            "a\u{3164}b",
            "x\u{e0061}",
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invisible"), "{bad:?}: {err}");
            assert!(GroupName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Username::parse("Zoë Ünal").is_ok());
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@example.com", "x@sub.domain.org"] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "plain", "@b.co", "a@", "a@b", "a b@c.de", "a@b..c", "a@-b.co", ".a@b.co", "a@@b.co",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usernames() {
        assert_eq!(Username::parse("Alice").unwrap().key(), "alice");
        assert!(Username::parse(" alice").is_err());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a\u{0}b").is_err());
        assert!(Username::parse(&"x".repeat(257)).is_err());
    }

    proptest! {
        #[test]
        fn email_parse_never_panics(s in "\\PC{0,80}") {
            let _ = EmailAddress::parse(&s);
        }

        #[test]
        fn accepted_emails_have_one_domain_dot_and_at(s in "[a-z0-9.@-]{1,40}") {
            if let Ok(e) = EmailAddress::parse(&s) {
                let (_, domain) = e.as_str().rsplit_once('@').unwrap();
                prop_assert!(domain.contains('.'));
            }
        }

        #[test]
        fn username_key_is_case_insensitive(s in "[A-Za-z0-9]{1,30}") {
            let upper = Username::parse(&s.to_uppercase()).unwrap();
            let lower = Username::parse(&s.to_lowercase()).unwrap();
            prop_assert_eq!(upper.key(), lower.key());
        }
    }
}
