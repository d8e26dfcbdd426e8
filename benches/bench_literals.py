"""How fast can any literal engine find the process_creation rules' CommandLine literals?

    pip install hyperscan          # not a dependency of sigmarrow: only this experiment's
    python benches/bench_literals.py [--events 20000]

The largest cost of the full rule set is finding every case-folded CommandLine literal
(~10.9k of them) in every distinct command line. For all literals and for those of at least
4, 6 and 8 bytes, this times, on the distinct command lines of generated events:

- the Aho-Corasick crate's overlapping search, every match, value by value
  (`rust/sigmarrow-core/examples/literal_scan.rs`, run with cargo): the engine's search until
  it walked the automaton itself, in ~30% less time (docs/engine.md), with the automaton's
  size and the KiB of it that 90% and 99% of the engine's walk steps land in;
- Hyperscan's literal mode (caseless, one report per literal) over the values joined into
  one buffer (no per-value overhead: its best case). Its answer is checked: the literals it
  finds are those a plain Python search finds.

It writes `results/YYYY-MM-DD-literals.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (
    REPO,
    RESULTS,
    best_of,
    compile_with_rules,
    find_sigma_dir,
    machine,
    process_creation_files,
)
from generate import generate_events
from sigmarrow import _engine


def engine_search(literals: list[str], values: list[str]) -> list[dict]:
    """The Aho-Corasick crate's overlapping search over the same literals and values (a cargo example)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / "literals.txt", Path(tmp) / "values.txt"]
        for path, lines in zip(paths, (literals, values)):
            path.write_text("\n".join(lines), encoding="utf-8")
        done = subprocess.run(["cargo", "run", "--release", "-q", "-p", "sigmarrow-core", "--example", "literal_scan",
                               "--", *map(str, paths)], cwd=REPO, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    try:
        import hyperscan
    except ImportError:
        print("bench_literals: needs `pip install hyperscan`", file=sys.stderr)
        return 2
    sigma = find_sigma_dir()
    if sigma is None:
        print("bench_literals: no SigmaHQ checkout (set SIGMARROW_SIGMA_DIR)", file=sys.stderr)
        return 2
    matcher, _ = compile_with_rules(process_creation_files(sigma))
    field = matcher.program.fields.index("CommandLine")
    literals = sorted({_engine.casefold(a["value"]) for a in matcher.program.atoms
                       if a["op"] == "str" and a.get("field") == field and a["value"]})
    table, _ = generate_events(args.events, seed=1)
    values = sorted({_engine.casefold(v) for v in table.column("CommandLine").to_pylist() if v})
    buffer = "\n".join(values)
    data = buffer.encode()
    rows = []
    for min_bytes in (1, 4, 6, 8):
        chosen = [x for x in literals if len(x.encode()) >= min_bytes]
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        flags = [hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH] * len(chosen)
        db.compile(expressions=[x.encode() for x in chosen], ids=list(range(len(chosen))),
                   elements=len(chosen), flags=flags, literal=True)
        found: set[int] = set()

        def scan(db=db, found=found) -> None:
            found.clear()
            db.scan(data, match_event_handler=lambda i, *_: found.add(i))

        best, _, _ = best_of(args.runs, scan)
        expected = sum(1 for x in chosen if x in buffer)
        assert len(found) == expected, (len(found), expected)
        rows.append({"min_bytes": min_bytes, "literals": len(chosen), "found": len(found),
                     "ns_per_value": round(best * 1e9 / len(values)), "gb_per_s": round(len(data) / best / 1e9, 3)})
        print(rows[-1])
    engine = engine_search(literals, [v for v in values if "\n" not in v])
    for row in engine:
        print("engine", row)
    out = RESULTS / f"{dt.date.today().isoformat()}-literals.json"
    out.write_text(json.dumps({
        "command": "python benches/bench_literals.py " + " ".join(sys.argv[1:]),
        "machine": machine(), "hyperscan": getattr(hyperscan, "__version__", "?"),
        "distinct_command_lines": len(values), "mean_bytes": round(len(data) / len(values), 1),
        "hyperscan_rows": rows, "engine_rows": engine}, indent=1) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
