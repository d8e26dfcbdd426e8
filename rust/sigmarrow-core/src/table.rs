//! Per-field matcher tables: every atom of every rule on one field, grouped by kind, with
//! string literals deduplicated into one Aho-Corasick automaton per case mode.

use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use chrono::{Datelike, NaiveDateTime, Timelike};
use regex::{Regex, RegexBuilder};

use crate::casefold::{fold, fold_into};
use crate::column::{Num, Value};
use crate::error::{Error, Result};
use crate::program::{Anchor, Atom, AtomId, Cmp, GlobToken, Number, TimePart};

/// Distinct literals of one case mode and the atoms each one serves.
#[derive(Default)]
struct LiteralSet {
    patterns: Vec<String>,
    index: HashMap<String, usize>,
    users: Vec<Vec<(AtomId, Anchor)>>,
    automaton: Option<AhoCorasick>,
}

impl LiteralSet {
    fn add(&mut self, literal: String, atom: AtomId, anchor: Anchor) {
        let id = *self.index.entry(literal.clone()).or_insert_with(|| {
            self.patterns.push(literal);
            self.users.push(Vec::new());
            self.patterns.len() - 1
        });
        self.users[id].push((atom, anchor));
    }

    fn build(&mut self) {
        if !self.patterns.is_empty() {
            self.automaton = Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&self.patterns)
                    .expect("literal automaton within size limits"),
            );
        }
    }

    /// Reports every atom whose literal sits in `text` as its anchor requires.
    fn find(&self, text: &str, hit: &mut impl FnMut(AtomId)) {
        let Some(ac) = &self.automaton else { return };
        for m in ac.find_overlapping_iter(text) {
            let (start, end) = (m.start(), m.end());
            for &(atom, anchor) in &self.users[m.pattern().as_usize()] {
                let ok = match anchor {
                    Anchor::Exact => start == 0 && end == text.len(),
                    Anchor::Prefix => start == 0,
                    Anchor::Suffix => end == text.len(),
                    Anchor::Contains => true,
                };
                if ok {
                    hit(atom);
                }
            }
        }
    }
}

/// An IPv4 or IPv6 network.
struct Network {
    addr: IpAddr,
    prefix: u32,
}

impl Network {
    fn parse(s: &str) -> Option<Network> {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = addr.parse().ok()?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() { bits } else { prefix.parse().ok()? };
        (prefix <= bits).then_some(Network { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - self.prefix;
        shift == 128 || (a >> shift) == (b >> shift)
    }
}

/// A regex as Sigma's `re` modifier wants it: unanchored, flags `i`, `m`, `s`.
pub fn build_regex(pattern: &str, flags: &str) -> std::result::Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .build()
        .map_err(|e| e.to_string())
}

fn glob_regex(parts: &[GlobToken], cased: bool) -> Regex {
    let mut re = String::from("(?s)^");
    for part in parts {
        match part {
            GlobToken::Lit(s) if cased => re.push_str(&regex::escape(s)),
            GlobToken::Lit(s) => re.push_str(&regex::escape(&fold(s))),
            GlobToken::Many => re.push_str(".*"),
            GlobToken::One => re.push('.'),
        }
    }
    re.push('$');
    Regex::new(&re).expect("escaped glob is a valid regex")
}

fn compare(value: Num, cmp: Cmp, rule: Number) -> bool {
    use std::cmp::Ordering;
    let ord = match (value, rule) {
        (Num::Int(a), Number::Int(b)) => Some(a.cmp(&i128::from(b))),
        (Num::Int(a), Number::Float(b)) => (a as f64).partial_cmp(&b),
        (Num::Float(a), Number::Int(b)) => a.partial_cmp(&(b as f64)),
        (Num::Float(a), Number::Float(b)) => a.partial_cmp(&b),
    };
    let Some(ord) = ord else { return false };
    match cmp {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Gte => ord != Ordering::Less,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Lte => ord != Ordering::Greater,
    }
}

fn time_part(t: NaiveDateTime, part: TimePart) -> i64 {
    i64::from(match part {
        TimePart::Minute => t.minute(),
        TimePart::Hour => t.hour(),
        TimePart::Day => t.day(),
        TimePart::Week => t.iso_week().week(),
        TimePart::Month => t.month(),
        TimePart::Year => return i64::from(t.year()),
    })
}

/// Scratch space for one thread: reused for every value it evaluates.
#[derive(Default)]
pub struct Scratch {
    folded: String,
}

/// Every atom on one field (or on the keyword columns).
#[derive(Default)]
pub(crate) struct FieldTable {
    folded: LiteralSet,
    cased: LiteralSet,
    globs: Vec<(AtomId, Regex, bool)>,
    regexes: Vec<(AtomId, Regex)>,
    cidrs: Vec<(AtomId, Network)>,
    numbers: Vec<(AtomId, Cmp, Number)>,
    booleans: Vec<(AtomId, bool)>,
    times: Vec<(AtomId, TimePart, i64)>,
    pub nulls: Vec<AtomId>,
    pub exists: Vec<AtomId>,
}

impl FieldTable {
    pub fn add(&mut self, id: AtomId, atom: &Atom) -> Result<()> {
        match atom {
            // An empty literal sits everywhere; a glob states that without a special case.
            Atom::Str { value, anchor, cased, .. } if value.is_empty() => {
                let parts = if *anchor == Anchor::Exact { vec![] } else { vec![GlobToken::Many] };
                self.globs.push((id, glob_regex(&parts, *cased), *cased));
            }
            Atom::Str { value, anchor, cased: true, .. } => self.cased.add(value.clone(), id, *anchor),
            Atom::Str { value, anchor, cased: false, .. } => self.folded.add(fold(value), id, *anchor),
            Atom::Glob { parts, cased, .. } => self.globs.push((id, glob_regex(parts, *cased), *cased)),
            Atom::Re { pattern, flags, .. } => {
                let re = build_regex(pattern, flags)
                    .map_err(|e| Error::Program(format!("atom {id}: regex {pattern:?}: {e}")))?;
                self.regexes.push((id, re));
            }
            Atom::Cidr { network, .. } => {
                let net = Network::parse(network)
                    .ok_or_else(|| Error::Program(format!("atom {id}: bad network {network:?}")))?;
                self.cidrs.push((id, net));
            }
            Atom::Num { cmp, value, .. } => self.numbers.push((id, *cmp, *value)),
            Atom::Bool { value, .. } => self.booleans.push((id, *value)),
            Atom::Time { part, value, .. } => self.times.push((id, *part, *value)),
            Atom::Null { .. } => self.nulls.push(id),
            Atom::Exists { .. } => self.exists.push(id),
            Atom::FieldRef { .. } => unreachable!("field references are evaluated across columns"),
        }
        Ok(())
    }

    pub fn build(&mut self) {
        self.folded.build();
        self.cased.build();
    }

    /// Reports the atoms true for a present value.
    pub fn eval(&self, value: Value, scratch: &mut Scratch, hit: &mut impl FnMut(AtomId)) {
        self.exists.iter().for_each(|&a| hit(a));
        let needs_text = self.folded.automaton.is_some()
            || self.cased.automaton.is_some()
            || !self.globs.is_empty()
            || !self.regexes.is_empty()
            || !self.cidrs.is_empty()
            || !self.booleans.is_empty();
        if needs_text {
            if let Some(text) = value.text() {
                self.eval_text(&text, matches!(value, Value::Str(_)), scratch, hit);
            }
        }
        if !self.numbers.is_empty() {
            if let Some(n) = value.number() {
                for &(a, cmp, rule) in &self.numbers {
                    if compare(n, cmp, rule) {
                        hit(a);
                    }
                }
            }
        }
        if !self.booleans.is_empty() {
            if let Value::Bool(b) = value {
                self.booleans.iter().filter(|(_, v)| *v == b).for_each(|&(a, _)| hit(a));
            }
        }
        if !self.times.is_empty() {
            if let Some(t) = value.time() {
                for &(a, part, v) in &self.times {
                    if time_part(t, part) == v {
                        hit(a);
                    }
                }
            }
        }
    }

    /// String tests; `is_string` tells a real string from a number or boolean seen as text.
    fn eval_text(&self, text: &str, is_string: bool, scratch: &mut Scratch, hit: &mut impl FnMut(AtomId)) {
        scratch.folded.clear();
        fold_into(text, &mut scratch.folded);
        let folded = scratch.folded.as_str();
        self.folded.find(folded, hit);
        self.cased.find(text, hit);
        for (a, re, cased) in &self.globs {
            if re.is_match(if *cased { text } else { folded }) {
                hit(*a);
            }
        }
        for (a, re) in &self.regexes {
            if re.is_match(text) {
                hit(*a);
            }
        }
        if !self.cidrs.is_empty() {
            if let Ok(ip) = text.parse::<IpAddr>() {
                self.cidrs.iter().filter(|(_, n)| n.contains(ip)).for_each(|(a, _)| hit(*a));
            }
        }
        if is_string && !self.booleans.is_empty() {
            let b = match folded {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            };
            self.booleans.iter().filter(|(_, v)| Some(*v) == b).for_each(|&(a, _)| hit(a));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.1.2.3".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let all = Network::parse("::/0").unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
    }
}
