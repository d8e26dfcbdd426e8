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
from test_scan import EXAMPLES, IMAGES, PORTABLE_RULE, REPO, expected_rows, rule_file

# The fixtures of the scan tests.
sigscan = test_scan.sigscan
sysmon_parquet = test_scan.sysmon_parquet

ENV = {**os.environ, "PYTHONPATH": str(REPO / "python")}


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
