//! The compiled matcher: immutable and shared by all threads; each thread brings its own
//! scratch space.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::RecordBatch;
use rayon::prelude::*;
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;

use memchr::memmem;

use crate::casefold::{fold, fold_into};
use crate::column::{Col, Value};
use crate::error::{Error, Result};
use crate::program::{Anchor, Atom, AtomId, Expr, FieldId, Program};
use crate::table::{compile_check, CompiledCheck, FieldTable, Scratch};

/// Rows evaluated together: the unit of work a thread takes, and the length of the
/// per-atom bit sets.
const CHUNK_ROWS: usize = 4096;
const WORDS: usize = CHUNK_ROWS / 64;
/// Memo bounds per field and thread: distinct values kept, and lookups after which a
/// field whose values rarely repeat stops using its memo.
const MEMO_ENTRIES: usize = 65_536;
const MEMO_TRIAL: u32 = 2_048;

/// A row index within the data and the index of the rule that matched it.
pub type Hit = (u64, u32);

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

struct CompiledRule {
    condition: Expr,
    /// Sets of atoms of which the rule needs at least one each (from its top-level `and`):
    /// a chunk where some set has no hit cannot match, and the rule is skipped there.
    /// None for a rule that holds with every atom false (e.g. `not filter`): it is
    /// evaluated on every chunk.
    needs: Vec<Vec<AtomId>>,
    /// The rule's lazy atoms (see [`LazyAtom`]), by field.
    lazy: Vec<(FieldId, Vec<AtomId>)>,
    /// The needed set chosen as the rule's witness: its atoms stay in the field tables.
    witness: Option<Vec<AtomId>>,
}

/// How the engine runs one rule (for `sigmarrow explain`).
#[derive(Debug, Clone, PartialEq)]
pub struct RulePlan {
    /// Sets of atoms each of which must have a hit in a chunk for the rule to be evaluated.
    pub needs: Vec<Vec<AtomId>>,
    /// The needed set whose atoms the rule is found by (lazy atoms depend on it).
    pub witness: Option<Vec<AtomId>>,
    /// Atoms tested only on the rows where every needed set hit.
    pub lazy: Vec<AtomId>,
}

/// An atom left out of the field tables and tested directly, only on the rows where each
/// rule using it has a hit in every set of atoms it needs: the rule is false on every other
/// row whatever the atom's value. Two kinds are lazy: string literals that only sit under a
/// `not` (filters), and globs and regexes outside the set of atoms each rule is found by
/// (its witness), which would otherwise run on every value holding a trigger literal.
struct LazyAtom {
    field: FieldId,
    test: LazyTest,
}

// One per lazy atom, read in place: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum LazyTest {
    Literal {
        anchor: Anchor,
        /// Folded unless `cased`.
        literal: String,
        cased: bool,
        finder: memmem::Finder<'static>,
    },
    /// A glob or regex, and finders for its trigger literals when they are few: the
    /// regex runs only if one of them is in the folded value.
    Check(CompiledCheck, Vec<memmem::Finder<'static>>),
}

/// Lazy checks with more trigger literals than this run without looking for them first.
const MAX_LAZY_TRIGGERS: usize = 4;

impl LazyAtom {
    fn new(id: AtomId, atom: &Atom) -> Result<Option<LazyAtom>> {
        let Some(field) = atom.field() else { return Ok(None) };
        let test = match atom {
            Atom::Str { anchor, value, cased, .. } if !value.is_empty() => {
                let literal = if *cased { value.clone() } else { fold(value) };
                let finder = memmem::Finder::new(literal.as_bytes()).into_owned();
                LazyTest::Literal { anchor: *anchor, literal, cased: *cased, finder }
            }
            _ => match compile_check(id, atom)? {
                Some(check) => {
                    let triggers = if check.triggers.len() <= MAX_LAZY_TRIGGERS {
                        check.triggers.iter().map(|t| memmem::Finder::new(t.as_bytes()).into_owned()).collect()
                    } else {
                        vec![]
                    };
                    LazyTest::Check(check, triggers)
                }
                None => return Ok(None),
            },
        };
        Ok(Some(LazyAtom { field, test }))
    }

    /// Whether the atom holds for a value, given also case-folded.
    fn test(&self, value: &str, folded: &str) -> bool {
        match &self.test {
            LazyTest::Literal { anchor, literal, cased, finder } => {
                let text = if *cased { value } else { folded }.as_bytes();
                match anchor {
                    // The finder, built once, is faster than a search from scratch.
                    Anchor::Contains => finder.find(text).is_some(),
                    _ => anchor.holds(text, literal.as_bytes()),
                }
            }
            LazyTest::Check(check, triggers) => {
                (triggers.is_empty() || triggers.iter().any(|t| t.find(folded.as_bytes()).is_some()))
                    && check.regex.is_match(if check.on_folded { folded } else { value })
            }
        }
    }
}

pub struct Matcher {
    fields: Vec<String>,
    tables: Vec<FieldTable>,
    keyword: FieldTable,
    field_refs: Vec<(AtomId, FieldId, FieldId, Anchor)>,
    /// Per atom: set for lazy atoms.
    lazy: Vec<Option<LazyAtom>>,
    natoms: usize,
    rules: Vec<CompiledRule>,
    options: Options,
    /// Scratch spaces not in use, kept from call to call (memos stay warm, nothing is
    /// allocated again): one per thread that matched at the same time, at most.
    scratch: Mutex<Vec<ThreadScratch>>,
}

/// A scratch space taken from the matcher's pool for one rayon job; back on drop.
struct PooledScratch<'a> {
    matcher: &'a Matcher,
    scratch: Option<ThreadScratch>,
}

impl Drop for PooledScratch<'_> {
    fn drop(&mut self) {
        if let Some(scratch) = self.scratch.take() {
            self.matcher.scratch.lock().unwrap_or_else(|e| e.into_inner()).push(scratch);
        }
    }
}

/// A batch's columns bound to the program's fields.
struct Bound<'a> {
    fields: Vec<Option<Col<'a>>>,
    keyword: Vec<Col<'a>>,
    /// Per field: the atoms true for each dictionary value, computed once per batch, and
    /// last the atoms true for a null, the entry of every key past the values.
    dict_hits: Vec<Option<Vec<Vec<AtomId>>>>,
    rows: usize,
}

/// Per-atom bit sets over one chunk; an atom that never hit has no set.
struct AtomBits {
    sets: Vec<Option<Box<[u64; WORDS]>>>,
    touched: Vec<AtomId>,
    /// Boxed so that a set moves between `spare` and `sets` without copying.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<[u64; WORDS]>>,
}

impl AtomBits {
    fn new(atoms: usize) -> AtomBits {
        AtomBits { sets: vec![None; atoms], touched: vec![], spare: vec![] }
    }

    fn set(&mut self, atom: AtomId, row: usize) {
        let slot = &mut self.sets[atom as usize];
        let set = match slot {
            Some(set) => set,
            None => {
                self.touched.push(atom);
                slot.insert(self.spare.pop().unwrap_or_else(|| Box::new([0; WORDS])))
            }
        };
        set[row / 64] |= 1 << (row % 64);
    }

    fn get(&self, atom: AtomId) -> Option<&[u64; WORDS]> {
        self.sets[atom as usize].as_deref()
    }

    fn clear(&mut self) {
        for atom in self.touched.drain(..) {
            if let Some(mut set) = self.sets[atom as usize].take() {
                set.fill(0);
                self.spare.push(set);
            }
        }
    }
}

/// The value → atoms memo of one field. Values and atom lists live in two arenas, so that
/// remembering a value allocates nothing once the memo has filled up the first time.
#[derive(Default)]
struct Memo {
    index: HashTable<MemoEntry>,
    values: Vec<u8>,
    atoms: Vec<AtomId>,
    lookups: u32,
    found: u32,
    off: bool,
}

/// A remembered value: its hash, and its bytes and atoms as (start, length) in the arenas.
#[derive(Clone, Copy)]
struct MemoEntry {
    hash: u64,
    value: (u32, u32),
    atoms: (u32, u32),
}

fn value_hash(value: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(value.as_bytes());
    hasher.finish()
}

fn span<T>(v: &[T], (start, len): (u32, u32)) -> &[T] {
    &v[start as usize..(start + len) as usize]
}

impl Memo {
    fn new_trial(&mut self) {
        self.lookups = 0;
        self.found = 0;
        self.off = false;
    }

    /// The atoms of `table` true for `value`, remembered; a memo whose values rarely
    /// repeat turns itself off after a trial.
    fn atoms(&mut self, table: &FieldTable, value: &str, scratch: &mut Scratch) -> &[AtomId] {
        self.lookups += 1;
        let hash = value_hash(value);
        let values = &self.values;
        let atoms = match self.index.find(hash, |e| e.hash == hash && span(values, e.value) == value.as_bytes()) {
            Some(entry) => {
                self.found += 1;
                entry.atoms
            }
            None => {
                if self.index.len() >= MEMO_ENTRIES {
                    self.index.clear();
                    self.values.clear();
                    self.atoms.clear();
                }
                let at = self.atoms.len();
                table.eval(Value::Str(value), scratch, &mut |a| self.atoms.push(a));
                let entry = MemoEntry {
                    hash,
                    value: (self.values.len() as u32, value.len() as u32),
                    atoms: (at as u32, (self.atoms.len() - at) as u32),
                };
                self.values.extend_from_slice(value.as_bytes());
                self.index.insert_unique(hash, entry, |e| e.hash);
                entry.atoms
            }
        };
        if self.lookups == MEMO_TRIAL && self.found * 4 < self.lookups {
            self.off = true;
            self.index = HashTable::new();
            self.values = Vec::new();
            // The last value's atoms are still returned below.
            self.atoms.drain(..atoms.0 as usize);
            return &self.atoms[..atoms.1 as usize];
        }
        span(&self.atoms, atoms)
    }
}

/// Everything one thread reuses from chunk to chunk.
struct ThreadScratch {
    values: Scratch,
    bits: AtomBits,
    memos: Vec<Memo>,
    /// Per keyword column.
    keyword_memos: Vec<Memo>,
    /// Per lazy atom, the rows of the chunk where it was tested.
    lazy_done: AtomBits,
}

fn sets_bit(bits: &mut AtomBits, row: usize) -> impl FnMut(AtomId) + '_ {
    move |a| bits.set(a, row)
}

impl Matcher {
    pub fn new(program: &Program, options: Options) -> Result<Matcher> {
        let mut rules: Vec<CompiledRule> = program
            .rules
            .iter()
            .map(|r| {
                let none = AtomBits::new(program.atoms.len());
                let holds_without_atoms = eval(&r.condition, &none, 1)[0] & 1 == 1;
                let mut needs = needed_atoms(&r.condition);
                if needs.is_empty() && !holds_without_atoms {
                    // Some atom must hit: the rule's atoms are one such set.
                    let mut atoms = Vec::new();
                    collect_atoms(&r.condition, false, &mut atoms);
                    needs.push(atoms.into_iter().map(|(a, _)| a).collect());
                }
                CompiledRule { condition: r.condition.clone(), needs, lazy: vec![], witness: None }
            })
            .collect();
        let lazy = if options.prefilter { lazy_atoms(program, &mut rules)? } else { vec![] };
        let mut tables: Vec<FieldTable> = program.fields.iter().map(|_| FieldTable::default()).collect();
        let mut keyword = FieldTable::default();
        let mut field_refs = Vec::new();
        let mut slot = 0;
        for (id, atom) in program.atoms.iter().enumerate() {
            if lazy.get(id).is_some_and(Option::is_some) {
                continue;
            }
            let id = id as AtomId;
            match (atom, atom.field()) {
                (Atom::FieldRef { field, other, anchor }, _) => field_refs.push((id, *field, *other, *anchor)),
                (_, Some(f)) => tables[f as usize].add(id, atom, &mut slot)?,
                (_, None) => keyword.add(id, atom, &mut slot)?,
            }
        }
        for table in tables.iter_mut().chain([&mut keyword]) {
            table.build(options.prefilter);
        }
        Ok(Matcher {
            fields: program.fields.clone(),
            tables,
            keyword,
            field_refs,
            lazy,
            natoms: program.atoms.len(),
            rules,
            options,
            scratch: Mutex::new(Vec::new()),
        })
    }

    pub fn from_json(text: &str, options: Options) -> Result<Matcher> {
        Matcher::new(&Program::from_json(text)?, options)
    }

    /// A scratch space from the pool (or a new one), back in the pool when dropped.
    fn pooled_scratch(&self) -> PooledScratch<'_> {
        let pooled = self.scratch.lock().unwrap_or_else(|e| e.into_inner()).pop();
        PooledScratch { matcher: self, scratch: Some(pooled.unwrap_or_else(|| self.thread_scratch())) }
    }

    fn thread_scratch(&self) -> ThreadScratch {
        ThreadScratch {
            values: Scratch::default(),
            bits: AtomBits::new(self.natoms),
            memos: self.fields.iter().map(|_| Memo::default()).collect(),
            keyword_memos: Vec::new(),
            lazy_done: AtomBits::new(self.natoms),
        }
    }

    /// Matches `batches` (rows numbered across them in order) on `threads` threads and
    /// returns hits ordered by row, then rule. A field is read from the column of the same
    /// name; a field with no column is absent. Keyword atoms search `keyword_columns`.
    pub fn match_batches(&self, batches: &[RecordBatch], keyword_columns: &[String], threads: usize) -> Result<Vec<Hit>> {
        // Memos judge anew, on this call's data, whether they are worth keeping on.
        self.scratch.lock().unwrap_or_else(|e| e.into_inner()).iter_mut().flat_map(|s| s.memos.iter_mut().chain(&mut s.keyword_memos)).for_each(Memo::new_trial);
        let bound: Vec<Bound> = batches.iter().map(|b| self.bind(b, keyword_columns)).collect::<Result<_>>()?;
        let mut work = Vec::new();
        let mut offset = 0u64;
        for (b, batch) in bound.iter().enumerate() {
            for start in (0..batch.rows).step_by(CHUNK_ROWS) {
                work.push((b, start, (start + CHUNK_ROWS).min(batch.rows), offset));
            }
            offset += batch.rows as u64;
        }
        let run = || -> Vec<Hit> {
            work.par_iter()
                .map_init(
                    || self.pooled_scratch(),
                    |pooled, &(b, start, end, offset)| {
                        let scratch = pooled.scratch.as_mut().expect("taken until drop");
                        let mut hits = Vec::new();
                        self.match_chunk(&bound[b], start, end, scratch, &mut |row, rule| {
                            hits.push((offset + row as u64, rule))
                        });
                        hits
                    },
                )
                .flatten()
                .collect()
        };
        Ok(thread_pool(threads)?.install(run))
    }

    /// How the engine runs rule number `rule`.
    pub fn rule_plan(&self, rule: usize) -> Option<RulePlan> {
        let r = self.rules.get(rule)?;
        Some(RulePlan {
            needs: r.needs.clone(),
            witness: r.witness.clone(),
            lazy: r.lazy.iter().flat_map(|(_, atoms)| atoms.iter().copied()).collect(),
        })
    }

    fn reads_values(&self, f: usize) -> bool {
        let f = f as FieldId;
        self.tables[f as usize].reads_values()
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
                Err(Error::UnsupportedType { .. }) if !self.reads_values(f) => {
                    Ok(Some(Col::Present(batch.column(schema.index_of(name).expect("found")).as_ref())))
                }
                other => other,
            })
            .collect::<Result<_>>()?;
        let keyword = keyword_columns.iter().filter_map(|c| column(c).transpose()).collect::<Result<_>>()?;
        // Dictionary values go through the field's memo too: the batches of one dataset
        // usually repeat their dictionaries. A dictionary larger than its batch (a slice of
        // a bigger array) is not evaluated whole: its rows go through the memo one by one.
        let mut pooled = self.pooled_scratch();
        let ThreadScratch { values: scratch, memos, .. } = pooled.scratch.as_mut().expect("taken until drop");
        let dict_hits = fields
            .iter()
            .zip(&self.tables)
            .zip(memos)
            .map(|((col, table), memo)| match col {
                Some(Col::Dict { values, .. }) if values.len() <= batch.num_rows() => Some(
                    (0..values.len())
                        .map(|i| match values.get(i) {
                            Some(v) if self.options.memo && !memo.off => memo.atoms(table, v, scratch).to_vec(),
                            Some(v) => {
                                let mut hits = Vec::new();
                                table.eval(Value::Str(v), scratch, &mut |a| hits.push(a));
                                hits
                            }
                            None => table.nulls.clone(),
                        })
                        .chain([table.nulls.clone()])
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Ok(Bound { fields, keyword, dict_hits, rows: batch.num_rows() })
    }

    /// Sets the bits of the atoms true for each row of one field's column.
    fn eval_field(&self, f: usize, data: &Bound, start: usize, end: usize, scratch: &mut ThreadScratch) {
        let table = &self.tables[f];
        if table.is_empty() {
            return;
        }
        let ThreadScratch { values, bits, memos, .. } = scratch;
        let Some(col) = &data.fields[f] else {
            for &a in &table.nulls {
                (0..end - start).for_each(|r| bits.set(a, r));
            }
            return;
        };
        if let (Col::Dict { keys, .. }, Some(hits)) = (col, &data.dict_hits[f]) {
            let past = hits.len() - 1;
            for (r, &key) in keys[start..end].iter().enumerate() {
                hits[(key as usize).min(past)].iter().for_each(|&a| bits.set(a, r));
            }
            return;
        }
        self.eval_column(table, col, start, end, &mut memos[f], values, bits);
    }

    /// Sets the bits of the atoms of `table` true for each row of `col`, a field's column
    /// or a keyword column.
    #[allow(clippy::too_many_arguments)]
    fn eval_column(&self, table: &FieldTable, col: &Col, start: usize, end: usize, memo: &mut Memo, values: &mut Scratch, bits: &mut AtomBits) {
        if let Col::Str(strings) = col {
            if table.is_anchored() {
                strings.for_each_bytes(start, end, |row, value| match value {
                    Some(s) => table.eval_anchored(s, values, &mut sets_bit(bits, row - start)),
                    None => table.nulls.iter().for_each(|&a| bits.set(a, row - start)),
                });
                return;
            }
        }
        for row in start..end {
            let r = row - start;
            match col.value(row) {
                None => table.nulls.iter().for_each(|&a| bits.set(a, r)),
                Some(Value::Str(s)) if self.options.memo && !memo.off => {
                    memo.atoms(table, s, values).iter().for_each(|&a| bits.set(a, r));
                }
                Some(v) => table.eval(v, values, &mut sets_bit(bits, r)),
            }
        }
    }

    /// Tests the lazy atoms of `rule` on the rows where each of its sets of needed atoms
    /// hit, and where no rule tested them before.
    fn eval_lazy(&self, rule: &CompiledRule, data: &Bound, start: usize, bits: &mut AtomBits, done: &mut AtomBits, folded: &mut String) {
        let mut rows = [u64::MAX; WORDS];
        for set in &rule.needs {
            let mut any = [0; WORDS];
            for set_bits in set.iter().filter_map(|&a| bits.get(a)) {
                any.iter_mut().zip(set_bits).for_each(|(x, y)| *x |= y);
            }
            rows.iter_mut().zip(any).for_each(|(x, y)| *x &= y);
        }
        for (field, atoms) in &rule.lazy {
            let Some(col) = &data.fields[*field as usize] else { continue };
            for (w, &word) in rows.iter().enumerate() {
                let mut word = word;
                while word != 0 {
                    let r = w * 64 + word.trailing_zeros() as usize;
                    word &= word - 1;
                    // The value, read and folded once per row.
                    let mut value = None;
                    for &a in atoms {
                        if done.get(a).is_some_and(|d| d[w] >> (r % 64) & 1 == 1) {
                            continue;
                        }
                        done.set(a, r);
                        let Some(text) = value.get_or_insert_with(|| {
                            let text = col.value(start + r).and_then(|v| v.text());
                            if let Some(text) = &text {
                                folded.clear();
                                fold_into(text, folded);
                            }
                            text
                        }) else {
                            break;
                        };
                        if self.lazy[a as usize].as_ref().expect("lazy atom").test(text, folded) {
                            bits.set(a, r);
                        }
                    }
                }
            }
        }
    }

    fn match_chunk(&self, data: &Bound, start: usize, end: usize, scratch: &mut ThreadScratch, emit: &mut impl FnMut(usize, u32)) {
        for f in 0..self.tables.len() {
            self.eval_field(f, data, start, end, scratch);
        }
        let ThreadScratch { values, bits, keyword_memos, lazy_done, .. } = scratch;
        keyword_memos.resize_with(data.keyword.len(), Memo::default);
        for (col, memo) in data.keyword.iter().zip(keyword_memos) {
            self.eval_column(&self.keyword, col, start, end, memo, values, bits);
        }
        for &(a, f, other, anchor) in &self.field_refs {
            let (Some(x), Some(y)) = (&data.fields[f as usize], &data.fields[other as usize]) else { continue };
            for row in start..end {
                let (Some(x), Some(y)) = (x.value(row).and_then(|v| v.text()), y.value(row).and_then(|v| v.text())) else { continue };
                if anchor.holds(fold(&x).as_bytes(), fold(&y).as_bytes()) {
                    bits.set(a, row - start);
                }
            }
        }
        let rows = end - start;
        let mut hits = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.needs.iter().all(|set| set.iter().any(|&a| bits.get(a).is_some())) {
                continue;
            }
            if !rule.lazy.is_empty() {
                self.eval_lazy(rule, data, start, bits, lazy_done, values.folded());
            }
            let set = eval(&rule.condition, bits, rows);
            for (w, word) in set.iter().enumerate() {
                let mut word = *word;
                while word != 0 {
                    hits.push((w * 64 + word.trailing_zeros() as usize, index as u32));
                    word &= word - 1;
                }
            }
        }
        bits.clear();
        lazy_done.clear();
        hits.sort_unstable();
        hits.into_iter().for_each(|(r, rule)| emit(start + r, rule));
    }
}

/// A thread pool of `threads` threads, started once and kept for later calls.
fn thread_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = pools.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Program(format!("cannot start {threads} threads: {e}")))?;
    Ok(pools.entry(threads).or_insert(Arc::new(pool)).clone())
}

/// The atoms of `expr`, each with whether it sits under a `not`, sorted and deduplicated.
fn collect_atoms(expr: &Expr, negated: bool, out: &mut Vec<(AtomId, bool)>) {
    fn walk(expr: &Expr, negated: bool, out: &mut Vec<(AtomId, bool)>) {
        match expr {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| walk(x, negated, out)),
            Expr::Not(x) => walk(x, true, out),
            Expr::Atom(a) => out.push((*a, negated)),
            Expr::Const(_) => {}
        }
    }
    walk(expr, negated, out);
    out.sort_unstable();
    out.dedup();
}

/// A guess at how often a set of atoms hits, to choose a rule's witness: short literals
/// are common; globs, regexes and other tests cost a run each.
fn guessed_cost(set: &[AtomId], atoms: &[Atom]) -> f64 {
    set.iter()
        .map(|&a| match &atoms[a as usize] {
            Atom::Str { value, .. } => 1.0 / (value.chars().count().max(1) as f64).powi(2),
            _ => 1.0,
        })
        .sum()
}

/// Chooses the lazy atoms (see [`LazyAtom`]), records them in their rules (whose needed
/// sets then keep only those without lazy atoms), and returns them by atom id.
fn lazy_atoms(program: &Program, rules: &mut [CompiledRule]) -> Result<Vec<Option<LazyAtom>>> {
    let mut eager = vec![false; program.atoms.len()];
    let uses: Vec<Vec<(AtomId, bool)>> = program
        .rules
        .iter()
        .map(|r| {
            let mut atoms = Vec::new();
            collect_atoms(&r.condition, false, &mut atoms);
            atoms
        })
        .collect();
    for (rule, atoms) in rules.iter_mut().zip(&uses) {
        rule.witness = rule.needs.iter().min_by(|x, y| guessed_cost(x, &program.atoms).total_cmp(&guessed_cost(y, &program.atoms))).cloned();
        let witness = rule.witness.as_ref();
        for &(a, negated) in atoms {
            let check = matches!(program.atoms[a as usize], Atom::Glob { .. } | Atom::Re { .. });
            let keep = match witness {
                // Nothing else to go on.
                None => true,
                Some(witness) if check => witness.contains(&a),
                Some(_) => !negated || rule.needs.iter().flatten().any(|&n| n == a),
            };
            eager[a as usize] |= keep;
        }
    }
    let lazy: Vec<Option<LazyAtom>> = program
        .atoms
        .iter()
        .enumerate()
        .map(|(id, atom)| if eager[id] { Ok(None) } else { LazyAtom::new(id as AtomId, atom) })
        .collect::<Result<_>>()?;
    for (rule, atoms) in rules.iter_mut().zip(&uses) {
        for &(a, _) in atoms {
            let Some(atom) = &lazy[a as usize] else { continue };
            match rule.lazy.iter_mut().find(|(f, _)| *f == atom.field) {
                Some((_, group)) if group.last() != Some(&a) => group.push(a),
                Some(_) => {}
                None => rule.lazy.push((atom.field, vec![a])),
            }
        }
        rule.needs.retain(|set| set.iter().all(|&a| lazy[a as usize].is_none()));
    }
    Ok(lazy)
}

/// Sets of atoms such that `expr` holds only if at least one atom of each set holds; an
/// empty set means `expr` never holds. No sets: nothing is known.
fn needed_atoms(expr: &Expr) -> Vec<Vec<AtomId>> {
    match expr {
        Expr::Atom(a) => vec![vec![*a]],
        Expr::Const(false) => vec![vec![]],
        Expr::Const(true) | Expr::Not(_) => vec![],
        Expr::And(xs) => xs.iter().flat_map(needed_atoms).collect(),
        // One atom of some child's smallest set, for every child.
        Expr::Or(xs) => {
            let mut union = Vec::new();
            for x in xs {
                match needed_atoms(x).into_iter().min_by_key(Vec::len) {
                    Some(set) => union.extend(set),
                    None => return vec![],
                }
            }
            union.sort_unstable();
            union.dedup();
            vec![union]
        }
    }
}

/// The rows of a chunk where `expr` is true; bits past `rows` are clear.
fn eval(expr: &Expr, bits: &AtomBits, rows: usize) -> [u64; WORDS] {
    let mut out = match expr {
        Expr::Atom(a) => bits.get(*a).copied().unwrap_or([0; WORDS]),
        Expr::Const(b) => [if *b { u64::MAX } else { 0 }; WORDS],
        Expr::Not(x) => eval(x, bits, rows).map(|w| !w),
        Expr::And(xs) => {
            let mut acc = [u64::MAX; WORDS];
            for x in xs {
                let v = eval(x, bits, rows);
                let mut any = 0;
                acc.iter_mut().zip(v).for_each(|(a, b)| {
                    *a &= b;
                    any |= *a;
                });
                if any == 0 {
                    break;
                }
            }
            acc
        }
        Expr::Or(xs) => xs.iter().fold([0; WORDS], |mut acc, x| {
            let v = eval(x, bits, rows);
            acc.iter_mut().zip(v).for_each(|(a, b)| *a |= b);
            acc
        }),
    };
    for (w, word) in out.iter_mut().enumerate() {
        let live = rows.saturating_sub(w * 64).min(64);
        *word &= if live == 64 { u64::MAX } else { (1u64 << live) - 1 };
    }
    out
}
