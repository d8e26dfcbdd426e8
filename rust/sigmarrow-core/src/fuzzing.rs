//! What the fuzz targets (`fuzz/`, `cargo +nightly fuzz run program|values`) and the seeded
//! replay test below run: any input gives an answer or an error, never a panic, and the
//! engine's shortcuts (prefilter, memo, dictionaries) never change a result.

use std::sync::{Arc, OnceLock};

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch, StringArray};

use crate::column::check_between_offsets;
use crate::program::test_program;
use crate::{Matcher, Options, Program};

/// Values every loaded program is matched against: case-folding traps, numbers,
/// timestamps, addresses, regex and glob syntax.
const VALUES: &[&str] = &[
    "",
    "x",
    "C:\\Windows\\System32\\whoami.exe",
    "WHOAMI.EXE",
    "Straße",
    "ΣΑΣ ς",
    "\u{130}\u{212a}",
    "10.1.2.3",
    "::1",
    "4688",
    "-1.5e3",
    "true",
    "2024-03-05T23:30:00+0100",
    "2024-03-05",
    "a\nb",
    "🙂 evil",
    "x(?=y)*?",
];

/// Loads a program from arbitrary bytes; a program that loads is matched on [`VALUES`]
/// (one string column per field, and every column searched by keywords).
pub fn program(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(program) = Program::from_json(text) else { return };
    let columns: Vec<Vec<String>> = (0..program.fields.len())
        .map(|f| {
            (0..VALUES.len()).map(|row| VALUES[(f + row) % VALUES.len()].to_string()).collect()
        })
        .collect();
    let fast = Matcher::new(&program, Options::default());
    let plain = Matcher::new(&program, Options { prefilter: false, memo: false });
    agree(&fast, &plain, &program.fields, &columns);
}

/// The atoms of [`values`]: one of each kind, on fields `A` and `B` and the keyword columns.
const ATOMS: &str = r#"[
    {"op": "str", "field": 0, "anchor": "exact", "value": "whoami.exe", "cased": false},
    {"op": "str", "field": 0, "anchor": "suffix", "value": "\\whoami.exe", "cased": false},
    {"op": "str", "field": 0, "anchor": "prefix", "value": "C:\\Windows\\", "cased": false},
    {"op": "str", "field": 0, "anchor": "contains", "value": "ß", "cased": false},
    {"op": "str", "field": 0, "anchor": "contains", "value": "X", "cased": true},
    {"op": "glob", "field": 0, "parts": ["many", {"lit": "WHO"}, "one", {"lit": "mi"}, "many"], "cased": false},
    {"op": "re", "field": 0, "pattern": "(?i)who.mi|\\d{3,}", "flags": ""},
    {"op": "re", "field": 1, "pattern": "^a.b$", "flags": "s"},
    {"op": "cidr", "field": 1, "network": "10.0.0.0/8"},
    {"op": "num", "field": 1, "cmp": "gt", "value": 100},
    {"op": "bool", "field": 1, "value": true},
    {"op": "time", "field": 1, "part": "hour", "cmp": "eq", "value": 22},
    {"op": "null", "field": 1},
    {"op": "exists", "field": 0},
    {"op": "fieldref", "field": 0, "other": 1, "anchor": "contains"},
    {"op": "str", "field": null, "anchor": "contains", "value": "evil", "cased": false},
    {"op": "str", "field": 0, "anchor": "exact", "value": "", "cased": false}
]"#;

const CONDITIONS: &[&str] = &[
    r#"{"atom": 0}"#,
    r#"{"and": [{"atom": 1}, {"not": {"atom": 2}}]}"#,
    r#"{"or": [{"atom": 3}, {"atom": 4}, {"atom": 16}]}"#,
    r#"{"and": [{"atom": 13}, {"or": [{"atom": 5}, {"atom": 6}]}]}"#,
    r#"{"and": [{"atom": 0}, {"not": {"atom": 7}}]}"#,
    r#"{"or": [{"atom": 7}, {"atom": 8}, {"atom": 9}, {"atom": 10}, {"atom": 11}]}"#,
    r#"{"not": {"atom": 12}}"#,
    r#"{"and": [{"atom": 14}, {"not": {"atom": 15}}]}"#,
    r#"{"atom": 15}"#,
];

/// Matches arbitrary values (the input split at newlines, read as UTF-8 lossily, into
/// columns `A` and `B`) with a program of every kind of atom; and checks the engine's
/// UTF-8 validation of the raw pieces against the standard library's.
pub fn values(data: &[u8]) {
    let pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let mut offsets = vec![0i32];
    for piece in &pieces {
        offsets.push(offsets[offsets.len() - 1] + piece.len() as i32);
    }
    let bytes: Vec<u8> = pieces.concat();
    let valid = pieces.iter().all(|p| std::str::from_utf8(p).is_ok());
    assert_eq!(check_between_offsets(&offsets, &bytes).is_ok(), valid, "UTF-8 validation");

    let text = |p: &&[u8]| String::from_utf8_lossy(p).into_owned();
    let a: Vec<String> = pieces.iter().step_by(2).map(text).collect();
    let b: Vec<String> =
        pieces.iter().skip(1).step_by(2).map(text).chain([String::new()]).collect();
    static MATCHERS: OnceLock<(Matcher, Matcher)> = OnceLock::new();
    let (fast, plain) = MATCHERS.get_or_init(|| {
        let program = test_program(r#"["A", "B"]"#, ATOMS, CONDITIONS);
        let program = Program::from_json(&program).expect("the fuzzing program loads");
        let plain = Matcher::new(&program, Options { prefilter: false, memo: false });
        (Matcher::new(&program, Options::default()), plain)
    });
    let names = ["A".to_string(), "B".to_string()];
    agree(fast, plain, &names, &[a.clone(), b[..a.len()].to_vec()]);
}

/// Matches the columns (named `names`, as strings and dictionary-encoded) with every
/// shortcut (`fast`) and with none (`plain`): the hits must be the same.
fn agree(fast: &Matcher, plain: &Matcher, names: &[String], columns: &[Vec<String>]) {
    let strings: Vec<ArrayRef> =
        columns.iter().map(|c| Arc::new(StringArray::from_iter_values(c)) as ArrayRef).collect();
    let dictionaries: Vec<ArrayRef> = columns
        .iter()
        .map(|c| {
            let mut builder = StringDictionaryBuilder::<Int32Type>::new();
            c.iter().for_each(|v| builder.append_value(v));
            Arc::new(builder.finish()) as ArrayRef
        })
        .collect();
    let batch = |arrays: &[ArrayRef]| {
        RecordBatch::try_from_iter(names.iter().zip(arrays).map(|(n, a)| (n.as_str(), a.clone())))
    };
    // Duplicate field names make no batch: nothing to match.
    let (Ok(strings), Ok(dictionaries)) = (batch(&strings), batch(&dictionaries)) else { return };
    let rows = strings.num_rows() as u64;
    let expected = match plain.match_batches(std::slice::from_ref(&strings), names, 1) {
        Ok(hits) => hits,
        Err(e) => panic!("no error is expected on string columns: {e}"),
    };
    let both = [strings, dictionaries];
    let got = fast.match_batches(&both, names, 1).expect("matched once");
    let (first, second): (Vec<_>, Vec<_>) = got.into_iter().partition(|&(row, _)| row < rows);
    assert_eq!(first, expected, "the shortcuts changed a result");
    let second: Vec<_> = second.into_iter().map(|(row, rule)| (row - rows, rule)).collect();
    assert_eq!(second, expected, "a dictionary column changed a result");
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The checked-in seeds and regressions of a fuzz target, then `n` random inputs made
    /// from them (spliced, cut and flipped by a seeded generator): what CI runs in seconds.
    fn replay(target: &str, run: fn(&[u8]), n: usize) {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut inputs: Vec<Vec<u8>> = ["seeds", "regressions"]
            .iter()
            .flat_map(|dir| std::fs::read_dir(fuzz.join(dir).join(target)).into_iter().flatten())
            .map(|entry| std::fs::read(entry.expect("a corpus entry").path()).expect("readable"))
            .collect();
        assert!(!inputs.is_empty(), "no corpus for {target}");
        inputs.iter().for_each(|input| run(input));
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound.max(1) as u64) as usize
        };
        for _ in 0..n {
            let mut input = inputs[next(inputs.len())].clone();
            match next(3) {
                0 => {
                    let other = &inputs[next(inputs.len())];
                    let (at, from) = (next(input.len()), next(other.len()));
                    input.splice(at.., other[from..].iter().copied());
                }
                1 => input.truncate(next(input.len() + 1)),
                _ => {
                    for _ in 0..=next(8) {
                        let at = next(input.len());
                        if let Some(b) = input.get_mut(at) {
                            *b ^= 1 << next(8);
                        }
                    }
                }
            }
            run(&input);
            inputs.push(input);
        }
    }

    #[test]
    fn fuzz_programs_replayed() {
        replay("program", super::program, 3000);
    }

    #[test]
    fn fuzz_values_replayed() {
        replay("values", super::values, 3000);
    }
}
