//! The SCIM filter parser (RFC 7644 §3.4.2.2), hand-written, and the canonical text form of a
//! [`Filter`] (its `Display`), which parses back to the same tree.
//!
//! Grammar, as accepted here:
//!
//! ```text
//! filter    = or
//! or        = and *( "or" and )                       ; left-associative
//! and       = unary *( "and" unary )                  ; binds tighter than "or"
//! unary     = "not" *WS "(" filter ")" / "(" filter ")" / attrPath "[" valFilter "]"
//!           / attrPath "[" valFilter "]." subAttr ( WS "pr" / WS compareOp *WS compValue )
//!           / attrPath WS "pr" / attrPath WS compareOp *WS compValue
//! attrPath  = [ URN ":" ] ATTRNAME [ "." subAttr ]      ; the URN is everything before the last ":"
//! compValue = JSON string / JSON number / "true" / "false" / "null"
//! ```
//!
//! Keywords (`and or not pr`, the operators, `true false null`) ignore case. Attribute names are
//! `ALPHA *( ALPHA / DIGIT / "-" / "_" )`; `$ref` is also accepted as a sub-attribute name and as a
//! name inside brackets. A URN starts with `urn:` and is never split on its dots
//! (`...:enterprise:2.0:User:manager.value` has the URN `...:enterprise:2.0:User`). Inside
//! `attr[...]` paths are relative to one element: a bare sub-attribute name, no URN, no `.sub`, and
//! no further brackets. The second `unary` form is what Entra ID sends
//! (`emails[type eq "work"].value eq "x"`); it is read as the value path
//! `emails[type eq "work" and value eq "x"]` (the bracketed filter `and` the comparison of the
//! element's sub-attribute), so it needs nothing of its own after parsing. After a value, only whitespace, `)`, `]` or the end may follow, so
//! `userName eq x' OR 1=1` is refused while `"x' OR 1=1 --"` is just a string.
//!
//! Limits: [`MAX_FILTER_LENGTH`] bytes, [`MAX_FILTER_TERMS`] comparisons (including `pr`), and
//! [`MAX_FILTER_DEPTH`] levels of nesting. Depth counts one level for each parenthesised group,
//! each `not (...)`, each `[...]`, and each chain of `and` or of `or` (a flat `a or b or c` is one
//! level); a lone comparison is depth 0. Both counts are checked while parsing, before recursing,
//! so no input can exhaust the stack. Every error is `invalidFilter` naming the character position
//! (1-based, in characters) and the offending text.

use crate::ast::{AttrPath, CompareOp, Filter};
use crate::error::{Error, Result, ScimErrorType};
use serde_json::Value;
use std::fmt;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LENGTH: usize = 4096;
/// The deepest nesting accepted (parentheses, `not`, value paths, `and`/`or` chains).
pub const MAX_FILTER_DEPTH: usize = 16;
/// The most comparisons (`op` and `pr` terms) one filter may contain.
pub const MAX_FILTER_TERMS: usize = 64;

/// Parses a SCIM filter such as `userName eq "bjensen" and emails[type eq "work"]`.
pub fn parse_filter(input: &str) -> Result<Filter> {
    let mut parser = Parser::new(input, ScimErrorType::InvalidFilter, "filter")?;
    let (filter, _) = parser.parse_or()?;
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.expected("'and', 'or' or the end of the filter"));
    }
    Ok(filter)
}

/// The hand-written recursive-descent parser, shared with the PATCH path parser.
pub(crate) struct Parser<'a> {
    src: &'a str,
    pos: usize,
    kind: ScimErrorType,
    what: &'static str,
    open: usize,
    terms: usize,
    in_brackets: bool,
}

/// A name character after the first: `ALPHA / DIGIT / "-" / "_"`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// A character that may appear in an attribute path token (names, URN, dots, `$ref`).
fn is_path_char(c: char) -> bool {
    is_name_char(c) || matches!(c, '.' | ':' | '$')
}

/// `ALPHA *( nameChar )`.
fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(is_name_char)
}

/// A sub-attribute name: a name or `$ref`.
fn is_sub_name(text: &str) -> bool {
    text == "$ref" || is_name(text)
}

fn compare_op(word: &str) -> Option<CompareOp> {
    Some(match word.to_ascii_lowercase().as_str() {
        "eq" => CompareOp::Eq,
        "ne" => CompareOp::Ne,
        "co" => CompareOp::Co,
        "sw" => CompareOp::Sw,
        "ew" => CompareOp::Ew,
        "gt" => CompareOp::Gt,
        "ge" => CompareOp::Ge,
        "lt" => CompareOp::Lt,
        "le" => CompareOp::Le,
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    /// A parser over `src` whose errors have type `kind`; `what` names the input in messages.
    pub(crate) fn new(src: &'a str, kind: ScimErrorType, what: &'static str) -> Result<Self> {
        if src.len() > MAX_FILTER_LENGTH {
            return Err(Error::scim(
                kind,
                format!(
                    "the {what} is {} bytes long; the limit is {MAX_FILTER_LENGTH}",
                    src.len()
                ),
            ));
        }
        Ok(Parser {
            src,
            pos: 0,
            kind,
            what,
            open: 0,
            terms: 0,
            in_brackets: false,
        })
    }

    // ---- low-level helpers ----

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Skips whitespace; tells whether there was any.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        self.take_while(char::is_whitespace);
        self.pos > start
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !pred(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// Consumes `c` when it is next.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// The 1-based character position of byte offset `pos`.
    fn position(&self, pos: usize) -> String {
        let column = self.src.get(..pos).map_or(0, |s| s.chars().count()) + 1;
        format!("character {column}")
    }

    /// The text found at the current position, for messages.
    fn found(&self) -> String {
        if self.at_end() {
            return format!("the end of the {}", self.what);
        }
        let token: String = self
            .rest()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        format!("{token:?}")
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::scim(self.kind, message.into())
    }

    /// "expected X at character N, found Y".
    pub(crate) fn expected(&self, what: &str) -> Error {
        self.error(format!(
            "expected {what} at {}, found {}",
            self.position(self.pos),
            self.found()
        ))
    }

    /// Whether a keyword (ignoring case) is next, followed by something that is not part of a name.
    fn at_keyword(&self, keyword: &str) -> bool {
        let rest = self.rest();
        rest.get(..keyword.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
            && !rest[keyword.len()..].chars().next().is_some_and(is_path_char)
    }

    /// Opens a nesting level (group, `not`, brackets); refuses one beyond the depth limit.
    fn enter(&mut self, at: usize) -> Result<()> {
        if self.open + 1 > MAX_FILTER_DEPTH {
            return Err(self.error(format!(
                "the {} nests deeper than {MAX_FILTER_DEPTH} levels at {}",
                self.what,
                self.position(at)
            )));
        }
        self.open += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// Refuses a chain whose own depth `depth`, inside the open levels, exceeds the limit.
    fn check_depth(&self, depth: usize, at: usize) -> Result<()> {
        if self.open + depth > MAX_FILTER_DEPTH {
            return Err(self.error(format!(
                "the {} nests deeper than {MAX_FILTER_DEPTH} levels at {}",
                self.what,
                self.position(at)
            )));
        }
        Ok(())
    }

    // ---- grammar ----

    /// `and *( "or" and )`; returns the filter and its nesting depth.
    fn parse_or(&mut self) -> Result<(Filter, usize)> {
        let (mut filter, first) = self.parse_and()?;
        let mut deepest = first;
        let mut chained = false;
        loop {
            let save = self.pos;
            self.skip_ws();
            if !self.at_keyword("or") {
                self.pos = save;
                break;
            }
            let at = self.pos;
            self.pos += 2;
            let (right, depth) = self.parse_and()?;
            deepest = deepest.max(depth);
            chained = true;
            self.check_depth(deepest + 1, at)?;
            filter = Filter::Or(Box::new(filter), Box::new(right));
        }
        Ok((filter, if chained { deepest + 1 } else { first }))
    }

    /// `unary *( "and" unary )`.
    fn parse_and(&mut self) -> Result<(Filter, usize)> {
        let (mut filter, first) = self.parse_unary()?;
        let mut deepest = first;
        let mut chained = false;
        loop {
            let save = self.pos;
            self.skip_ws();
            if !self.at_keyword("and") {
                self.pos = save;
                break;
            }
            let at = self.pos;
            self.pos += 3;
            let (right, depth) = self.parse_unary()?;
            deepest = deepest.max(depth);
            chained = true;
            self.check_depth(deepest + 1, at)?;
            filter = Filter::And(Box::new(filter), Box::new(right));
        }
        Ok((filter, if chained { deepest + 1 } else { first }))
    }

    /// A group, a `not`, a value path or a comparison.
    fn parse_unary(&mut self) -> Result<(Filter, usize)> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let (filter, depth) = self.parse_group(start)?;
                Ok((filter, depth + 1))
            }
            Some(c) if c.is_ascii_alphabetic() || c == '$' => {
                if self.at_keyword("not") {
                    self.pos += 3;
                    self.skip_ws();
                    if self.eat('(') {
                        let (filter, depth) = self.parse_group(start)?;
                        return Ok((Filter::Not(Box::new(filter)), depth + 1));
                    }
                    // `not` not followed by "(": an attribute called "not".
                    self.pos = start;
                }
                self.parse_attr_expr()
            }
            _ => Err(self.expected("an attribute path, '(' or 'not'")),
        }
    }

    /// The rest of a parenthesised group after its "(": a filter and ")".
    fn parse_group(&mut self, open_at: usize) -> Result<(Filter, usize)> {
        self.enter(open_at)?;
        let result = self.parse_or()?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.expected(&format!("')' (to close the '(' at {})", self.position(open_at))));
        }
        self.leave();
        Ok(result)
    }

    /// The bracketed element filter of a value path; the "[" is next. Returns it and its depth.
    pub(crate) fn parse_value_filter(&mut self, path: &AttrPath) -> Result<(Filter, usize)> {
        let open_at = self.pos;
        if self.in_brackets {
            return Err(self.error(format!(
                "value filters cannot be nested: '[' at {} is inside another '[...]'",
                self.position(open_at)
            )));
        }
        if path.sub.is_some() {
            return Err(self.error(format!(
                "'{path}[' at {}: a value filter applies to an attribute, not to a sub-attribute",
                self.position(open_at)
            )));
        }
        self.pos += 1;
        self.enter(open_at)?;
        self.in_brackets = true;
        let (filter, depth) = self.parse_or()?;
        self.skip_ws();
        if !self.eat(']') {
            return Err(self.expected(&format!("']' (to close the '[' at {})", self.position(open_at))));
        }
        self.in_brackets = false;
        self.leave();
        Ok((filter, depth + 1))
    }

    /// Reads an attribute path (`[urn:...:]attr[.sub]`) at the current position.
    pub(crate) fn parse_attr_path(&mut self) -> Result<AttrPath> {
        let start = self.pos;
        let token = self.take_while(is_path_char);
        if token.is_empty() {
            return Err(self.expected("an attribute path"));
        }
        let at = self.position(start);
        let (urn, rest) = match token.rfind(':') {
            Some(i) => (Some(&token[..i]), &token[i + 1..]),
            None => (None, token),
        };
        if let Some(urn) = urn {
            if self.in_brackets {
                return Err(self.error(format!(
                    "'{token}' at {at}: inside '[...]' name a sub-attribute of the element, without a URN"
                )));
            }
            let well_formed = urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
                && urn
                    .split(':')
                    .all(|segment| !segment.is_empty() && !segment.contains('$'));
            if !well_formed {
                return Err(self.error(format!("'{urn}' at {at} is not a schema URN (urn:...)")));
            }
        }
        let (attr, sub) = match rest.split_once('.') {
            Some((attr, sub)) => (attr, Some(sub)),
            None => (rest, None),
        };
        if attr.is_empty() {
            return Err(self.error(format!("'{token}' at {at} has no attribute name")));
        }
        if !(is_name(attr) || (self.in_brackets && attr == "$ref")) {
            return Err(self.error(format!("'{attr}' at {at} is not a valid attribute name")));
        }
        if let Some(sub) = sub {
            if self.in_brackets {
                return Err(self.error(format!(
                    "'{token}' at {at}: inside '[...]' name a sub-attribute of the element, without '.'"
                )));
            }
            if !is_sub_name(sub) {
                return Err(self.error(format!("'{sub}' at {at} is not a valid sub-attribute name")));
            }
        }
        Ok(AttrPath {
            urn: urn.map(str::to_owned),
            attr: attr.to_owned(),
            sub: sub.map(str::to_owned),
        })
    }

    /// Reads a sub-attribute name (after `].`), for PATCH paths.
    pub(crate) fn parse_sub_name(&mut self) -> Result<String> {
        let start = self.pos;
        let token = self.take_while(is_path_char);
        if !is_sub_name(token) {
            self.pos = start;
            return Err(self.expected("a sub-attribute name"));
        }
        Ok(token.to_owned())
    }

    /// `attrPath "[" valFilter "]"`, `attrPath "pr"` or `attrPath op value`.
    fn parse_attr_expr(&mut self) -> Result<(Filter, usize)> {
        let path = self.parse_attr_path()?;
        if self.peek() == Some('[') {
            let open_at = self.pos;
            let (filter, depth) = self.parse_value_filter(&path)?;
            if self.peek() == Some('.') {
                return self.parse_sub_after_filter(path, filter, depth, open_at);
            }
            return Ok((
                Filter::ValuePath {
                    path,
                    filter: Box::new(filter),
                },
                depth,
            ));
        }
        let filter = self.parse_operation(path)?;
        Ok((filter, 0))
    }

    /// The form Entra ID sends, `emails[type eq "work"].value eq "x"`: a sub-attribute and a
    /// comparison (or `pr`) after a value filter, read as `emails[type eq "work" and value eq "x"]`.
    /// The "." is next; `filter` and `depth` are the bracketed filter and its depth, whose "[" was
    /// at `open_at`.
    fn parse_sub_after_filter(
        &mut self,
        path: AttrPath,
        filter: Filter,
        depth: usize,
        open_at: usize,
    ) -> Result<(Filter, usize)> {
        self.pos += 1;
        let sub = self.parse_sub_name().map_err(|_| {
            self.expected(&format!(
                "a sub-attribute name after '{path}[...].' (the value filter opened at {})",
                self.position(open_at)
            ))
        })?;
        let comparison = self.parse_operation(AttrPath::simple(sub))?;
        // Depth as the canonical text `path[inner and comparison]` counts it: the `and` chain
        // (which continues an `and` chain inside, and puts an `or` in parentheses), and "[...]".
        let inner = depth.saturating_sub(1);
        let chained = match filter {
            Filter::And(..) => inner,
            Filter::Or(..) => inner + 2,
            _ => inner + 1,
        };
        self.check_depth(chained + 1, open_at)?;
        Ok((
            Filter::ValuePath {
                path,
                filter: Box::new(Filter::And(Box::new(filter), Box::new(comparison))),
            },
            chained + 1,
        ))
    }

    /// `attrPath "pr"` or `attrPath op value`, after the path: a space, the operator, the value.
    fn parse_operation(&mut self, path: AttrPath) -> Result<Filter> {
        if !self.skip_ws() {
            return Err(self.expected(&format!("a space and an operator after '{path}'")));
        }
        let op_at = self.pos;
        let word = self.take_while(|c| c.is_ascii_alphabetic());
        if word.is_empty() {
            return Err(self.expected(&format!(
                "an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{path}'"
            )));
        }
        let filter = if word.eq_ignore_ascii_case("pr") {
            Filter::Present(path)
        } else if let Some(op) = compare_op(word) {
            let value = self.parse_value(word)?;
            Filter::Compare { path, op, value }
        } else {
            self.pos = op_at;
            return Err(self.expected(&format!(
                "an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{path}'"
            )));
        };
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(self.error(format!(
                "the {} has more than {MAX_FILTER_TERMS} comparisons (limit reached at {})",
                self.what,
                self.position(op_at)
            )));
        }
        self.expect_delimiter()?;
        Ok(filter)
    }

    /// After a value or `pr`: whitespace, ")", "]" or the end.
    fn expect_delimiter(&self) -> Result<()> {
        match self.peek() {
            None | Some(')' | ']') => Ok(()),
            Some(c) if c.is_whitespace() => Ok(()),
            Some(_) => Err(self.expected("a space, ')', ']' or the end")),
        }
    }

    /// A compValue: JSON string, number, `true`, `false` or `null` (the latter three in any case).
    fn parse_value(&mut self, op: &str) -> Result<Value> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('"') => Ok(Value::String(self.parse_string()?)),
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let token = self.take_while(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'));
                parse_number(token)
                    .map(Value::Number)
                    .ok_or_else(|| self.error(format!("'{token}' at {} is not a valid number", self.position(start))))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let word = self.take_while(|c| c.is_ascii_alphabetic());
                if word.eq_ignore_ascii_case("true") {
                    Ok(Value::Bool(true))
                } else if word.eq_ignore_ascii_case("false") {
                    Ok(Value::Bool(false))
                } else if word.eq_ignore_ascii_case("null") {
                    Ok(Value::Null)
                } else {
                    self.pos = start;
                    Err(self.invalid_value(op))
                }
            }
            _ => Err(self.invalid_value(op)),
        }
    }

    fn invalid_value(&self, op: &str) -> Error {
        self.expected(&format!(
            "a value after '{op}' (a JSON string in double quotes, a number, true, false or null)"
        ))
    }

    /// A JSON string with its escapes; the opening quote is next.
    fn parse_string(&mut self) -> Result<String> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error(format!("the string starting at {} is not closed", self.position(start))));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let escape = self.peek();
                    if let Some(e) = escape {
                        self.pos += e.len_utf8();
                    }
                    match escape {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('/') => out.push('/'),
                        Some('b') => out.push('\u{8}'),
                        Some('f') => out.push('\u{c}'),
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('t') => out.push('\t'),
                        Some('u') => out.push(self.parse_unicode_escape(at)?),
                        _ => {
                            return Err(self.error(format!("invalid escape in the string at {}", self.position(at))));
                        }
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.error(format!(
                        "control character U+{:04X} in the string at {}; write it as an escape",
                        c as u32,
                        self.position(at)
                    )));
                }
                c => out.push(c),
            }
        }
    }

    /// Four hex digits after `\u`, combining a surrogate pair; `at` is the backslash.
    fn parse_unicode_escape(&mut self, at: usize) -> Result<char> {
        let high = self.hex4(at)?;
        let code = match high {
            0xD800..=0xDBFF => {
                if !self.rest().starts_with("\\u") {
                    return Err(self.lone_surrogate(at));
                }
                let low_at = self.pos;
                self.pos += 2;
                let low = self.hex4(low_at)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.lone_surrogate(at));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.lone_surrogate(at)),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.lone_surrogate(at))
    }

    fn hex4(&mut self, at: usize) -> Result<u32> {
        let digits = self
            .rest()
            .get(..4)
            .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()));
        let Some(digits) = digits else {
            return Err(self.error(format!(
                "'\\u' at {} must be followed by four hex digits",
                self.position(at)
            )));
        };
        self.pos += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid hex digits"))
    }

    fn lone_surrogate(&self, at: usize) -> Error {
        self.error(format!(
            "the \\u escape at {} is an unpaired UTF-16 surrogate",
            self.position(at)
        ))
    }
}

/// A JSON number (`-? int frac? exp?`): integers that fit stay integers, others become the
/// correctly rounded `f64`; `None` when malformed or infinite.
fn parse_number(token: &str) -> Option<serde_json::Number> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = token.strip_prefix('-').unwrap_or(token);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let well_formed = digits(int)
        && (int == "0" || !int.starts_with('0'))
        && frac.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !well_formed {
        return None;
    }
    if frac.is_none() && exponent.is_none() {
        if let Ok(n) = token.parse::<u64>() {
            return Some(n.into());
        }
        if let Ok(n) = token.parse::<i64>() {
            return Some(n.into());
        }
    }
    token.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
}

/// Writes `filter`, in parentheses when `wrap`.
fn write_operand(f: &mut fmt::Formatter<'_>, filter: &Filter, wrap: bool) -> fmt::Result {
    if wrap {
        write!(f, "({filter})")
    } else {
        write!(f, "{filter}")
    }
}

/// The canonical text: single spaces, lower-case keywords, JSON literals, and parentheses only
/// where the tree needs them (`and` binds tighter than `or`, both group to the left).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(left, right) => {
                write_operand(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, right, matches!(**right, Filter::And(..) | Filter::Or(..)))
            }
            Filter::Or(left, right) => {
                write_operand(f, left, false)?;
                f.write_str(" or ")?;
                write_operand(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn path(attr: &str) -> AttrPath {
        AttrPath::simple(attr)
    }

    fn sub(attr: &str, sub: &str) -> AttrPath {
        AttrPath {
            urn: None,
            attr: attr.into(),
            sub: Some(sub.into()),
        }
    }

    fn cmp(path: AttrPath, op: CompareOp, value: Value) -> Filter {
        Filter::Compare { path, op, value }
    }

    fn eq(attr: &str, value: Value) -> Filter {
        cmp(path(attr), CompareOp::Eq, value)
    }

    fn pr(attr: &str) -> Filter {
        Filter::Present(path(attr))
    }

    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    fn not(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }

    fn parse(text: &str) -> Filter {
        match parse_filter(text) {
            Ok(f) => f,
            Err(e) => panic!("{text:?} did not parse: {e}"),
        }
    }

    /// The error detail; panics unless it is an invalidFilter.
    fn error(text: &str) -> String {
        match parse_filter(text) {
            Ok(f) => panic!("{text:?} parsed as {f:?}"),
            Err(Error::Scim {
                scim_type: ScimErrorType::InvalidFilter,
                detail,
            }) => detail,
            Err(other) => panic!("{text:?}: unexpected error {other:?}"),
        }
    }

    #[test]
    fn every_operator() {
        for (word, op) in [
            ("eq", CompareOp::Eq),
            ("ne", CompareOp::Ne),
            ("co", CompareOp::Co),
            ("sw", CompareOp::Sw),
            ("ew", CompareOp::Ew),
            ("gt", CompareOp::Gt),
            ("ge", CompareOp::Ge),
            ("lt", CompareOp::Lt),
            ("le", CompareOp::Le),
        ] {
            let expected = cmp(path("userName"), op, json!("bjensen"));
            assert_eq!(parse(&format!("userName {word} \"bjensen\"")), expected);
            assert_eq!(
                parse(&format!("userName {} \"bjensen\"", word.to_uppercase())),
                expected
            );
        }
        assert_eq!(parse("title pr"), pr("title"));
        assert_eq!(parse("title PR"), pr("title"));
        assert_eq!(parse("title Pr"), pr("title"));
    }

    #[test]
    fn literals() {
        assert_eq!(parse("active eq true"), eq("active", json!(true)));
        assert_eq!(parse("active eq TRUE"), eq("active", json!(true)));
        assert_eq!(parse("active eq False"), eq("active", json!(false)));
        assert_eq!(parse("manager eq Null"), eq("manager", Value::Null));
        assert_eq!(parse("n eq 42"), eq("n", json!(42)));
        assert_eq!(parse("n eq -42"), eq("n", json!(-42)));
        assert_eq!(parse("n eq 0"), eq("n", json!(0)));
        assert_eq!(parse("n eq 1.5"), eq("n", json!(1.5)));
        assert_eq!(parse("n eq -1.5e3"), eq("n", json!(-1500.0)));
        assert_eq!(parse("n eq 2E-2"), eq("n", json!(0.02)));
        assert_eq!(parse("n eq 18446744073709551615"), eq("n", json!(u64::MAX)));
        assert_eq!(parse("n ge 5"), cmp(path("n"), CompareOp::Ge, json!(5)));
        // A value may follow the operator without a space and end at a parenthesis.
        assert_eq!(parse("(n eq\"x\")"), eq("n", json!("x")));
    }

    #[test]
    fn string_escapes() {
        assert_eq!(parse(r#"a eq "say \"hi\"""#), eq("a", json!("say \"hi\"")));
        assert_eq!(parse(r#"a eq "back\\slash""#), eq("a", json!("back\\slash")));
        assert_eq!(parse(r#"a eq "a\/b""#), eq("a", json!("a/b")));
        assert_eq!(parse(r#"a eq "\b\f\n\r\t""#), eq("a", json!("\u{8}\u{c}\n\r\t")));
        assert_eq!(parse(r#"a eq "caf\u00e9""#), eq("a", json!("café")));
        assert_eq!(parse(r#"a eq "\uD83D\uDE00""#), eq("a", json!("😀")));
        assert_eq!(parse(r#"a eq "😀 ünïcode""#), eq("a", json!("😀 ünïcode")));
        assert_eq!(parse(r#"a eq """#), eq("a", json!("")));
        assert_eq!(parse(r#"a eq "and or not ) ( ]""#), eq("a", json!("and or not ) ( ]")));
    }

    #[test]
    fn precedence_and_associativity() {
        let (a, b, c) = (pr("a"), pr("b"), pr("c"));
        assert_eq!(parse("a pr or b pr and c pr"), or(a.clone(), and(b.clone(), c.clone())));
        assert_eq!(parse("a pr and b pr or c pr"), or(and(a.clone(), b.clone()), c.clone()));
        assert_eq!(
            parse("a pr and b pr and c pr"),
            and(and(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(parse("a pr or b pr or c pr"), or(or(a.clone(), b.clone()), c.clone()));
        assert_eq!(parse("a pr AND b pr Or c pr"), or(and(a.clone(), b.clone()), c.clone()));
    }

    #[test]
    fn grouping() {
        let (a, b, c) = (pr("a"), pr("b"), pr("c"));
        assert_eq!(
            parse("(a pr or b pr) and c pr"),
            and(or(a.clone(), b.clone()), c.clone())
        );
        assert_eq!(
            parse("a pr and (b pr or c pr)"),
            and(a.clone(), or(b.clone(), c.clone()))
        );
        assert_eq!(parse("a pr or (b pr or c pr)"), or(a.clone(), or(b.clone(), c.clone())));
        assert_eq!(parse("((a pr))"), a.clone());
        assert_eq!(parse("  ( a pr )  "), a.clone());
        assert_eq!(parse("(a pr)and(b pr)"), and(a, b));
    }

    #[test]
    fn negation() {
        assert_eq!(parse("not (a pr)"), not(pr("a")));
        assert_eq!(parse("not(a pr)"), not(pr("a")));
        assert_eq!(parse("NOT  (a pr or b pr)"), not(or(pr("a"), pr("b"))));
        assert_eq!(parse("not (not (a pr))"), not(not(pr("a"))));
        assert_eq!(parse("a pr and not (b pr)"), and(pr("a"), not(pr("b"))));
        // Without "(", `not` is an attribute name.
        assert_eq!(parse("not pr"), pr("not"));
        assert_eq!(parse("and pr and or pr"), and(pr("and"), pr("or")));
        assert!(error("not a pr").contains("operator"));
    }

    #[test]
    fn value_paths() {
        let expected = Filter::ValuePath {
            path: path("emails"),
            filter: Box::new(and(
                eq("type", json!("work")),
                cmp(path("value"), CompareOp::Co, json!("@x")),
            )),
        };
        assert_eq!(parse(r#"emails[type eq "work" and value co "@x"]"#), expected);
        assert_eq!(
            parse(r#"emails[type eq "work"] and userName pr"#),
            and(
                Filter::ValuePath {
                    path: path("emails"),
                    filter: Box::new(eq("type", json!("work")))
                },
                pr("userName")
            )
        );
        assert_eq!(
            parse(r#"members[$ref eq "https://x/Users/1"]"#),
            Filter::ValuePath {
                path: path("members"),
                filter: Box::new(eq("$ref", json!("https://x/Users/1")))
            }
        );
        assert_eq!(
            parse("emails[not (primary eq true)]"),
            Filter::ValuePath {
                path: path("emails"),
                filter: Box::new(not(eq("primary", json!(true))))
            }
        );
    }

    #[test]
    fn sub_attributes_and_urns() {
        assert_eq!(
            parse(r#"name.givenName eq "B""#),
            eq_path(sub("name", "givenName"), json!("B"))
        );
        assert_eq!(parse("members.$ref pr"), Filter::Present(sub("members", "$ref")));
        let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        assert_eq!(
            parse(&format!("{enterprise}:manager.value eq \"26118915\"")),
            eq_path(
                AttrPath {
                    urn: Some(enterprise.into()),
                    attr: "manager".into(),
                    sub: Some("value".into())
                },
                json!("26118915")
            )
        );
        let core = "urn:ietf:params:scim:schemas:core:2.0:User";
        assert_eq!(
            parse(&format!("{core}:userName sw \"J\"")),
            cmp(
                AttrPath {
                    urn: Some(core.into()),
                    attr: "userName".into(),
                    sub: None
                },
                CompareOp::Sw,
                json!("J")
            )
        );
        assert_eq!(
            parse(&format!("{core}:emails[type eq \"work\"]")),
            Filter::ValuePath {
                path: AttrPath {
                    urn: Some(core.into()),
                    attr: "emails".into(),
                    sub: None
                },
                filter: Box::new(eq("type", json!("work")))
            }
        );
        assert_eq!(
            parse(&format!("{enterprise}:employeeNumber pr")),
            Filter::Present(AttrPath {
                urn: Some(enterprise.into()),
                attr: "employeeNumber".into(),
                sub: None
            })
        );
    }

    fn eq_path(path: AttrPath, value: Value) -> Filter {
        cmp(path, CompareOp::Eq, value)
    }

    #[test]
    fn injection_attempts() {
        assert_eq!(
            parse(r#"userName eq "x' OR 1=1 --""#),
            eq("userName", json!("x' OR 1=1 --"))
        );
        assert_eq!(
            parse(r#"userName eq "\"; DROP TABLE users; --""#),
            eq("userName", json!("\"; DROP TABLE users; --"))
        );
        assert!(error("userName eq x' OR 1=1").contains("character 13"));
        assert!(error("userName eq 'x'").contains("value"));
        assert!(error(r#"userName eq "x" OR 1=1"#).contains("attribute path"));
        assert!(error(r#"userName eq "x"; DROP TABLE users"#).contains("a space, ')'"));
    }

    #[test]
    fn syntax_errors_name_position_and_token() {
        assert!(error("").contains("end of the filter"));
        assert!(error("   ").contains("attribute path"));
        let e = error("userName");
        assert!(e.contains("operator") && e.contains("end of the filter"), "{e}");
        let e = error("userName xx \"a\"");
        assert!(e.contains("character 10") && e.contains("\"xx\""), "{e}");
        let e = error("userName eq");
        assert!(e.contains("value after 'eq'"), "{e}");
        let e = error("userName eq \"a\" and");
        assert!(e.contains("end of the filter"), "{e}");
        let e = error("userName eq \"a\" nand b pr");
        assert!(e.contains("'and', 'or'") && e.contains("\"nand\""), "{e}");
        let e = error("(userName pr");
        assert!(
            e.contains("')' (to close the '(' at character 1) at character 13"),
            "{e}"
        );
        let e = error("userName pr)");
        assert!(e.contains("character 12"), "{e}");
        assert!(error("emails[type pr").contains("']' (to close"));
        assert!(error("emails[type pr]]").contains("'and', 'or'"));
        assert!(error("userName eq \"a\"x").contains("a space, ')'"));
        assert!(error("userName pr2").contains("a space, ')'"));
        assert!(error("not (a pr").contains("')' (to close"));
        assert!(error("not ()").contains("attribute path"));
        assert!(error("()").contains("attribute path"));
        assert!(error("and").contains("operator"));
        assert!(error("a pr or or b pr").contains("operator"));
        assert!(error("userNameeq \"x\"").contains("operator"));
    }

    #[test]
    fn literal_errors() {
        assert!(error(r#"a eq "open"#).contains("not closed"));
        assert!(error(r#"a eq "bad \x escape""#).contains("invalid escape"));
        assert!(error(r#"a eq "\u12""#).contains("four hex digits"));
        assert!(error(r#"a eq "\uD83D""#).contains("unpaired"));
        assert!(error(r#"a eq "\uDE00""#).contains("unpaired"));
        assert!(error(r#"a eq "\uD83D\u0041""#).contains("unpaired"));
        assert!(error("a eq \"tab\there\"").contains("control character U+0009"));
        assert!(error("a eq 01").contains("not a valid number"));
        assert!(error("a eq 1.").contains("not a valid number"));
        assert!(error("a eq -").contains("not a valid number"));
        assert!(error("a eq 1e999").contains("not a valid number"));
        assert!(error("a eq 1-2").contains("not a valid number"));
        assert!(error("a eq 1e").contains("not a valid number"));
        assert!(error("a eq .5").contains("value after 'eq'"));
        assert!(error("a eq +5").contains("value after 'eq'"));
        assert!(error("a eq 12abc").contains("a space"));
        assert!(error("a eq yes").contains("\"yes\""));
        assert!(error("a eq [1]").contains("value after 'eq'"));
    }

    #[test]
    fn path_errors() {
        assert!(error("1abc pr").contains("attribute path"));
        assert!(error("_abc pr").contains("attribute path"));
        assert!(error("a.b.c pr").contains("'b.c'"));
        assert!(error("name. pr").contains("sub-attribute"));
        assert!(error("$ref pr").contains("not a valid attribute name"));
        assert!(error("a.$x pr").contains("sub-attribute"));
        assert!(error("urn:x: pr").contains("no attribute name"));
        assert!(error("foo:bar pr").contains("schema URN"));
        assert!(error("urn::x pr").contains("schema URN"));
        assert!(error("emails.value[type pr]").contains("not to a sub-attribute"));
        assert!(error("emails[type[value pr]]").contains("cannot be nested"));
        assert!(error("emails[urn:a:b:type pr]").contains("without a URN"));
        assert!(error("emails[type.x pr]").contains("without '.'"));
    }

    fn nested_parens(levels: usize) -> String {
        format!("{}a pr{}", "(".repeat(levels), ")".repeat(levels))
    }

    #[test]
    fn depth_limit() {
        assert_eq!(parse(&nested_parens(MAX_FILTER_DEPTH)), pr("a"));
        assert!(error(&nested_parens(MAX_FILTER_DEPTH + 1)).contains("nests deeper than 16"));
        // Far beyond the limit: refused early, no stack overflow.
        assert!(error(&"(".repeat(4000)).contains("nests deeper"));
        assert!(error(&"not (".repeat(800)).contains("nests deeper"));
        // A chain is a level: 15 groups around an or-chain is 16, and one more group is 17.
        let chain = |levels: usize| format!("{}a pr or b pr{}", "(".repeat(levels), ")".repeat(levels));
        assert!(parse_filter(&chain(MAX_FILTER_DEPTH - 1)).is_ok());
        assert!(error(&chain(MAX_FILTER_DEPTH)).contains("nests deeper"));
        // or over and is two levels.
        let mixed = |levels: usize| format!("{}a pr or b pr and c pr{}", "(".repeat(levels), ")".repeat(levels));
        assert!(parse_filter(&mixed(MAX_FILTER_DEPTH - 2)).is_ok());
        assert!(error(&mixed(MAX_FILTER_DEPTH - 1)).contains("nests deeper"));
        // not and brackets count.
        let nots = |levels: usize| format!("{}a pr{}", "not (".repeat(levels), ")".repeat(levels));
        assert!(parse_filter(&nots(MAX_FILTER_DEPTH)).is_ok());
        assert!(error(&nots(MAX_FILTER_DEPTH + 1)).contains("nests deeper"));
        let bracket = |levels: usize| format!("{}e[t pr]{}", "(".repeat(levels), ")".repeat(levels));
        assert!(parse_filter(&bracket(MAX_FILTER_DEPTH - 1)).is_ok());
        assert!(error(&bracket(MAX_FILTER_DEPTH)).contains("nests deeper"));
        // A long flat chain is one level.
        let flat = vec!["a pr"; MAX_FILTER_TERMS].join(" or ");
        assert!(parse_filter(&flat).is_ok());
    }

    #[test]
    fn term_limit() {
        let terms = |n: usize| vec!["userName eq \"x\""; n].join(" and ");
        assert!(parse_filter(&terms(MAX_FILTER_TERMS)).is_ok());
        assert!(error(&terms(MAX_FILTER_TERMS + 1)).contains("more than 64 comparisons"));
        let inner = vec!["t pr"; MAX_FILTER_TERMS + 1].join(" or ");
        assert!(error(&format!("emails[{inner}]")).contains("more than 64"));
    }

    #[test]
    fn length_limit() {
        let padding = " ".repeat(MAX_FILTER_LENGTH - "a pr".len());
        assert!(parse_filter(&format!("a pr{padding}")).is_ok());
        assert!(error(&format!("a pr{padding} ")).contains("limit is 4096"));
    }

    #[test]
    fn display_is_canonical() {
        let cases = [
            ("userName EQ \"bjensen\"", "userName eq \"bjensen\""),
            ("a pr or b pr and c pr", "a pr or b pr and c pr"),
            ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
            ("a pr and (b pr and c pr)", "a pr and (b pr and c pr)"),
            ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
            ("(a pr or b pr) or c pr", "a pr or b pr or c pr"),
            ("not(a pr)", "not (a pr)"),
            ("a eq \"x\\/y\\u00e9\\n\"", "a eq \"x/yé\\n\""),
            (
                "emails[type eq \"work\" AND primary eq True]",
                "emails[type eq \"work\" and primary eq true]",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq null",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq null",
            ),
            ("n gt 1.5e3", "n gt 1500.0"),
        ];
        for (input, canonical) in cases {
            let parsed = parse(input);
            assert_eq!(parsed.to_string(), canonical);
            assert_eq!(parse(canonical), parsed);
        }
    }

    fn value_path(attr: &str, filter: Filter) -> Filter {
        Filter::ValuePath {
            path: path(attr),
            filter: Box::new(filter),
        }
    }

    #[test]
    fn entra_sub_attribute_after_a_value_filter() {
        let work = || eq("type", json!("work"));
        assert_eq!(
            parse(r#"emails[type eq "work"].value eq "someone@example.com""#),
            value_path("emails", and(work(), eq("value", json!("someone@example.com"))))
        );
        assert_eq!(
            parse(r#"emails[type eq "work"].value eq "someone@example.com""#),
            parse(r#"emails[type eq "work" and value eq "someone@example.com"]"#)
        );
        assert_eq!(
            parse(r#"addresses[type eq "work"].locality EQ "x""#),
            value_path("addresses", and(work(), eq("locality", json!("x"))))
        );
        for op in ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"] {
            let op_ = compare_op(op).map_or(CompareOp::Eq, |o| o);
            assert_eq!(
                parse(&format!(r#"phoneNumbers[type eq "work"].value {op} "+1""#)),
                value_path("phoneNumbers", and(work(), cmp(path("value"), op_, json!("+1")))),
                "{op}"
            );
        }
        assert_eq!(
            parse(r#"emails[type eq "work"].value pr"#),
            value_path("emails", and(work(), pr("value")))
        );
        assert_eq!(
            parse(r#"members[type eq "User"].$ref eq "https://x/Users/1""#),
            value_path(
                "members",
                and(eq("type", json!("User")), eq("$ref", json!("https://x/Users/1")))
            )
        );
        // An `or` inside stays together; an `and` chain inside continues.
        assert_eq!(
            parse(r#"emails[type eq "work" or type eq "home"].value ew ".org""#),
            parse(r#"emails[(type eq "work" or type eq "home") and value ew ".org"]"#)
        );
        assert_eq!(
            parse(r#"emails[type eq "work" and primary eq true].value sw "a""#),
            parse(r#"emails[type eq "work" and primary eq true and value sw "a"]"#)
        );
        // It combines with the rest of a filter like any value path.
        assert_eq!(
            parse(r#"emails[type eq "work"].value eq "a" or not (userName pr) and x pr"#),
            or(
                value_path("emails", and(work(), eq("value", json!("a")))),
                and(not(pr("userName")), pr("x"))
            )
        );
        assert_eq!(
            parse(r#"(emails[type eq "work"].value eq "a")"#),
            value_path("emails", and(work(), eq("value", json!("a"))))
        );
        assert_eq!(
            parse(&format!(
                r#"{}:emails[type eq "work"].value eq "a""#,
                "urn:ietf:params:scim:schemas:core:2.0:User"
            )),
            Filter::ValuePath {
                path: AttrPath {
                    urn: Some("urn:ietf:params:scim:schemas:core:2.0:User".into()),
                    attr: "emails".into(),
                    sub: None,
                },
                filter: Box::new(and(work(), eq("value", json!("a")))),
            }
        );
        // The canonical text is the standard form.
        assert_eq!(
            parse(r#"emails[type eq "work"].value eq "a""#).to_string(),
            r#"emails[type eq "work" and value eq "a"]"#
        );
    }

    #[test]
    fn malformed_entra_forms_are_refused() {
        let cases = [
            (r#"emails[type eq "work"]."#, "sub-attribute name"),
            (r#"emails[type eq "work"]. value eq "a""#, "sub-attribute name"),
            (r#"emails[type eq "work"].value"#, "operator"),
            (r#"emails[type eq "work"].value eq"#, "value after 'eq'"),
            (r#"emails[type eq "work"].value eqq "a""#, "operator"),
            (r#"emails[type eq "work"].value.display eq "a""#, "sub-attribute name"),
            (r#"emails[type eq "work"].urn:x:value eq "a""#, "sub-attribute name"),
            (r#"emails[type eq "work"].9value eq "a""#, "sub-attribute name"),
            (r#"emails[type eq "work"].value[type eq "x"]"#, "operator"),
            (r#"emails[type eq "work"].value eq "a"x"#, "a space"),
            (r#"emails[type eq "work"].value eq "a"]"#, "the end"),
            (r#"emails[type eq "work"] .value eq "a""#, "'and', 'or'"),
            (r#"emails.value[type eq "work"].value eq "a""#, "not to a sub-attribute"),
            (r#"emails[type eq "work"].value eq "a".display eq "b""#, "a space"),
            (r#"emails[x[type eq "work"].value eq "a"]"#, "cannot be nested"),
        ];
        for (input, fragment) in cases {
            let message = error(input);
            assert!(message.contains(fragment), "{input:?}: {message}");
        }
    }

    #[test]
    fn entra_forms_count_towards_the_limits() {
        // The trailing comparison is a term.
        let terms = (0..MAX_FILTER_TERMS - 1)
            .map(|i| format!("t{i} pr"))
            .collect::<Vec<_>>()
            .join(" and ");
        assert!(parse_filter(&format!("{terms} and emails[type pr].value pr")).is_err());
        assert!(parse_filter(&format!("{terms} and emails[type pr]")).is_ok());
        // The `and` it adds is a level, and an `or` inside is parenthesised: one more.
        let nested = |levels: usize, inner: &str, tail: &str| {
            format!("{}emails[{inner}]{tail}{}", "(".repeat(levels), ")".repeat(levels))
        };
        let deepest = MAX_FILTER_DEPTH - 2;
        assert!(parse_filter(&nested(deepest, "a pr or b pr", "")).is_ok());
        assert!(parse_filter(&nested(deepest, "a pr or b pr", ".c pr")).is_err());
        assert!(parse_filter(&nested(deepest - 1, "a pr or b pr", ".c pr")).is_err());
        assert!(parse_filter(&nested(deepest - 2, "a pr or b pr", ".c pr")).is_ok());
        assert!(parse_filter(&nested(deepest + 1, "a pr", ".c pr")).is_err());
        for (levels, inner) in [
            (deepest, "a pr"),
            (deepest - 1, "a pr and b pr"),
            (deepest - 2, "a pr or b pr"),
        ] {
            let filter = parse(&nested(levels, inner, ".c pr"));
            // What is accepted prints as text that is accepted too.
            assert_eq!(parse(&filter.to_string()), filter, "{levels} {inner}");
        }
    }

    // ---- properties ----

    fn arb_name() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9_-]{0,8}"
    }

    fn arb_urn() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("urn:ietf:params:scim:schemas:core:2.0:User".to_owned()),
            Just("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".to_owned()),
            "[uU][rR][nN](:[a-zA-Z0-9._-]{1,6}){1,4}",
        ]
    }

    fn arb_path() -> impl Strategy<Value = AttrPath> {
        (
            proptest::option::of(arb_urn()),
            arb_name(),
            proptest::option::of(prop_oneof![arb_name(), Just("$ref".to_owned())]),
        )
            .prop_map(|(urn, attr, sub)| AttrPath { urn, attr, sub })
    }

    fn arb_relative_path() -> impl Strategy<Value = AttrPath> {
        prop_oneof![arb_name(), Just("$ref".to_owned())].prop_map(AttrPath::simple)
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            ".{0,12}".prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ]
    }

    fn arb_op() -> impl Strategy<Value = CompareOp> {
        prop_oneof![
            Just(CompareOp::Eq),
            Just(CompareOp::Ne),
            Just(CompareOp::Co),
            Just(CompareOp::Sw),
            Just(CompareOp::Ew),
            Just(CompareOp::Gt),
            Just(CompareOp::Ge),
            Just(CompareOp::Lt),
            Just(CompareOp::Le),
        ]
    }

    fn arb_tree(leaf: BoxedStrategy<Filter>, depth: u32) -> BoxedStrategy<Filter> {
        leaf.prop_recursive(depth, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        })
        .boxed()
    }

    fn arb_leaf(path: BoxedStrategy<AttrPath>) -> BoxedStrategy<Filter> {
        prop_oneof![
            (path.clone(), arb_op(), arb_value()).prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
            path.prop_map(Filter::Present),
        ]
        .boxed()
    }

    fn arb_filter() -> BoxedStrategy<Filter> {
        let element = arb_tree(arb_leaf(arb_relative_path().boxed()), 2);
        let value_path = (arb_path(), element).prop_map(|(mut path, filter)| {
            path.sub = None;
            Filter::ValuePath {
                path,
                filter: Box::new(filter),
            }
        });
        let leaf = prop_oneof![3 => arb_leaf(arb_path().boxed()), 1 => value_path].boxed();
        arb_tree(leaf, 3)
    }

    /// Filter-like token soup, to reach deeper into the parser than random text does.
    fn arb_soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("("),
            Just(")"),
            Just("["),
            Just("]"),
            Just(" "),
            Just("not"),
            Just("and"),
            Just("or"),
            Just("eq"),
            Just("pr"),
            Just("\"x\""),
            Just("\"\\u"),
            Just("\\"),
            Just("\""),
            Just("-1.5e"),
            Just("userName"),
            Just("emails"),
            Just("."),
            Just(":"),
            Just("$ref"),
            Just("urn:a:2.0:b"),
            Just("é"),
        ];
        proptest::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
    }

    proptest! {
        #[test]
        fn entra_form_is_the_value_filter_and_the_comparison(
            mut path in arb_path(),
            element in arb_tree(arb_leaf(arb_relative_path().boxed()), 2),
            comparison in arb_leaf(arb_relative_path().boxed()),
        ) {
            path.sub = None;
            let text = format!("{path}[{element}].{comparison}");
            prop_assume!(text.len() <= MAX_FILTER_LENGTH);
            let expected = Filter::ValuePath {
                path,
                filter: Box::new(Filter::And(Box::new(element), Box::new(comparison))),
            };
            let parsed = parse_filter(&text);
            prop_assert!(parsed.is_ok(), "{text:?}: {:?}", parsed);
            prop_assert_eq!(parsed.ok(), Some(expected.clone()));
            prop_assert_eq!(parse_filter(&expected.to_string()).ok(), Some(expected));
        }

        #[test]
        fn display_round_trips(filter in arb_filter()) {
            let text = filter.to_string();
            prop_assume!(text.len() <= MAX_FILTER_LENGTH);
            let parsed = parse_filter(&text);
            prop_assert!(parsed.is_ok(), "{text:?}: {:?}", parsed);
            prop_assert_eq!(parsed.ok(), Some(filter));
        }

        #[test]
        fn never_panics_on_text(text in ".{0,200}") {
            let _ = parse_filter(&text);
        }

        #[test]
        fn never_panics_on_soup(text in arb_soup()) {
            if let Ok(filter) = parse_filter(&text) {
                let again = filter.to_string();
                if again.len() <= MAX_FILTER_LENGTH {
                    prop_assert_eq!(parse_filter(&again).ok(), Some(filter));
                }
            }
        }
    }
}
