"""End-to-end ``sigmarrow scan`` throughput from Parquet, against pyarrow alone reading the
same columns; and the peak memory of the command on a dataset much larger than its batches.

Generates synthetic Sysmon process-creation events (``generate.py``, seeded, cached under
``benches/data/``) as several zstd Parquet files with planted ``cloudflared.exe`` runs, then
times, best of ``--runs``:

- ``pyarrow_read``: ``pyarrow.parquet.ParquetFile.iter_batches`` over every file, reading
  only the columns the rules reference (what the scan reads): the floor for the scan.
- ``scan``: ``sigmarrow.scan.scan`` (read, match, build the hit rows, write
  ``hits.parquet``), with the engine on all cores and on one thread. Compiling the rules is
  timed apart.

Rule sets: ``cloudflared`` (SigmaHQ's Cloudflared Portable Execution rule, from
``examples/rules/``) and, when
the SigmaHQ snapshot is there, ``process_creation`` (every rule of
``rules/windows/process_creation``). Answers are checked: the cloudflared hits must be
exactly the planted rows outside ``Program Files`` (computed while generating); the
process-creation hits per rule must equal those of ``Matcher.match`` over the same files.

Peak memory: ``sigmarrow scan --columns '*'`` (so that every column is read) runs as a
child process (``python -m sigmarrow``) over one file and over all files; its peak RSS is
compared with the in-memory size of the data it reads. The result goes to
``benches/results/scan-<date>.json`` (``--out`` another folder).

    python benches/bench_scan.py                       # 2,000,000 events in 8 files
    python benches/bench_scan.py --events 200000 --files 4 --runs 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sigmarrow
from _common import EXAMPLE_RULES, REPO, RESULTS, best_of, command_line, find_sigma_dir, machine
from generate import generate_events
from sigmarrow.scan import discover_inputs, scan

DATA_DIR = REPO / "benches" / "data"
CLOUDFLARED_RULE = EXAMPLE_RULES / "proc_creation_win_cloudflared_portable_execution.yml"

# Planted among the generated events: (Image, is a hit of the portable-execution rule).
CLOUDFLARED = [
    ("C:\\Users\\alice\\Downloads\\cloudflared.exe", True),
    ("c:\\users\\bob\\appdata\\local\\temp\\CLOUDFLARED.EXE", True),
    ("C:\\Program Files\\cloudflared\\cloudflared.exe", False),
    ("C:\\PROGRAM FILES (X86)\\CLOUDFLARED\\cloudflared.exe", False),
]
PLANT_EVERY = 9_973  # a prime: planted rows fall at varied positions in batches and files


def generate(events: int, files: int, seed: int) -> tuple[Path, int]:
    """The dataset folder and the number of planted cloudflared hits (cached on disk).
    The events come from ``generate.py`` (benign only: a positive planted for another rule
    could be a cloudflared hit too), with cloudflared runs fixed every PLANT_EVERY rows."""
    folder = DATA_DIR / f"scan-v4-{events}-{files}-{seed}"
    answer = folder / "_expected.json"
    if answer.is_file():
        return folder, json.loads(answer.read_text())["cloudflared_hits"]
    fixed, hits = {}, 0
    for k, row in enumerate(range(PLANT_EVERY - 1, events, PLANT_EVERY)):
        image, hit = CLOUDFLARED[k % len(CLOUDFLARED)]
        fixed[row] = {"Image": image, "OriginalFileName": "cloudflared.exe",
                      "CommandLine": f'"{image}" tunnel run --token x{row}',
                      "ParentImage": "C:\\Windows\\System32\\cmd.exe"}
        hits += hit
    table, _ = generate_events(events, seed, fixed=fixed)
    folder.mkdir(parents=True, exist_ok=True)
    per_file = -(-events // files)
    for index in range(files):
        part = table.slice(index * per_file, per_file)
        pq.write_table(
            part, folder / f"part-{index:05d}.parquet", compression="zstd", row_group_size=131_072
        )
        print(f"  generated {folder.name}/part-{index:05d}.parquet ({part.num_rows:,} rows)", flush=True)
    answer.write_text(json.dumps({"cloudflared_hits": hits, "events": events}))
    return folder, hits


# --- measuring ---------------------------------------------------------------------------


def pyarrow_read(files: list[Path], columns: list[str]) -> int:
    rows = 0
    for path in files:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=65_536, columns=columns):
            rows += batch.num_rows
    return rows


def projected_bytes(files: list[Path], columns: list[str] | None) -> int:
    """Bytes the columns take in memory once read (what reading everything would hold)."""
    total = 0
    for path in files:
        total += pq.read_table(path, columns=columns).nbytes
    return total


# Linux keeps a process's peak RSS across exec, so a child forked from this (large) process
# would report our peak, not its own: a small launcher starts the command and reports it.
_LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status))
"""


def child_peak_rss(argv: list[str]) -> tuple[int, float]:
    """Run a command; its peak RSS (bytes) and wall time."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    try:
        peak, status = map(int, proc.stdout.split())
    except ValueError:
        status, peak = proc.returncode or -1, 0
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({status}):\n{proc.stderr}")
    return peak, seconds


def mib(n: float) -> float:
    return round(n / 2**20, 1)


def bench_rule_set(
    name: str, rules: list[str], files: list[Path], expected, runs: int, work: Path
) -> dict:
    start = time.perf_counter()
    m = sigmarrow.compile(rules)
    compile_s = time.perf_counter() - start
    probe = pq.ParquetFile(files[0]).schema_arrow
    columns = [c for c in m.fields if c in probe.names]
    inputs, _ = discover_inputs([str(f) for f in files])
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)

    pyarrow_read(files, columns)  # warm the page cache: every run then reads from memory
    read_s, read_times, read_rows = best_of(runs, lambda: pyarrow_read(files, columns))
    assert read_rows == rows

    out = work / f"hits-{name}.parquet"
    results = {}
    for label, threads in (("scan", None), ("scan_1_thread", 1)):
        seconds, times, summary = best_of(
            runs, lambda threads=threads: scan(m, inputs, out, threads=threads)
        )
        assert summary.rows == rows, (summary.rows, rows)
        results[label] = {
            "seconds": round(seconds, 3),
            "all_seconds": [round(t, 3) for t in times],
            "rows_per_second": round(rows / seconds),
            "vs_pyarrow_read": round(seconds / read_s, 2),
        }
    hits = pq.read_table(out, columns=["rule_id", "source_file", "source_row"])
    per_rule = Counter(hits.column("rule_id").to_pylist())
    check = expected(m, files, hits)
    print(
        f"  {name}: {len(m.rules)} rules, {hits.num_rows:,} hits; pyarrow read "
        f"{rows / read_s:,.0f} rows/s; scan {results['scan']['rows_per_second']:,} rows/s "
        f"({results['scan']['vs_pyarrow_read']}x the read time); 1 thread "
        f"{results['scan_1_thread']['rows_per_second']:,} rows/s",
        flush=True,
    )
    return {
        "rules": len(m.rules),
        "compile_errors": len(m.errors),
        "compile_seconds": round(compile_s, 2),
        "columns_read": columns,
        "rows": rows,
        "hits": hits.num_rows,
        "rules_that_matched": len(per_rule),
        "answer_check": check,
        "pyarrow_read": {
            "seconds": round(read_s, 3),
            "all_seconds": [round(t, 3) for t in read_times],
            "rows_per_second": round(rows / read_s),
        },
        **results,
    }


def check_cloudflared(planted: int):
    def check(m, files, hits) -> str:
        if hits.num_rows != planted:
            raise SystemExit(f"cloudflared: {hits.num_rows} hits, expected {planted}")
        return f"exactly the {planted} planted rows outside Program Files"

    return check


def check_against_match(m, files, hits) -> str:
    """Hits per (file, rule) of the scan equal Matcher.match over each whole file."""
    want: Counter = Counter()
    for path in files:
        table = pq.read_table(
            path, columns=[c for c in m.fields if c in pq.ParquetFile(path).schema_arrow.names]
        )
        result = m.match(table)
        for rule_id, n in Counter(result.column("rule_id").to_pylist()).items():
            want[(str(path), rule_id)] += n
    got = Counter(
        zip(hits.column("source_file").to_pylist(), hits.column("rule_id").to_pylist(), strict=True)
    )
    if got != want:
        raise SystemExit("process_creation: scan hits differ from Matcher.match")
    return f"hits per file and rule equal Matcher.match ({sum(want.values()):,} hits)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3, help="runs of the one-rule set")
    parser.add_argument("--large-runs", type=int, default=1, help="runs of the large rule set")
    parser.add_argument(
        "--rules",
        type=Path,
        help="folder of the large rule set (default: SigmaHQ rules/windows/process_creation)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results file")
    args = parser.parse_args(argv)
    sigma_dir = find_sigma_dir()
    if args.rules is None and sigma_dir is not None:
        args.rules = sigma_dir / "rules" / "windows" / "process_creation"

    print(f"dataset: {args.events:,} events in {args.files} files", flush=True)
    folder, planted = generate(args.events, args.files, args.seed)
    files = sorted(folder.glob("*.parquet"))
    report: dict = {
        "benchmark": "scan",
        "date": dt.date.today().isoformat(),
        "command": command_line("bench_scan.py", argv),
        "machine": machine(),
        "versions": {
            "sigmarrow": getattr(sigmarrow, "__version__", "?"),
            "pyarrow": pa.__version__,
        },
        "dataset": {
            "events": args.events,
            "files": len(files),
            "bytes_on_disk": sum(f.stat().st_size for f in files),
            "compression": "zstd",
            "row_group_rows": 131_072,
            "planted_cloudflared_hits": planted,
        },
        "rule_sets": {},
    }
    with tempfile.TemporaryDirectory(prefix="sigmarrow-bench-") as tmp:
        work = Path(tmp)
        rule = CLOUDFLARED_RULE
        report["rule_sets"]["cloudflared"] = bench_rule_set(
            "cloudflared", [str(rule)], files, check_cloudflared(planted), args.runs, work
        )
        if args.rules is not None and args.rules.is_dir():
            report["rule_sets"]["process_creation"] = bench_rule_set(
                "process_creation",
                [str(args.rules)],
                files,
                check_against_match,
                args.large_runs,
                work,
            )
        else:
            print(f"  skipped the large rule set: {args.rules} not found", flush=True)

        if not args.no_memory:
            memory = {"rules": "cloudflared", "columns": "*", "runs": []}
            for label, inputs in (("one file", files[:1]), ("all files", files)):
                argv_ = [
                    sys.executable,
                    "-m",
                    "sigmarrow",
                    "scan",
                    str(rule),
                    "--input",
                    *map(str, inputs),
                    "--output",
                    str(work / "mem.parquet"),
                    "--columns",
                    "*",
                    "--quiet",
                ]
                peak, seconds = child_peak_rss(argv_)
                data = projected_bytes(inputs, None)
                memory["runs"].append(
                    {
                        "inputs": label,
                        "rows": sum(pq.ParquetFile(f).metadata.num_rows for f in inputs),
                        "data_in_memory_mib": mib(data),
                        "peak_rss_mib": mib(peak),
                        "seconds": round(seconds, 2),
                    }
                )
                print(
                    f"  memory, {label}: the data read takes {mib(data):,} MiB in memory; "
                    f"peak RSS of `sigmarrow scan` {mib(peak):,} MiB",
                    flush=True,
                )
            report["memory"] = memory

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scan-{report['date']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
