//! The compiled program: the versioned, serializable description of matcher atoms and rule
//! conditions that the Python compiler emits (`sigmarrow/program.py` documents
//! every node). The engine validates it once, when a [`crate::Matcher`] is built.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::table::Network;

pub const FORMAT: &str = "sigmarrow.program";
pub const VERSION: u32 = 1;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(transparent)]
        #[repr(transparent)]
        pub struct $name(pub(crate) u32);

        impl $name {
            pub fn new(id: u32) -> $name {
                $name(id)
            }

            pub fn as_u32(self) -> u32 {
                self.0
            }

            /// The id as an index into the program's list.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

id!(
    /// Index of a field in [`Program::fields`].
    FieldId
);
id!(
    /// Index of an atom in [`Program::atoms`].
    AtomId
);
id!(
    /// Index of a rule in [`Program::rules`]; hits name rules by it.
    RuleId
);

/// The whole program as `sigmarrow/program.py` writes it. The engine reads `fields`, `atoms`
/// and the rules' conditions; the rest is read by the Python side, which relies on the
/// check made here (a program file is data from outside).
#[derive(Debug, Deserialize)]
pub struct Program {
    pub format: String,
    pub version: u32,
    pub fields: Vec<String>,
    pub atoms: Vec<Atom>,
    pub rules: Vec<Rule>,
    /// The rules that did not compile.
    pub errors: Vec<RuleError>,
    /// Whether some atom is a keyword atom (checked against the atoms).
    pub has_keywords: bool,
}

/// Required, but possibly null (a bare `Option` field may be missing).
fn nullable<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    Option::deserialize(d)
}

#[derive(Debug, Deserialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    #[serde(deserialize_with = "nullable")]
    pub level: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub status: Option<String>,
    pub tags: Vec<String>,
    pub logsource: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub source: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub author: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub description: Option<String>,
    /// The fields the rule reads.
    pub fields: Vec<FieldId>,
    /// [`Error::TooDeep`] for a condition nested deeper than [`MAX_DEPTH`]: the rule is
    /// disabled, the others run.
    #[serde(deserialize_with = "condition")]
    pub condition: std::result::Result<Expr, Error>,
}

/// A rule (or rule file) that did not compile: `sigmarrow.RuleError`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleError {
    #[serde(deserialize_with = "nullable")]
    pub source: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub rule_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub title: Option<String>,
    pub reason: String,
}

/// Conditions nested deeper than this (each `and`, `or` and `not` is a level) disable
/// their rule; deeper than [`MAX_JSON_DEPTH`], they make the program malformed (the
/// Python side could not read it safely). `docs/limits.md` lists both.
pub const MAX_DEPTH: usize = 128;
pub const MAX_JSON_DEPTH: usize = 1000;

/// A rule's boolean program over atoms.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Atom(AtomId),
    Const(bool),
}

/// How a literal must sit in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anchor {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

impl Anchor {
    /// Whether `literal` sits in `text` as this anchor requires.
    pub fn holds(self, text: &[u8], literal: &[u8]) -> bool {
        match self {
            Anchor::Exact => text == literal,
            Anchor::Prefix => text.starts_with(literal),
            Anchor::Suffix => text.ends_with(literal),
            Anchor::Contains => memchr::memmem::find(text, literal).is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GlobToken {
    Lit(String),
    /// `*`: any run of characters.
    Many,
    /// `?`: exactly one character.
    One,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// A number as the rule wrote it: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Float(f64),
}

/// One test of one field (or of the keyword columns when `field` is `None`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Atom {
    Str { field: Option<FieldId>, anchor: Anchor, value: String, cased: bool },
    Glob { field: Option<FieldId>, parts: Vec<GlobToken>, cased: bool },
    Re { field: Option<FieldId>, pattern: String, flags: String },
    Cidr { field: FieldId, network: String },
    Num { field: FieldId, cmp: Cmp, value: Number },
    Bool { field: FieldId, value: bool },
    Null { field: FieldId },
    Exists { field: FieldId },
    FieldRef { field: FieldId, other: FieldId, anchor: Anchor },
    Time { field: FieldId, part: TimePart, cmp: Cmp, value: i64 },
}

impl Atom {
    /// The field tested, `None` for keyword atoms.
    pub fn field(&self) -> Option<FieldId> {
        match self {
            Atom::Str { field, .. } | Atom::Glob { field, .. } | Atom::Re { field, .. } => *field,
            Atom::Cidr { field, .. }
            | Atom::Num { field, .. }
            | Atom::Bool { field, .. }
            | Atom::Null { field }
            | Atom::Exists { field }
            | Atom::FieldRef { field, .. }
            | Atom::Time { field, .. } => Some(*field),
        }
    }
}

/// A rule's condition, kept as raw text by the program's parser (which skips it without
/// recursion), then read on its own, with no recursion limit but its own depth limit.
fn condition<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<std::result::Result<Expr, Error>, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    let mut json = serde_json::Deserializer::from_str(raw.get());
    json.disable_recursion_limit();
    let mut track = serde_path_to_error::Track::new();
    let parsed = ExprSeed { depth: 1 }
        .deserialize(serde_path_to_error::Deserializer::new(&mut json, &mut track));
    let expr = parsed.map_err(|e| {
        // The position is within the condition's text: left out.
        let reason = e.to_string();
        let reason = reason
            .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
            .unwrap_or(&reason);
        match track.path().to_string().trim_start_matches('.') {
            "" => D::Error::custom(reason),
            path if path.len() > SHOWN_PATH => {
                D::Error::custom(format!("{}...: {reason}", &path[..SHOWN_PATH]))
            }
            path => D::Error::custom(format!("{path}: {reason}")),
        }
    })?;
    Ok(if depth(&expr) > MAX_DEPTH { Err(Error::TooDeep { limit: MAX_DEPTH }) } else { Ok(expr) })
}

/// Bytes of the path into a condition shown in an error, at most.
const SHOWN_PATH: usize = 60;

fn depth(expr: &Expr) -> usize {
    match expr {
        Expr::And(xs) | Expr::Or(xs) => 1 + xs.iter().map(depth).max().unwrap_or(0),
        Expr::Not(x) => 1 + depth(x),
        Expr::Atom(_) | Expr::Const(_) => 1,
    }
}

/// Reads one expression at nesting level `depth`.
#[derive(Clone, Copy)]
struct ExprSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ExprSeed {
    type Value = Expr;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Expr, D::Error> {
        if self.depth > MAX_JSON_DEPTH {
            return Err(D::Error::custom(format!("nested deeper than {MAX_JSON_DEPTH} levels")));
        }
        deserializer.deserialize_map(self)
    }
}

const EXPRESSIONS: &[&str] = &["and", "or", "not", "atom", "const"];

impl<'de> Visitor<'de> for ExprSeed {
    type Value = Expr;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an expression of one key: and, or, not, atom or const")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Expr, A::Error> {
        let child = ExprSeed { depth: self.depth + 1 };
        let Some(key) = map.next_key::<String>()? else {
            return Err(A::Error::invalid_length(0, &self));
        };
        let expr = match key.as_str() {
            "and" => Expr::And(map.next_value_seed(ExprsSeed(child))?),
            "or" => Expr::Or(map.next_value_seed(ExprsSeed(child))?),
            "not" => Expr::Not(Box::new(map.next_value_seed(child)?)),
            "atom" => Expr::Atom(map.next_value()?),
            "const" => Expr::Const(map.next_value()?),
            other => return Err(A::Error::unknown_field(other, EXPRESSIONS)),
        };
        match map.next_key::<String>()? {
            Some(other) => {
                Err(A::Error::custom(format!("a second key {other:?} in one expression")))
            }
            None => Ok(expr),
        }
    }
}

/// Reads the list of expressions of an `and` or `or`.
struct ExprsSeed(ExprSeed);

impl<'de> DeserializeSeed<'de> for ExprsSeed {
    type Value = Vec<Expr>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Vec<Expr>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ExprsSeed {
    type Value = Vec<Expr>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of expressions")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Vec<Expr>, A::Error> {
        let mut exprs = Vec::new();
        while let Some(expr) = seq.next_element_seed(self.0)? {
            exprs.push(expr);
        }
        Ok(exprs)
    }
}

impl Program {
    pub fn from_json(text: &str) -> Result<Program> {
        let mut json = serde_json::Deserializer::from_str(text);
        let program: Program = serde_path_to_error::deserialize(&mut json).map_err(|e| {
            // The whole text is the path ".".
            let path = e.path().to_string().trim_start_matches('.').to_string();
            Error::malformed(path, e.into_inner().to_string())
        })?;
        program.validate()?;
        Ok(program)
    }

    fn validate(&self) -> Result<()> {
        if self.format != FORMAT || self.version != VERSION {
            return Err(Error::Version { format: self.format.clone(), version: self.version });
        }
        let nfields = self.fields.len();
        let field_out_of_range = |path: String, f: FieldId| {
            let reason = format!("field {} out of range ({nfields} fields)", f.0);
            (f.index() >= nfields).then(|| Error::malformed(path, reason))
        };
        for (i, atom) in self.atoms.iter().enumerate() {
            let other = match atom {
                Atom::FieldRef { other, .. } => Some(*other),
                _ => None,
            };
            if let Some(e) = atom
                .field()
                .into_iter()
                .chain(other)
                .find_map(|f| field_out_of_range(format!("atoms[{i}]"), f))
            {
                return Err(e);
            }
            match atom {
                Atom::Re { flags, .. } if !flags.chars().all(|c| "ims".contains(c)) => {
                    let reason = format!("flags {flags:?} are not a subset of \"ims\"");
                    return Err(Error::malformed(format!("atoms[{i}].flags"), reason));
                }
                Atom::Cidr { network, .. } if Network::parse(network).is_none() => {
                    let reason = format!("{network:?} is not an IP network");
                    return Err(Error::malformed(format!("atoms[{i}].network"), reason));
                }
                Atom::Str { field: None, .. }
                | Atom::Glob { field: None, .. }
                | Atom::Re { field: None, .. }
                    if !self.has_keywords =>
                {
                    let reason = format!("is false, but atoms[{i}] is a keyword atom");
                    return Err(Error::malformed("has_keywords", reason));
                }
                _ => {}
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(e) = rule
                .fields
                .iter()
                .find_map(|&f| field_out_of_range(format!("rules[{i}].fields"), f))
            {
                return Err(e);
            }
            let Ok(condition) = &rule.condition else { continue };
            check_expr(condition, self.atoms.len())
                .map_err(|reason| Error::malformed(format!("rules[{i}].condition"), reason))?;
        }
        Ok(())
    }
}

fn check_expr(expr: &Expr, natoms: usize) -> std::result::Result<(), String> {
    match expr {
        Expr::And(xs) | Expr::Or(xs) => xs.iter().try_for_each(|x| check_expr(x, natoms)),
        Expr::Not(x) => check_expr(x, natoms),
        Expr::Atom(a) if a.index() >= natoms => {
            Err(format!("atom {} out of range ({natoms} atoms)", a.0))
        }
        Expr::Atom(_) | Expr::Const(_) => Ok(()),
    }
}

/// A complete program of `fields` and `atoms` (JSON texts) and one rule per condition, for
/// tests and fuzzing.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn test_program(fields: &str, atoms: &str, conditions: &[&str]) -> String {
    let rules: Vec<String> = (conditions.iter().enumerate())
        .map(|(i, c)| {
            format!(
                r#"{{"id": "r{i}", "title": "rule {i}", "level": null, "status": null, "tags": [],
                    "logsource": {{}}, "source": null, "author": null, "description": null,
                    "fields": [], "condition": {c}}}"#
            )
        })
        .collect();
    let has_keywords = atoms.contains(r#""field": null"#);
    format!(
        r#"{{"format": "sigmarrow.program", "version": 1, "fields": {fields}, "atoms": {atoms},
            "rules": [{}], "errors": [], "has_keywords": {has_keywords}}}"#,
        rules.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        Program::from_json(json).unwrap_err().to_string()
    }

    const ATOM: &str =
        r#"{"op": "str", "field": 0, "anchor": "exact", "value": "x", "cased": false}"#;

    #[test]
    fn malformed_programs_name_the_node() {
        let cases = [
            (test_program(r#"["A"]"#, r#"[{"op": "str"}]"#, &[]), "at atoms[0]: missing field"),
            (
                test_program(r#"["A"]"#, &format!("[{ATOM}]"), &[r#"{"or": [{"atom": 1}]}"#]),
                "at rules[0].condition: atom 1 out of range (1 atoms)",
            ),
            (
                test_program(r#"["A"]"#, &format!("[{ATOM}]"), &[r#"{"atom": "x"}"#]),
                "at rules[0].condition: atom: invalid type: string \"x\", expected u32",
            ),
            (
                test_program(r#"["A"]"#, &format!("[{ATOM}]"), &[r#"{"atom": 0}"#])
                    .replace(r#""fields": []"#, r#""fields": [1]"#),
                "at rules[0].fields: field 1 out of range (1 fields)",
            ),
            (
                test_program(r#"["A"]"#, &format!("[{ATOM}]"), &[r#"{"atom": 0}"#])
                    .replace(r#""level": null, "#, ""),
                "at rules[0]: missing field `level`",
            ),
            (
                test_program(r#"["A"]"#, &format!("[{ATOM}]"), &[])
                    .replace(r#""errors": []"#, r#""errors": [{"reason": "x", "line": 1}]"#),
                "at errors[0].line: unknown field `line`",
            ),
            (
                test_program(
                    r#"["A"]"#,
                    r#"[{"op": "re", "field": null, "pattern": "x", "flags": "iu"}]"#,
                    &[],
                ),
                r#"at atoms[0].flags: flags "iu" are not a subset of "ims""#,
            ),
            (
                test_program(
                    "[]",
                    r#"[{"op": "glob", "field": null, "parts": ["many"], "cased": false}]"#,
                    &[],
                )
                .replace(r#""has_keywords": true"#, r#""has_keywords": false"#),
                "at has_keywords: is false, but atoms[0] is a keyword atom",
            ),
            ("[]".to_string(), "invalid program: invalid length 0"),
        ];
        for (json, want) in cases {
            let got = error(&json);
            assert!(got.contains(want), "{got:?} lacks {want:?}");
        }
        let other =
            error(&test_program("[]", "[]", &[]).replace(r#""version": 1"#, r#""version": 2"#));
        assert_eq!(
            other,
            r#"expected a sigmarrow.program of version 1, got "sigmarrow.program" version 2"#
        );
    }

    #[test]
    fn a_condition_too_deep_disables_its_rule_and_one_far_too_deep_is_malformed() {
        let program = |n: usize| {
            let condition = format!("{}{{\"atom\": 0}}{}", r#"{"not": "#.repeat(n), "}".repeat(n));
            test_program(r#"["A"]"#, r#"[{"op": "null", "field": 0}]"#, &[&condition])
        };
        let condition = |n| Program::from_json(&program(n)).unwrap().rules.remove(0).condition;
        assert!(condition(MAX_DEPTH - 1).is_ok());
        assert!(matches!(condition(MAX_DEPTH), Err(Error::TooDeep { limit: MAX_DEPTH })));
        // Read on the 2 MiB stack of a test thread.
        assert!(matches!(condition(MAX_JSON_DEPTH - 1), Err(Error::TooDeep { .. })));
        let far_too_deep = error(&program(1_000_000));
        assert!(far_too_deep.starts_with("invalid program at rules[0].condition: not.not."));
        assert!(far_too_deep.contains("...: nested deeper than 1000 levels"), "{far_too_deep}");
    }
}
