//! The Aho-Corasick crate's literal search alone, for `benches/bench_literals.py`: a case-folded
//! literal list and a list of folded values (one per line), searched with the crate's
//! overlapping iterator (every match, as the field tables did before they walked the
//! automaton themselves: docs/engine.md, "The literal search itself"), for all literals and
//! for those of at least 4, 6 and 8 bytes. Prints one JSON object per row, with the
//! automaton's size and the part of it the engine's walk (over the contiguous NFA) touches:
//! the KiB of cache lines holding 90% and 99% of the states it steps to (against the caches:
//! docs/engine.md).
//!
//!     cargo run --release -p sigmarrow-core --example literal_scan -- LITERALS VALUES

use std::collections::HashMap;
use std::time::Instant;

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous;
use aho_corasick::{AhoCorasickBuilder, Anchored, MatchKind};

fn lines(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split('\n').filter(|l| !l.is_empty()).map(String::from).collect()
}

/// The KiB of 64-byte lines of the contiguous NFA holding `shares` of the states a walk over
/// `values` steps to. A state's id is its offset in the NFA's array of `u32` (the crate's
/// layout, not its API: enough for a measurement).
fn hot_kib(literals: &[&String], values: &[String], shares: [f64; 2]) -> [usize; 2] {
    let nfa = contiguous::Builder::new().prefilter(false).build(literals).expect("automaton");
    let start = nfa.start_state(Anchored::No).expect("an unanchored start state");
    let mut visits: HashMap<usize, u64> = HashMap::new();
    for value in values {
        let mut state = start;
        for &b in value.as_bytes() {
            state = nfa.next_state(Anchored::No, state, b);
            *visits.entry(state.as_usize() * 4 / 64).or_default() += 1;
        }
    }
    let mut counts: Vec<u64> = visits.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let total = counts.iter().sum::<u64>() as f64;
    // The busiest lines first, as many as it takes to reach each share.
    shares.map(|share| {
        let mut seen = 0;
        let reached = counts.iter().position(|&c| {
            seen += c;
            seen as f64 >= share * total
        });
        reached.map_or(counts.len(), |i| i + 1) * 64 / 1024
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, literals, values] = &args[..] else { panic!("usage: literal_scan LITERALS VALUES") };
    let (literals, values) = (lines(literals), lines(values));
    for min_bytes in [1, 4, 6, 8] {
        let chosen: Vec<&String> = literals.iter().filter(|l| l.len() >= min_bytes).collect();
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&chosen)
            .expect("automaton");
        let (mut best, mut hits) = (f64::MAX, 0);
        for _ in 0..5 {
            let start = Instant::now();
            hits = values
                .iter()
                .map(|v| automaton.find_overlapping_iter(v.as_str()).count())
                .sum::<usize>();
            best = best.min(start.elapsed().as_secs_f64());
        }
        let [hot90, hot99] = hot_kib(&chosen, &values, [0.9, 0.99]);
        println!(
            "{{\"min_bytes\": {min_bytes}, \"literals\": {}, \"automaton_bytes\": {}, \"walk_kib_90\": {hot90}, \"walk_kib_99\": {hot99}, \"hits_per_value\": {:.1}, \"ns_per_value\": {:.0}}}",
            chosen.len(),
            automaton.memory_usage(),
            hits as f64 / values.len() as f64,
            best * 1e9 / values.len() as f64
        );
    }
}
