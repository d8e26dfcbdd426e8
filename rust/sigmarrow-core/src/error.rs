//! The one error type of the core; the binding maps it to Python exceptions.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The compiled program is malformed or of another version.
    #[error("invalid program: {0}")]
    Program(String),
    /// A column a rule needs has a type the engine cannot read.
    #[error("column {column:?} has type {data_type}, which sigmarrow cannot match against (supported: strings, dictionary-encoded strings, integers, floats, booleans, timestamps, dates)")]
    UnsupportedType { column: String, data_type: String },
}

pub type Result<T> = std::result::Result<T, Error>;
