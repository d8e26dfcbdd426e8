//! The compiled matcher: immutable and shared by all threads; each thread brings its own
//! scratch space (`scratch.rs`). This module evaluates; `plan.rs` decides how each rule
//! runs, `table.rs` holds the per-field tables.

use std::collections::HashMap;
use std::ops::Range;

use arrow_array::RecordBatch;
use rayon::prelude::*;

use crate::column::{dictionary_values, Col, StrCol, Value};
use crate::error::{Error, Result};
use crate::plan::{atoms_of, lazy_atoms, CompiledRule, LazyAtom, RulePlan};
use crate::program::{Anchor, Atom, AtomId, Expr, FieldId, Program, RuleId};
use crate::regex::{compile_check, CompiledCheck};
use crate::scratch::{
    sets_bit, AtomBits, Memo, MemoQueue, ScratchPool, ThreadScratch, ValueScratch, CHUNK_ROWS,
    WORDS,
};
use crate::table::FieldTable;
use crate::threads::thread_pool;

/// A row index within the data and the index of the rule that matched it.
pub type Hit = (u64, RuleId);

/// Switches for the engine's shortcuts; results never depend on them (tests run both).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Run globs and regexes only on values holding one of their trigger literals.
    pub prefilter: bool,
    /// Remember the atoms of repeated string values.
    pub memo: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { prefilter: true, memo: true }
    }
}

pub struct Matcher {
    fields: Vec<String>,
    tables: Vec<FieldTable>,
    keyword: FieldTable,
    field_refs: Vec<(AtomId, FieldId, FieldId, Anchor)>,
    /// Per atom: set for lazy atoms.
    lazy: Vec<Option<LazyAtom>>,
    /// The lazy atoms, by field.
    lazy_fields: Vec<(FieldId, Vec<AtomId>)>,
    /// Per field, whether it has lazy atoms.
    has_lazy: Vec<bool>,
    rules: Vec<CompiledRule>,
    /// The rules disabled because the engine cannot run them, and why.
    rule_errors: Vec<(RuleId, Error)>,
    options: Options,
    scratch: ScratchPool,
}

/// A batch's columns bound to the program's fields.
struct Bound<'a> {
    fields: Vec<Option<Col<'a>>>,
    keyword: Vec<Col<'a>>,
    /// The string columns among both, by name: validated chunk by chunk, right before the
    /// chunk is matched (while its bytes are in cache).
    strings: Vec<(String, StrCol<'a>)>,
    /// Per field: the atoms true for each dictionary value, computed once per batch, and
    /// last the atoms true for a null, the entry of every key past the values.
    dict_hits: Vec<Option<DictHits>>,
    /// The same per keyword column.
    keyword_dict_hits: Vec<Option<DictHits>>,
    rows: usize,
}

impl Matcher {
    /// Builds the matcher, compiling each glob and regex once. A rule using a regex that
    /// does not compile, or nested too deep, is disabled (it never matches) and listed in
    /// [`Matcher::rule_errors`].
    pub fn new(program: &Program, options: Options) -> Matcher {
        let mut checks: Vec<Option<CompiledCheck>> = Vec::with_capacity(program.atoms.len());
        let mut failed: Vec<Option<Error>> = Vec::with_capacity(program.atoms.len());
        for atom in &program.atoms {
            let (check, error) = match compile_check(atom) {
                Some(Ok(check)) => (Some(check), None),
                Some(Err(e)) => (None, Some(e)),
                None => (None, None),
            };
            checks.push(check);
            failed.push(error);
        }
        let mut rule_errors = Vec::new();
        let mut rules: Vec<CompiledRule> = Vec::with_capacity(program.rules.len());
        for (index, rule) in program.rules.iter().enumerate() {
            let refused = match &rule.condition {
                Ok(condition) => {
                    let atoms = atoms_of(condition);
                    atoms
                        .iter()
                        .find_map(|&(a, _)| failed[a.index()].clone())
                        .map_or(Ok(condition), Err)
                }
                Err(error) => Err(error.clone()),
            };
            let condition = match refused {
                Ok(condition) => condition.clone(),
                Err(error) => {
                    rule_errors.push((RuleId(index as u32), error));
                    Expr::Const(false)
                }
            };
            rules.push(CompiledRule::new(condition));
        }
        let mut used = vec![false; program.atoms.len()];
        for rule in &rules {
            atoms_of(&rule.condition).into_iter().for_each(|(a, _)| used[a.index()] = true);
        }
        let lazy = if options.prefilter {
            lazy_atoms(program, &mut rules, &used, &mut checks)
        } else {
            vec![]
        };
        let mut tables: Vec<FieldTable> =
            program.fields.iter().map(|_| FieldTable::default()).collect();
        let mut keyword = FieldTable::default();
        let mut field_refs = Vec::new();
        let mut slot = 0;
        for (id, (atom, check)) in program.atoms.iter().zip(checks).enumerate() {
            if !used[id] || lazy.get(id).is_some_and(Option::is_some) {
                continue;
            }
            let id = AtomId(id as u32);
            let table = match atom.field() {
                Some(f) => &mut tables[f.index()],
                None => &mut keyword,
            };
            match (atom, check) {
                (Atom::FieldRef { field, other, anchor }, _) => {
                    field_refs.push((id, *field, *other, *anchor))
                }
                (_, Some(check)) => table.add_check(id, check, &mut slot),
                (_, None) => table.add(id, atom),
            }
        }
        for table in tables.iter_mut().chain([&mut keyword]) {
            table.build(options.prefilter);
        }
        let mut lazy_fields: Vec<(FieldId, Vec<AtomId>)> = Vec::new();
        for (id, atom) in lazy.iter().enumerate() {
            let Some(atom) = atom else { continue };
            let id = AtomId(id as u32);
            match lazy_fields.iter_mut().find(|(f, _)| *f == atom.field) {
                Some((_, atoms)) => atoms.push(id),
                None => lazy_fields.push((atom.field, vec![id])),
            }
        }
        let mut has_lazy = vec![false; program.fields.len()];
        lazy_fields.iter().for_each(|(f, _)| has_lazy[f.index()] = true);
        Matcher {
            fields: program.fields.clone(),
            tables,
            keyword,
            field_refs,
            lazy,
            lazy_fields,
            has_lazy,
            rules,
            rule_errors,
            options,
            scratch: ScratchPool::new(program.atoms.len(), program.fields.len()),
        }
    }

    pub fn from_json(text: &str, options: Options) -> Result<Matcher> {
        Ok(Matcher::new(&Program::from_json(text)?, options))
    }

    /// The rules the engine cannot run (they never match), each with the reason.
    pub fn rule_errors(&self) -> &[(RuleId, Error)] {
        &self.rule_errors
    }

    /// Matches `batches` (rows numbered across them in order) on `threads` threads and
    /// returns hits ordered by row, then rule. A field is read from the column of the same
    /// name; a field with no column is absent. Keyword atoms search `keyword_columns`.
    pub fn match_batches(
        &self,
        batches: &[RecordBatch],
        keyword_columns: &[String],
        threads: usize,
    ) -> Result<Vec<Hit>> {
        self.scratch.new_trial();
        let bound: Vec<Bound> =
            batches.iter().map(|b| self.bind(b, keyword_columns)).collect::<Result<_>>()?;
        let mut work = Vec::new();
        let mut offset = 0u64;
        for (b, batch) in bound.iter().enumerate() {
            for start in (0..batch.rows).step_by(CHUNK_ROWS) {
                work.push((b, start, (start + CHUNK_ROWS).min(batch.rows), offset));
            }
            offset += batch.rows as u64;
        }
        let run = || -> Result<Vec<Vec<Hit>>> {
            work.par_iter()
                .map_init(
                    || self.scratch.take(),
                    |scratch, &(b, start, end, offset)| {
                        let mut hits = Vec::new();
                        self.match_chunk(&bound[b], start, end, scratch, &mut |row, rule| {
                            hits.push((offset + row as u64, rule))
                        })?;
                        Ok(hits)
                    },
                )
                .collect::<Result<Vec<Vec<Hit>>>>()
        };
        Ok(thread_pool(threads)?.install(run)?.concat())
    }

    /// How the engine runs rule number `rule`.
    pub fn rule_plan(&self, rule: RuleId) -> Option<RulePlan> {
        self.rules.get(rule.index()).map(CompiledRule::plan)
    }

    fn reads_values(&self, f: usize) -> bool {
        let f = FieldId(f as u32);
        self.tables[f.index()].reads_values()
            || self.field_refs.iter().any(|&(_, a, b, _)| a == f || b == f)
            || self.lazy.iter().flatten().any(|l| l.field == f)
    }

    fn bind<'a>(&self, batch: &'a RecordBatch, keyword_columns: &[String]) -> Result<Bound<'a>> {
        let schema = batch.schema();
        let column = |name: &str| -> Result<Option<Col<'a>>> {
            match schema.index_of(name) {
                Ok(i) => Col::new(name, batch.column(i).as_ref()).map(Some),
                Err(_) => Ok(None),
            }
        };
        let fields: Vec<Option<Col>> = self
            .fields
            .iter()
            .enumerate()
            .map(|(f, name)| match column(name) {
                // Presence tests read any type.
                Err(Error::UnsupportedType { .. }) if !self.reads_values(f) => Ok(Some(
                    Col::Present(batch.column(schema.index_of(name).expect("found")).as_ref()),
                )),
                other => other,
            })
            .collect::<Result<_>>()?;
        let mut strings: Vec<(String, StrCol)> = Vec::new();
        for (name, col) in self.fields.iter().zip(&fields) {
            if let Some(Col::Str(s)) = col {
                strings.push((name.clone(), *s));
            }
        }
        // Dictionary values go through the field's memo too: the batches of one dataset
        // usually repeat their dictionaries. A dictionary larger than its batch (a slice of
        // a bigger array) is not evaluated whole: its rows go through the memo one by one.
        // Keyword columns are evaluated per dictionary value likewise.
        let mut pooled = self.scratch.take();
        let ThreadScratch { values: scratch, memos, keyword_memos, .. } = &mut *pooled;
        let rows = batch.num_rows();
        let dict_hits = fields
            .iter()
            .zip(&self.tables)
            .zip(memos)
            .map(|((col, table), memo)| match col {
                Some(Col::Dict { values, .. }) => {
                    self.dict_hits(values, rows, table, memo, scratch)
                }
                _ => None,
            })
            .collect();
        // A keyword column that is also a field was bound (and its values validated) as one.
        let field_cols: HashMap<&str, &Col> = (self.fields.iter().zip(&fields))
            .filter_map(|(name, col)| Some((name.as_str(), col.as_ref()?)))
            .collect();
        keyword_memos.resize_with(keyword_columns.len(), Memo::default);
        let (mut keyword, mut keyword_dict_hits) = (Vec::new(), Vec::new());
        for (name, memo) in keyword_columns.iter().zip(keyword_memos) {
            let Ok(i) = schema.index_of(name) else { continue };
            let array = batch.column(i).as_ref();
            let field_col = field_cols.get(name.as_str());
            let values = match field_col {
                Some(Col::Dict { values, .. }) => Some(*values),
                _ => dictionary_values(name, array)?,
            };
            // A dictionary column none of whose values holds a keyword is left out: its
            // keys are never read (nor converted, a pass over every row).
            let hits = match values {
                Some(values) => match self.dict_hits(&values, rows, &self.keyword, memo, scratch) {
                    Some(hits) if hits.atoms.is_empty() => continue,
                    hits => hits,
                },
                None => None,
            };
            let col = Col::new(name, array)?;
            // Validated once per chunk, with the fields' string columns.
            if let (Col::Str(s), false) = (&col, matches!(field_col, Some(Col::Str(_)))) {
                strings.push((name.clone(), *s));
            }
            keyword.push(col);
            keyword_dict_hits.push(hits);
        }
        Ok(Bound { fields, keyword, strings, dict_hits, keyword_dict_hits, rows })
    }

    /// The atoms of `table` true for each of a dictionary's `values` and for a null, unless
    /// the dictionary is larger than its batch of `rows` (and is not evaluated whole).
    fn dict_hits(
        &self,
        values: &StrCol,
        rows: usize,
        table: &FieldTable,
        memo: &mut Memo,
        scratch: &mut ValueScratch,
    ) -> Option<DictHits> {
        if values.len() > rows || table.is_empty() {
            return None;
        }
        let mut hits = DictHits::default();
        // A bulk search reports the values' atoms in the values' order.
        let mut found: Vec<(usize, AtomId)> = Vec::new();
        if values.eval_bulk(table, 0, values.len(), &mut |i, a| found.push((i, a))) {
            let mut found = found.into_iter().peekable();
            for i in 0..values.len() {
                let start = hits.atoms.len() as u32;
                while let Some((_, a)) = found.next_if(|&(value, _)| value == i) {
                    hits.atoms.push(a);
                }
                hits.spans.push((start, hits.atoms.len() as u32));
            }
        } else {
            for i in 0..values.len() {
                let start = hits.atoms.len() as u32;
                match values.get(i) {
                    Some(v) if self.options.memo && memo.takes(v) => {
                        memo.group_atoms(table, &[(i, v)], scratch, &mut [], &mut |_, a| {
                            hits.atoms.push(a)
                        })
                    }
                    Some(v) => table.eval(Value::Str(v), scratch, &mut |a| hits.atoms.push(a)),
                    None => hits.atoms.extend_from_slice(&table.nulls),
                }
                hits.spans.push((start, hits.atoms.len() as u32));
            }
        }
        let start = hits.atoms.len() as u32;
        hits.atoms.extend_from_slice(&table.nulls);
        hits.spans.push((start, hits.atoms.len() as u32));
        Some(hits)
    }

    /// Sets the bits of the atoms true for each row of one field's column.
    fn eval_field(
        &self,
        f: usize,
        data: &Bound,
        start: usize,
        end: usize,
        scratch: &mut ThreadScratch,
    ) {
        let table = &self.tables[f];
        let ThreadScratch { values, bits, memos, first_rows, .. } = scratch;
        let first_rows = &mut first_rows[f];
        first_rows.clear();
        if table.is_empty() {
            return;
        }
        let Some(col) = &data.fields[f] else {
            for &a in &table.nulls {
                (0..end - start).for_each(|r| bits.set(a, r));
            }
            return;
        };
        if let (Col::Dict { keys, .. }, Some(hits)) = (col, &data.dict_hits[f]) {
            hits.set_rows(&keys[start..end], bits);
            return;
        }
        // Rows the memo will not see are their own first rows.
        if self.has_lazy[f] && self.options.memo && !table.is_anchored() {
            first_rows.extend(0..(end - start) as u32);
            memos[f].next_chunk();
        }
        self.eval_column(table, col, start, end, &mut memos[f], values, first_rows, bits);
    }

    /// Sets the bits of the atoms of `table` true for each row of `col`, a field's column
    /// or a keyword column; and, unless `first_rows` is empty, the first row of each row's
    /// value where the memo knows it.
    #[allow(clippy::too_many_arguments)]
    fn eval_column(
        &self,
        table: &FieldTable,
        col: &Col,
        start: usize,
        end: usize,
        memo: &mut Memo,
        values: &mut ValueScratch,
        first_rows: &mut [u32],
        bits: &mut AtomBits,
    ) {
        if let Col::Str(strings) = col {
            if strings.eval_bulk(table, start, end, &mut |r, a| bits.set(a, r)) {
                return;
            }
            // Wide, sparse tables: each event fills a few of hundreds of columns. Null rows
            // are set word by word and only the valid rows are read.
            if let Some(nulls) = strings.nulls().filter(|n| n.null_count() > 0) {
                let valid = nulls.inner().slice(start, end - start);
                if !table.nulls.is_empty() {
                    let mut absent = [0u64; WORDS];
                    for (w, chunk) in absent.iter_mut().zip(valid.bit_chunks().iter_padded()) {
                        *w = !chunk;
                    }
                    if let Some(last) = absent.get_mut((end - start) / 64) {
                        *last &= (1u64 << ((end - start) % 64)).wrapping_sub(1);
                    }
                    table.nulls.iter().for_each(|&a| bits.set_words(a, &absent));
                }
                let mut queue = MemoQueue::new(first_rows);
                for r in valid.set_indices() {
                    let s = strings.valid_value(start + r);
                    if table.is_anchored() {
                        table.eval_anchored(s.as_bytes(), values, &mut sets_bit(bits, r));
                    } else if self.options.memo && memo.takes(s) {
                        queue.push(r, s, memo, table, values, bits);
                    } else {
                        table.eval(Value::Str(s), values, &mut sets_bit(bits, r));
                    }
                }
                queue.flush(memo, table, values, bits);
                return;
            }
            if table.is_anchored() {
                strings.for_each_bytes(start, end, |row, value| match value {
                    Some(s) => table.eval_anchored(s, values, &mut sets_bit(bits, row - start)),
                    None => table.nulls.iter().for_each(|&a| bits.set(a, row - start)),
                });
                return;
            }
        }
        let mut queue = MemoQueue::new(first_rows);
        for row in start..end {
            let r = row - start;
            match col.value(row) {
                None => table.nulls.iter().for_each(|&a| bits.set(a, r)),
                Some(Value::Str(s)) if self.options.memo && memo.takes(s) => {
                    queue.push(r, s, memo, table, values, bits)
                }
                Some(v) => table.eval(v, values, &mut sets_bit(bits, r)),
            }
        }
        queue.flush(memo, table, values, bits);
    }

    /// Tests each lazy atom on the candidate rows of the rules using it, reading and
    /// folding each value once for all the atoms (a value per slot, below).
    fn eval_lazy(&self, data: &Bound, start: usize, scratch: &mut ThreadScratch) {
        let ThreadScratch { bits, candidates, first_rows, lazy_rows, lazy_values, .. } = scratch;
        for (rule, rows) in candidates.iter() {
            for &a in self.rules[rule.index()].lazy.iter().flat_map(|(_, atoms)| atoms) {
                lazy_rows.set_words(a, rows);
            }
        }
        for (field, atoms) in &self.lazy_fields {
            let Some(col) = &data.fields[field.index()] else {
                continue;
            };
            lazy_values.clear();
            for &a in atoms {
                let Some(rows) = lazy_rows.get(a) else {
                    continue;
                };
                let test = self.lazy[a.index()].as_ref().expect("lazy atom");
                for (w, &word) in rows.iter().enumerate() {
                    let mut word = word;
                    while word != 0 {
                        let r = w * 64 + word.trailing_zeros() as usize;
                        word &= word - 1;
                        let row = start + r;
                        // A small dictionary's values are read and tested once per chunk
                        // (a null key is past the values), a column's once per value the
                        // memo knows, else once per row.
                        let slot = col.key_slot(row).unwrap_or_else(|| {
                            match &first_rows[field.index()][..] {
                                [] => r,
                                firsts => firsts[r] as usize,
                            }
                        });
                        let read = || col.value(row).and_then(|v| v.text());
                        if lazy_values.test(slot, read, |text, folded| test.test(text, folded)) {
                            bits.set(a, r);
                        }
                    }
                }
                lazy_values.next_atom();
            }
        }
        lazy_rows.clear();
    }

    fn match_chunk(
        &self,
        data: &Bound,
        start: usize,
        end: usize,
        scratch: &mut ThreadScratch,
        emit: &mut impl FnMut(usize, RuleId),
    ) -> Result<()> {
        for (name, strings) in &data.strings {
            strings.validate(name, start..end)?;
        }
        for f in 0..self.tables.len() {
            self.eval_field(f, data, start, end, scratch);
        }
        let ThreadScratch { values, bits, keyword_memos, ref_values: [xs, ys], .. } = scratch;
        keyword_memos.resize_with(data.keyword.len(), Memo::default);
        for ((col, dict), memo) in
            data.keyword.iter().zip(&data.keyword_dict_hits).zip(keyword_memos)
        {
            match (col, dict) {
                (Col::Dict { keys, .. }, Some(hits)) => hits.set_rows(&keys[start..end], bits),
                _ => self.eval_column(&self.keyword, col, start, end, memo, values, &mut [], bits),
            }
        }
        for &(a, f, other, anchor) in &self.field_refs {
            let (Some(x), Some(y)) = (&data.fields[f.index()], &data.fields[other.index()]) else {
                continue;
            };
            xs.clear();
            ys.clear();
            for row in start..end {
                let r = row - start;
                let (Some(x), Some(y)) = (xs.get(x, row), ys.get(y, row)) else {
                    continue;
                };
                if anchor.holds(x.as_bytes(), y.as_bytes()) {
                    bits.set(a, r);
                }
            }
        }
        // Lazy atoms are in no needed set: their bits cannot change the candidates.
        scratch.candidates.clear();
        for (index, rule) in self.rules.iter().enumerate() {
            if let Some(rows) = needed_rows(rule, &scratch.bits) {
                scratch.candidates.push((RuleId(index as u32), rows));
            }
        }
        self.eval_lazy(data, start, scratch);
        let ThreadScratch { bits, candidates, .. } = scratch;
        let rows = end - start;
        let live: [u64; WORDS] = std::array::from_fn(|w| match rows.saturating_sub(w * 64) {
            0 => 0,
            n if n >= 64 => u64::MAX,
            n => (1 << n) - 1,
        });
        let mut hits = Vec::new();
        for (rule, candidates) in candidates.iter() {
            // Only the words holding candidates: the rule is false on every other row.
            let first = candidates.iter().position(|&w| w != 0).expect("a candidate");
            let last = candidates.iter().rposition(|&w| w != 0).expect("a candidate");
            let mut set = [0; WORDS];
            eval(&self.rules[rule.index()].condition, bits, first..last + 1, &mut set);
            for w in first..=last {
                let mut word = set[w] & candidates[w] & live[w];
                while word != 0 {
                    hits.push((w * 64 + word.trailing_zeros() as usize, *rule));
                    word &= word - 1;
                }
            }
        }
        bits.clear();
        hits.sort_unstable();
        hits.into_iter().for_each(|(r, rule)| emit(start + r, rule));
        Ok(())
    }
}

/// The atoms true for each value of a dictionary, and last for a null (the entry of every
/// key past the values), end to end: one lookup per row.
#[derive(Default)]
struct DictHits {
    /// Per value (and last for a null), where its atoms start and end in `atoms`.
    spans: Vec<(u32, u32)>,
    atoms: Vec<AtomId>,
}

impl DictHits {
    /// Sets the bits of the atoms true for each row of a chunk, given its keys.
    fn set_rows(&self, keys: &[u32], bits: &mut AtomBits) {
        // Most keyword columns hold no value with a keyword: no row to visit.
        if self.atoms.is_empty() {
            return;
        }
        // Borrowed apart from the bits, so that nothing is reloaded row by row.
        let (spans, atoms) = (&self.spans[..], &self.atoms[..]);
        let past = spans.len() - 1;
        for (r, &key) in keys.iter().enumerate() {
            let (first, end) = spans[(key as usize).min(past)];
            if first != end {
                atoms[first as usize..end as usize].iter().for_each(|&a| bits.set(a, r));
            }
        }
    }
}

/// The rows of the chunk where each of `rule`'s needed sets has a hit (all rows for a rule
/// without any); None when there are none, and the rule cannot hold on the chunk.
fn needed_rows(rule: &CompiledRule, bits: &AtomBits) -> Option<[u64; WORDS]> {
    let mut rows = [u64::MAX; WORDS];
    for set in &rule.needs {
        let mut hits = set.iter().filter_map(|&a| bits.get(a));
        // Most sets have one atom, or one with hits: no copy of the all-ones start.
        let mut any = *hits.next()?;
        for set_bits in hits {
            any.iter_mut().zip(set_bits).for_each(|(x, y)| *x |= y);
        }
        let mut left = 0;
        rows.iter_mut().zip(any).for_each(|(x, y)| {
            *x &= y;
            left |= *x;
        });
        if left == 0 {
            return None;
        }
    }
    Some(rows)
}

/// Sets `out[words]` to the rows of those words of the chunk where `expr` is true (the
/// rest of `out` is left as it was). Atoms under an `and`, an `or` or a `not` are combined
/// in place, without a copy of their bits.
fn eval(expr: &Expr, bits: &AtomBits, words: Range<usize>, out: &mut [u64; WORDS]) {
    let out_words = &mut out[words.clone()];
    match expr {
        Expr::Atom(a) => match bits.get(*a) {
            Some(set) => out_words.copy_from_slice(&set[words]),
            None => out_words.fill(0),
        },
        Expr::Const(b) => out_words.fill(if *b { u64::MAX } else { 0 }),
        Expr::Not(x) => {
            eval(x, bits, words.clone(), out);
            out[words].iter_mut().for_each(|w| *w = !*w);
        }
        Expr::And(xs) => {
            out_words.fill(u64::MAX);
            let mut part = [0; WORDS];
            for x in xs {
                let any = combine(x, bits, words.clone(), out, &mut part, |a, b| a & b);
                if any == 0 {
                    break;
                }
            }
        }
        Expr::Or(xs) => {
            out_words.fill(0);
            let mut part = [0; WORDS];
            for x in xs {
                combine(x, bits, words.clone(), out, &mut part, |a, b| a | b);
            }
        }
    }
}

/// `out[words] = op(out[words], x)`, reading an atom's (or a negated atom's) bits in place
/// and evaluating anything else into `part`; returns the OR of the words now in `out`.
fn combine(
    x: &Expr,
    bits: &AtomBits,
    words: Range<usize>,
    out: &mut [u64; WORDS],
    part: &mut [u64; WORDS],
    op: impl Fn(u64, u64) -> u64,
) -> u64 {
    const NONE: [u64; WORDS] = [0; WORDS];
    let (set, negated): (&[u64; WORDS], bool) = match x {
        Expr::Atom(a) => (bits.get(*a).unwrap_or(&NONE), false),
        Expr::Not(y) if matches!(**y, Expr::Atom(_)) => {
            let Expr::Atom(a) = **y else { unreachable!() };
            (bits.get(a).unwrap_or(&NONE), true)
        }
        _ => {
            eval(x, bits, words.clone(), part);
            (&*part, false)
        }
    };
    let mut any = 0;
    for (o, &w) in out[words.clone()].iter_mut().zip(&set[words]) {
        *o = op(*o, if negated { !w } else { w });
        any |= *o;
    }
    any
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, DictionaryArray, Int32Array, StringArray};

    use super::*;
    use crate::program::test_program;

    #[test]
    fn a_memo_that_fills_up_and_clears_gives_the_hits_of_no_memo() {
        // More distinct values than a memo keeps, each seen again three values on (often
        // in the same lookup group, across a clear), with nulls and values too long for the
        // memo between.
        let atoms = r#"[{"op": "str", "field": 0, "anchor": "contains", "value": "7", "cased": false},
            {"op": "str", "field": 0, "anchor": "suffix", "value": "3", "cased": false}]"#;
        let program =
            test_program(r#"["A"]"#, atoms, &[r#"{"atom": 0}"#, r#"{"not": {"atom": 1}}"#]);
        let long = "7".repeat(70_000);
        let values: Vec<Option<String>> = (0..300_000u32)
            .map(|i| match (i % 101, i % 1000) {
                (0, _) => None,
                (_, 1) => Some(long.clone()),
                _ if i % 2 == 0 => Some(format!("v{}", i / 2)),
                _ => Some(format!("v{}", (i / 2).saturating_sub(3))),
            })
            .collect();
        let column: ArrayRef = Arc::new(StringArray::from(values));
        let batches = [RecordBatch::try_from_iter([("A", column)]).unwrap()];
        let hits = |memo| {
            let m = Matcher::from_json(&program, Options { prefilter: true, memo }).unwrap();
            m.match_batches(&batches, &[], 1).unwrap()
        };
        let expected = hits(false);
        assert!(expected.len() > 100_000, "{}", expected.len());
        assert_eq!(hits(true), expected);
    }

    #[test]
    fn a_lazy_atom_tested_once_per_value_gives_the_hits_of_one_test_per_row() {
        // Every other B value repeats (within a chunk, and across chunks at other rows),
        // the others are new, null or too long for the memo, which fills up and clears
        // mid-chunk: the lazy filter on B, tested once per value and chunk where the memo
        // knows the value, must hold on the same rows as when tested row by row (memo off).
        let atoms = r#"[{"op": "str", "field": 0, "anchor": "contains", "value": "x", "cased": false},
            {"op": "str", "field": 1, "anchor": "suffix", "value": "3", "cased": false},
            {"op": "str", "field": 1, "anchor": "contains", "value": "7", "cased": false}]"#;
        let program = test_program(
            r#"["A", "B"]"#,
            atoms,
            &[r#"{"and": [{"atom": 0}, {"not": {"atom": 1}}]}"#, r#"{"atom": 2}"#],
        );
        let long = "3".repeat(70_000);
        let a: Vec<Option<&str>> = (0..300_000u32).map(|i| (i % 3 != 0).then_some("x")).collect();
        let b: Vec<Option<String>> = (0..300_000u32)
            .map(|i| match (i % 97, i % 1000) {
                (0, _) => None,
                (_, 1) => Some(long.clone()),
                _ if i % 2 == 0 => Some(format!("b{}", i / 2 % 50)),
                _ => Some(format!("v{i}")),
            })
            .collect();
        let (a, b): (ArrayRef, ArrayRef) =
            (Arc::new(StringArray::from(a)), Arc::new(StringArray::from(b)));
        let batches = [RecordBatch::try_from_iter([("A", a), ("B", b)]).unwrap()];
        let hits = |memo| {
            let m = Matcher::from_json(&program, Options { prefilter: true, memo }).unwrap();
            assert_eq!(m.rule_plan(RuleId(0)).unwrap().lazy, [AtomId(1)]);
            m.match_batches(&batches, &[], 1).unwrap()
        };
        let expected = hits(false);
        let filtered = expected.iter().filter(|(_, r)| *r == RuleId(0)).count();
        assert!((100_000..200_000).contains(&filtered), "{filtered}");
        assert_eq!(hits(true), expected);
    }

    #[test]
    fn keywords_on_a_dictionary_column_hit_the_rows_of_the_same_column_plain() {
        // Keyword atoms run once per dictionary value of a keyword column, beside a field
        // atom on the same column; null keys, a null dictionary value and values no row uses
        // must give the hits of the plain column with the shortcuts off.
        let atoms = r#"[{"op": "str", "field": null, "anchor": "contains", "value": "EVIL", "cased": false},
            {"op": "str", "field": 0, "anchor": "suffix", "value": ".exe", "cased": false}]"#;
        let program = test_program(
            r#"["A"]"#,
            atoms,
            &[r#"{"atom": 0}"#, r#"{"and": [{"atom": 0}, {"atom": 1}]}"#],
        );
        let values =
            [Some("x\\evil.exe"), Some("calc.exe"), None, Some("an Evil one"), Some("unused evil")];
        let keys: Vec<Option<i32>> =
            (0..10_000).map(|i| (i % 7 != 0).then_some([0, 1, 2, 3][i % 4])).collect();
        let plain: ArrayRef = Arc::new(StringArray::from(
            keys.iter().map(|k| k.and_then(|k| values[k as usize])).collect::<Vec<_>>(),
        ));
        let keys = Int32Array::from(keys);
        let hits = |column: ArrayRef, options| {
            let batches = [RecordBatch::try_from_iter([("A", column)]).unwrap()];
            let m = Matcher::from_json(&program, options).unwrap();
            m.match_batches(&batches, &["A".to_string()], 1).unwrap()
        };
        let expected = hits(plain, Options { prefilter: false, memo: false });
        let rules = |rule| expected.iter().filter(|(_, r)| *r == RuleId(rule)).count();
        assert_eq!((rules(0), rules(1)), (4285, 2142));
        // The dictionary's values searched in bulk, and one by one (a non-ASCII value).
        let mut non_ascii = values.to_vec();
        non_ascii[4] = Some("unused évil");
        for dictionary in [values.to_vec(), non_ascii] {
            let dictionary = Arc::new(StringArray::from(dictionary));
            let dict = DictionaryArray::try_new(keys.clone(), dictionary).unwrap();
            for memo in [true, false] {
                let options = Options { prefilter: true, memo };
                assert_eq!(hits(Arc::new(dict.clone()), options), expected);
            }
        }
    }

    #[test]
    fn keywords_searched_over_a_chunk_at_once_hit_the_rows_of_a_search_per_value() {
        // Literals that overlap, and that sit across two values ("..ev" then "il.."); null
        // rows whose slots still hold bytes; a chunk with a non-ASCII value (the Kelvin sign
        // folds to "k"), searched value by value: the hits of the shortcuts off. With 3
        // literals, and with 200 more (past the prefilter's 64).
        let pieces = ["xev", "il.ex", "EVIL.", "", "vil", "Kit", "k", "it", "Evil", "q7z"];
        let mut values: Vec<String> = (0..9_000).map(|i| pieces[i % 10].to_string()).collect();
        values[5_001] = "\u{212A}IT".to_string();
        let offsets = arrow_buffer::OffsetBuffer::from_lengths(values.iter().map(String::len));
        let nulls = arrow_buffer::NullBuffer::from_iter((0..9_000).map(|i| i % 7 != 0));
        let column: ArrayRef =
            Arc::new(StringArray::new(offsets, values.concat().into_bytes().into(), Some(nulls)));
        let batches = [RecordBatch::try_from_iter([("A", column)]).unwrap()];
        let keyword = |value: &str| {
            format!(
                r#"{{"op": "str", "field": null, "anchor": "contains", "value": "{value}", "cased": false}}"#
            )
        };
        for extra in [0, 200] {
            let mut literals = vec!["EVIL".to_string(), "vil.".to_string(), "kit".to_string()];
            literals.extend((0..extra).map(|i| format!("q{i}z")));
            let atoms: Vec<String> = literals.iter().map(|l| keyword(l)).collect();
            let conditions: Vec<String> =
                (0..literals.len()).map(|a| format!(r#"{{"atom": {a}}}"#)).collect();
            let conditions: Vec<&str> = conditions.iter().map(String::as_str).collect();
            let program = test_program(r#"["A"]"#, &format!("[{}]", atoms.join(", ")), &conditions);
            let hits = |prefilter, memo| {
                let m = Matcher::from_json(&program, Options { prefilter, memo }).unwrap();
                m.match_batches(&batches, &["A".to_string()], 1).unwrap()
            };
            let expected = hits(false, false);
            let count = |rule| expected.iter().filter(|(_, r)| *r == RuleId(rule)).count();
            assert!(expected.contains(&(5_001, RuleId(2))));
            assert!(count(0) > 1_000 && count(1) > 500 && count(2) > 500, "{expected:?}");
            assert_eq!(count(10), if extra > 0 { 772 } else { 0 });
            for memo in [true, false] {
                assert_eq!(hits(true, memo), expected);
            }
        }
    }

    #[test]
    fn a_rule_whose_regex_does_not_compile_is_disabled_and_reported() {
        let atoms = r#"[{"op": "re", "field": 0, "pattern": "a(?=b)", "flags": ""},
            {"op": "str", "field": 0, "anchor": "contains", "value": "a", "cased": false}]"#;
        let program = test_program(
            r#"["A"]"#,
            atoms,
            &[r#"{"or": [{"atom": 0}, {"atom": 1}]}"#, r#"{"atom": 1}"#],
        );
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("ab"), Some("x"), None]));
        let batches = [RecordBatch::try_from_iter([("A", values)]).unwrap()];
        for prefilter in [true, false] {
            let m = Matcher::from_json(&program, Options { prefilter, memo: true }).unwrap();
            let [(rule, error)] = m.rule_errors() else { panic!("{:?}", m.rule_errors()) };
            assert_eq!(*rule, RuleId(0));
            assert!(error.to_string().starts_with("regex 'a(?=b)' does not compile: "), "{error}");
            assert_eq!(m.match_batches(&batches, &[], 1).unwrap(), vec![(0, RuleId(1))]);
        }
    }
}
