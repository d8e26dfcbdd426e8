//! sigmarrow-core: Sigma rules, compiled by the Python front end into a [`Program`], matched
//! over Apache Arrow record batches.
//!
//! ```
//! use sigmarrow_core::Matcher;
//! let program = r#"{"format": "sigmarrow.program", "version": 1, "fields": ["Image"],
//!   "atoms": [{"op": "str", "field": 0, "anchor": "suffix", "value": "\\cloudflared.exe", "cased": false}],
//!   "rules": [{"id": "r1", "title": "Cloudflared", "level": "medium", "status": null, "tags": [],
//!              "logsource": {"product": "windows"}, "source": null, "author": null,
//!              "description": null, "fields": [0], "condition": {"atom": 0}}],
//!   "errors": [], "has_keywords": false}"#;
//! let matcher = Matcher::from_json(program, Default::default()).unwrap();
//! # let _ = matcher;
//! ```
//!
//! Design: every atom on a field lives in that field's table (`table.rs`); string
//! literals of all rules are deduplicated into one automaton per field and case mode. A
//! batch is cut into chunks of rows; each chunk computes a bit set per atom that hit, then
//! each rule's boolean program runs over those bit sets. The [`Matcher`] is immutable;
//! per-thread scratch space is explicit (and pooled). The shortcuts (needed sets, triggers,
//! lazy atoms, anchored tables, the value memo) are described in `docs/engine.md`.

mod casefold;
#[allow(clippy::all)]
mod casefold_table;
mod column;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod matcher;
mod plan;
pub mod program;
mod regex;
mod scratch;
mod table;
mod threads;

pub use casefold::fold;
pub use column::epoch_time;
pub use error::{Error, Result};
pub use matcher::{Hit, Matcher, Options};
pub use plan::RulePlan;
pub use program::{AtomId, FieldId, Program, RuleId};
pub use regex::check_triggers;
