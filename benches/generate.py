"""Realistic synthetic Sysmon process-creation events (EventID 1) as Parquet.

    python benches/generate.py --rows 1000000 --out events.parquet [--dictionary]

The events have the columns and types ``sigmarrow.evtx`` gives a Sysmon EventID 1 (all
strings but EventID): a Zipf-like spread of about 3,000 image paths (System32, common
applications, and a long tail of versioned and per-user install folders), each with its own
OriginalFileName, Description, Company, FileVersion and Hashes; plausible parents; command
lines of about 60 bytes on average with high cardinality (numbers, GUIDs, user paths).

Positives are mixed in (unless ``--no-positives``):

- real events: Sysmon EventID 1 records of the SigmaHQ ``regression_data/`` EVTX files
  (``--regression-rate``, default 1 in 2,000);
- synthesized events: a benign event rewritten so that a randomly chosen rule of
  ``--rules`` (default: the Windows process_creation rules of the SigmaHQ checkout) matches
  it, kept only when the reference evaluator (``sigmarrow.reference``) confirms the match
  (``--synth-rate``, default 1 in 1,000).

``--positives PATH.parquet`` writes the planted positives as (row, rule_id, source).
Same ``--seed``, same file. The generator itself lives in ``sigmarrow.bench`` so that an
installed ``sigmarrow bench`` has it too.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa
from sigmarrow import bench


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, required=True, metavar="N", help="events to generate")
    p.add_argument("--out", required=True, metavar="PATH", help="the Parquet file to write")
    p.add_argument("--dictionary", action="store_true",
                   help="dictionary-encode the low-cardinality columns (Image, ParentImage, User, ...)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sigma-dir", metavar="DIR", help="SigmaHQ checkout (default: $SIGMARROW_SIGMA_DIR "
                   "or shared/sigma beside the repository)")
    p.add_argument("--rules", nargs="+", metavar="PATH",
                   help="rules to synthesize positives for (default: the process_creation set)")
    p.add_argument("--no-positives", action="store_true", help="benign events only")
    p.add_argument("--regression-rate", type=float, default=0.0005, metavar="F")
    p.add_argument("--synth-rate", type=float, default=0.001, metavar="F")
    p.add_argument("--positives", metavar="PATH", help="write the planted positives here (Parquet)")
    args = p.parse_args(argv)

    positives = None
    start = time.perf_counter()
    if not args.no_positives:
        sigma_dir = bench.find_sigma_dir(args.sigma_dir)
        sources = [Path(r) for r in args.rules] if args.rules else (
            bench.process_creation_files(sigma_dir) if sigma_dir else [])
        matcher, rules = bench.compile_with_rules(sources) if sources else (None, [])
        positives = bench.load_positives(sigma_dir, matcher, rules)
        if not sources and sigma_dir is None:
            print("generate: no SigmaHQ checkout found: no positives planted", file=sys.stderr)
    table, planted = bench.generate_events(args.rows, args.seed, dictionary=args.dictionary,
                                           positives=positives, regression_rate=args.regression_rate,
                                           synth_rate=args.synth_rate)
    bench.write_parquet(table, args.out)
    if args.positives:
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"row": pa.array([r for r, _, _ in planted], pa.int64()),
                                 "rule_id": [i for _, i, _ in planted],
                                 "source": [s for _, _, s in planted]}), args.positives)
    print(f"generate: {table.num_rows:,} events, {len(planted):,} planted positives -> {args.out} "
          f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
