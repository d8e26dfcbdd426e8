//! Per-thread scratch space: the per-atom bit sets of a chunk, the value memos, regex
//! caches and the folded-value buffer, and the pool that keeps them from call to call.

use std::borrow::Cow;
use std::hash::Hasher;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use hashbrown::HashTable;
use regex_automata::meta;
use rustc_hash::FxHasher;

use crate::casefold::fold_into;
use crate::column::Value;
use crate::program::{AtomId, RuleId};
use crate::table::FieldTable;

/// Rows evaluated together: the unit of work a thread takes, and the length of the
/// per-atom bit sets.
pub(crate) const CHUNK_ROWS: usize = 4096;
pub(crate) const WORDS: usize = CHUNK_ROWS / 64;
/// Memo bounds per field and thread: distinct values kept, and lookups after which a
/// field whose values rarely repeat stops using its memo.
const MEMO_ENTRIES: usize = 65_536;
const MEMO_TRIAL: u32 = 2_048;

/// Per-atom bit sets over one chunk; an atom that never hit has no set.
pub(crate) struct AtomBits {
    sets: Vec<Option<Box<[u64; WORDS]>>>,
    touched: Vec<AtomId>,
    /// Boxed so that a set moves between `spare` and `sets` without copying.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<[u64; WORDS]>>,
}

impl AtomBits {
    pub fn new(atoms: usize) -> AtomBits {
        AtomBits { sets: vec![None; atoms], touched: vec![], spare: vec![] }
    }

    /// `atom`'s set, taken from the spares (all zero) when it has none yet.
    #[inline]
    fn set_of(&mut self, atom: AtomId) -> &mut [u64; WORDS] {
        let slot = &mut self.sets[atom.index()];
        match slot {
            Some(set) => set,
            None => {
                self.touched.push(atom);
                slot.insert(self.spare.pop().unwrap_or_else(|| Box::new([0; WORDS])))
            }
        }
    }

    pub fn set(&mut self, atom: AtomId, row: usize) {
        self.set_of(atom)[row / 64] |= 1 << (row % 64);
    }

    /// Sets the bits of `words` (rows of the chunk, 64 per word) in `atom`'s set.
    pub fn set_words(&mut self, atom: AtomId, words: &[u64; WORDS]) {
        if words.iter().all(|&w| w == 0) {
            return;
        }
        self.set_of(atom).iter_mut().zip(words).for_each(|(s, w)| *s |= w);
    }

    pub fn get(&self, atom: AtomId) -> Option<&[u64; WORDS]> {
        self.sets[atom.index()].as_deref()
    }

    pub fn clear(&mut self) {
        for atom in self.touched.drain(..) {
            if let Some(mut set) = self.sets[atom.index()].take() {
                set.fill(0);
                self.spare.push(set);
            }
        }
    }
}

/// A closure setting the bit of each atom it is given, at `row`.
pub(crate) fn sets_bit(bits: &mut AtomBits, row: usize) -> impl FnMut(AtomId) + '_ {
    move |a| bits.set(a, row)
}

/// The value → atoms memo of one field. Values and atom lists live in two arenas, so that
/// remembering a value allocates nothing once the memo has filled up the first time.
#[derive(Default)]
pub(crate) struct Memo {
    index: HashTable<MemoEntry>,
    values: Vec<u8>,
    atoms: Vec<AtomId>,
    lookups: u32,
    found: u32,
    pub off: bool,
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
    pub fn atoms(
        &mut self,
        table: &FieldTable,
        value: &str,
        scratch: &mut ValueScratch,
    ) -> &[AtomId] {
        self.lookups += 1;
        let hash = value_hash(value);
        let values = &self.values;
        let found =
            self.index.find(hash, |e| e.hash == hash && span(values, e.value) == value.as_bytes());
        let atoms = match found {
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

/// Scratch space for evaluating one value at a time against a field table.
#[derive(Default)]
pub(crate) struct ValueScratch {
    /// A string to fold values into.
    pub folded: String,
    /// Per check slot (see [`FieldTable::add_check`]).
    pub caches: Vec<Option<meta::Cache>>,
    /// Checks triggered for the current value, and a stamp per check to keep them unique.
    pub triggered: Vec<u32>,
    pub stamps: Vec<u64>,
    pub stamp: u64,
}

/// Everything one thread reuses from chunk to chunk.
pub(crate) struct ThreadScratch {
    pub values: ValueScratch,
    pub bits: AtomBits,
    /// Per field.
    pub memos: Vec<Memo>,
    /// Per keyword column.
    pub keyword_memos: Vec<Memo>,
    /// The rules that may hold on the chunk, each with its candidate rows.
    pub candidates: Vec<(RuleId, [u64; WORDS])>,
    /// Per lazy atom, the rows of the chunk it is tested on.
    pub lazy_rows: AtomBits,
    pub lazy_values: RowValues,
}

/// The values of one column that lazy atoms test in a chunk, each read and case-folded
/// once for all of them: by row, or by dictionary key for a dictionary column.
#[derive(Default)]
pub(crate) struct RowValues {
    /// Per row or key: 1 + the index of its entry in `spans`, or 0 when not read yet.
    slots: Vec<u32>,
    /// Per value read: where its text and its folding sit in `text` (start, text length,
    /// folded length), or None for a null.
    spans: Vec<Option<(u32, u32, u32)>>,
    touched: Vec<u32>,
    text: String,
    /// Per slot, the current atom's result: 0 not tested yet, 1 false, 2 true.
    results: Vec<u8>,
    tested: Vec<u32>,
}

impl RowValues {
    /// Whether `test` holds for the value at `slot` (false for a null), tested once per
    /// slot and atom (see [`RowValues::next_atom`]).
    pub fn test<'v>(
        &mut self,
        slot: usize,
        read: impl FnOnce() -> Option<Cow<'v, str>>,
        test: impl FnOnce(&str, &str) -> bool,
    ) -> bool {
        if slot >= self.results.len() {
            self.results.resize(slot + 1, 0);
        }
        if self.results[slot] == 0 {
            let holds = self.get(slot, read).is_some_and(|(text, folded)| test(text, folded));
            self.results[slot] = 1 + u8::from(holds);
            self.tested.push(slot as u32);
        }
        self.results[slot] == 2
    }

    /// Forgets the results of the last atom.
    pub fn next_atom(&mut self) {
        for &slot in &self.tested {
            self.results[slot as usize] = 0;
        }
        self.tested.clear();
    }

    /// Forgets the values of the last column.
    pub fn clear(&mut self) {
        for &slot in &self.touched {
            self.slots[slot as usize] = 0;
        }
        self.touched.clear();
        self.spans.clear();
        self.text.clear();
    }

    /// The value at `slot` and its folding, read by `read` the first time.
    fn get<'v>(
        &mut self,
        slot: usize,
        read: impl FnOnce() -> Option<Cow<'v, str>>,
    ) -> Option<(&str, &str)> {
        if slot >= self.slots.len() {
            self.slots.resize(slot + 1, 0);
        }
        if self.slots[slot] == 0 {
            let span = read().map(|value| {
                let start = self.text.len();
                self.text.push_str(&value);
                fold_into(&value, &mut self.text);
                (start as u32, value.len() as u32, (self.text.len() - start - value.len()) as u32)
            });
            self.spans.push(span);
            self.slots[slot] = self.spans.len() as u32;
            self.touched.push(slot as u32);
        }
        let (start, len, folded) = self.spans[self.slots[slot] as usize - 1]?;
        let (start, mid) = (start as usize, (start + len) as usize);
        Some((&self.text[start..mid], &self.text[mid..mid + folded as usize]))
    }
}

impl ThreadScratch {
    fn new(atoms: usize, fields: usize) -> ThreadScratch {
        ThreadScratch {
            values: ValueScratch::default(),
            bits: AtomBits::new(atoms),
            memos: (0..fields).map(|_| Memo::default()).collect(),
            keyword_memos: Vec::new(),
            candidates: Vec::new(),
            lazy_rows: AtomBits::new(atoms),
            lazy_values: RowValues::default(),
        }
    }
}

/// Scratch spaces not in use, kept from call to call (memos stay warm, nothing is
/// allocated again): one per thread that matched at the same time, at most.
pub(crate) struct ScratchPool {
    free: Mutex<Vec<ThreadScratch>>,
    atoms: usize,
    fields: usize,
}

impl ScratchPool {
    pub fn new(atoms: usize, fields: usize) -> ScratchPool {
        ScratchPool { free: Mutex::new(Vec::new()), atoms, fields }
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Vec<ThreadScratch>> {
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A scratch space from the pool (or a new one), back in the pool when dropped.
    pub fn take(&self) -> PooledScratch<'_> {
        let scratch =
            self.free().pop().unwrap_or_else(|| ThreadScratch::new(self.atoms, self.fields));
        PooledScratch { pool: self, scratch: Some(scratch) }
    }

    /// Memos judge anew, on a new call's data, whether they are worth keeping on.
    pub fn new_trial(&self) {
        self.free()
            .iter_mut()
            .flat_map(|s| s.memos.iter_mut().chain(&mut s.keyword_memos))
            .for_each(Memo::new_trial);
    }
}

/// A scratch space taken from the pool for one rayon job; back on drop.
pub(crate) struct PooledScratch<'a> {
    pool: &'a ScratchPool,
    scratch: Option<ThreadScratch>,
}

impl Deref for PooledScratch<'_> {
    type Target = ThreadScratch;

    fn deref(&self) -> &ThreadScratch {
        self.scratch.as_ref().expect("taken until drop")
    }
}

impl DerefMut for PooledScratch<'_> {
    fn deref_mut(&mut self) -> &mut ThreadScratch {
        self.scratch.as_mut().expect("taken until drop")
    }
}

impl Drop for PooledScratch<'_> {
    fn drop(&mut self) {
        // After a panic the scratch may be half updated (bits set, a memo entry half
        // written): it is dropped rather than reused.
        if let Some(scratch) = self.scratch.take().filter(|_| !std::thread::panicking()) {
            self.pool.free().push(scratch);
        }
    }
}
