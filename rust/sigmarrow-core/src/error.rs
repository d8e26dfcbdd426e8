//! The one error type of the core; the binding maps each variant to a Python exception of
//! `sigmarrow.errors` in one place.

use thiserror::Error;

use crate::program::{FORMAT, VERSION};

#[derive(Clone, Debug, Error)]
pub enum Error {
    /// The program's JSON does not parse, or a node of it is wrong; `path` names the node
    /// (`rules[3].condition`), empty for the whole text.
    #[error("invalid program{}: {reason}", if path.is_empty() { String::new() } else { format!(" at {path}") })]
    Malformed { path: String, reason: String },
    /// A program of another format or version.
    #[error("expected a {FORMAT} of version {VERSION}, got {format:?} version {version}")]
    Version { format: String, version: u32 },
    /// A regex atom the engine cannot compile: the rules using it are disabled.
    #[error("regex '{}' does not compile: {reason}", shortened(pattern))]
    Regex { pattern: String, reason: String },
    /// A condition nested deeper than the engine runs: the rule is disabled.
    #[error("its condition is nested deeper than {limit} levels (and, or, not)")]
    TooDeep { limit: usize },
    /// A column a rule needs has a type the engine cannot read.
    #[error("column {column:?} has type {data_type}, which sigmarrow cannot match against (supported: strings, dictionary-encoded strings, integers, floats, booleans, timestamps, dates)")]
    UnsupportedType { column: String, data_type: String },
    /// A string column a rule reads holds a value that is not UTF-8 (shown escaped).
    #[error("column {column:?} holds a value that is not UTF-8: \"{value}\"")]
    InvalidUtf8 { column: String, value: String },
    /// A column whose Arrow layout is broken (data from the C interface arrives unchecked).
    #[error("column {column:?} is not valid Arrow data: {reason}")]
    InvalidColumn { column: String, reason: String },
    /// The threads a match asked for could not be started.
    #[error("cannot start {threads} threads: {reason}")]
    Threads { threads: usize, reason: String },
}

impl Error {
    pub(crate) fn malformed(path: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Malformed { path: path.into(), reason: reason.into() }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The longest pattern an error message quotes whole.
const QUOTED_PATTERN_CHARS: usize = 200;

/// A pattern as an error quotes it: a megabyte regex must not become a megabyte message.
fn shortened(pattern: &str) -> String {
    match pattern.char_indices().nth(QUOTED_PATTERN_CHARS) {
        None => pattern.to_owned(),
        Some((end, _)) => {
            let total = pattern.chars().count();
            format!("{}... ({total} characters)", &pattern[..end])
        }
    }
}
