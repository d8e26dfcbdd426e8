//! The compiled program: the versioned, serializable description of matcher atoms and rule
//! conditions that the Python compiler emits (`sigmarrow/program.py` documents
//! every node). The engine validates it once, when a [`crate::Matcher`] is built.

use serde::Deserialize;

use crate::error::{Error, Result};

pub const FORMAT: &str = "sigmarrow.program";
pub const VERSION: u32 = 1;

/// Index of a field in [`Program::fields`].
pub type FieldId = u32;
/// Index of an atom in [`Program::atoms`].
pub type AtomId = u32;

#[derive(Debug, Deserialize)]
pub struct Program {
    pub format: String,
    pub version: u32,
    pub fields: Vec<String>,
    pub atoms: Vec<Atom>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
pub struct Rule {
    pub id: String,
    pub condition: Expr,
}

/// A rule's boolean program over atoms.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
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

impl Program {
    pub fn from_json(text: &str) -> Result<Program> {
        let program: Program =
            serde_json::from_str(text).map_err(|e| Error::Program(e.to_string()))?;
        program.validate()?;
        Ok(program)
    }

    fn validate(&self) -> Result<()> {
        if self.format != FORMAT || self.version != VERSION {
            return Err(Error::Program(format!(
                "expected {FORMAT} version {VERSION}, got {} version {}",
                self.format, self.version
            )));
        }
        let nfields = self.fields.len() as u32;
        for (i, atom) in self.atoms.iter().enumerate() {
            let other = match atom {
                Atom::FieldRef { other, .. } => Some(*other),
                _ => None,
            };
            for f in atom.field().into_iter().chain(other) {
                if f >= nfields {
                    return Err(Error::Program(format!("atom {i} names field {f}, out of range")));
                }
            }
        }
        for rule in &self.rules {
            check_expr(&rule.condition, self.atoms.len() as u32)
                .map_err(|e| Error::Program(format!("rule {}: {e}", rule.id)))?;
        }
        Ok(())
    }
}

fn check_expr(expr: &Expr, natoms: u32) -> std::result::Result<(), String> {
    match expr {
        Expr::And(xs) | Expr::Or(xs) => xs.iter().try_for_each(|x| check_expr(x, natoms)),
        Expr::Not(x) => check_expr(x, natoms),
        Expr::Atom(a) if *a >= natoms => Err(format!("atom {a} out of range")),
        Expr::Atom(_) | Expr::Const(_) => Ok(()),
    }
}
