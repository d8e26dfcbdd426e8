"""Local Spark (``sigmarrow.spark.match``) against the single-process engine, same data.

Compiles the Windows process-creation rules of the pinned SigmaHQ snapshot, generates
synthetic Sysmon process-creation events (``generate.py``, seeded, with positives planted for
those rules) and an ``event_id`` column, writes them as Parquet, and times:

- engine, 1 thread and all threads: ``Matcher.match`` on the table already in memory
  (reading the Parquet is timed apart);
- Spark ``local[N]``: ``sigmarrow.spark.match(spark.read.parquet(...))`` grouped by rule,
  a cold run (Python workers start and load the program) and warm runs; plus a no-op
  ``mapInArrow`` over the same projected columns, which is Spark's own floor.

The engine must find every synthesized positive; every Spark run's hits per rule must equal
the engine's, and once the full set of (event, rule) hits is compared. The result goes to
``benches/results/spark-<date>-<events>-events.json`` with the machine, versions and the command.

    python benches/bench_spark.py                      # 200,000 events
    python benches/bench_spark.py --events 20000 --rules path/to/rules
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
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pyspark
import sigmarrow
import sigmarrow.spark
from _common import (
    REPO,
    RESULTS,
    best_of,
    command_line,
    compile_with_rules,
    find_sigma_dir,
    git_commit,
    machine,
)
from generate import generate_events, load_positives, missed_positives


def java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        return (out.stderr or out.stdout).splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def start_spark(master: str):
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:-UsePerfData")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master)
        .appName("sigmarrow-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument(
        "--rules",
        type=Path,
        help="rule file or folder (default: SigmaHQ rules/windows/process_creation)",
    )
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--files", type=int, default=8, help="Parquet files to write")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per setup (best is kept)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sigma_dir = find_sigma_dir()
    if args.rules is None:
        if sigma_dir is None:
            print("bench_spark: no SigmaHQ checkout: --rules or SIGMARROW_SIGMA_DIR", file=sys.stderr)
            return 2
        args.rules = sigma_dir / "rules" / "windows" / "process_creation"

    start = time.perf_counter()
    matcher, rules = compile_with_rules(args.rules)
    compile_s = time.perf_counter() - start
    print(
        f"compiled {len(matcher.rules)} rules ({len(matcher.errors)} errors) in {compile_s:.1f} s"
    )

    start = time.perf_counter()
    events, planted = generate_events(
        args.events, seed=7, positives=load_positives(sigma_dir, matcher, rules)
    )
    events = events.add_column(0, "event_id", pa.array(range(events.num_rows), pa.int64()))
    print(
        f"generated {events.num_rows} events ({len(planted)} planted positives) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    missed = missed_positives(matcher, events, planted)
    assert not missed, f"the engine misses synthesized positives (row, rule id): {missed[:10]}"

    report: dict = {
        "benchmark": "spark",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command_line("bench_spark.py", argv),
        "machine": machine(),
        "versions": {
            "commit": git_commit(),
            "sigmarrow": getattr(sigmarrow, "__version__", "?"),
            "pyspark": pyspark.__version__,
            "pyarrow": pa.__version__,
            "java": java_version(),
        },
        "rules": {
            "path": os.path.relpath(args.rules.resolve(), REPO),
            "compiled": len(matcher.rules),
            "errors": len(matcher.errors),
        },
        "events": events.num_rows,
        "planted_positives": len(planted),
        "results": [],
    }

    def record(setup: str, seconds: float, all_runs: list[float], hits: int, **extra) -> None:
        row = {
            "setup": setup,
            "seconds": round(seconds, 3),
            "runs": [round(t, 3) for t in all_runs],
            "events_per_s": round(events.num_rows / seconds),
            "hits": hits,
            **extra,
        }
        report["results"].append(row)
        print(f"{setup:<34} {seconds:8.2f} s {row['events_per_s']:>12,} events/s  hits {hits}")

    with tempfile.TemporaryDirectory(prefix="sigmarrow-bench-") as tmp:
        data_dir = Path(tmp) / "events"
        ds.write_dataset(
            events,
            data_dir,
            format="parquet",
            max_rows_per_file=-(-events.num_rows // args.files),
            max_rows_per_group=-(-events.num_rows // args.files),
            file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
        )

        read_s, read_runs, table = best_of(args.runs, lambda: pq.read_table(data_dir))
        record("pyarrow read_parquet (all columns)", read_s, read_runs, 0)

        expected = None
        for threads in (1, None):
            seconds, runs, hits = best_of(
                args.runs, lambda t=threads: matcher.match(table, threads=t)
            )
            if expected is None:
                expected = hits
            assert hits.equals(expected), "engine results differ between thread counts"
            label = "engine 1 thread" if threads else f"engine {machine()['cores']} threads"
            record(label, seconds, runs, hits.num_rows)
        keys = table.column("event_id").take(expected.column("row")).to_pylist()
        expected_set = set(zip(keys, expected.column("rule_id").to_pylist(), strict=True))
        expected_per_rule = Counter(expected.column("rule_id").to_pylist())
        report["rules_hit"] = len(expected_per_rule)

        start = time.perf_counter()
        spark = start_spark(args.master)
        report["spark_startup_s"] = round(time.perf_counter() - start, 1)
        try:
            df = spark.read.parquet(str(data_dir))
            partitions = df.rdd.getNumPartitions()
            report["spark_partitions"] = partitions

            def spark_per_rule() -> Counter:
                result = sigmarrow.spark.match(df, matcher, columns=["event_id"])
                rows = result.groupBy("rule_id").count().collect()
                return Counter({r["rule_id"]: r["count"] for r in rows})

            start = time.perf_counter()
            cold = spark_per_rule()
            cold_s = time.perf_counter() - start
            assert cold == expected_per_rule, "Spark hits per rule differ from the engine's"
            record(
                f"spark {args.master} cold",
                cold_s,
                [cold_s],
                sum(cold.values()),
                partitions=partitions,
            )
            seconds, runs, warm = best_of(args.runs, spark_per_rule)
            assert warm == expected_per_rule, "Spark hits per rule differ from the engine's"
            record(
                f"spark {args.master} warm",
                seconds,
                runs,
                sum(warm.values()),
                partitions=partitions,
            )

            # Spark's own floor: the same projection through a mapInArrow that drops it all.
            needed = [
                c
                for c in df.columns
                if c in set(matcher.fields)
                or (matcher.has_keywords and dict(df.dtypes)[c] == "string")
            ]

            def noop(batches):
                for _ in batches:
                    pass
                return iter(())

            def spark_noop() -> int:
                return df.select(*needed).mapInArrow(noop, "n long").count()

            seconds, runs, _ = best_of(args.runs, spark_noop)
            record(f"spark {args.master} no-op mapInArrow", seconds, runs, 0, columns=len(needed))

            full = sigmarrow.spark.match(df, matcher, columns=["event_id"]).collect()
            got = {(r["event_id"], r["rule_id"]) for r in full}
            assert len(full) == len(got) and got == expected_set, (
                "Spark hits differ from the engine's"
            )
            report["hits_checked"] = "per rule in every run; full (event, rule) set once"
        finally:
            spark.stop()

    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"spark-{report['date'][:10]}-{events.num_rows}-events.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
