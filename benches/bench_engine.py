"""The full-size engine benchmark of issue 3; writes ``benches/results/YYYY-MM-DD-engine.md``.

    python benches/bench_engine.py                  # 2M events, 10M Cloudflared rows (~15 min)
    python benches/bench_engine.py --events 500000 --cloudflared-rows 2000000 --quick

The same measurements as ``headline.py`` (``headline.measure``), at full size:

- the Windows process_creation rules of the SigmaHQ checkout (~1,415) over 2M synthetic
  events, sigmarrow with one thread and all threads;
- DuckDB running pySigma's DuckDB-backend SQL, one query per rule, over 200k of the same
  events, with one thread and all threads (per-rule counts compared with sigmarrow's);
- the Cloudflared rule alone over 10M rows of Image, plain and dictionary-encoded, against
  DuckDB (1 thread), pyarrow.compute and polars (counts compared with the true count);
- answers: sigmarrow against the Python reference on a positive-rich sample (all hits,
  planted positives, random non-hits) and complete per-rule counts of the reference on its
  first ``--reference-events`` events;

plus what the headline table does not show, each in a fresh interpreter:

- compile time of the whole SigmaHQ corpus (three main folders, ~3,750 rules), cold;
- size of the saved program, and the time to load it (``Matcher.load``);
- resident memory of the loaded full-corpus program, and its growth while matching;
- where the time goes: ``sigmarrow.profile`` over the process_creation set (top rules,
  all columns).
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
from pathlib import Path

import headline
from _common import (
    RESULTS,
    RULE_FOLDERS,
    command_line,
    compile_with_rules,
    cores,
    find_sigma_dir,
    git_commit,
    process_creation_files,
)


def lscpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""
    keep = ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "L2 cache", "L3 cache")
    lines = [line.strip() for line in out.splitlines() if line.split(":")[0].strip() in keep]
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
        lines.append(f"nproc: {nproc}")
    except OSError:
        pass
    return "; ".join(" ".join(line.split()) for line in lines)


def _child(code: str, timeout: float = 1200) -> dict:
    """Runs `code` in a fresh interpreter; it prints one JSON object as its last line."""
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


_RSS = """
import json, os, time


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak():
    # VmHWM, not getrusage's ru_maxrss: on Linux a child inherits its parent's maxrss across
    # fork and exec, so ru_maxrss would report the (large) benchmark process.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0
"""

_COMPILE = _RSS + """
start = time.perf_counter()
import sigmarrow
imported = time.perf_counter() - start
m = sigmarrow.compile(FOLDERS)
took = time.perf_counter() - start
m.save(PROGRAM)
print(json.dumps({"import": imported, "compile": took - imported, "rules": len(m.rules),
                  "errors": len(m.errors), "atoms": len(m.program.atoms)}))
"""

_LOAD = _RSS + """
import sigmarrow, pyarrow.parquet as pq
base = rss()
start = time.perf_counter()
m = sigmarrow.Matcher.load(PROGRAM)
took = time.perf_counter() - start
after_load = rss()
table = pq.read_table(EVENTS, columns=[f for f in m.fields if f in pq.read_schema(EVENTS).names])
before_match = rss()
peak_before = peak()
hits = m.match_indices(table, threads=THREADS)
after_match = rss()
print(json.dumps({"load": took, "program_rss": after_load - base, "rss": after_load,
                  "match_growth": after_match - before_match, "peak": peak(), "peak_before": peak_before,
                  "rows": table.num_rows, "hits": len(hits[0])}))
"""


def _script(template: str, **values: object) -> str:
    return "".join(f"{k} = {v!r}\n" for k, v in values.items()) + template


def corpus_costs(sigma_dir: Path, workdir: Path, events_path: Path, threads: int) -> list[str]:
    """Compile (cold), save, load and memory of the whole corpus; each step in a fresh
    interpreter so that nothing is warm."""
    folders = [str(sigma_dir / f) for f in RULE_FOLDERS]
    program = workdir / "corpus.json"
    compiled = _child(_script(_COMPILE, FOLDERS=folders, PROGRAM=str(program)))
    loaded = _child(_script(_LOAD, PROGRAM=str(program), EVENTS=str(events_path), THREADS=threads))
    mib = 2**20
    size = program.stat().st_size
    compile_line = (
        f"whole SigmaHQ corpus ({', '.join(RULE_FOLDERS)}): {compiled['rules']:,} rules compiled "
        f"({compiled['errors']} errors, {compiled['atoms']:,} atoms) in {compiled['compile']:.1f} s cold "
        f"(fresh interpreter; `import sigmarrow` {compiled['import']:.2f} s more) "
        f"(target \u2264 10 s: {'met' if compiled['compile'] <= 10 else 'not met'})")
    load_line = (
        f"saved program: {size / mib:.1f} MiB of JSON; `Matcher.load` in a fresh interpreter: "
        f"{loaded['load']:.2f} s (target \u2264 1 s: {'met' if loaded['load'] <= 1 else 'not met'})")
    memory_line = (
        f"resident memory of the loaded full-corpus program: {loaded['program_rss'] / mib:.0f} MiB "
        f"(process RSS {loaded['rss'] / mib:.0f} MiB after load; target \u2264 200 MB: "
        f"{'met' if loaded['program_rss'] <= 200e6 else 'not met'})")
    match_line = (
        f"matching {loaded['rows']:,} events (the columns the rules read, in memory) with the full corpus, "
        f"{threads} threads: "
        f"RSS after the match {loaded['match_growth'] / mib:+.0f} MiB ({loaded['hits']:,} hits); peak RSS "
        f"{loaded['peak_before'] / mib:.0f} MiB before the match (program + table), "
        f"{loaded['peak'] / mib:.0f} MiB after: the match's scratch and hits took at most "
        f"{(loaded['peak'] - loaded['peak_before']) / mib:.0f} MiB more")
    return [compile_line, load_line, memory_line, match_line]


def profile_section(sigma_dir: Path, events_path: Path, rows: int, top: int) -> list[str]:
    from sigmarrow.profile import format_profile, load_table, profile

    files = process_creation_files(sigma_dir)
    matcher, _ = compile_with_rules(files)
    table = load_table([str(events_path)], None if matcher.has_keywords else matcher.fields, rows)
    result = profile(matcher, table, threads=1, repeat=2)
    return ["## Where the time goes (`sigmarrow profile`, process_creation set, one thread)", "",
            (f"Command: `sigmarrow profile <the {len(files):,} process_creation rules> --input <the events> "
             f"--rows {rows} --repeat 2 --top {top}`"), "", "```", format_profile(result, top), "```"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sigma-dir", metavar="DIR")
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--duckdb-events", type=int, default=200_000)
    p.add_argument("--cloudflared-rows", type=int, default=10_000_000)
    p.add_argument("--check-events", type=int, default=2_000)
    p.add_argument("--reference-pairs", type=int, default=20_000)
    p.add_argument("--reference-events", type=int, default=300,
                   help="complete per-rule reference counts on this many check events (~1 ms per "
                        "rule and event, split over the cores)")
    p.add_argument("--profile-rows", type=int, default=100_000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="skip the corpus costs and the profile")
    p.add_argument("--output", metavar="FILE.md",
                   help="default: benches/results/<date>-engine.md")
    args = p.parse_args(argv)

    sigma_dir = find_sigma_dir(args.sigma_dir)
    if sigma_dir is None:
        print("bench_engine: no SigmaHQ checkout: --sigma-dir or SIGMARROW_SIGMA_DIR", file=sys.stderr)
        return 2
    threads = args.threads or cores()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sigmarrow-bench-engine-") as tmp:
        workdir = Path(tmp)
        cfg = headline.Config(
            sigma_dir=sigma_dir, events=args.events, engine_seconds=120.0, budget=3.0,
            duckdb_events=args.duckdb_events, duckdb_threads=tuple(dict.fromkeys((1, threads))),
            check_events=args.check_events, reference_pairs=args.reference_pairs,
            reference_events=args.reference_events, cloudflared_rows=args.cloudflared_rows,
            threads=threads, seed=args.seed, workdir=workdir)
        report = headline.measure(cfg)
        today = dt.date.today().isoformat()
        report.title = f"sigmarrow engine benchmark, {today}"
        report.setup.insert(0, f"command: `{command_line('bench_engine.py', argv)}`")
        report.setup.insert(1, f"lscpu: {lscpu()}")
        report.setup.insert(2, f"sigmarrow commit: {git_commit()}")
        if not args.quick:
            events_path = workdir / "events.parquet"
            print("corpus compile / load / memory ...", file=sys.stderr, flush=True)
            report.extra += ["## Compile, load, memory (each in a fresh interpreter)", ""]
            report.extra += [f"- {line}" for line in corpus_costs(sigma_dir, workdir, events_path, threads)]
            print("profile ...", file=sys.stderr, flush=True)
            report.extra += [""] + profile_section(sigma_dir, events_path, args.profile_rows, 15)
        report.setup.append(f"whole run: {(time.perf_counter() - started) / 60:.1f} min")
    text = report.markdown()
    out = Path(args.output) if args.output else RESULTS / f"{today}-engine.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {out}", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
