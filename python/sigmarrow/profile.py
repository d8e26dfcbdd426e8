"""``sigmarrow profile RULES --input DATA``: where the scan's time goes, by rule and by
column, so a user can find the rule that slows their scan.

Measured on the data given (one thread unless ``--threads``), from programs cut out of the
compiled program (no recompilation):

- **the whole program**: the time of one pass, the number every share is read against;
- **each rule alone**: a program holding only that rule, timed over the data; with its
  *candidate rows* (rows where at least one of its positive atoms, those not under a
  ``not``, is true: the rows a sparse evaluator must look at) and its *hits*. Shares are of
  the sum of the per-rule times (each alone pass also pays the scan, so the sum exceeds the
  whole program's time);
- **each column**: *alone*, a program whose rules keep only their atoms on that column
  (each rule becomes the OR of them), and *marginal*, the whole program's time minus its
  time on the data without that column; with the column's atoms, the atom hits per row and
  its distinct values.

All atoms are also evaluated once as a program of one rule per atom: how often each atom
is true is what makes candidate rows, and its time is the cost of reporting every literal
present.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.program import Program, Rule, any_of, atom_ids, atom_ref, rule_record

__all__ = [
    "ColumnCost",
    "Profile",
    "RuleCost",
    "add_arguments",
    "load_table",
    "profile",
    "run",
]


# --------------------------------------------------------------------------------------
# Cutting programs
# --------------------------------------------------------------------------------------


def _column_rule(rule: dict[str, Any], atoms: list[dict[str, Any]], field: int) -> dict[str, Any] | None:
    """The rule cut down to its atoms on `field`, ORed; None when it has none."""
    mine = [a for a in dict.fromkeys(atom_ids(rule["condition"])) if atoms[a]["field"] == field]
    if not mine:
        return None
    return {**rule, "condition": any_of([atom_ref(a) for a in mine])}


def _atom_rules(program: Program) -> list[Rule]:
    """One rule per atom, named by the atom id."""
    return [rule_record(str(i), atom_ref(i), title=f"atom {i}") for i in range(len(program.atoms))]


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class RuleCost:
    index: int
    id: str
    title: str
    seconds: float
    hits: int
    candidates: int  # rows where a positive atom of the rule is true; -1: any row can match
    atoms: int
    fields: list[str]
    # The engine's plan (Matcher.rule_plan): rows where its witness set hit (-1: no witness),
    # rows where every needed set hit, where the rule is evaluated (-1: every row), lazy atoms.
    witness_rows: int = -1
    plan_rows: int = -1
    lazy: int = 0
    share: float = 0.0


@dataclasses.dataclass
class ColumnCost:
    name: str
    atoms: int
    rules: int
    alone_seconds: float
    marginal_seconds: float
    atom_hits: int  # (row, atom) pairs where an atom on this column is true
    distinct: int  # distinct values of the column in the data (-1: not in the data)
    share: float = 0.0


@dataclasses.dataclass
class Profile:
    rows: int
    threads: int
    whole_seconds: float
    floor_seconds: float  # one call of a program with a trivial rule: the fixed cost
    atoms_seconds: float  # all atoms, one rule each
    rules: list[RuleCost]
    columns: list[ColumnCost]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best of `repeat` runs after one untimed warm-up run (the first call of a fresh
    engine pays one-time costs: page faults, lazily built tables, caches)."""
    result = fn()
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
        if best > 5.0:  # slow enough to be stable: no need to repeat
            break
    return best, result


def profile(
    matcher: Any,
    table: pa.Table,
    threads: int = 1,
    repeat: int = 3,
    rules: Iterable[int] | None = None,
    columns: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Profile:
    """Costs of each rule (or of the rules in `rules`, by index) and of each column of
    `matcher` over `table`."""
    from sigmarrow import Matcher

    program = matcher.program
    data = program.data
    atoms = data["atoms"]
    fields = data["fields"]
    if not isinstance(table, pa.Table):
        table = pa.table(table)
    table = table.combine_chunks() if table.num_columns else table

    def run(m: Any, t: pa.Table = table) -> tuple[np.ndarray, np.ndarray]:
        rows, rule_idx = m.match_indices(t, threads=threads)
        return (rows.to_numpy(zero_copy_only=False), rule_idx.to_numpy(zero_copy_only=False))

    whole_seconds, (_, w_rules) = _timed(lambda: run(matcher), repeat)
    hits = np.bincount(w_rules.astype(np.int64), minlength=len(data["rules"]))

    # The fixed cost of a call: one rule testing one column for null.
    any_field = next((i for i, f in enumerate(fields) if f in table.column_names), None)
    floor_seconds = 0.0
    if any_field is not None:
        trivial = Program.build([fields[any_field]], [{"op": "null", "field": 0}],
                                [rule_record("0", atom_ref(0), [0])])
        floor_seconds, _ = _timed(lambda: run(Matcher(trivial)), repeat)

    # Every atom once: which rows each atom is true on.
    atom_program = Matcher(program.subprogram(_atom_rules(program)))
    atoms_seconds, (a_rows, a_ids) = _timed(lambda: run(atom_program), 1)
    # atom_program renumbers atoms in order of first use, which for one rule per atom in
    # order is the identity.
    order = np.argsort(a_ids, kind="stable")
    a_rows, a_ids = a_rows[order], a_ids[order].astype(np.int64)
    bounds = np.searchsorted(a_ids, np.arange(len(atoms) + 1))

    def rows_of(atom: int) -> np.ndarray:
        return a_rows[bounds[atom]:bounds[atom + 1]]

    def rows_of_any(atom_set: list[int]) -> np.ndarray:
        return np.unique(np.concatenate([rows_of(a) for a in atom_set])) if atom_set else a_rows[:0]

    selected = list(range(len(data["rules"]))) if rules is None else list(rules)
    rule_costs: list[RuleCost] = []
    for k, i in enumerate(selected):
        rule = data["rules"][i]
        alone = Matcher(program.subprogram([rule]))
        seconds, (rows, _) = _timed(functools.partial(run, alone), repeat)
        if len(rows) != hits[i]:
            raise AssertionError(f"rule {rule['id']} alone hits {len(rows)} rows, in the whole program {hits[i]}")
        positive = list(dict.fromkeys(atom_ids(rule["condition"], positive_only=True)))
        all_atoms = list(dict.fromkeys(atom_ids(rule["condition"])))
        if _needs_no_positive(rule["condition"]):
            candidates = -1
        else:
            parts = [rows_of(a) for a in positive]
            candidates = len(np.unique(np.concatenate(parts))) if parts else 0
        plan = matcher.rule_plan(i)
        plan_rows = functools.reduce(np.intersect1d, map(rows_of_any, plan.needs)) if plan.needs else None
        rule_costs.append(RuleCost(
            i, rule["id"], rule["title"], seconds, int(hits[i]), candidates, len(all_atoms),
            [fields[f] for f in rule["fields"]],
            witness_rows=-1 if plan.witness is None else len(rows_of_any(plan.witness)),
            plan_rows=-1 if plan_rows is None else len(plan_rows), lazy=len(plan.lazy),
        ))
        if progress:
            progress(k + 1, len(selected))
    total = sum(r.seconds for r in rule_costs) or 1.0
    for r in rule_costs:
        r.share = r.seconds / total

    column_costs: list[ColumnCost] = []
    if columns:
        for f, name in enumerate(fields):
            cut = [c for c in (_column_rule(r, atoms, f) for r in data["rules"]) if c is not None]
            n_atoms = sum(1 for a in atoms if a["field"] == f)
            alone_seconds = 0.0
            if cut:
                column_matcher = Matcher(program.subprogram(cut))  # built outside the timing
                alone_seconds, _ = _timed(functools.partial(run, column_matcher), repeat)
            marginal = 0.0
            distinct = -1
            if name in table.column_names:
                without = table.drop_columns([name])
                t_without, _ = _timed(functools.partial(run, matcher, without), repeat)
                marginal = whole_seconds - t_without
                column = table.column(name)
                distinct = len(column.chunk(0).dictionary) if pa.types.is_dictionary(column.type) and column.num_chunks == 1 \
                    else len(pc.unique(column))
            atom_hits = int(sum(bounds[a + 1] - bounds[a] for a in range(len(atoms)) if atoms[a]["field"] == f))
            column_costs.append(ColumnCost(name, n_atoms, len(cut), alone_seconds, marginal, atom_hits, distinct))
        total_c = sum(c.alone_seconds for c in column_costs) or 1.0
        for c in column_costs:
            c.share = c.alone_seconds / total_c
    return Profile(table.num_rows, threads, whole_seconds, floor_seconds, atoms_seconds, rule_costs, column_costs)


def _needs_no_positive(expr: dict[str, Any]) -> bool:
    """Whether the expression can be true while every positive atom (not under a `not`) is
    false: `not x` alone, `a or not b`, ... Such a rule's candidates are all rows."""
    return _can(expr, False)[0]


def _can(expr: dict[str, Any], negated: bool) -> tuple[bool, bool]:
    """(can be true, can be false) with positive atoms false and negated atoms free."""
    if "atom" in expr:
        return (True, True) if negated else (False, True)
    if "const" in expr:
        return (bool(expr["const"]), not expr["const"])
    if "not" in expr:
        t, f = _can(expr["not"], not negated)
        return f, t
    children = [_can(c, negated) for c in expr.get("and", expr.get("or", []))]
    if "and" in expr:
        return all(t for t, _ in children), any(f for _, f in children) or not children
    return any(t for t, _ in children), all(f for _, f in children)


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def load_table(paths: Sequence[str], columns: Sequence[str] | None = None, rows: int = 0) -> pa.Table:
    """Events from Parquet, Arrow IPC/Feather, JSON Lines or EVTX files (or Parquet folders),
    keeping only `columns` that exist, and at most `rows` rows (0: all)."""
    import pyarrow.dataset as ds

    tables = []
    for spec in paths:
        path = Path(spec)
        suffix = path.suffix.lower()
        if suffix == ".evtx":
            from sigmarrow.evtx import read_evtx

            table = read_evtx(path)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            import pyarrow.json as pj

            table = pj.read_json(path)
        else:
            fmt = "ipc" if suffix in (".arrow", ".feather", ".ipc") else "parquet"
            dataset = ds.dataset(str(path), format=fmt)
            keep = [c for c in columns if c in dataset.schema.names] if columns is not None else None
            table = dataset.head(rows, columns=keep) if rows else dataset.to_table(columns=keep)
        if columns is not None:
            table = table.select([c for c in columns if c in table.column_names])
        tables.append(table)
        if rows and sum(t.num_rows for t in tables) >= rows:
            break
    table = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    return table.slice(0, rows) if rows else table


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def format_profile(p: Profile, top: int = 20) -> str:
    head = (f"{p.rows:,} rows, {p.threads} thread{'s' if p.threads > 1 else ''}: whole program "
            f"{_ms(p.whole_seconds)} ms ({p.rows / max(p.whole_seconds, 1e-12):,.0f} rows/s); fixed cost of "
            f"a call {_ms(p.floor_seconds)} ms; all {sum(c.atoms for c in p.columns) or '?'} atoms as one rule "
            f"each {_ms(p.atoms_seconds)} ms")
    rules_head = (f"Rules by time alone (top {min(top, len(p.rules))} of {len(p.rules)}; share of the sum of "
                  f"per-rule times, {_ms(sum(r.seconds for r in p.rules))} ms):")
    legend = ("(cand.rows: rows where a positive atom is true; the engine's plan: witness, rows where"
              " the set of atoms it is found by hit; plan rows, where every needed set hit and the rule"
              " is evaluated; lazy atoms, tested on plan rows only; `sigmarrow explain` lists them)")
    columns = (f"{'ms':>9} {'share':>6} {'cand.rows':>10} {'witness':>10} {'plan rows':>10} {'hits':>8} "
               f"{'atoms':>5} {'lazy':>4}  fields / title")
    out = [head, "", rules_head, legend, columns]

    def rows(n: int) -> str:
        return "any" if n < 0 else f"{n:,}"

    for r in sorted(p.rules, key=lambda r: -r.seconds)[:top]:
        out.append(f"{_ms(r.seconds):>9} {r.share:>6.1%} {rows(r.candidates):>10} {rows(r.witness_rows):>10} "
                   f"{rows(r.plan_rows):>10} {r.hits:>8,} {r.atoms:>5} {r.lazy:>4}  "
                   f"{','.join(r.fields)} / {r.title} ({r.id})")
    if p.columns:
        out += ["", ("Columns (alone: the rules' atoms on that column only; marginal: whole program "
                     "minus whole program without the column, a difference of two timings: "
                     "noisy, small or negative values mean ~0):"),
                (f"{'alone ms':>9} {'share':>6} {'marg. ms':>9} {'atoms':>6} {'rules':>6} "
                 f"{'atom hits/row':>13} {'distinct':>9}  column")]
        for c in sorted(p.columns, key=lambda c: -c.alone_seconds)[:top]:
            out.append(f"{_ms(c.alone_seconds):>9} {c.share:>6.1%} {_ms(c.marginal_seconds):>9} {c.atoms:>6,} "
                       f"{c.rules:>6,} {c.atom_hits / max(p.rows, 1):>13.2f} "
                       f"{(f'{c.distinct:,}' if c.distinct >= 0 else 'absent'):>9}  {c.name}")
    return "\n".join(out)


def plot(p: Profile, path: str, top: int = 20) -> None:
    """A bar chart of the top rules and the columns: .html (self-contained) or .png/.svg/.pdf
    (needs matplotlib)."""
    rules = sorted(p.rules, key=lambda r: -r.seconds)[:top]
    columns = sorted(p.columns, key=lambda c: -c.alone_seconds)
    if path.lower().endswith((".html", ".htm")):
        Path(path).write_text(_html(p, rules, columns), encoding="utf-8")
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from sigmarrow.errors import UsageError

        raise UsageError("--plot to an image needs matplotlib (pip install matplotlib); "
                         "or give a .html file") from None
    fig, axes = plt.subplots(2, 1, figsize=(11, 4 + 0.3 * (len(rules) + len(columns))))
    axes[0].barh([r.title[:60] for r in rules][::-1], [r.seconds * 1000 for r in rules][::-1])
    axes[0].set_xlabel("ms, rule alone")
    axes[0].set_title(f"Top {len(rules)} rules by time alone ({p.rows:,} rows)")
    axes[1].barh([c.name for c in columns][::-1], [c.alone_seconds * 1000 for c in columns][::-1])
    axes[1].set_xlabel("ms, the column's atoms alone")
    axes[1].set_title("Columns")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _html(p: Profile, rules: list[RuleCost], columns: list[ColumnCost]) -> str:
    def bars(items: list[tuple[str, float, str]]) -> str:
        peak = max((v for _, v, _ in items), default=1.0) or 1.0
        return "\n".join(
            (f'<tr><td class="l">{html.escape(label)}</td><td class="b"><div style="width:{100 * v / peak:.1f}%">'
             f'</div></td><td class="v">{html.escape(note)}</td></tr>') for label, v, note in items)

    rule_rows = bars([(r.title, r.seconds, (f"{_ms(r.seconds)} ms, {r.share:.1%}, "
                                            f"{'any' if r.candidates < 0 else f'{r.candidates:,}'} candidates, "
                                            f"{r.hits:,} hits")) for r in rules])
    col_rows = bars([(c.name, c.alone_seconds, (f"{_ms(c.alone_seconds)} ms alone, "
                                                 f"{_ms(c.marginal_seconds)} ms marginal, {c.atoms:,} atoms"))
                     for c in columns])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sigmarrow profile</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
td {{ padding: 2px 6px; white-space: nowrap; }}
td.l {{ max-width: 28em; overflow: hidden; text-overflow: ellipsis; }}
td.b {{ width: 50%; }} td.b div {{ background: #4a7ab5; height: 14px; }}
td.v {{ color: #555; font-size: 12px; }}
</style></head><body>
<h1>sigmarrow profile</h1>
<p>{p.rows:,} rows, {p.threads} thread(s); whole program {_ms(p.whole_seconds)} ms.</p>
<h2>Top {len(rules)} rules by time alone</h2>
<table>{rule_rows}</table>
<h2>Columns by time of their atoms alone</h2>
<table>{col_rows}</table>
</body></html>
"""


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rules", nargs="+", metavar="RULES",
                   help="Sigma rule files or folders, or one compiled program (.json from Matcher.save)")
    p.add_argument("--input", "-i", nargs="+", action="extend", required=True, metavar="PATH",
                   help="events: Parquet files or folders, Arrow IPC, JSON Lines, EVTX")
    p.add_argument("--pipeline", "-p", action="append", default=[], metavar="NAME_OR_FILE",
                   help="pySigma processing pipeline(s), as for scan")
    p.add_argument("--rows", type=int, default=100_000, metavar="N",
                   help="profile on the first N rows (default: 100000; 0 for all)")
    p.add_argument("--threads", "-j", type=int, default=1, metavar="N",
                   help="engine threads (default: 1, the per-core cost)")
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="best of N runs (default: 3)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="rows of each table (default: 20)")
    p.add_argument("--no-columns", action="store_true", help="skip the per-column costs")
    p.add_argument("--plot", metavar="OUT", help="also draw the costs: OUT.html, or OUT.png (matplotlib)")
    p.add_argument("--json", metavar="OUT", help="also write every measured number as JSON")


def _load_matcher(specs: Sequence[str], pipeline: Sequence[str]) -> Any:
    from sigmarrow.cache import compile_or_load

    return compile_or_load(specs, {"pipeline": list(pipeline) or None}).matcher


def run(args: argparse.Namespace) -> int:
    from sigmarrow.errors import UsageError

    for path in [*args.rules, *args.input]:
        if not Path(path).exists():
            raise UsageError(f"no such file or folder: {path}")
    if args.plot and not args.plot.lower().endswith((".html", ".htm", ".png", ".svg", ".pdf")):
        raise UsageError(f"--plot {args.plot}: give a .html, .png, .svg or .pdf file")
    matcher = _load_matcher(args.rules, args.pipeline)
    for e in matcher.errors:
        print(f"sigmarrow profile: rule not compiled: {e}", file=sys.stderr)
    if not matcher.rules:
        print("sigmarrow profile: no rule compiled", file=sys.stderr)
        return 2
    keyword = matcher.has_keywords
    table = load_table(args.input, None if keyword else matcher.fields, args.rows)
    n = len(matcher.rules)
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty and (done % 20 == 0 or done == total):
            print(f"\rrules timed: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    print(f"profiling {n:,} rules over {table.num_rows:,} rows ...", file=sys.stderr)
    result = profile(matcher, table, threads=args.threads, repeat=args.repeat,
                     columns=not args.no_columns, progress=progress)
    print(format_profile(result, args.top))
    if args.plot:
        plot(result, args.plot, args.top)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sigmarrow.profile", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    from sigmarrow.errors import UsageError

    try:
        raise SystemExit(run(parser.parse_args()))
    except UsageError as exc:
        raise SystemExit(f"sigmarrow profile: error: {exc}") from None
