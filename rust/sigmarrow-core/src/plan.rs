//! How each rule runs: the sets of atoms it needs, its witness, and its lazy atoms (see
//! `docs/engine.md`). Decided once, when the matcher is built.

use memchr::memmem;

use crate::casefold::fold;
use crate::program::{Anchor, Atom, AtomId, Expr, FieldId, Program};
use crate::regex::CompiledCheck;

pub(crate) struct CompiledRule {
    pub condition: Expr,
    /// Sets of atoms of which the rule needs at least one each (from its top-level `and`):
    /// a chunk where some set has no hit cannot match, and the rule is skipped there.
    /// None for a rule that holds with every atom false (e.g. `not filter`): it is
    /// evaluated on every chunk.
    pub needs: Vec<Vec<AtomId>>,
    /// The rule's lazy atoms (see [`LazyAtom`]), by field.
    pub lazy: Vec<(FieldId, Vec<AtomId>)>,
    /// The needed set chosen as the rule's witness: its atoms stay in the field tables.
    pub witness: Option<Vec<AtomId>>,
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

impl CompiledRule {
    /// A rule with its needed sets; `condition` is `false` for a disabled rule.
    pub fn new(condition: Expr) -> CompiledRule {
        let mut needs = needed_atoms(&condition);
        if needs.is_empty() && !holds_with_atoms_false(&condition) {
            // Some atom must hit: the rule's atoms are one such set.
            needs.push(atoms_of(&condition).into_iter().map(|(a, _)| a).collect());
        }
        CompiledRule { condition, needs, lazy: vec![], witness: None }
    }

    pub fn plan(&self) -> RulePlan {
        RulePlan {
            needs: self.needs.clone(),
            witness: self.witness.clone(),
            lazy: self.lazy.iter().flat_map(|(_, atoms)| atoms.iter().copied()).collect(),
        }
    }
}

/// An atom left out of the field tables and tested directly, only on the rows where each
/// rule using it has a hit in every set of atoms it needs: the rule is false on every other
/// row whatever the atom's value. Two kinds are lazy: string literals that only sit under a
/// `not` (filters), and globs and regexes outside the set of atoms each rule is found by
/// (its witness), which would otherwise run on every value holding a trigger literal.
pub(crate) struct LazyAtom {
    pub field: FieldId,
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
    /// The atom as a lazy test, with its compiled check for a glob or regex; `None` for an
    /// atom that cannot be lazy (it stays in its field's table).
    fn new(atom: &Atom, check: &mut Option<CompiledCheck>) -> Option<LazyAtom> {
        let field = atom.field()?;
        let test = match atom {
            Atom::Str { anchor, value, cased, .. } if !value.is_empty() => {
                let literal = if *cased { value.clone() } else { fold(value) };
                let finder = memmem::Finder::new(literal.as_bytes()).into_owned();
                LazyTest::Literal { anchor: *anchor, literal, cased: *cased, finder }
            }
            _ => {
                let check = check.take()?;
                let triggers = if check.triggers.len() <= MAX_LAZY_TRIGGERS {
                    check
                        .triggers
                        .iter()
                        .map(|t| memmem::Finder::new(t.as_bytes()).into_owned())
                        .collect()
                } else {
                    vec![]
                };
                LazyTest::Check(check, triggers)
            }
        };
        Some(LazyAtom { field, test })
    }

    /// Whether the atom holds for a value, given also case-folded.
    pub fn test(&self, value: &str, folded: &str) -> bool {
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
                (triggers.is_empty()
                    || triggers.iter().any(|t| t.find(folded.as_bytes()).is_some()))
                    && check.regex.is_match(if check.on_folded { folded } else { value })
            }
        }
    }
}

/// The atoms of `expr`, each with whether it sits under a `not`, sorted and deduplicated.
pub(crate) fn atoms_of(expr: &Expr) -> Vec<(AtomId, bool)> {
    fn walk(expr: &Expr, negated: bool, out: &mut Vec<(AtomId, bool)>) {
        match expr {
            Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| walk(x, negated, out)),
            Expr::Not(x) => walk(x, true, out),
            Expr::Atom(a) => out.push((*a, negated)),
            Expr::Const(_) => {}
        }
    }
    let mut out = Vec::new();
    walk(expr, false, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `expr` holds when every atom is false.
fn holds_with_atoms_false(expr: &Expr) -> bool {
    match expr {
        Expr::Atom(_) => false,
        Expr::Const(b) => *b,
        Expr::Not(x) => !holds_with_atoms_false(x),
        Expr::And(xs) => xs.iter().all(holds_with_atoms_false),
        Expr::Or(xs) => xs.iter().any(holds_with_atoms_false),
    }
}

/// A guess at how often a set of atoms hits, to choose a rule's witness: short literals
/// are common; globs, regexes and other tests cost a run each.
fn guessed_cost(set: &[AtomId], atoms: &[Atom]) -> f64 {
    set.iter()
        .map(|&a| match &atoms[a.index()] {
            Atom::Str { value, .. } => 1.0 / (value.chars().count().max(1) as f64).powi(2),
            _ => 1.0,
        })
        .sum()
}

/// Chooses the lazy atoms (see [`LazyAtom`]), records them in their rules (whose needed
/// sets then keep only those without lazy atoms), and returns them by atom id. Only atoms
/// some rule uses are lazy; a lazy glob or regex takes its compiled check out of `checks`.
pub(crate) fn lazy_atoms(
    program: &Program,
    rules: &mut [CompiledRule],
    used: &[bool],
    checks: &mut [Option<CompiledCheck>],
) -> Vec<Option<LazyAtom>> {
    let mut eager = vec![false; program.atoms.len()];
    let uses: Vec<Vec<(AtomId, bool)>> = rules.iter().map(|r| atoms_of(&r.condition)).collect();
    for (rule, atoms) in rules.iter_mut().zip(&uses) {
        rule.witness = rule
            .needs
            .iter()
            .min_by(|x, y| {
                guessed_cost(x, &program.atoms).total_cmp(&guessed_cost(y, &program.atoms))
            })
            .cloned();
        let witness = rule.witness.as_ref();
        for &(a, negated) in atoms {
            let check = matches!(program.atoms[a.index()], Atom::Glob { .. } | Atom::Re { .. });
            let keep = match witness {
                // Nothing else to go on.
                None => true,
                Some(witness) if check => witness.contains(&a),
                Some(_) => !negated || rule.needs.iter().flatten().any(|&n| n == a),
            };
            eager[a.index()] |= keep;
        }
    }
    let lazy: Vec<Option<LazyAtom>> = (program.atoms.iter().zip(checks))
        .enumerate()
        .map(
            |(id, (atom, check))| {
                if used[id] && !eager[id] {
                    LazyAtom::new(atom, check)
                } else {
                    None
                }
            },
        )
        .collect();
    for (rule, atoms) in rules.iter_mut().zip(&uses) {
        for &(a, _) in atoms {
            let Some(atom) = &lazy[a.index()] else {
                continue;
            };
            match rule.lazy.iter_mut().find(|(f, _)| *f == atom.field) {
                Some((_, group)) if group.last() != Some(&a) => group.push(a),
                Some(_) => {}
                None => rule.lazy.push((atom.field, vec![a])),
            }
        }
        rule.needs.retain(|set| set.iter().all(|&a| lazy[a.index()].is_none()));
    }
    lazy
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
