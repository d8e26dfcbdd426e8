//! The Aho-Corasick crate's literal search alone, for `benches/bench_literals.py`: a case-folded
//! literal list and a list of folded values (one per line), searched with the crate's
//! overlapping iterator (every match, as the field tables did before they walked the
//! automaton themselves: docs/engine.md, "The literal search itself"), for all literals and
//! for those of at least 4, 6 and 8 bytes. Prints one JSON object per row, with the
//! automaton's size (against the caches: docs/engine.md).
//!
//!     cargo run --release -p sigmarrow-core --example literal_scan -- LITERALS VALUES

use std::time::Instant;

use aho_corasick::{AhoCorasickBuilder, MatchKind};

fn lines(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split('\n').filter(|l| !l.is_empty()).map(String::from).collect()
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
        println!(
            "{{\"min_bytes\": {min_bytes}, \"literals\": {}, \"automaton_bytes\": {}, \"hits_per_value\": {:.1}, \"ns_per_value\": {:.0}}}",
            chosen.len(),
            automaton.memory_usage(),
            hits as f64 / values.len() as f64,
            best * 1e9 / values.len() as f64
        );
    }
}
