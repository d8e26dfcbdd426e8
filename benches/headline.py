"""The headline table of issue 3, measured on this machine in about a minute, every number
checked against an answer (``make bench``; ``bench_engine.py`` runs it at full size).

    python benches/headline.py [--events 200000] [--output report.md]

What it does, in order:

1. selects the Windows ``process_creation`` rules of a SigmaHQ checkout (the three main
   folders, ~1,415 rules) and compiles them;
2. generates realistic synthetic Sysmon process-creation events (``generate.py``: a
   Zipf-like spread of a few thousand image paths, high-cardinality command lines of about
   54 bytes, real positives from ``regression_data/`` and events synthesized to satisfy
   randomly chosen rules), writes them as Parquet in a temporary folder and reads them back;
3. times sigmarrow over them with one thread and with all threads;
4. times DuckDB running pySigma's DuckDB-backend SQL, one ``count(*)`` query per rule, on a
   subsample, and compares the per-rule counts with sigmarrow's on the same rows;
5. times the Cloudflared rule alone (Image column) against DuckDB (1 thread),
   ``pyarrow.compute`` and polars, on plain and dictionary-encoded Image, comparing counts;
6. checks sigmarrow against the Python reference evaluator (``sigmarrow.reference``) on a
   positive-rich sample: every hit sigmarrow reports, every planted positive and a random
   sample of the (event, rule) pairs it does not report; optionally (``--reference-events``)
   complete per-rule counts on the first N events.

Disagreements are printed, never hidden: the DuckDB backend has known semantic bugs
(``not`` over a missing field, unescaped ``%``/``_`` in ``ILIKE``, case-sensitive ``=``).
Exit status 1 when a sigmarrow answer did not check out.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import (
    RULE_FOLDERS,
    command_line,
    compile_with_rules,
    cores,
    cpu_model,
    find_sigma_dir,
    process_creation_files,
)
from generate import (
    DICTIONARY_COLUMNS,
    Positives,
    generate_events,
    image_column,
    load_positives,
    write_parquet,
)

CLOUDFLARED_RULE = "proc_creation_win_cloudflared_portable_execution.yml"


def best_time(fn: Callable[[], Any], budget: float = 1.5, max_runs: int = 5, min_runs: int = 1) -> tuple[float, Any]:
    """(fastest wall time, result) of `fn`, run until `budget` seconds are spent (at least
    `min_runs`, at most `max_runs` times). The result of every run must be equal."""
    times: list[float] = []
    result: Any = None
    spent = 0.0
    while len(times) < min_runs or (len(times) < max_runs and spent < budget):
        start = time.perf_counter()
        got = fn()
        took = time.perf_counter() - start
        if times and not _same(got, result):
            raise AssertionError(f"two runs of the same measurement disagree: {got!r} != {result!r}")
        result = got
        times.append(took)
        spent += took
    return min(times), result


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


@dataclasses.dataclass
class Row:
    """One line of the headline table."""

    work: str
    engine: str
    rows: int
    seconds: float
    answer: str = ""
    baseline: str | None = None  # the engine this row's ratio compares with (work-local)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclasses.dataclass
class Report:
    """Everything one bench run measured and checked."""

    title: str
    setup: list[str] = dataclasses.field(default_factory=list)
    rows: list[Row] = dataclasses.field(default_factory=list)
    checks: list[str] = dataclasses.field(default_factory=list)
    disagreements: list[str] = dataclasses.field(default_factory=list)
    targets: list[str] = dataclasses.field(default_factory=list)
    extra: list[str] = dataclasses.field(default_factory=list)
    failed: bool = False  # sigmarrow gave a wrong answer

    def rate_of(self, work: str, engine: str) -> float | None:
        for r in self.rows:
            if r.work == work and r.engine == engine:
                return r.rate
        return None

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        out += [f"- {line}" for line in self.setup] + [""]
        out += ["| work | engine | rows | best time | rows/s | ratio | answer |",
                "|---|---|---:|---:|---:|---:|---|"]
        for r in self.rows:
            ratio = ""
            ours = self.rate_of(r.work, r.baseline) if r.baseline else None
            if ours and r.engine.startswith("sigmarrow"):
                ratio = f"{r.rate / ours:.2f}\u00d7 of 1 thread"
            elif ours:
                ratio = f"sigmarrow {_fmt_ratio(ours / r.rate)}"
            out.append(f"| {r.work} | {r.engine} | {r.rows:,} | {_fmt_s(r.seconds)} | "
                       f"{_fmt_rate(r.rate)} | {ratio} | {r.answer}{(' ' + r.note) if r.note else ''} |")
        if self.targets:
            out += ["", "## Targets of issue 3", ""] + [f"- {t}" for t in self.targets]
        out += ["", "## Answers checked", ""] + [f"- {c}" for c in self.checks]
        if self.disagreements:
            out += ["", "## Disagreements", ""] + [f"- {d}" for d in self.disagreements]
        if self.extra:
            out += [""] + self.extra
        return "\n".join(out) + "\n"


def _fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}\u00d7" if ratio >= 100 else f"{ratio:.1f}\u00d7"


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _fmt_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:,.1f}M"
    if rate >= 1e4:
        return f"{rate / 1e3:,.0f}k"
    return f"{rate:,.0f}"


def machine() -> str:
    cpu = cpu_model()
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem = ""
    return f"{cpu}, {cores()} cores available (nproc){mem}, {platform.system()} {platform.release()}"


def versions() -> str:
    import importlib.metadata as md

    parts = [f"Python {platform.python_version()}"]
    for name in ("sigmarrow", "pyarrow", "pysigma", "duckdb", "pysigma-backend-duckdb", "polars"):
        try:
            parts.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(parts)


def rule_counts(matcher: Any, data: Any, threads: int) -> np.ndarray:
    """Hits per rule (in the matcher's rule order)."""
    _, rules = matcher.match_indices(data, threads=threads)
    return np.bincount(rules.to_numpy(zero_copy_only=False).astype(np.int64), minlength=len(matcher.rules))


def hit_pairs(matcher: Any, data: Any, threads: int | None = None) -> set[tuple[int, int]]:
    rows, rules = matcher.match_indices(data, threads=threads)
    return set(zip(rows.to_pylist(), rules.to_pylist()))


# --- DuckDB with pySigma's DuckDB backend -----------------------------------------------


def duckdb_queries(rules: Sequence[Any]) -> tuple[list[str | None], list[str]]:
    """pySigma DuckDB-backend SQL per rule (None where the backend refuses), and why not."""
    import copy

    from sigma_backend_duckdb import DuckDBBackend

    backend = DuckDBBackend()
    queries: list[str | None] = []
    refused = []
    for rule in rules:
        try:
            converted = backend.convert_rule(copy.deepcopy(rule))
            queries.append(converted[0] if len(converted) == 1 else None)
            if len(converted) != 1:
                refused.append(f"{rule.title}: {len(converted)} queries")
        except Exception as e:  # noqa: BLE001 - any backend failure is reported
            queries.append(None)
            refused.append(f"{rule.title}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    return queries, refused


def duckdb_connection(table: pa.Table, fields: Sequence[str], threads: int) -> Any:
    """An in-memory DuckDB holding `table` as native table `logs` (the fastest way for DuckDB
    to scan it), with a NULL column for every rule field the data lacks, and `__row`."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={int(threads)}")
    src = table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    src = pa.table({name: (col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col)
                    for name, col in zip(src.column_names, src.columns)})
    con.register("src", src)
    con.execute("CREATE TABLE logs AS SELECT * FROM src")
    con.unregister("src")
    for name in fields:
        if name not in table.column_names:
            con.execute(f'ALTER TABLE logs ADD COLUMN "{name}" VARCHAR')
    return con


def _count_query(sql: str) -> str:
    return sql.replace("SELECT * FROM logs WHERE", "SELECT count(*) FROM logs WHERE", 1)


def duckdb_counts(con: Any, queries: Sequence[str | None],
                  titles: Sequence[str] | None = None) -> tuple[float, np.ndarray, list[str]]:
    """(total seconds, count per rule (-1 where no query or it failed), failures): one
    query per rule, as a user of the SQL backend runs them."""
    counts = np.full(len(queries), -1, dtype=np.int64)
    errors = []
    start = time.perf_counter()
    for i, sql in enumerate(queries):
        if sql is None:
            continue
        try:
            counts[i] = con.execute(_count_query(sql)).fetchone()[0]
        except Exception as e:  # noqa: BLE001 - reported
            name = titles[i] if titles else f"rule {i}"
            errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    return time.perf_counter() - start, counts, errors


def duckdb_rows(con: Any, sql: str) -> set[int]:
    return {r[0] for r in con.execute(sql.replace("SELECT * FROM logs WHERE", "SELECT __row FROM logs WHERE", 1)).fetchall()}


_ILIKE = re.compile(r"ILIKE '((?:[^']|'')*)'")


def sql_suspects(sql: str) -> list[str]:
    """Known DuckDB-backend semantic differences that this query may hit."""
    found = []
    if re.search(r"\bNOT\b", sql):
        found.append("NOT over NULL drops the event")
    for pattern in _ILIKE.findall(sql):
        inner = pattern.strip("%")
        if "_" in inner or "%" in inner:
            found.append("unescaped _/% in ILIKE")
            break
    if re.search(r"[\w\"]=\'", sql):
        found.append("case-sensitive =")
    if "regexp_matches" in sql:
        found.append("regex dialect")
    if " GLOB " in sql:
        found.append("GLOB")
    return found


# --- the reference -----------------------------------------------------------------------


def reference_pairs(rules: Sequence[Any], events: Sequence[dict[str, Any]],
                    pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bool]:
    """The reference evaluator's verdict on each (row, rule index) pair."""
    from sigmarrow import reference

    out = {}
    for row, rule in pairs:
        try:
            out[(row, rule)] = reference.evaluate_rule(rules[rule], events[row], None)
        except ValueError:
            out[(row, rule)] = False
    return out


def _reference_worker(args: tuple[list[str], list[dict[str, Any]]]) -> list[int]:
    files, events = args
    from sigmarrow import reference

    _, rules = compile_with_rules([Path(f) for f in files])
    counts = [0] * len(rules)
    for event in events:
        for i, rule in enumerate(rules):
            try:
                if reference.evaluate_rule(rule, event, None):
                    counts[i] += 1
            except ValueError:
                pass
    return counts


def reference_counts(files: Sequence[Path], events: list[dict[str, Any]], processes: int) -> np.ndarray:
    """Per-rule hit counts of the reference over `events`, split across processes (the
    reference takes ~1 ms per rule and event)."""
    import concurrent.futures as cf

    chunks = [events[i::processes] for i in range(processes)]
    args = [([str(f) for f in files], chunk) for chunk in chunks if chunk]
    if len(args) == 1:
        return np.array(_reference_worker(args[0]), dtype=np.int64)
    with cf.ProcessPoolExecutor(len(args)) as pool:
        results = list(pool.map(_reference_worker, args))
    return np.sum(np.array(results, dtype=np.int64), axis=0)


# ======================================================================================
# The bench
# ======================================================================================


@dataclasses.dataclass
class Config:
    """Sizes and switches of one bench run (the defaults: about a minute)."""

    sigma_dir: Path
    events: int = 200_000
    engine_seconds: float = 3.0  # cap on one sigmarrow timing run: fewer events if slower
    budget: float = 1.0  # seconds of repeats per peer measurement (best of up to 3 runs)
    duckdb_events: int = 10_000
    duckdb_threads: tuple[int, ...] = (0,)  # 0 = all cores
    check_events: int = 2_000
    reference_pairs: int = 3_000
    reference_events: int = 0
    cloudflared_rows: int = 2_000_000
    threads: int = 0  # 0 = all cores
    seed: int = 1
    workdir: Path | None = None
    peers: bool = True
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)


def measure(cfg: Config) -> Report:
    log = cfg.log
    all_threads = cfg.threads or cores()
    report = Report(f"sigmarrow headline bench, {dt.date.today().isoformat()}")
    report.setup.append(f"machine: {machine()}")
    report.setup.append(f"versions: {versions()}")
    report.setup.append(f"load average at start: {_load()} (other work on the machine skews the numbers)")

    # --- rules ---
    files = process_creation_files(cfg.sigma_dir)
    log(f"compiling {len(files)} process_creation rules ...")
    start = time.perf_counter()
    matcher, rules = compile_with_rules(files)
    compile_s = time.perf_counter() - start
    n_rules = len(matcher.rules)
    report.setup.append(
        f"rules: {n_rules:,} Windows process_creation rules of {cfg.sigma_dir} ({', '.join(RULE_FOLDERS)}); "
        f"{len(matcher.errors)} failed to compile; compiled in {compile_s:.1f} s "
        f"({len(matcher.program.atoms):,} atoms over {len(matcher.fields)} fields)")

    # --- data ---
    positives = load_positives(cfg.sigma_dir, matcher, rules)
    workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="sigmarrow-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"generating {cfg.events:,} events in {workdir} ...")
    start = time.perf_counter()
    table, planted = generate_events(cfg.events, cfg.seed, positives=positives)
    gen_s = time.perf_counter() - start
    path = workdir / "events.parquet"
    write_parquet(table, path)
    start = time.perf_counter()
    table = pq.read_table(path)
    read_s = time.perf_counter() - start
    cmd_len = pc.mean(pc.binary_length(table.column("CommandLine"))).as_py()
    report.setup.append(
        f"data: {table.num_rows:,} synthetic Sysmon EventID 1 events, seed {cfg.seed} "
        f"({len(pc.unique(table.column('Image'))):,} distinct Image, "
        f"{len(pc.unique(table.column('CommandLine'))):,} distinct CommandLine averaging {cmd_len:.0f} bytes, "
        f"{sum(1 for p in planted if p[2] == 'regression'):,} regression_data events and "
        f"{sum(1 for p in planted if p[2] == 'synthesized'):,} synthesized positives planted); "
        f"generated in {gen_s:.1f} s; Parquet (zstd) {path.stat().st_size / 2**20:.1f} MiB read back in "
        f"{read_s * 1000:.0f} ms (not included below: every engine gets the table in memory)")

    # --- sigmarrow, whole rule set ---
    work = f"{n_rules:,} rules"
    probe = table.slice(0, min(table.num_rows, 10_000))
    start = time.perf_counter()
    matcher.match_indices(probe, threads=1)
    est = probe.num_rows / max(time.perf_counter() - start, 1e-9)
    n = int(min(table.num_rows, max(10_000, est * cfg.engine_seconds)))
    sample = table.slice(0, n)
    log(f"sigmarrow on {n:,} events (est. {est:,.0f} events/s on 1 thread) ...")
    counts_by_threads = {}
    for threads in dict.fromkeys((1, all_threads)):
        seconds, counts = best_time(lambda t=threads: rule_counts(matcher, sample, t), budget=cfg.engine_seconds)
        counts_by_threads[threads] = counts
        report.rows.append(Row(work, f"sigmarrow, {threads} thread{'s' if threads > 1 else ''}", n, seconds,
                               f"{int(counts.sum()):,} hits, {int((counts > 0).sum()):,} rules hit",
                               None if threads == 1 else "sigmarrow, 1 thread"))
    # The same events with the low-cardinality columns dictionary-encoded (as Parquet stores
    # them, and as a reader may hand them over): the engine may evaluate each value once.
    encoded = pa.table({name: (pc.dictionary_encode(col) if name in DICTIONARY_COLUMNS else col)
                        for name, col in zip(sample.column_names, sample.columns)})
    seconds, counts = best_time(lambda: rule_counts(matcher, encoded, 1), budget=cfg.engine_seconds)
    same = np.array_equal(counts, counts_by_threads[1])
    plain_rate = report.rate_of(work, "sigmarrow, 1 thread") or 1.0
    report.rows.append(Row(
        work + ", dictionary-encoded Image, ParentImage, User, ...", "sigmarrow, 1 thread", n, seconds,
        "per-rule counts " + ("equal the plain run's" if same else "DIFFER from the plain run's"),
        note=f"({n / seconds / plain_rate:.2f}\u00d7 the plain run)"))
    report.failed |= not same
    if len(counts_by_threads) > 1:
        a, b = counts_by_threads.values()
        report.checks.append("1 thread and all threads give the same per-rule counts" if np.array_equal(a, b)
                              else "1 thread and all threads DISAGREE on per-rule counts")
        report.failed |= not np.array_equal(a, b)

    # --- DuckDB, one query per rule ---
    if cfg.peers and _have("duckdb") and _have("sigma_backend_duckdb"):
        queries, refused = duckdb_queries(rules)
        dsample = table.slice(0, min(cfg.duckdb_events, table.num_rows))
        ours = rule_counts(matcher, dsample, 1)
        for threads in cfg.duckdb_threads:
            threads = threads or all_threads
            log(f"DuckDB, {sum(q is not None for q in queries):,} queries over {dsample.num_rows:,} events, "
                f"{threads} thread(s) ...")
            con = duckdb_connection(dsample, matcher.fields, threads)
            duckdb_counts(con, queries[:20])  # warm up
            seconds, counts, errors = duckdb_counts(con, queries, [r.title for r in matcher.rules])
            con.close()
            same = [i for i in range(n_rules) if counts[i] >= 0 and counts[i] == ours[i]]
            diff = [i for i in range(n_rules) if counts[i] >= 0 and counts[i] != ours[i]]
            report.rows.append(Row(
                work, f"DuckDB {_version('duckdb')}, pySigma DuckDB-backend SQL, one query per rule, "
                      f"{threads} thread{'s' if threads > 1 else ''}",
                dsample.num_rows, seconds,
                f"per-rule counts equal sigmarrow's on {len(same):,} of {len(same) + len(diff):,} rules",
                "sigmarrow, 1 thread",
                f"({len(refused)} rules not convertible, {len(errors)} queries failed"
                + ("; on few events DuckDB's fixed cost per query weighs more" if dsample.num_rows < 100_000 else "")
                + ")"))
            if threads == (cfg.duckdb_threads[0] or all_threads):
                for i in diff[:40]:
                    report.disagreements.append(
                        f"DuckDB vs sigmarrow on the timing sample: {rules[i].title} ({matcher.rules[i].id}): "
                        f"sigmarrow {ours[i]}, DuckDB {counts[i]}; "
                        f"suspects: {', '.join(sql_suspects(queries[i] or '')) or 'none known'}")
                if len(diff) > 40:
                    report.disagreements.append(f"... and {len(diff) - 40} more rules")
                for line in refused + errors:
                    report.disagreements.append(f"DuckDB could not run: {line}")
    elif cfg.peers:
        report.checks.append("DuckDB peer skipped: `pip install duckdb pysigma-backend-duckdb`")

    # --- answers: a positive-rich sample against the reference (and DuckDB, row by row) ---
    _check_answers(cfg, report, matcher, rules, positives, files)

    # --- the Cloudflared rule alone ---
    _cloudflared(cfg, report, all_threads)

    _targets(report, work)
    report.setup.append(f"load average at the end: {_load()}")
    return report


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _version(name: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "?"


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _check_answers(cfg: Config, report: Report, matcher: Any, rules: list[Any], positives: Positives,
                   files: list[Path]) -> None:
    log = cfg.log
    log(f"checking answers on {cfg.check_events:,} positive-rich events against the reference ...")
    check, planted = generate_events(cfg.check_events, cfg.seed + 1, positives=positives,
                                     regression_rate=0.05, synth_rate=0.10)
    events = check.to_pylist()
    index = {r.id: i for i, r in enumerate(matcher.rules)}
    ours = hit_pairs(matcher, check)
    planted_pairs = {(row, index[rid]) for row, rid, _ in planted if rid in index}
    rng = random.Random(cfg.seed)
    n_rules = len(rules)
    misses: set[tuple[int, int]] = set()
    tries = 0
    while len(misses) < cfg.reference_pairs and tries < cfg.reference_pairs * 3:
        tries += 1
        pair = (rng.randrange(len(events)), rng.randrange(n_rules))
        if pair not in ours:
            misses.add(pair)

    duck_pairs: set[tuple[int, int]] = set()
    duck_rows: dict[int, set[int]] = {}
    queries: list[str | None] = []
    if cfg.peers and _have("duckdb") and _have("sigma_backend_duckdb"):
        queries, _ = duckdb_queries(rules)
        con = duckdb_connection(check, matcher.fields, cfg.threads or 2)
        for i, sql in enumerate(queries):
            if sql is None:
                continue
            try:
                duck_rows[i] = duckdb_rows(con, sql)
            except Exception:  # noqa: BLE001, S112 - counted with the timing run
                continue
        con.close()
        for i, got in duck_rows.items():
            mine = {row for row, rule in ours if rule == i}
            for row in sorted(got ^ mine)[:3]:
                duck_pairs.add((row, i))

    pairs = ours | planted_pairs | misses | duck_pairs
    start = time.perf_counter()
    verdict = reference_pairs(rules, events, pairs)
    ref_s = time.perf_counter() - start
    false_pos = sorted(p for p in ours if not verdict[p])
    false_neg = sorted(p for p in pairs if verdict[p] and p not in ours)
    report.checks.append(
        f"sigmarrow vs the Python reference on {len(events):,} positive-rich events "
        f"({len(planted_pairs):,} planted positives): {len(pairs):,} (event, rule) pairs checked in "
        f"{ref_s:.1f} s: all {len(ours):,} sigmarrow hits, the planted positives, "
        f"{len(misses):,} random non-hits{', the rows where DuckDB differs' if duck_pairs else ''}: "
        + ("all agree" if not false_pos and not false_neg else
           f"{len(false_pos)} hits the reference rejects, {len(false_neg)} matches sigmarrow misses"))
    report.failed |= bool(false_pos or false_neg)
    for row, rule in (false_pos + false_neg)[:30]:
        fields = {k: events[row].get(k) for k in matcher.rules[rule].fields}
        report.disagreements.append(
            f"sigmarrow vs reference: {matcher.rules[rule].title} ({matcher.rules[rule].id}) on "
            f"{fields}: sigmarrow {'hit' if (row, rule) in ours else 'no hit'}, reference {verdict[(row, rule)]}")
    rules_hit = len({rule for _, rule in ours})
    report.checks.append(f"the check sample hits {rules_hit:,} of {n_rules:,} rules in sigmarrow")

    if duck_rows:
        right = Counter()
        rules_differ = 0
        for i, got in duck_rows.items():
            mine = {row for row, rule in ours if rule == i}
            if got == mine:
                continue
            rules_differ += 1
            for row in sorted(got ^ mine)[:3]:
                ref = verdict.get((row, i))
                sides = "sigmarrow" if ref == ((row, i) in ours) else "DuckDB"
                right[sides] += 1
                if len(report.disagreements) < 120:
                    report.disagreements.append(
                        f"DuckDB vs sigmarrow on the check sample: {matcher.rules[i].title}: row {row} "
                        f"{'only DuckDB' if row in got else 'only sigmarrow'} matches; the reference sides "
                        f"with {sides}; suspects: {', '.join(sql_suspects(queries[i] or '')) or 'none known'}")
        report.checks.append(
            f"DuckDB (pySigma DuckDB-backend SQL) vs sigmarrow, row by row on the check sample: "
            f"{len(duck_rows) - rules_differ:,} of {len(duck_rows):,} rules give the same rows; on the "
            f"{rules_differ} that differ the reference sides with sigmarrow {right['sigmarrow']} times and "
            f"with DuckDB {right['DuckDB']} times (up to 3 rows per rule checked)")

    if cfg.reference_events:
        n = min(cfg.reference_events, len(events))
        procs = cfg.threads or os.cpu_count() or 1
        log(f"reference per-rule counts on {n} events x {n_rules} rules ({procs} processes) ...")
        start = time.perf_counter()
        ref = reference_counts(files, events[:n], procs)
        ref_s = time.perf_counter() - start
        ours_n = rule_counts(matcher, check.slice(0, n), 1)
        diff = [i for i in range(n_rules) if ref[i] != ours_n[i]]
        report.checks.append(
            f"complete per-rule counts of the reference on the first {n:,} check events "
            f"({n * n_rules:,} evaluations, {ref_s:.0f} s): "
            + ("equal to sigmarrow's on every rule" if not diff else f"{len(diff)} rules DIFFER"))
        report.failed |= bool(diff)
        for i in diff[:30]:
            report.disagreements.append(f"per-rule count: {matcher.rules[i].title}: sigmarrow {ours_n[i]}, "
                                        f"reference {ref[i]}")


def cloudflared_expected(table: pa.Table, rule: Any) -> int:
    """The true count of the Cloudflared rule over a one-column Image table: the reference
    evaluates each distinct value once, weighted by how often it occurs."""
    from sigmarrow import reference

    column = table.column("Image").combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    values = column.dictionary.to_pylist()
    freq = np.bincount(column.indices.to_numpy(zero_copy_only=False), minlength=len(values))
    return int(sum(int(freq[i]) for i, v in enumerate(values) if reference.evaluate_rule(rule, {"Image": v}, None)))


def _cloudflared_peers(table: pa.Table, sql: str | None) -> list[tuple[str, Callable[[], int]]]:
    peers: list[tuple[str, Callable[[], int]]] = []
    column = table.column("Image")
    is_dict = pa.types.is_dictionary(column.type)
    sel, f1, f2 = "\\cloudflared.exe", ":\\program files (x86)\\cloudflared\\", ":\\program files\\cloudflared\\"

    def arrow_rule(values: pa.Array | pa.ChunkedArray, lower: bool) -> Any:
        if lower:
            low = pc.utf8_lower(values)
            a = pc.ends_with(low, sel)
            b = pc.or_(pc.match_substring(low, f1), pc.match_substring(low, f2))
        else:
            a = pc.ends_with(values, sel, ignore_case=True)
            b = pc.or_(pc.match_substring(values, f1, ignore_case=True),
                       pc.match_substring(values, f2, ignore_case=True))
        return pc.and_(a, pc.invert(b))

    for lower in (True, False):
        label = "utf8_lower + ends_with/match_substring" if lower else "ends_with/match_substring, ignore_case"
        if is_dict:
            def run_dict(lower: bool = lower) -> int:
                total = 0
                for chunk in column.chunks:
                    verdict = arrow_rule(chunk.dictionary, lower)
                    total += pc.sum(pc.take(verdict, chunk.indices)).as_py() or 0
                return int(total)
            peers.append((f"pyarrow.compute {pa.__version__} on the dictionary, then take ({label})", run_dict))
        else:
            def run_plain(lower: bool = lower) -> int:
                return int(pc.sum(arrow_rule(column, lower)).as_py() or 0)
            peers.append((f"pyarrow.compute {pa.__version__} ({label})", run_plain))

    if _have("polars"):
        import polars as pl

        df = pl.from_arrow(table)
        if is_dict:
            df = df.with_columns(pl.col("Image").cast(pl.String))  # polars string ops need String
        for variant in ("lower", "regex"):
            if variant == "lower":
                low = pl.col("Image").str.to_lowercase()
                expr = low.str.ends_with(sel) & ~(low.str.contains(f1, literal=True) | low.str.contains(f2, literal=True))
            else:
                img = pl.col("Image")
                expr = img.str.contains("(?i)" + re.escape(sel) + "$") & ~img.str.contains(
                    "(?i)" + re.escape(f1) + "|" + re.escape(f2))
            how = "to_lowercase + ends_with/contains" if variant == "lower" else "(?i) regex"
            cast = ", Categorical cast to String first" if is_dict else ""
            peers.append((f"polars {pl.__version__} ({how}{cast})",
                          lambda e=expr, d=df: int(d.select(e.sum()).item() or 0)))
    if sql and _have("duckdb"):
        con = duckdb_connection(table, ["Image"], 1)
        count_sql = _count_query(sql)
        peers.append((f"DuckDB {_version('duckdb')}, 1 thread, pySigma DuckDB-backend SQL (native table)",
                      lambda c=con, q=count_sql: int(c.execute(q).fetchone()[0])))
    return peers


def _cloudflared(cfg: Config, report: Report, all_threads: int) -> None:

    log = cfg.log
    path = next((p for p in process_creation_files(cfg.sigma_dir) if p.name == CLOUDFLARED_RULE), None)
    if path is None:
        report.checks.append(f"Cloudflared rule {CLOUDFLARED_RULE} not found: section skipped")
        return
    matcher, rules = compile_with_rules(path)
    sql = None
    if cfg.peers and _have("sigma_backend_duckdb"):
        queries, _ = duckdb_queries(rules)
        sql = queries[0]
    for dictionary in (False, True):
        work = f"Cloudflared rule, {'dictionary-encoded' if dictionary else 'plain'} Image"
        log(f"{work}: {cfg.cloudflared_rows:,} rows ...")
        table = image_column(cfg.cloudflared_rows, cfg.seed, dictionary=dictionary)
        expected = cloudflared_expected(table, rules[0])
        ours_engine = "sigmarrow, 1 thread"
        for threads in dict.fromkeys((1, all_threads)):
            seconds, got = best_time(lambda t=threads, d=table: len(matcher.match_indices(d, threads=t)[0]),
                                     budget=cfg.budget)
            name = f"sigmarrow, {threads} thread{'s' if threads > 1 else ''}"
            report.rows.append(Row(work, name, table.num_rows, seconds, _answer(got, expected),
                                   None if threads == 1 else ours_engine))
            report.failed |= got != expected
        if not cfg.peers:
            continue
        for name, fn in _cloudflared_peers(table, sql):
            seconds, got = best_time(fn, budget=cfg.budget, max_runs=3)
            report.rows.append(Row(work, name, table.num_rows, seconds, _answer(got, expected), ours_engine))


def _answer(got: int, expected: int) -> str:
    return f"{got:,} hits = expected" if got == expected else f"{got:,} hits, EXPECTED {expected:,}"


def _targets(report: Report, work: str) -> None:
    def rate(w: str, e: str) -> float | None:
        return report.rate_of(w, e)

    one = rate(work, "sigmarrow, 1 thread")
    lines = []
    if one:
        lines.append(f"full set, one thread \u2265 5M events/s: {_fmt_rate(one)} events/s "
                     f"({'met' if one >= 5e6 else 'not met'})")
        duck = [r for r in report.rows if r.work == work and r.engine.startswith("DuckDB")]
        for r in duck:
            lines.append(f"\u2265 1,000\u00d7 {r.engine.split(',')[0]} per-rule SQL ({r.engine.rsplit(',', 1)[-1].strip()}): "
                         f"{one / r.rate:,.0f}\u00d7 ({'met' if one / r.rate >= 1000 else 'not met'})")
        multi = [r for r in report.rows if r.work == work and r.engine.startswith("sigmarrow,") and r.engine != "sigmarrow, 1 thread"]
        for r in multi:
            lines.append(f"{r.engine.split(', ')[1]} \u2265 1.8\u00d7 one thread: {r.rate / one:.2f}\u00d7 "
                         f"({'met' if r.rate / one >= 1.8 else 'not met'})")
    plain = "Cloudflared rule, plain Image"
    cf = rate(plain, "sigmarrow, 1 thread")
    if cf:
        for r in report.rows:
            if r.work != plain:
                continue
            if r.engine.startswith("DuckDB"):
                lines.append(f"Cloudflared \u2265 10\u00d7 DuckDB 1 thread: {cf / r.rate:.1f}\u00d7 "
                             f"({'met' if cf / r.rate >= 10 else 'not met'})")
        arrow = [r for r in report.rows if r.work == plain and r.engine.startswith("pyarrow")]
        if arrow:
            best = max(arrow, key=lambda r: r.rate)
            lines.append(f"Cloudflared \u2265 20\u00d7 pyarrow.compute (its faster variant): {cf / best.rate:.1f}\u00d7 "
                         f"({'met' if cf / best.rate >= 20 else 'not met'})")
    cfd = rate("Cloudflared rule, dictionary-encoded Image", "sigmarrow, 1 thread")
    if cfd:
        lines.append(f"Cloudflared on dictionary-encoded Image \u2265 200M rows/s per core: {_fmt_rate(cfd)} rows/s "
                     f"({'met' if cfd >= 2e8 else 'not met'})")
    report.targets += lines




# ======================================================================================
# The command
# ======================================================================================


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sigma-dir", metavar="DIR",
                   help="a SigmaHQ checkout with rules/ and regression_data/ (default: "
                        "$SIGMARROW_SIGMA_DIR, or shared/sigma beside the repository)")
    p.add_argument("--events", type=int, default=200_000, metavar="N",
                   help="synthetic events to generate (default: 200000)")
    p.add_argument("--engine-seconds", type=float, default=3.0, metavar="S",
                   help="longest sigmarrow timing run; fewer events are timed if slower (default: 3)")
    p.add_argument("--duckdb-events", type=int, default=10_000, metavar="N",
                   help="events DuckDB runs every rule's query over (default: 10000; DuckDB pays "
                        "~1 ms per query, so few events understate its speed)")
    p.add_argument("--cloudflared-rows", type=int, default=2_000_000, metavar="N",
                   help="rows of the Cloudflared (one rule, Image column) comparison (default: 2000000)")
    p.add_argument("--check-events", type=int, default=2_000, metavar="N",
                   help="positive-rich events checked against the reference (default: 2000)")
    p.add_argument("--reference-pairs", type=int, default=3_000, metavar="N",
                   help="random (event, rule) non-hits checked against the reference (default: 3000)")
    p.add_argument("--reference-events", type=int, default=0, metavar="N",
                   help="also compare complete per-rule counts with the reference on N check events "
                        "(slow: about 1 ms per rule and event)")
    p.add_argument("--threads", "-j", type=int, default=0, metavar="N",
                   help="the 'all threads' count (default: all cores)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-peers", action="store_true", help="measure sigmarrow only")
    p.add_argument("--keep", metavar="DIR", help="write the generated data to DIR and keep it")
    p.add_argument("--output", "-o", metavar="FILE.md", help="also write the report as Markdown")


def main(argv: list[str] | None = None) -> int:
    """Runs the bench; 0 when every sigmarrow answer checked out, 1 when one did not, 2
    without a SigmaHQ checkout."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    sigma_dir = find_sigma_dir(args.sigma_dir)
    if sigma_dir is None:
        print("headline: no SigmaHQ checkout found: pass --sigma-dir DIR (a clone of SigmaHQ/sigma) "
              "or set SIGMARROW_SIGMA_DIR", file=sys.stderr)
        return 2
    cfg = Config(
        sigma_dir=sigma_dir, events=args.events, engine_seconds=args.engine_seconds,
        duckdb_events=args.duckdb_events, check_events=args.check_events,
        reference_pairs=args.reference_pairs, reference_events=args.reference_events,
        cloudflared_rows=args.cloudflared_rows, threads=args.threads, seed=args.seed,
        workdir=Path(args.keep) if args.keep else None, peers=not args.no_peers)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sigmarrow-headline-") as tmp:
        cfg.workdir = cfg.workdir or Path(tmp)
        report = measure(cfg)
    report.setup.insert(0, f"command: `{command_line('headline.py', argv)}`")
    report.setup.append(f"whole run: {time.perf_counter() - start:.0f} s")
    text = report.markdown()
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
