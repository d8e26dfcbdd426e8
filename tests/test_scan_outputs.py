"""The scan's outputs: the timeline columns, time order, CSV, the summary file, and what an
output does when the scan is stopped, finds debris or meets a hostile target.

Scans run in-process through the `sigscan` fixture of test_scan.py, or as `python -m
sigmarrow` in a subprocess where a signal or a pipe is part of the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
import test_scan
from pyarrow import feather
from sigmarrow.scan import scan
from test_scan import EXAMPLES, IMAGES, PORTABLE_RULE, expected_rows, rule_file

# The fixtures of the scan tests.
sigscan = test_scan.sigscan
sysmon_parquet = test_scan.sysmon_parquet

# The package these tests imported (installed, or the sources with their built extension).
ENV = {**os.environ, "PYTHONPATH": str(Path(sigmarrow.__file__).resolve().parents[1])}


def big_parquet(path: Path, rows: int = 1_000_000) -> Path:
    """A file that takes the scan seconds in small batches (one hit every few rows)."""
    images = pa.array(IMAGES * (rows // len(IMAGES)), pa.string()).dictionary_encode()
    events = pa.table({"EventID": pa.repeat(pa.scalar(1), len(images)), "Image": images})
    pq.write_table(events, path)
    return path


def start_scan(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sigmarrow", "scan", *map(str, args)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def wait_for_temporary(proc: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 60
    while not temporaries(folder):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the scan never opened its output"
        time.sleep(0.02)


# --------------------------------------------------------------------------------------
# Issue 14, finding 6: signals and debris
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.parametrize("sort", [False, True])
def test_sigterm_and_sighup_leave_no_debris(tmp_path, signum, sort):
    data = big_parquet(tmp_path / "big.parquet")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    extra = ["--sort", "time"] if sort else []
    out = out_dir / "hits.parquet"
    proc = start_scan(rules, "-i", data, "-o", out, "--batch-rows", "256", *extra)
    wait_for_temporary(proc, out_dir)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err.decode()
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("sort", [False, True])
def test_stale_temporaries_of_a_dead_scan_are_removed(tmp_path, sigscan, sort):
    """A scan killed outright (SIGKILL: nothing can clean up) leaves its temporary; the next
    scan of the same output removes it. A temporary of a live scan is left alone."""
    data = big_parquet(tmp_path / "big.parquet")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "hits.parquet"
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    extra = ["--sort", "time"] if sort else []
    proc = start_scan(rules, "-i", data, "-o", out, "--batch-rows", "256", *extra)
    wait_for_temporary(proc, out_dir)
    proc.kill()
    proc.communicate(timeout=60)
    stale = temporaries(out_dir)
    assert stale and all(name.startswith(".hits.parquet.") for name in stale)

    from sigmarrow.scan.writers import AtomicFile

    live = AtomicFile(out)  # the temporary of a scan still running, in this process
    small = tmp_path / "small.parquet"
    pq.write_table(pa.table({"Image": IMAGES}), small)
    run = sigscan(rules, "--input", small, "--output", out)
    assert run.code == 0, run.err
    assert temporaries(out_dir) == [Path(live.path).name]
    live.discard()
    assert pq.read_table(out).column("source_row").to_pylist() == expected_rows()
    assert temporaries(out_dir) == []


# --------------------------------------------------------------------------------------
# Issue 14, finding 8: string_view columns, read-only outputs
# --------------------------------------------------------------------------------------


def test_string_view_columns_make_hits(sigscan, tmp_path):
    """DataFusion hands string_view: the engine matches it, and the hits carry its values."""
    data = tmp_path / "view.arrow"
    view = pa.array(IMAGES, pa.string_view())
    feather.write_feather(pa.table({"Image": view, "Computer": view}), data)
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    for out in ("-", tmp_path / "hits.parquet"):
        run = sigscan(rules, "--input", data, "--output", out, "--columns", "Image,Computer")
        assert run.code == 0, run.err
    table = pq.read_table(tmp_path / "hits.parquet")
    assert table.column("Image").to_pylist() == [IMAGES[i] for i in expected_rows()]
    assert table.schema.field("Image").type == pa.string()


def test_a_read_only_output_is_refused(sigscan, tmp_path, sysmon_parquet):
    """Renaming over a file ignores its permissions (and root ignores them anyway): the scan
    checks the mode bits itself and leaves a 0444 file as it was."""
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = tmp_path / "hits.parquet"
    out.write_bytes(b"keep me")
    out.chmod(0o444)
    run = sigscan(rules, "--input", sysmon_parquet, "--output", out)
    assert run.code == 2
    assert f"cannot write output {out}: it is read-only" in run.err
    assert out.read_bytes() == b"keep me"
    with pytest.raises(sigmarrow.SigmarrowError, match="read-only"):
        scan(sigmarrow.compile(PORTABLE_RULE), [sysmon_parquet], out)
    assert out.read_bytes() == b"keep me" and temporaries(tmp_path) == []


# --------------------------------------------------------------------------------------
# Issue 12: a closed standard output
# --------------------------------------------------------------------------------------


def test_head_of_stdout_is_not_reported_as_all_hits(tmp_path):
    """`scan ... -o - | head -2`: all six hits fit in the pipe, but head read two and left;
    the summary must not say that six hits were written."""
    script = (
        f"{sys.executable} -m sigmarrow scan {EXAMPLES / 'rules'} "
        f"--input {EXAMPLES / 'process_creation.parquet'} --output - "
        f"2>{tmp_path / 'err'} | head -2;"
        " exit ${PIPESTATUS[0]}"
    )
    proc = subprocess.run(
        ["bash", "-c", script], env=ENV, capture_output=True, timeout=120, check=False
    )
    err = (tmp_path / "err").read_text()
    assert len(proc.stdout.splitlines()) == 2
    assert "hits written" not in err, err
    assert proc.returncode == 141, err


# --------------------------------------------------------------------------------------
# Issue 12: the timeline columns
# --------------------------------------------------------------------------------------

T0 = "2026-11-01 12:00:00.250"


def windows_events(times: list[str | None], hosts: list[str | None] | None = None) -> pa.Table:
    """Events of the example's shape: every second one a hit of the cloudflared rule."""
    n = len(times)
    return pa.table(
        {
            "EventID": pa.array([1] * n, pa.int64()),
            "Channel": ["Microsoft-Windows-Sysmon/Operational"] * n,
            "Computer": hosts or [f"WS{i % 3}" for i in range(n)],
            "UtcTime": times,
            "Image": [IMAGES[0] if i % 2 == 0 else IMAGES[10] for i in range(n)],
        }
    )


def test_hits_carry_time_host_channel_and_event_id(sigscan, tmp_path):
    data = tmp_path / "events.parquet"
    times = [T0, "2026-11-01T12:00:01Z", "not a time", None]
    pq.write_table(windows_events(times), data)
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = tmp_path / "hits.parquet"
    run = sigscan(rules, "--input", data, "--output", out)
    assert run.code == 0, run.err
    table = pq.read_table(out)
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("event_id").type == pa.int64()
    hit = table.to_pylist()[0]
    assert hit["timestamp"].isoformat() == "2026-11-01T12:00:00.250000+00:00"
    assert (hit["host"], hit["channel"], hit["event_id"]) == (
        "WS0",
        "Microsoft-Windows-Sysmon/Operational",
        1,
    )
    # Row 2 ("not a time") is a hit without a usable time: null, and counted.
    assert [h["timestamp"] is None for h in table.to_pylist()] == [False, True]
    assert "hits without an event time: 1 of 2" in run.err

    run = sigscan(rules, "--input", data, "--output", "-")
    first = run.jsonl()[0]
    assert list(first)[:4] == ["timestamp", "host", "channel", "event_id"]
    assert first["timestamp"] == "2026-11-01T12:00:00.250000+00:00"


def test_time_field_and_pipeline_mappings_name_the_columns(sigscan, tmp_path):
    """--time-field picks the time column; a pipeline's field mappings find the host and the
    channel under the names it gives them, before the usual names."""
    data = tmp_path / "edr.parquet"
    pq.write_table(
        pa.table(
            {
                "EventID": ["1", " 4688 "],
                "Image": [IMAGES[0], IMAGES[1]],
                "TimeCreated": ["2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"],
                "ingested": ["2026-02-01T00:00:00Z", "2026-02-01T00:00:01Z"],
                "Computer": ["not-this", "not-this"],
                "dvc": ["edr-a", "edr-b"],
                "log_name": ["Sysmon", "Security"],
            }
        ),
        data,
    )
    mapping = tmp_path / "edr.yml"
    mapping.write_text(
        "name: edr fields\npriority: 30\ntransformations:\n"
        "  - id: edr_fields\n    type: field_name_mapping\n    mapping:\n"
        "      Computer: dvc\n      Channel: log_name\n"
    )
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(rules, "--input", data, "--output", "-", "--pipeline", mapping)
    assert run.code == 0, run.err
    hits = run.jsonl()
    assert [(h["host"], h["channel"], h["event_id"]) for h in hits] == [
        ("edr-a", "Sysmon", 1),
        ("edr-b", "Security", 4688),
    ]
    assert [h["timestamp"][:10] for h in hits] == ["2026-01-01"] * 2
    run = sigscan(rules, "--input", data, "--output", "-", "--time-field", "ingested")
    assert [h["timestamp"][:10] for h in run.jsonl()] == ["2026-02-01"] * 2
    assert [h["host"] for h in run.jsonl()] == ["not-this"] * 2  # no pipeline: the usual name


# --------------------------------------------------------------------------------------
# Issue 12: --sort time
# --------------------------------------------------------------------------------------


def unsorted_dataset(folder: Path) -> Path:
    """Two files whose hits come out of time order, with ties and hits without a time."""
    folder.mkdir()
    a = [f"2026-11-0{d} 10:00:00" for d in (5, 3, 3, 1)] + [None, "2026-11-09 00:00:00"]
    b = [f"2026-11-0{d} 10:00:00" for d in (4, 3, 2)] + [None]
    for name, times in (("a.parquet", a), ("b.parquet", b)):
        events = windows_events(times)
        pq.write_table(
            events.set_column(4, "Image", pa.array([IMAGES[0]] * len(times))), folder / name
        )
    return folder


def time_order(hits: list[dict]) -> list[tuple[str, int]]:
    """The hits' (file, row) in the order --sort time must give: stable, no time last."""
    ordered = sorted(hits, key=lambda h: (h["timestamp"] is None, str(h["timestamp"] or "")))
    return [(Path(h["source_file"]).name, h["source_row"]) for h in ordered]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".arrow", ".csv", "-"])
def test_sort_time(sigscan, tmp_path, suffix):
    data = unsorted_dataset(tmp_path / "data")
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    plain = sigscan(rules, "--input", data, "--output", "-").jsonl()
    out = "-" if suffix == "-" else tmp_path / f"hits{suffix}"
    run = sigscan(rules, "--input", data, "--output", out, "--sort", "time")
    assert run.code == 0, run.err
    got = run.jsonl() if suffix == "-" else read_hits(out)
    assert [(Path(h["source_file"]).name, h["source_row"]) for h in got] == time_order(plain)
    assert len(got) == 10
    assert temporaries(tmp_path) == []


def read_hits(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        import csv

        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return [
            {**r, "timestamp": r["timestamp"] or None, "source_row": int(r["source_row"])}
            for r in rows
        ]
    if path.suffix == ".jsonl":
        import json

        return [json.loads(line) for line in path.read_text().splitlines()]
    return test_scan.hits_table(path).to_pylist()


def test_sort_time_external_merge(tmp_path, monkeypatch):
    """Many runs, merged in rounds: the same order as sorting in memory, the spool is no
    bigger than a few times the output, and nothing is left behind."""
    from sigmarrow.scan import timesort

    rng = __import__("random").Random(7)
    data = tmp_path / "data"
    data.mkdir()
    for part in range(3):
        times = [
            None
            if rng.random() < 0.05
            else f"2026-11-{rng.randint(1, 9):02d} {rng.randint(0, 23):02d}:00:00"
            for _ in range(20_000)
        ]
        pq.write_table(windows_events(times), data / f"part-{part}.parquet")
    m = sigmarrow.compile(PORTABLE_RULE)
    in_memory = tmp_path / "memory.parquet"
    scan(m, [data], in_memory, sort="time", batch_rows=5000)

    spool_sizes = []
    merge = timesort.TimeSorted._merge

    def measured(self, runs):
        spool_sizes.append(sum(os.path.getsize(r) for r in self._runs))
        return merge(self, runs)

    monkeypatch.setattr(timesort, "RUN_BYTES", 1 << 20)
    monkeypatch.setattr(timesort, "FAN_IN", 3)
    monkeypatch.setattr(timesort.TimeSorted, "_merge", measured)
    external = tmp_path / "external.parquet"
    scan(m, [data], external, sort="time", batch_rows=5000)
    assert len(spool_sizes) > 2  # rounds of merges, then the last one
    key = ["timestamp", "source_file", "source_row"]
    a, b = pq.read_table(in_memory).select(key), pq.read_table(external).select(key)
    assert a.num_rows == 30_000
    assert a.equals(b)
    ts = a.column("timestamp").to_pylist()
    timed = [t for t in ts if t is not None]
    assert timed == sorted(timed) and ts[len(timed) :] == [None] * (len(ts) - len(timed))
    assert max(spool_sizes) <= 2 * os.path.getsize(external), (
        spool_sizes,
        os.path.getsize(external),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data",
        "external.parquet",
        "memory.parquet",
    ]


# --------------------------------------------------------------------------------------
# Issue 12: CSV
# --------------------------------------------------------------------------------------


def test_csv_output_is_rfc4180(sigscan, tmp_path):
    import csv

    data = tmp_path / "events.parquet"
    tricky = 'C:\\a "quoted", odd\r\nname\\cloudflared.exe'
    pq.write_table(
        pa.table(
            {
                "Image": [tricky, IMAGES[0]],
                "Computer": ["WS1", None],
                "extra": [{"a": 1}, None],
                "blob": [b"\x00\xff", None],
                "nums": [[1, 2], []],
            }
        ),
        data,
    )
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = tmp_path / "hits.csv"
    run = sigscan(rules, "--input", data, "--output", out, "--columns", "Image,extra,blob,nums")
    assert run.code == 0, run.err
    raw = out.read_bytes()
    assert raw.count(b"\r\n") == 4  # the header, two hits, and one inside a quoted value
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    header, first, second = rows
    assert header[: len(test_scan.HIT_COLUMNS)] == list(test_scan.HIT_COLUMNS)
    assert header[len(test_scan.HIT_COLUMNS) :] == ["Image", "extra", "blob", "nums"]
    hit = dict(zip(header, first, strict=True))
    assert hit["Image"] == tricky  # quotes, commas and line breaks survive
    assert hit["tags"] == "attack.command-and-control,attack.t1090.001"
    assert (hit["host"], hit["extra"], hit["blob"], hit["nums"]) == (
        "WS1",
        '{"a":1}',
        "00ff",
        "1,2",
    )
    empty = dict(zip(header, second, strict=True))
    assert (empty["host"], empty["extra"], empty["blob"], empty["timestamp"]) == ("", "", "", "")


# --------------------------------------------------------------------------------------
# Issue 12: the summary, as text and as JSON
# --------------------------------------------------------------------------------------


def test_summary_json_has_every_rule_and_error(sigscan, tmp_path):
    import json

    rules = tmp_path / "rules"
    for i in range(25):  # more rules with hits than the text shows
        text = PORTABLE_RULE.replace(
            "fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd", f"0d0a0b0c-0000-4000-8000-{i:012d}"
        ).replace("level: medium", "level: high" if i % 2 else "level: low")
        rule_file(rules, text, f"r{i}.yml")
    for i in range(2):
        rule_file(rules, "title: Broken\ndetection: [unclosed\n", f"broken{i}.yml")
    data = tmp_path / "events.parquet"
    pq.write_table(windows_events([T0] * 6, [f"h{i % 4}" for i in range(6)]), data)
    summary = tmp_path / "summary.json"
    run = sigscan(
        rules, "--input", data, "--output", tmp_path / "hits.parquet", "--summary", summary
    )
    assert run.code == 0, run.err
    s = json.loads(summary.read_text())
    assert s["hits"] == 75 and len(s["hits_per_rule"]) == 25
    assert "... and 5 more rules (--summary FILE.json lists them all)" in run.err
    assert s["hits_per_level"] == {"high": 36, "low": 39}
    assert "hits per level: high 36, low 39" in run.err
    assert s["hits_per_host"] == {"h0": 25, "h2": 25, "h1": 0} or s["hits_per_host"] == {
        "h0": 50,
        "h2": 25,
    }
    assert s["compile_error_files"] == 2 and len(s["compile_errors"]) == 2
    assert "rules that could not compile (2): 2 errors in 2 files, by file:" in run.err
    assert s["timeline_sources"] == {
        "timestamp": ["UtcTime"],
        "host": ["Computer"],
        "channel": ["Channel"],
        "event_id": ["EventID"],
    }
    buckets = s["hits_over_time"]["rules"][0]["buckets"]
    assert s["hits_over_time"]["bucket_ms"] == 1 and sum(n for _, n in buckets) == 3


def test_hit_tally_widens_its_time_buckets_and_keeps_every_hit() -> None:
    """Hits spread over a year overflow the 1 ms buckets: the tally widens them until at
    most MAX_TIME_BUCKETS remain, and each widened bucket holds exactly the hits of its span."""
    import numpy as np
    from sigmarrow.scan import summary as sm

    rng = np.random.default_rng(7)
    rules, batches = 3, []
    for _ in range(4):
        n = 30_000
        micros = rng.integers(-10**12, 365 * 86_400 * 10**6, n)
        batches.append((rng.integers(0, rules, n), micros))
    from types import SimpleNamespace

    tally = sm.HitTally([SimpleNamespace(id=f"r{i}", title="", level=None) for i in range(rules)])
    for rule, micros in batches:
        hits = pa.record_batch(
            [pa.array(["h"] * len(rule)), pa.array(micros, pa.timestamp("us", "UTC"))],
            ["host", "timestamp"],
        )
        tally.add(pa.array(rule, pa.uint32()), hits)
    result = sm.ScanSummary("hits.parquet")
    tally.finish(result)
    width = result.time_bucket_ms
    assert width > sm.BUCKET_MS[0]
    all_rules = np.concatenate([r for r, _ in batches])
    starts = np.concatenate([m for _, m in batches]) // 1000 // width * width
    expected: dict[int, dict[int, int]] = {}
    for rule, start in zip(all_rules.tolist(), starts.tolist(), strict=True):
        expected.setdefault(rule, {}).setdefault(start, 0)
        expected[rule][start] += 1
    assert result.hits_over_time == expected
    assert sum(len(b) for b in expected.values()) <= sm.MAX_TIME_BUCKETS
    assert list(result.hits_over_time[0]) == sorted(result.hits_over_time[0])
