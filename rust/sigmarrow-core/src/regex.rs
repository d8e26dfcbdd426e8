//! Globs and regexes: compiled once per atom into a *check* (a `regex-automata` meta regex),
//! and their trigger literals, at least one of which (case-folded) every matching value
//! holds. The prefilter contract: a trigger may fire for a value the check then rejects,
//! but a value the check accepts always fires one. A check without triggers runs on every
//! value.

use regex_automata::meta;
use regex_syntax::hir::Hir;

use crate::casefold::fold;
use crate::error::{Error, Result};
use crate::program::{Atom, GlobToken};

/// A glob or regex atom compiled: its regex, whether the regex runs on the folded value
/// (case-insensitive globs) rather than the value as it is, and its trigger literals.
pub(crate) struct CompiledCheck {
    pub regex: meta::Regex,
    pub on_folded: bool,
    pub triggers: Vec<String>,
}

/// Compiles a glob or regex atom, parsing its pattern once; `None` for other atoms. A regex
/// that does not compile is [`Error::Regex`], worded as the `regex` crate words it.
pub(crate) fn compile_check(atom: &Atom) -> Option<Result<CompiledCheck>> {
    let (pattern, flags, on_folded) = match atom {
        Atom::Glob { parts, cased, .. } => (glob_check(parts, *cased).0, "", !cased),
        Atom::Re { pattern, flags, .. } => (pattern.clone(), flags.as_str(), false),
        _ => return None,
    };
    let failed = |reason: String| Error::Regex { pattern: pattern.clone(), reason };
    let compile = || {
        let hir = parse(&pattern, flags).map_err(failed)?;
        let triggers = match atom {
            Atom::Glob { parts, cased, .. } => glob_check(parts, *cased).1.into_iter().collect(),
            _ => hir_triggers(&hir).unwrap_or_default(),
        };
        let regex =
            // No bounded backtracker: on short values the meta engine picks it, and it
            // clears its visited set for every search (measured: 8% of the time on the
            // process_creation bench, against 3% with the lazy DFA it falls to instead).
            meta::Builder::new()
                .configure(meta::Config::new().backtrack(false))
                .build_from_hir(&hir)
                .map_err(|e| match e.size_limit() {
                Some(limit) => {
                    failed(format!("Compiled regex exceeds size limit of {limit} bytes."))
                }
                None => failed(e.to_string()),
            })?;
        Ok(CompiledCheck { regex, on_folded, triggers })
    };
    Some(compile())
}

/// The trigger literals (folded) of a glob or regex atom: the engine runs the check only
/// on values holding one of them. `None` for other atoms; empty when the check runs on
/// every value.
pub fn check_triggers(atom: &Atom) -> Option<Vec<String>> {
    match atom {
        Atom::Glob { parts, cased, .. } => Some(glob_check(parts, *cased).1.into_iter().collect()),
        Atom::Re { pattern, flags, .. } => {
            Some(parse(pattern, flags).ok().and_then(|hir| hir_triggers(&hir)).unwrap_or_default())
        }
        _ => None,
    }
}

/// A pattern as Sigma's `re` modifier wants it: unanchored, flags `i`, `m`, `s`.
fn parse(pattern: &str, flags: &str) -> std::result::Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

/// Folded literals at least one of which every match of `hir` contains, or `None` when the
/// regex admits no such finite set.
fn hir_triggers(hir: &Hir) -> Option<Vec<String>> {
    let mut literals = piece(hir).cover()?.0;
    literals.sort();
    literals.dedup();
    Some(literals)
}

/// Folded literals at least one of which a match holds, and a cost that prefers few, long
/// literals.
type Cover = (Vec<String>, f64);

fn cover_of(literals: Vec<String>) -> Option<Cover> {
    if literals.iter().any(String::is_empty) {
        return None;
    }
    let cost = literals.iter().map(|l| 1.0 / (l.chars().count() as f64).powi(3)).sum();
    Some((literals, cost))
}

/// What part of a regex tells about the literals of its matches.
enum Piece {
    /// The part matches exactly one of these folded strings.
    Exact(Vec<String>),
    /// Every match of the part holds one of these literals (or no such set is known).
    Holds(Option<Cover>),
}

/// Cross products of adjacent exact parts grow no larger than this; a class of more
/// distinct characters than `MAX_CLASS` (e.g. `\s`) only holds one of them, so it ends
/// a run rather than multiplying it.
const MAX_EXACT: usize = 64;
const MAX_CLASS: usize = 8;

impl Piece {
    fn cover(self) -> Option<Cover> {
        match self {
            Piece::Exact(set) => cover_of(set),
            Piece::Holds(cover) => cover,
        }
    }
}

fn piece(hir: &Hir) -> Piece {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Piece::Exact(vec![String::new()]),
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(text) => Piece::Exact(vec![fold(text)]),
            Err(_) => Piece::Holds(None),
        },
        HirKind::Class(Class::Unicode(class)) => {
            let size: u32 =
                class.ranges().iter().map(|r| u32::from(r.end()) - u32::from(r.start()) + 1).sum();
            if size as usize > MAX_EXACT {
                return Piece::Holds(None);
            }
            // A small class: the folded characters it matches.
            let mut set: Vec<String> = class
                .ranges()
                .iter()
                .flat_map(|r| r.start()..=r.end())
                .map(|c| fold(c.encode_utf8(&mut [0; 4])))
                .collect();
            set.sort();
            set.dedup();
            if set.len() > MAX_CLASS {
                Piece::Holds(cover_of(set))
            } else {
                Piece::Exact(set)
            }
        }
        HirKind::Class(Class::Bytes(_)) => Piece::Holds(None),
        HirKind::Capture(c) => piece(&c.sub),
        HirKind::Repetition(r) if r.min == 1 && r.max == Some(1) => piece(&r.sub),
        HirKind::Repetition(r) if r.min >= 1 => Piece::Holds(piece(&r.sub).cover()),
        HirKind::Repetition(_) => Piece::Holds(None),
        HirKind::Alternation(xs) => {
            let mut all = (Vec::new(), 0.0);
            for x in xs {
                match piece(x).cover() {
                    Some((lits, cost)) => {
                        all.0.extend(lits);
                        all.1 += cost;
                    }
                    None => return Piece::Holds(None),
                }
            }
            Piece::Holds(Some(all))
        }
        HirKind::Concat(xs) => {
            // Adjacent exact parts join into runs (cross products); the best cover of any
            // run or other part covers the whole.
            let mut best: Option<Cover> = None;
            let mut consider = |c: Option<Cover>| {
                if let Some(c) = c {
                    if best.as_ref().is_none_or(|b| c.1 < b.1) {
                        best = Some(c);
                    }
                }
            };
            let mut run: Vec<String> = vec![String::new()];
            for x in xs {
                match piece(x) {
                    Piece::Exact(set) if run.len() * set.len() <= MAX_EXACT => {
                        run = run
                            .iter()
                            .flat_map(|a| set.iter().map(move |b| format!("{a}{b}")))
                            .collect();
                    }
                    Piece::Exact(set) => {
                        consider(cover_of(std::mem::replace(&mut run, set)));
                    }
                    Piece::Holds(c) => {
                        consider(cover_of(std::mem::replace(&mut run, vec![String::new()])));
                        consider(c);
                    }
                }
            }
            consider(cover_of(run));
            Piece::Holds(best)
        }
    }
}

/// A glob as an anchored regex over the (folded, unless cased) value, and its longest
/// literal part as the trigger.
fn glob_check(parts: &[GlobToken], cased: bool) -> (String, Option<String>) {
    let mut re = String::from("(?s)^");
    let mut longest: Option<String> = None;
    for part in parts {
        match part {
            GlobToken::Lit(s) => {
                let folded = fold(s);
                re.push_str(&regex::escape(if cased { s } else { &folded }));
                if longest.as_ref().is_none_or(|l| l.len() < folded.len()) {
                    longest = Some(folded);
                }
            }
            GlobToken::Many => re.push_str(".*"),
            GlobToken::One => re.push('.'),
        }
    }
    re.push('$');
    (re, longest.filter(|l| !l.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex_triggers(pattern: &str) -> Option<Vec<String>> {
        hir_triggers(&parse(pattern, "").unwrap())
    }

    #[test]
    fn regex_triggers_are_folded_inner_literals() {
        assert_eq!(regex_triggers("(?i)ABC\\d+").unwrap(), vec!["abc"]);
        assert_eq!(regex_triggers("Foo|bar").unwrap(), vec!["bar", "foo"]);
        assert_eq!(regex_triggers(".*x").unwrap(), vec!["x"]);
        assert_eq!(regex_triggers("\\s-[FTd]\\s").unwrap(), vec!["-d", "-f", "-t"]);
        assert_eq!(regex_triggers("a?bcd").unwrap(), vec!["bcd"]);
        assert_eq!(regex_triggers("x(?:ab|cd)+").unwrap(), vec!["ab", "cd"]);
        assert_eq!(regex_triggers("stra(?i)SSe").unwrap(), vec!["strasse"]);
        assert!(regex_triggers(".*").is_none());
        assert!(regex_triggers("a?").is_none());
    }

    #[test]
    fn glob_trigger_is_longest_literal() {
        let parts = [GlobToken::Lit("AB".into()), GlobToken::Many, GlobToken::Lit("CdEf".into())];
        assert_eq!(glob_check(&parts, false).1.as_deref(), Some("cdef"));
        assert_eq!(glob_check(&[GlobToken::Many], false).1, None);
    }

    #[test]
    fn a_regex_that_does_not_compile_is_worded_as_the_regex_crate_words_it() {
        let pattern = "a(?=b)";
        let atom = Atom::Re { field: None, pattern: pattern.into(), flags: String::new() };
        let Some(Err(e)) = compile_check(&atom) else { panic!("compiled") };
        let reason = regex::RegexBuilder::new(pattern).build().unwrap_err().to_string();
        assert_eq!(e.to_string(), format!("regex 'a(?=b)' does not compile: {reason}"));
        assert!(reason.contains("look-around"), "{reason}");
    }
}
