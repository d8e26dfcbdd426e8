//! Per-thread scratch space: the per-atom bit sets of a chunk, the value memos, regex
//! caches and the folded-value buffer, and the pool that keeps them from call to call.

use std::borrow::Cow;
use std::hash::Hasher;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use prefetch_index::prefetch_index;
use regex_automata::meta;
use rustc_hash::FxHasher;

use crate::casefold::fold_into;
use crate::column::{Col, Value};
use crate::program::{AtomId, RuleId};
use crate::table::FieldTable;

/// Rows evaluated together: the unit of work a thread takes, and the length of the
/// per-atom bit sets.
pub(crate) const CHUNK_ROWS: usize = 4096;
pub(crate) const WORDS: usize = CHUNK_ROWS / 64;
/// Memo bounds per field and thread: distinct values kept, and lookups after which a
/// field whose values rarely repeat stops using its memo.
const MEMO_ENTRIES: usize = 65_536;
/// Arena bytes a memo holds at most, and the longest value it takes (long values seldom
/// repeat, and their lengths are stored in 32 bits).
const MEMO_BYTES: usize = 32 << 20;
const MEMO_VALUE_BYTES: usize = 1 << 16;
/// Values a memo looks up together.
const MEMO_GROUP: usize = 16;
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

/// The value → atoms memo of one field. Each remembered value is one record in an arena:
/// its length and atom count, its bytes, then its atoms, so that a lookup that finds it
/// reads one place beyond its index slot. Remembering a value allocates nothing once the
/// memo has filled up the first time.
#[derive(Default)]
pub(crate) struct Memo {
    index: MemoIndex,
    arena: Vec<u8>,
    lookups: u32,
    found: u32,
    off: bool,
    /// The chunk being evaluated, counted from 1, for [`Memo::group_atoms`]'s first rows.
    chunk: u32,
}

/// Open addressing over the records of a memo's arena: per slot the high half of a value's
/// hash (its tag, which also places it) and its record's offset, or [`MemoIndex::EMPTY`].
/// Unlike a general hash table it can be prefetched, it is one load per lookup, and it
/// grows without reading the records back.
#[derive(Default)]
struct MemoIndex {
    slots: Vec<u64>,
    len: usize,
}

impl MemoIndex {
    /// No record sits at this offset: the arena is far smaller than 4 GiB.
    const EMPTY: u64 = u32::MAX as u64;

    fn tag(hash: u64) -> u64 {
        hash >> 32
    }

    fn start(&self, tag: u64) -> usize {
        tag as usize & (self.slots.len().wrapping_sub(1))
    }

    /// Asks the processor for the slot where a lookup of `hash` starts.
    fn prefetch(&self, hash: u64) {
        if !self.slots.is_empty() {
            prefetch_index(&self.slots, self.start(Self::tag(hash)));
        }
    }

    /// The offsets of the records whose tag is `hash`'s, in probe order.
    fn candidates(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let tag = Self::tag(hash);
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = self.start(tag);
        std::iter::from_fn(move || {
            let slot = *self.slots.get(at)?;
            at = (at + 1) & mask;
            (slot != Self::EMPTY).then_some(slot)
        })
        .filter(move |slot| slot >> 32 == tag)
        .map(|slot| slot as u32)
    }

    /// Adds a record not yet in the index; at most half the slots are ever used.
    fn insert(&mut self, hash: u64, at: u32) {
        if 2 * (self.len + 1) > self.slots.len() {
            let grown = vec![Self::EMPTY; (2 * self.slots.len()).max(64)];
            let old = std::mem::replace(&mut self.slots, grown);
            self.len = 0;
            for slot in old.into_iter().filter(|&s| s != Self::EMPTY) {
                self.put(slot);
            }
        }
        self.put(Self::tag(hash) << 32 | at as u64);
    }

    fn put(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut at = self.start(slot >> 32);
        while self.slots[at] != Self::EMPTY {
            at = (at + 1) & mask;
        }
        self.slots[at] = slot;
        self.len += 1;
    }

    fn clear(&mut self) {
        self.slots.fill(Self::EMPTY);
        self.len = 0;
    }
}

fn value_hash(value: &[u8]) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(value);
    hasher.finish()
}

/// A record's header: its value's length, its atom count, and the chunk and row where its
/// value was first seen in the chunk (see [`Memo::group_atoms`]), each 4 bytes.
const RECORD_HEADER: usize = 16;

fn word_at(arena: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(arena[i..i + 4].try_into().expect("4 bytes"))
}

/// The value and the atoms (little-endian) of the record at `at`.
fn record(arena: &[u8], at: u32) -> (&[u8], &[u8]) {
    let at = at as usize;
    let (len, atoms) = (word_at(arena, at) as usize, word_at(arena, at + 4) as usize);
    let value = at + RECORD_HEADER;
    (&arena[value..value + len], &arena[value + len..value + len + 4 * atoms])
}

impl Memo {
    fn new_trial(&mut self) {
        if self.off {
            *self = Memo::default();
        }
        self.lookups = 0;
        self.found = 0;
    }

    /// Starts a chunk whose rows will ask for the first row of their value.
    pub fn next_chunk(&mut self) {
        if self.chunk == u32::MAX {
            // A record's chunk must never be taken for the current one.
            self.index.clear();
            self.arena.clear();
            self.chunk = 0;
        }
        self.chunk += 1;
    }

    /// The first row of the current chunk whose value is the record at `at`'s, `row` if
    /// none came before it.
    fn first_row(&mut self, at: u32, row: usize) -> u32 {
        let at = at as usize;
        if word_at(&self.arena, at + 8) == self.chunk {
            return word_at(&self.arena, at + 12);
        }
        self.arena[at + 8..at + 12].copy_from_slice(&self.chunk.to_le_bytes());
        self.arena[at + 12..at + 16].copy_from_slice(&(row as u32).to_le_bytes());
        row as u32
    }

    /// Whether [`Memo::group_atoms`] takes `value`: not once the memo is off.
    pub fn takes(&self, value: &str) -> bool {
        !self.off && value.len() <= MEMO_VALUE_BYTES
    }

    /// Emits (row, atom) for the atoms of `table` true for each (row, value) of `group`
    /// (values the memo takes, at most [`MEMO_GROUP`]), remembered. The group's values are
    /// looked up one after another, before any is evaluated, so that the processor loads
    /// their index slots, then their records, at the same time. A memo whose values rarely
    /// repeat turns itself off after a trial. Unless `first_rows` is empty, each row's entry
    /// becomes the first row of the chunk ([`Memo::next_chunk`]) with its value: the lazy
    /// atoms test a value once per chunk, not once per row.
    pub fn group_atoms(
        &mut self,
        table: &FieldTable,
        group: &[(usize, &str)],
        scratch: &mut ValueScratch,
        first_rows: &mut [u32],
        emit: &mut impl FnMut(usize, AtomId),
    ) {
        let mut hashes = [0; MEMO_GROUP];
        for (hash, (_, value)) in hashes.iter_mut().zip(group) {
            *hash = value_hash(value.as_bytes());
        }
        // The slots first, then the records: each step's loads are asked for before any
        // is waited on.
        for &hash in &hashes[..group.len()] {
            self.index.prefetch(hash);
        }
        let mut found = [None; MEMO_GROUP];
        for (at, &hash) in found.iter_mut().zip(&hashes).take(group.len()) {
            *at = self.index.candidates(hash).next();
            if let Some(at) = *at {
                prefetch_index(&self.arena, at as usize);
            }
        }
        let arena = &self.arena;
        for (at, (_, value)) in found.iter_mut().zip(group) {
            *at = at.filter(|&at| record(arena, at).0 == value.as_bytes());
        }
        let before = self.lookups;
        self.lookups += group.len() as u32;
        self.found += found.iter().flatten().count() as u32;
        // Entries found are void once the memo is cleared to make room.
        let mut cleared = false;
        for ((&(row, value), at), &hash) in group.iter().zip(found).zip(&hashes) {
            let at = match at {
                Some(at) if !cleared => at,
                _ => {
                    let (at, clears) = self.remember(table, value, hash, scratch);
                    cleared |= clears;
                    at
                }
            };
            if !first_rows.is_empty() {
                first_rows[row] = self.first_row(at, row);
            }
            for atom in record(&self.arena, at).1.chunks_exact(4) {
                emit(row, AtomId(u32::from_le_bytes(atom.try_into().expect("4 bytes"))));
            }
        }
        if before < MEMO_TRIAL && self.lookups >= MEMO_TRIAL && self.found * 4 < self.lookups {
            // The arena goes at the next trial.
            self.off = true;
        }
    }

    /// The record of `value` (evaluated and added unless there, as when it came earlier
    /// in its group), and whether the memo was cleared to make room for it.
    fn remember(
        &mut self,
        table: &FieldTable,
        value: &str,
        hash: u64,
        scratch: &mut ValueScratch,
    ) -> (u32, bool) {
        let bytes = value.as_bytes();
        if let Some(at) = self.index.candidates(hash).find(|&at| record(&self.arena, at).0 == bytes)
        {
            // Earlier in the same group.
            self.found += 1;
            return (at, false);
        }
        let clears = self.index.len >= MEMO_ENTRIES || self.arena.len() >= MEMO_BYTES;
        if clears {
            self.index.clear();
            self.arena.clear();
        }
        let at = self.arena.len();
        self.arena.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        self.arena.extend_from_slice(&[0; RECORD_HEADER - 4]);
        self.arena.extend_from_slice(bytes);
        let mut count = 0u32;
        table.eval(Value::Str(value), scratch, &mut |a| {
            self.arena.extend_from_slice(&a.as_u32().to_le_bytes());
            count += 1;
        });
        self.arena[at + 4..at + 8].copy_from_slice(&count.to_le_bytes());
        self.index.insert(hash, at as u32);
        (at as u32, clears)
    }
}

/// The values of a chunk's rows waiting for their memo, looked up [`MEMO_GROUP`] at a time
/// ([`Memo::group_atoms`]); each value's atoms are set in its row's bits, and its first row
/// in `first_rows` unless that is empty.
pub(crate) struct MemoQueue<'v, 'f> {
    group: Vec<(usize, &'v str)>,
    first_rows: &'f mut [u32],
}

impl<'v, 'f> MemoQueue<'v, 'f> {
    pub fn new(first_rows: &'f mut [u32]) -> MemoQueue<'v, 'f> {
        MemoQueue { group: Vec::with_capacity(MEMO_GROUP), first_rows }
    }

    /// Queues the value of `row` (one `memo` takes), and looks up a full group.
    pub fn push(
        &mut self,
        row: usize,
        value: &'v str,
        memo: &mut Memo,
        table: &FieldTable,
        scratch: &mut ValueScratch,
        bits: &mut AtomBits,
    ) {
        self.group.push((row, value));
        if self.group.len() == MEMO_GROUP {
            self.flush(memo, table, scratch, bits);
        }
    }

    /// Looks up the values queued.
    pub fn flush(
        &mut self,
        memo: &mut Memo,
        table: &FieldTable,
        scratch: &mut ValueScratch,
        bits: &mut AtomBits,
    ) {
        let emit = &mut |row, a| bits.set(a, row);
        memo.group_atoms(table, &self.group, scratch, self.first_rows, emit);
        self.group.clear();
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
    /// Per field with lazy atoms whose values went through its memo, per row of the chunk,
    /// the first row with its value (empty: each row is its own).
    pub first_rows: Vec<Vec<u32>>,
    /// Per lazy atom, the rows of the chunk it is tested on.
    pub lazy_rows: AtomBits,
    pub lazy_values: RowValues,
    /// The two columns a field reference compares.
    pub ref_values: [FoldedValues; 2],
}

/// The case foldings of a column's values in a chunk: a small dictionary's once per key, any
/// other column's row by row into one buffer (its values rarely repeat).
#[derive(Default)]
pub(crate) struct FoldedValues {
    keys: RowValues,
    row: String,
}

impl FoldedValues {
    /// The folding of the value of `row` of `col` (None for a null, or a value with no text).
    pub fn get(&mut self, col: &Col, row: usize) -> Option<&str> {
        let read = || col.value(row).and_then(|v| v.text());
        match col.key_slot(row) {
            Some(slot) => self.keys.get(slot, read).map(|(_, folded)| folded),
            None => {
                self.row.clear();
                fold_into(&read()?, &mut self.row);
                Some(&self.row)
            }
        }
    }

    /// Forgets the values of the last column.
    pub fn clear(&mut self) {
        self.keys.clear();
    }
}

/// The values of one column that lazy atoms (or a field reference) test in a chunk, each
/// read and case-folded once for all of them: by row, or by dictionary key for a dictionary
/// column.
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
            first_rows: vec![Vec::new(); fields],
            lazy_rows: AtomBits::new(atoms),
            lazy_values: RowValues::default(),
            ref_values: Default::default(),
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

#[cfg(test)]
mod tests {
    use super::{Memo, MemoIndex, ValueScratch};
    use crate::table::FieldTable;

    #[test]
    fn first_rows_hold_within_a_chunk_and_a_wrapping_chunk_count_clears_the_memo() {
        let (table, mut scratch, mut memo) =
            (FieldTable::default(), ValueScratch::default(), Memo::default());
        let mut first_rows = |memo: &mut Memo, group: &[(usize, &str)]| {
            let mut firsts = vec![u32::MAX; group.len()];
            memo.group_atoms(&table, group, &mut scratch, &mut firsts, &mut |_, _| {});
            firsts
        };
        memo.next_chunk();
        assert_eq!(first_rows(&mut memo, &[(0, "a"), (1, "b"), (2, "a")]), [0, 1, 0]);
        // A later group of the same chunk, then the next chunk, where the values come at
        // other rows.
        assert_eq!(first_rows(&mut memo, &[(0, "a"), (1, "b"), (2, "b")]), [0, 1, 1]);
        memo.next_chunk();
        assert_eq!(first_rows(&mut memo, &[(0, "b"), (1, "a"), (2, "b")]), [0, 1, 0]);
        memo.chunk = u32::MAX;
        memo.next_chunk();
        assert_eq!((memo.chunk, memo.arena.len(), memo.index.len), (1, 0, 0));
        assert_eq!(first_rows(&mut memo, &[(0, "c"), (1, "a"), (2, "a")]), [0, 1, 1]);
    }

    #[test]
    fn the_index_keeps_every_record_of_a_tag_through_growth_and_clears() {
        let mut index = MemoIndex::default();
        // Records 0..1000 under 10 tags (so runs of equal tags collide), and one tag
        // whose slot is the last of the table, whose run wraps round to the first.
        let hash = |i: u32| u64::from(i % 10) << 32;
        for at in 0..1000 {
            index.insert(hash(at), at);
        }
        let wraps = u64::from(u32::MAX) << 32;
        index.insert(wraps, 5000);
        index.insert(wraps, 5001);
        assert_eq!(index.start(MemoIndex::tag(wraps)), index.slots.len() - 1);
        assert_eq!(index.len, 1002);
        assert!(2 * index.len <= index.slots.len());
        for tag in 0..10 {
            let found: Vec<u32> = index.candidates(hash(tag)).collect();
            assert_eq!(found, (tag..1000).step_by(10).collect::<Vec<_>>());
        }
        assert_eq!(index.candidates(wraps).collect::<Vec<_>>(), [5000, 5001]);
        assert_eq!(index.candidates(hash(10) + (11 << 32)).count(), 0);
        index.clear();
        assert_eq!(index.candidates(hash(3)).count(), 0);
        index.insert(hash(3), 7);
        assert_eq!(index.candidates(hash(3)).collect::<Vec<_>>(), [7]);
    }
}
