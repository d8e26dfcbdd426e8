//! The compiled matcher: immutable, shared by all threads; each thread brings its own
//! [`Scratch`].

use arrow_array::RecordBatch;
use rayon::prelude::*;

use crate::casefold::fold;
use crate::column::Col;
use crate::error::{Error, Result};
use crate::program::{Anchor, Atom, AtomId, Expr, FieldId, Program};
use crate::table::{FieldTable, Scratch};

/// Rows evaluated together: the unit of work a thread takes, and the length of the
/// per-atom bit sets.
const CHUNK_ROWS: usize = 4096;
const WORDS: usize = CHUNK_ROWS / 64;

/// A row index within the data and the index of the rule that matched it.
pub type Hit = (u64, u32);

pub struct Matcher {
    fields: Vec<String>,
    tables: Vec<FieldTable>,
    keyword: FieldTable,
    field_refs: Vec<(AtomId, FieldId, FieldId, Anchor)>,
    natoms: usize,
    rules: Vec<Expr>,
}

/// A batch's columns bound to the program's fields.
struct Bound<'a> {
    fields: Vec<Option<Col<'a>>>,
    keyword: Vec<Col<'a>>,
    /// Per field: the atoms true for each dictionary value, computed once per batch.
    dict_hits: Vec<Option<Vec<Vec<AtomId>>>>,
    rows: usize,
}

/// Per-atom bit sets over one chunk; an atom that never hit has no set.
struct AtomBits {
    sets: Vec<Option<Box<[u64; WORDS]>>>,
}

impl AtomBits {
    fn set(&mut self, atom: AtomId, row: usize) {
        let set = self.sets[atom as usize].get_or_insert_with(|| Box::new([0; WORDS]));
        set[row / 64] |= 1 << (row % 64);
    }
}

impl Matcher {
    pub fn new(program: &Program) -> Result<Matcher> {
        let mut tables: Vec<FieldTable> = program.fields.iter().map(|_| FieldTable::default()).collect();
        let mut keyword = FieldTable::default();
        let mut field_refs = Vec::new();
        for (id, atom) in program.atoms.iter().enumerate() {
            let id = id as AtomId;
            match (atom, atom.field()) {
                (Atom::FieldRef { field, other, anchor }, _) => field_refs.push((id, *field, *other, *anchor)),
                (_, Some(f)) => tables[f as usize].add(id, atom)?,
                (_, None) => keyword.add(id, atom)?,
            }
        }
        tables.iter_mut().for_each(FieldTable::build);
        keyword.build();
        Ok(Matcher {
            fields: program.fields.clone(),
            tables,
            keyword,
            field_refs,
            natoms: program.atoms.len(),
            rules: program.rules.iter().map(|r| r.condition.clone()).collect(),
        })
    }

    pub fn from_json(text: &str) -> Result<Matcher> {
        Matcher::new(&Program::from_json(text)?)
    }

    /// Matches `batches` (rows numbered across them in order) and returns hits ordered by
    /// row, then rule. A field is read from the column of the same name; a field with no
    /// column is absent. Keyword atoms search `keyword_columns`.
    pub fn match_batches(&self, batches: &[RecordBatch], keyword_columns: &[String], threads: usize) -> Result<Vec<Hit>> {
        let bound: Vec<Bound> = batches.iter().map(|b| self.bind(b, keyword_columns)).collect::<Result<_>>()?;
        let mut work = Vec::new();
        let mut offset = 0u64;
        for (b, batch) in bound.iter().enumerate() {
            for start in (0..batch.rows).step_by(CHUNK_ROWS) {
                work.push((b, start, (start + CHUNK_ROWS).min(batch.rows), offset));
            }
            offset += batch.rows as u64;
        }
        let run = |work: &[(usize, usize, usize, u64)]| -> Vec<Hit> {
            work.par_iter()
                .map_init(Scratch::default, |scratch, &(b, start, end, offset)| {
                    self.match_chunk(&bound[b], start, end, scratch)
                        .into_iter()
                        .map(|(row, rule)| (offset + row as u64, rule))
                        .collect::<Vec<_>>()
                })
                .flatten()
                .collect()
        };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| Error::Program(e.to_string()))?;
        Ok(pool.install(|| run(&work)))
    }

    fn bind<'a>(&self, batch: &'a RecordBatch, keyword_columns: &[String]) -> Result<Bound<'a>> {
        let schema = batch.schema();
        let column = |name: &str| -> Result<Option<Col<'a>>> {
            match schema.index_of(name) {
                Ok(i) => Col::new(name, batch.column(i).as_ref()).map(Some),
                Err(_) => Ok(None),
            }
        };
        let fields: Vec<Option<Col>> = self.fields.iter().map(|f| column(f)).collect::<Result<_>>()?;
        let keyword = keyword_columns.iter().filter_map(|c| column(c).transpose()).collect::<Result<_>>()?;
        let dict_hits = fields
            .iter()
            .zip(&self.tables)
            .map(|(col, table)| match col {
                Some(Col::Dict { values, .. }) => {
                    let mut scratch = Scratch::default();
                    Some((0..values.len()).map(|i| {
                        let mut hits = Vec::new();
                        if let Some(v) = values.get(i) {
                            table.eval(crate::column::Value::Str(v), &mut scratch, &mut |a| hits.push(a));
                        }
                        hits
                    }).collect())
                }
                _ => None,
            })
            .collect();
        Ok(Bound { fields, keyword, dict_hits, rows: batch.num_rows() })
    }

    fn match_chunk(&self, data: &Bound, start: usize, end: usize, scratch: &mut Scratch) -> Vec<(usize, u32)> {
        let mut bits = AtomBits { sets: vec![None; self.natoms] };
        for (f, table) in self.tables.iter().enumerate() {
            match &data.fields[f] {
                None => {
                    for &a in &table.nulls {
                        (start..end).for_each(|row| bits.set(a, row - start));
                    }
                }
                Some(col) => {
                    for row in start..end {
                        let r = row - start;
                        match (col, &data.dict_hits[f]) {
                            (Col::Dict { keys, .. }, Some(hits)) => match keys[row].and_then(|k| hits.get(k as usize)) {
                                Some(hits) if col.value(row).is_some() => hits.iter().for_each(|&a| bits.set(a, r)),
                                _ => table.nulls.iter().for_each(|&a| bits.set(a, r)),
                            },
                            _ => match col.value(row) {
                                Some(v) => table.eval(v, scratch, &mut |a| bits.set(a, r)),
                                None => table.nulls.iter().for_each(|&a| bits.set(a, r)),
                            },
                        }
                    }
                }
            }
        }
        for col in &data.keyword {
            for row in start..end {
                if let Some(v) = col.value(row) {
                    self.keyword.eval(v, scratch, &mut |a| bits.set(a, row - start));
                }
            }
        }
        for &(a, f, other, anchor) in &self.field_refs {
            let (Some(x), Some(y)) = (&data.fields[f as usize], &data.fields[other as usize]) else { continue };
            for row in start..end {
                let (Some(x), Some(y)) = (x.value(row).and_then(|v| v.text()), y.value(row).and_then(|v| v.text())) else { continue };
                let (x, y) = (fold(&x), fold(&y));
                let ok = match anchor {
                    Anchor::Exact => x == y,
                    Anchor::Prefix => x.starts_with(&y),
                    Anchor::Suffix => x.ends_with(&y),
                    Anchor::Contains => x.contains(&y),
                };
                if ok {
                    bits.set(a, row - start);
                }
            }
        }
        let mut hits = Vec::new();
        let rows = end - start;
        for (rule, expr) in self.rules.iter().enumerate() {
            let set = eval(expr, &bits, rows);
            for (w, word) in set.iter().enumerate() {
                let mut word = *word;
                while word != 0 {
                    let bit = word.trailing_zeros() as usize;
                    hits.push((start + w * 64 + bit, rule as u32));
                    word &= word - 1;
                }
            }
        }
        hits.sort_unstable();
        hits
    }
}

/// The rows of a chunk where `expr` is true; bits past `rows` are clear.
fn eval(expr: &Expr, bits: &AtomBits, rows: usize) -> [u64; WORDS] {
    let mut out = match expr {
        Expr::Atom(a) => bits.sets[*a as usize].as_deref().copied().unwrap_or([0; WORDS]),
        Expr::Const(b) => [if *b { u64::MAX } else { 0 }; WORDS],
        Expr::Not(x) => eval(x, bits, rows).map(|w| !w),
        Expr::And(xs) => xs.iter().fold([u64::MAX; WORDS], |mut acc, x| {
            let v = eval(x, bits, rows);
            acc.iter_mut().zip(v).for_each(|(a, b)| *a &= b);
            acc
        }),
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
