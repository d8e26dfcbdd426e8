//! Per-field matcher tables: every atom of every rule on one field, grouped by kind.
//!
//! String literals of all rules on a field are deduplicated into one Aho-Corasick
//! automaton per case mode. Globs and regexes are checks (`regex.rs`): each runs only on
//! values where the folded automaton found one of its trigger literals.

use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::nfa::contiguous;
use aho_corasick::PatternID;
use aho_corasick::{dfa, AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Anchored, MatchKind};
use arrow_buffer::ArrowNativeType;
use chrono::{Datelike, NaiveDateTime, Timelike};
use regex_automata::meta;

use crate::casefold::{fold, fold_into};
use crate::column::{Num, Value};
use crate::program::{Anchor, Atom, AtomId, Cmp, Number, TimePart};
use crate::regex::CompiledCheck;
use crate::scratch::ValueScratch;

/// What a literal found in a value means.
#[derive(Clone, Copy)]
enum Target {
    /// The atom holds if the literal sits as the anchor requires.
    Atom(AtomId, Anchor),
    /// Check number `n` of the table must run.
    Trigger(u32),
}

/// The automaton's prefilter (a fast scan for the bytes literals start with) pays for sets of
/// at most this many literals; on larger sets it mostly reports false candidates (measured:
/// its rare-byte scan cost 30% on 1,183 rules, `docs/engine.md`).
const MAX_PREFILTERED: usize = 64;

/// Distinct literals of one case mode and what each one serves.
#[derive(Default)]
struct LiteralSet {
    patterns: Vec<String>,
    index: HashMap<String, usize>,
    /// Per pattern, while the set is built.
    targets: Vec<Vec<Target>>,
    /// Once built: the targets of pattern `p` are `flat[starts[p]..starts[p + 1]]`, one
    /// contiguous array rather than a vector per pattern.
    flat: Vec<Target>,
    starts: Vec<u32>,
    /// The automaton over the literals of two bytes or more, and the pattern each of its own
    /// patterns is.
    automaton: Option<Search>,
    automaton_patterns: Vec<u32>,
    /// Single-byte literals are found apart: per byte value, the bit of its pattern in
    /// `byte_patterns` (see [`LiteralSet::find`]).
    byte_bits: Option<Box<[u64; 256]>>,
    byte_patterns: Vec<u32>,
}

/// How a set's automaton is searched.
enum Search {
    /// A few literals: the crate's search, whose prefilter skips to the bytes they start with.
    Prefiltered(AhoCorasick),
    /// More: the automaton walked here byte by byte from its start state, each match state's
    /// patterns read in place. The crate's overlapping search returns to its caller once per
    /// match, and a command line holds ~27 matches of the process_creation literals: 560 ns
    /// against 400 per value, measured on the literals and values of `bench_literals.py`.
    Walk(contiguous::NFA, StateID),
    /// Up to [`MAX_DFA`] literals the walk is over a DFA, one lookup per byte.
    WalkDfa(dfa::DFA, StateID),
}

/// The crate's own choice between the two: a DFA for at most 100 literals.
const MAX_DFA: usize = 100;

/// Reports (pattern, start, end) for every match of an unanchored automaton in `text`.
#[inline]
fn walk<A: Automaton>(
    automaton: &A,
    start: StateID,
    text: &[u8],
    found: &mut impl FnMut(PatternID, usize, usize),
) {
    let mut state = start;
    for (i, &b) in text.iter().enumerate() {
        state = automaton.next_state(Anchored::No, state, b);
        if automaton.is_special(state) && automaton.is_match(state) {
            for k in 0..automaton.match_len(state) {
                let pattern = automaton.match_pattern(state, k);
                found(pattern, i + 1 - automaton.pattern_len(pattern), i + 1);
            }
        }
    }
}

impl LiteralSet {
    fn add(&mut self, literal: String, target: Target) {
        let id = *self.index.entry(literal.clone()).or_insert_with(|| {
            self.patterns.push(literal);
            self.targets.push(Vec::new());
            self.patterns.len() - 1
        });
        self.targets[id].push(target);
    }

    fn build(&mut self) {
        let (bytes, longer): (Vec<u32>, Vec<u32>) =
            (0..self.patterns.len() as u32).partition(|&p| self.patterns[p as usize].len() == 1);
        let (bytes, rest) = bytes.split_at(bytes.len().min(64));
        self.automaton_patterns = rest.iter().chain(&longer).copied().collect();
        let patterns = self.automaton_patterns.iter().map(|&p| &self.patterns[p as usize]);
        let limits = "literal automaton within size limits";
        self.automaton = match self.automaton_patterns.len() {
            0 => None,
            1..=MAX_PREFILTERED => Some(Search::Prefiltered(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(patterns)
                    .expect(limits),
            )),
            n if n <= MAX_DFA => {
                let dfa = dfa::Builder::new().prefilter(false).build(patterns).expect(limits);
                let start = dfa.start_state(Anchored::No).expect("an unanchored start state");
                Some(Search::WalkDfa(dfa, start))
            }
            _ => {
                let nfa =
                    contiguous::Builder::new().prefilter(false).build(patterns).expect(limits);
                let start = nfa.start_state(Anchored::No).expect("an unanchored start state");
                Some(Search::Walk(nfa, start))
            }
        };
        if !bytes.is_empty() {
            let mut bits = Box::new([0u64; 256]);
            for (bit, &p) in bytes.iter().enumerate() {
                bits[self.patterns[p as usize].as_bytes()[0] as usize] |= 1 << bit;
            }
            self.byte_bits = Some(bits);
            self.byte_patterns = bytes.to_vec();
        }
        self.index = HashMap::new();
        self.starts = std::iter::once(0)
            .chain(self.targets.iter().scan(0, |n, t| {
                *n += t.len() as u32;
                Some(*n)
            }))
            .collect();
        self.flat = std::mem::take(&mut self.targets).concat();
    }

    fn targets_of(&self, pattern: usize) -> &[Target] {
        &self.flat[self.starts[pattern] as usize..self.starts[pattern + 1] as usize]
    }

    /// Reports every atom whose literal sits in `text` as its anchor requires, and every
    /// check a literal triggers.
    fn find(&self, text: &str, hit: &mut impl FnMut(AtomId), trigger: &mut impl FnMut(u32)) {
        // A value holds a single-byte literal (a space, a digit) many times over, and the
        // automaton would report each; one pass over the bytes tells which it holds at all.
        if let Some(bits) = &self.byte_bits {
            let bytes = text.as_bytes();
            let mut found = bytes.iter().fold(0, |found, &b| found | bits[b as usize]);
            while found != 0 {
                let pattern = self.byte_patterns[found.trailing_zeros() as usize] as usize;
                found &= found - 1;
                let byte = self.patterns[pattern].as_bytes()[0];
                let (first, last) = (bytes[0] == byte, bytes[bytes.len() - 1] == byte);
                self.report(pattern, (first, last, bytes.len() == 1), hit, trigger);
            }
        }
        let mut found = |pattern: PatternID, start: usize, end: usize| {
            let pattern = self.automaton_patterns[pattern.as_usize()] as usize;
            let (prefix, suffix) = (start == 0, end == text.len());
            self.report(pattern, (prefix, suffix, prefix && suffix), hit, trigger);
        };
        match &self.automaton {
            None => {}
            Some(Search::Prefiltered(ac)) => {
                ac.find_overlapping_iter(text).for_each(|m| found(m.pattern(), m.start(), m.end()))
            }
            Some(Search::Walk(nfa, start)) => walk(nfa, *start, text.as_bytes(), &mut found),
            Some(Search::WalkDfa(dfa, start)) => walk(dfa, *start, text.as_bytes(), &mut found),
        }
    }

    /// Reports the targets of a pattern found in a value, given whether it was found at the
    /// value's start, at its end, and as the whole value.
    #[inline]
    fn report(
        &self,
        pattern: usize,
        (prefix, suffix, exact): (bool, bool, bool),
        hit: &mut impl FnMut(AtomId),
        trigger: &mut impl FnMut(u32),
    ) {
        for &target in self.targets_of(pattern) {
            match target {
                Target::Atom(atom, anchor) => {
                    let ok = match anchor {
                        Anchor::Exact => exact,
                        Anchor::Prefix => prefix,
                        Anchor::Suffix => suffix,
                        Anchor::Contains => true,
                    };
                    if ok {
                        hit(atom);
                    }
                }
                Target::Trigger(check) => trigger(check),
            }
        }
    }
}

/// At most this many literals, of at most this many bytes in all, are searched in bulk (see
/// [`FieldTable::eval_bulk`]): their automaton, a DFA with at most one state per byte, stays
/// small enough for the caches, whatever the length of a rule's literals.
const MAX_BULK: usize = 256;
const MAX_BULK_BYTES: usize = 8 << 10;

/// At most this many literals make an anchored table (see [`FieldTable::anchored`]).
const MAX_ANCHORED: usize = 8;

/// A case-insensitive ASCII literal anchored at the start or end of the value, or equal to
/// it, tested on the value's bytes.
struct AnchoredTest {
    atom: AtomId,
    anchor: Anchor,
    /// The folded literal, and 0x20 where it has a letter: a byte `b` equals a letter `l` or
    /// its upper case exactly when `b | 0x20 == l`.
    literal: Box<[u8]>,
    case: Box<[u8]>,
    /// For a literal of 8 bytes or more, its 8 bytes at the anchored end (the last for a
    /// suffix, the first otherwise) and their case mask, as words: one comparison rejects
    /// most values.
    quick: Option<(u64, u64)>,
}

const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

impl AnchoredTest {
    fn new(atom: AtomId, anchor: Anchor, literal: &str) -> AnchoredTest {
        let literal: Box<[u8]> = literal.as_bytes().into();
        let case: Box<[u8]> =
            literal.iter().map(|b| if b.is_ascii_lowercase() { 0x20 } else { 0 }).collect();
        let n = literal.len();
        let at = if anchor == Anchor::Suffix { n.saturating_sub(8) } else { 0 };
        let word =
            |bytes: &[u8]| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let quick = (n >= 8).then(|| (word(&literal), word(&case)));
        AnchoredTest { atom, anchor, literal, case, quick }
    }

    /// Whether the folded `value` holds the literal as the anchor requires, decided from
    /// the bytes compared; `None` when they are not all ASCII, whose folding may change
    /// their length.
    #[inline]
    fn decide(&self, value: &[u8]) -> Option<bool> {
        let n = self.literal.len();
        if let Some((literal, case)) = self.quick {
            if value.len() >= n {
                let at = if self.anchor == Anchor::Suffix { value.len() - 8 } else { 0 };
                let word = u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
                if word | case != literal {
                    return (word & HIGH_BITS == 0).then_some(false);
                }
            }
        }
        let part = match self.anchor {
            Anchor::Prefix => &value[..n.min(value.len())],
            Anchor::Suffix => &value[value.len().saturating_sub(n)..],
            Anchor::Exact | Anchor::Contains => value,
        };
        if part.len() != n {
            return part.is_ascii().then_some(false);
        }
        // Without early exit, so that it vectorizes: the difference, and the high bits.
        let (diff, high) = part
            .iter()
            .zip(self.literal.iter().zip(self.case.iter()))
            .fold((0u8, 0u8), |(d, h), (b, (l, c))| (d | ((b | c) ^ l), h | b));
        if diff == 0 {
            Some(true)
        } else {
            (high < 0x80).then_some(false)
        }
    }

    /// The test on the folded value: the slow way, for values that are not ASCII.
    #[cold]
    #[inline(never)]
    fn on_value_folded(&self, value: &[u8], folded: &mut String) -> bool {
        folded.clear();
        fold_into(std::str::from_utf8(value).expect("Arrow strings are UTF-8"), folded);
        self.on_folded(folded)
    }

    /// The test on a folded value.
    fn on_folded(&self, folded: &str) -> bool {
        self.anchor.holds(folded.as_bytes(), &self.literal)
    }
}

/// An IPv4 or IPv6 network.
pub(crate) struct Network {
    addr: IpAddr,
    prefix: u32,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = addr.parse().ok()?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() { bits } else { prefix.parse().ok()? };
        (prefix <= bits).then_some(Network { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(b)), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let shift = bits - self.prefix;
        shift == 128 || (a >> shift) == (b >> shift)
    }
}

/// A glob or regex atom, run only when triggered (or always, without triggers).
struct Check {
    atom: AtomId,
    regex: meta::Regex,
    /// Runs on the folded value (folded globs) rather than the value as it is.
    on_folded: bool,
    /// Index of this check's cache in the thread's [`ValueScratch`].
    slot: usize,
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

/// Every atom on one field (or on the keyword columns).
#[derive(Default)]
pub(crate) struct FieldTable {
    folded: LiteralSet,
    cased: LiteralSet,
    empties: Vec<(AtomId, Anchor)>,
    checks: Vec<Check>,
    untriggered: Vec<u32>,
    cidrs: Vec<(AtomId, Network)>,
    numbers: Vec<(AtomId, Cmp, Number)>,
    booleans: Vec<(AtomId, bool)>,
    times: Vec<(AtomId, TimePart, Cmp, i64)>,
    pub nulls: Vec<AtomId>,
    pub exists: Vec<AtomId>,
    needs_text: bool,
    /// When the table's only string tests are a few case-insensitive ASCII literals anchored
    /// at the start or end (`startswith`, `endswith`, equality), as in the Cloudflared rule:
    /// those tests, run on the value's first or last bytes, with no folding, automaton or
    /// memo.
    anchored: Option<Vec<AnchoredTest>>,
    /// When the table's only tests are at most [`MAX_BULK`] case-insensitive ASCII literals
    /// found anywhere (`contains`, as keywords are): the folded set's literals in an
    /// automaton that ignores ASCII case, run over the bytes of a whole chunk of values.
    bulk: Option<AhoCorasick>,
}

impl FieldTable {
    /// Adds one atom other than a glob or regex (see [`FieldTable::add_check`]).
    pub fn add(&mut self, id: AtomId, atom: &Atom) {
        match atom {
            // The automaton cannot hold an empty literal: it sits in every value, and is the
            // whole of an empty one.
            Atom::Str { value, anchor, .. } if value.is_empty() => self.empties.push((id, *anchor)),
            Atom::Str { value, anchor, cased: true, .. } => {
                self.cased.add(value.clone(), Target::Atom(id, *anchor))
            }
            Atom::Str { value, anchor, cased: false, .. } => {
                self.folded.add(fold(value), Target::Atom(id, *anchor))
            }
            Atom::Glob { .. } | Atom::Re { .. } => unreachable!("checks are added compiled"),
            Atom::Cidr { network, .. } => {
                self.cidrs.push((id, Network::parse(network).expect("checked with the program")))
            }
            Atom::Num { cmp, value, .. } => self.numbers.push((id, *cmp, *value)),
            Atom::Bool { value, .. } => self.booleans.push((id, *value)),
            Atom::Time { part, cmp, value, .. } => self.times.push((id, *part, *cmp, *value)),
            Atom::Null { .. } => self.nulls.push(id),
            Atom::Exists { .. } => self.exists.push(id),
            Atom::FieldRef { .. } => unreachable!("field references are evaluated across columns"),
        }
    }

    /// Adds a compiled glob or regex; `slot` numbers regex caches across all tables.
    pub fn add_check(&mut self, atom: AtomId, check: CompiledCheck, slot: &mut usize) {
        let CompiledCheck { regex, on_folded, triggers } = check;
        let n = self.checks.len() as u32;
        if triggers.is_empty() {
            self.untriggered.push(n);
        }
        for t in triggers {
            self.folded.add(t, Target::Trigger(n));
        }
        self.checks.push(Check { atom, regex, on_folded, slot: *slot });
        *slot += 1;
    }

    /// Whether an atom reads this field's values, not only their presence.
    pub fn reads_values(&self) -> bool {
        self.needs_text || !self.numbers.is_empty() || !self.times.is_empty()
    }

    /// Whether no atom reads this field's values (it may still serve field references).
    pub fn is_empty(&self) -> bool {
        !self.needs_text
            && self.numbers.is_empty()
            && self.times.is_empty()
            && self.nulls.is_empty()
            && self.exists.is_empty()
    }

    /// Builds the automata; without `prefilter`, every check runs on every value and no
    /// table is anchored.
    pub fn build(&mut self, prefilter: bool) {
        if !prefilter {
            self.untriggered = (0..self.checks.len() as u32).collect();
            for targets in &mut self.folded.targets {
                targets.retain(|t| matches!(t, Target::Atom(..)));
            }
        }
        self.anchored = if prefilter { self.anchored_tests() } else { None };
        self.bulk = if prefilter { self.bulk_search() } else { None };
        self.folded.build();
        self.cased.build();
        self.needs_text = !self.folded.patterns.is_empty()
            || !self.cased.patterns.is_empty()
            || !self.empties.is_empty()
            || !self.checks.is_empty()
            || !self.cidrs.is_empty()
            || !self.booleans.is_empty();
    }

    /// Whether the table's only tests of a value are folded literals (and null tests).
    fn only_folded_literals(&self) -> bool {
        self.cased.patterns.is_empty()
            && self.empties.is_empty()
            && self.checks.is_empty()
            && self.cidrs.is_empty()
            && self.numbers.is_empty()
            && self.booleans.is_empty()
            && self.times.is_empty()
            && self.exists.is_empty()
    }

    fn anchored_tests(&self) -> Option<Vec<AnchoredTest>> {
        let mut tests = Vec::new();
        for (pattern, targets) in self.folded.patterns.iter().zip(&self.folded.targets) {
            for target in targets {
                match *target {
                    Target::Atom(atom, anchor)
                        if anchor != Anchor::Contains && pattern.is_ascii() =>
                    {
                        tests.push(AnchoredTest::new(atom, anchor, pattern))
                    }
                    _ => return None,
                }
            }
        }
        (self.only_folded_literals() && !tests.is_empty() && tests.len() <= MAX_ANCHORED)
            .then_some(tests)
    }

    fn bulk_search(&self) -> Option<AhoCorasick> {
        let contains = |t: &Target| matches!(t, Target::Atom(_, Anchor::Contains));
        let patterns = &self.folded.patterns;
        let eligible = self.only_folded_literals()
            && self.nulls.is_empty()
            && (1..=MAX_BULK).contains(&patterns.len())
            && patterns.iter().map(String::len).sum::<usize>() <= MAX_BULK_BYTES
            && patterns.iter().all(|p| p.is_ascii())
            && self.folded.targets.iter().flatten().all(contains);
        if !eligible {
            return None;
        }
        // The literals come from rules: a build that fails leaves the table searched value
        // by value.
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .kind(Some(AhoCorasickKind::DFA))
            .build(patterns)
            .ok()
    }

    /// Reports (row, atom) for the atoms true on the values of a chunk, given its offsets
    /// (one per row and the end) into `data`, with `valid` telling the rows not null; false,
    /// reporting nothing, unless the table searches values in bulk and they are all ASCII
    /// (where folding a value is lowering its ASCII case).
    pub fn eval_bulk<O: ArrowNativeType>(
        &self,
        offsets: &[O],
        data: &[u8],
        valid: impl Fn(usize) -> bool,
        hit: &mut impl FnMut(usize, AtomId),
    ) -> bool {
        let Some(ac) = &self.bulk else { return false };
        let at = |r: usize| offsets[r].as_usize();
        let (first, last) = (at(0), at(offsets.len() - 1));
        let bytes = &data[first..last];
        if !bytes.is_ascii() {
            return false;
        }
        // Matches come by their end: the row holding each end only moves forward. A match
        // counts in the row holding its start too, not across two values.
        let mut row = 0;
        for m in ac.find_overlapping_iter(bytes) {
            let (start, end) = (first + m.start(), first + m.end());
            while at(row + 1) < end {
                row += 1;
            }
            if start < at(row) || !valid(row) {
                continue;
            }
            for target in self.folded.targets_of(m.pattern().as_usize()) {
                if let Target::Atom(atom, _) = target {
                    hit(row, *atom);
                }
            }
        }
        true
    }

    pub fn is_anchored(&self) -> bool {
        self.anchored.is_some()
    }

    /// Reports the atoms of an anchored table true for a string, given as its UTF-8 bytes.
    #[inline]
    pub fn eval_anchored(
        &self,
        value: &[u8],
        scratch: &mut ValueScratch,
        hit: &mut impl FnMut(AtomId),
    ) {
        let Some(tests) = &self.anchored else { return };
        for test in tests {
            if test
                .decide(value)
                .unwrap_or_else(|| test.on_value_folded(value, &mut scratch.folded))
            {
                hit(test.atom);
            }
        }
    }

    /// Reports the atoms true for a present value.
    pub fn eval(&self, value: Value, scratch: &mut ValueScratch, hit: &mut impl FnMut(AtomId)) {
        self.exists.iter().for_each(|&a| hit(a));
        if self.needs_text {
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
                for &(a, part, cmp, v) in &self.times {
                    if compare(Num::Int(time_part(t, part).into()), cmp, Number::Int(v)) {
                        hit(a);
                    }
                }
            }
        }
    }

    /// String tests; `is_string` tells a real string from a number or boolean seen as text.
    fn eval_text(
        &self,
        text: &str,
        is_string: bool,
        scratch: &mut ValueScratch,
        hit: &mut impl FnMut(AtomId),
    ) {
        // Taken out of the scratch so that the caches beside it stay usable.
        let mut folded = std::mem::take(&mut scratch.folded);
        folded.clear();
        fold_into(text, &mut folded);
        scratch.stamp += 1;
        if scratch.stamps.len() < self.checks.len() {
            scratch.stamps.resize(self.checks.len(), 0);
        }
        scratch.triggered.clear();
        let (stamps, stamp, triggered) =
            (&mut scratch.stamps, scratch.stamp, &mut scratch.triggered);
        let mut trigger = |c: u32| {
            if stamps[c as usize] != stamp {
                stamps[c as usize] = stamp;
                triggered.push(c);
            }
        };
        self.folded.find(&folded, hit, &mut trigger);
        self.cased.find(text, hit, &mut |_| {});
        for &(a, anchor) in &self.empties {
            if anchor != Anchor::Exact || text.is_empty() {
                hit(a);
            }
        }
        for i in 0..scratch.triggered.len() + self.untriggered.len() {
            let c = scratch
                .triggered
                .get(i)
                .copied()
                .unwrap_or_else(|| self.untriggered[i - scratch.triggered.len()]);
            let check = &self.checks[c as usize];
            if scratch.caches.len() <= check.slot {
                scratch.caches.resize_with(check.slot + 1, || None);
            }
            let cache =
                scratch.caches[check.slot].get_or_insert_with(|| check.regex.create_cache());
            let haystack = if check.on_folded { folded.as_str() } else { text };
            // Whether it matches, not where: the cheapest search.
            if check
                .regex
                .search_half_with(cache, &regex_automata::Input::new(haystack).earliest(true))
                .is_some()
            {
                hit(check.atom);
            }
        }
        if !self.cidrs.is_empty() {
            if let Ok(ip) = text.parse::<IpAddr>() {
                self.cidrs.iter().filter(|(_, n)| n.contains(ip)).for_each(|(a, _)| hit(*a));
            }
        }
        if is_string && !self.booleans.is_empty() {
            let b = match folded.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            };
            self.booleans.iter().filter(|(_, v)| Some(*v) == b).for_each(|&(a, _)| hit(a));
        }
        scratch.folded = folded;
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

    #[test]
    fn anchored_tests_agree_with_folding() {
        let literals = [
            "x\\desk.exe",
            "\\cloudflared.exe",
            "c:\\program files\\",
            "a-b",
            "x",
            "12345678",
            "exe",
        ];
        let values = [
            "C:\\Tools\\CloudFlared.EXE",
            "c:\\tools\\cloudflared.exe",
            "\\CLOUDFLARED.EX",
            "cloudflared.exe",
            "C:\\Program Files\\x",
            "c:\\program files",
            "A-B",
            "a-b-c",
            "X",
            "",
            "12345678",
            "1234567",
            "\\cloudflared.\u{212A}exe",
            "\\cloudflared.e\u{212A}e",
            "stra\u{df}e.exe",
            "\u{130}x",
            "EX\u{c9}",
            "C:\\Program File\u{17f}\\",
            "\u{1f642}a-b",
            "a-b\u{1f642}",
            "X\\DES\u{212A}.EXE",
            "x\\de\u{17f}k.exe",
            "X\\DESK.EXE",
        ];
        for lit in literals {
            for anchor in [Anchor::Prefix, Anchor::Suffix, Anchor::Exact] {
                let test = AnchoredTest::new(AtomId(0), anchor, lit);
                for value in values {
                    let folded = fold(value);
                    let want = match anchor {
                        Anchor::Prefix => folded.starts_with(lit),
                        Anchor::Suffix => folded.ends_with(lit),
                        _ => folded == lit,
                    };
                    let got =
                        test.decide(value.as_bytes()).unwrap_or_else(|| test.on_folded(&folded));
                    assert_eq!(got, want, "{lit:?} {anchor:?} {value:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod literal_set_tests {
    use super::*;

    const ANCHORS: [Anchor; 4] = [Anchor::Contains, Anchor::Prefix, Anchor::Suffix, Anchor::Exact];

    /// Each literal under each anchor is an atom; `find` must report exactly the atoms a naive
    /// test of the value holds, whichever search the set's size picks (prefiltered, DFA walk,
    /// NFA walk) and with single-byte literals found apart.
    fn agrees_with_naive(literals: &[String], values: &[&str]) {
        let mut set = LiteralSet::default();
        for (i, literal) in literals.iter().enumerate() {
            for (a, &anchor) in ANCHORS.iter().enumerate() {
                set.add(literal.clone(), Target::Atom(AtomId((i * 4 + a) as u32), anchor));
            }
        }
        set.add(literals[0].clone(), Target::Trigger(7));
        set.build();
        for value in values {
            let mut got = vec![false; literals.len() * 4];
            let mut triggered = false;
            set.find(value, &mut |atom| got[atom.index()] = true, &mut |check| {
                triggered |= check == 7
            });
            for (i, literal) in literals.iter().enumerate() {
                let want = [
                    value.contains(literal.as_str()),
                    value.starts_with(literal.as_str()),
                    value.ends_with(literal.as_str()),
                    *value == literal.as_str(),
                ];
                assert_eq!(&got[i * 4..i * 4 + 4], &want, "{literal:?} in {value:?}");
            }
            assert_eq!(triggered, value.contains(literals[0].as_str()), "trigger in {value:?}");
        }
    }

    fn literals(n: usize) -> Vec<String> {
        let bytes = [" ", "i", "1", "\\", "-", "u"].map(String::from);
        let longer = (0..n).map(|i| format!("{}x{}", ["ab", "\\w", " /", "é"][i % 4], i));
        bytes.into_iter().chain(["ab", "b ", "é"].map(String::from)).chain(longer).collect()
    }

    const VALUES: [&str; 14] = [
        "",
        " ",
        "i",
        "ab",
        "é",
        "abx0",
        "1 abx0 -",
        "\\wx1",
        "ab ix\\wx13u",
        " /x2 /x2 ",
        "éx3",
        "zzz",
        "uab b ",
        "-- ab x40 \\wx81 éx99 abx120 i",
    ];

    #[test]
    fn every_search_agrees_with_naive() {
        for n in [4, 70, 130] {
            agrees_with_naive(&literals(n), &VALUES);
        }
        assert!(matches!(literal_set(4).automaton, Some(Search::Prefiltered(_))));
        assert!(matches!(literal_set(70).automaton, Some(Search::WalkDfa(..))));
        assert!(matches!(literal_set(130).automaton, Some(Search::Walk(..))));
    }

    /// More than 64 single-byte literals: the rest go to the automaton.
    #[test]
    fn many_single_bytes() {
        let literals: Vec<String> = (32u8..127).map(|b| (b as char).to_string()).collect();
        agrees_with_naive(&literals, &VALUES);
        agrees_with_naive(&literals, &["~", "abc~ ", "\u{1f642}!"]);
    }

    fn literal_set(n: usize) -> LiteralSet {
        let mut set = LiteralSet::default();
        for literal in literals(n) {
            set.add(literal, Target::Trigger(0));
        }
        set.build();
        set
    }
}
