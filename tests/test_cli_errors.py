"""Bad input to ``sigmarrow scan``: one clear message (no traceback), the documented exit
status, and never a half-written output file."""

from __future__ import annotations

import json
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
from sigmarrow.cli import main, run_guarded

GOOD_RULE = (
    Path(__file__).resolve().parents[1] / "examples/rules/proc_creation_win_cloudflared_portable_execution.yml"
).read_text()

HIT = r"C:\Users\alice\cloudflared.exe"

# The fixture of the scan tests: the scan run in-process (status, stdout, stderr).
sigscan = test_scan.sigscan


@pytest.fixture
def rules(tmp_path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "good.yml").write_text(GOOD_RULE)
    return folder


@pytest.fixture
def good(tmp_path) -> Path:
    path = tmp_path / "data" / "good.parquet"
    path.parent.mkdir(exist_ok=True)
    pq.write_table(pa.table({"Image": [r"C:\Windows\explorer.exe", HIT]}), path)
    return path


def one_error(err: str) -> str:
    """The single error line of stderr."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("sigmarrow scan: error: "), err
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------------------
# Corrupt and truncated Parquet
# --------------------------------------------------------------------------------------


def corrupt_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"Image": [HIT] * 1000, "CommandLine": [f"cmd {i}" for i in range(1000)]})
    whole = folder / "whole.tmp"
    pq.write_table(table, whole, compression="snappy", row_group_size=250)
    data = whole.read_bytes()
    whole.unlink()
    files = {
        "garbage": folder / "garbage.parquet",
        "truncated": folder / "truncated.parquet",
        "empty_file": folder / "zero.parquet",
        "bad_pages": folder / "bad_pages.parquet",
    }
    files["garbage"].write_bytes(b"this is not parquet at all" * 10)
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty_file"].write_bytes(b"")
    # Footer intact, column data overwritten: the file opens, its pages do not decode.
    damaged = bytearray(data)
    damaged[200 : len(data) // 2] = b"\xff" * (len(data) // 2 - 200)
    files["bad_pages"].write_bytes(bytes(damaged))
    return files


@pytest.mark.parametrize("case", ["garbage", "truncated", "empty_file", "bad_pages"])
def test_corrupt_parquet_stops_the_scan(sigscan, tmp_path, rules, good, case):
    bad = corrupt_files(tmp_path / "bad")[case]
    out = tmp_path / "out" / "hits.parquet"
    out.parent.mkdir()
    code, _, err = sigscan(rules, "--input", good, bad, "--output", out)
    assert code == 2
    line = one_error(err)
    assert str(bad) in line
    assert "Parquet" in line
    assert not out.exists() and leftovers(out.parent) == []


def test_corrupt_parquet_skipped_with_skip_bad_files(sigscan, tmp_path, rules, good):
    bad = corrupt_files(tmp_path / "bad")
    out = tmp_path / "hits.jsonl"
    code, _, err = sigscan(
        rules, "--input", good, *bad.values(), "--output", out, "--skip-bad-files"
    )
    assert code == 2  # the exit status reports the skipped files
    assert f"skipped {len(bad)} bad files" in err
    for path in bad.values():
        assert str(path) in err
    hits = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(h["source_file"], h["source_row"]) for h in hits if h["source_file"] == str(good)] == [
        (str(good), 1)
    ]


def test_bad_file_in_a_folder_with_skip_bad_files_and_fail_on_match(sigscan, tmp_path, rules, good):
    corrupt_files(good.parent)
    code, out, err = sigscan(
        rules,
        "--input",
        good.parent,
        "--output",
        "-",
        "--skip-bad-files",
        "--fail-on-match",
        "--quiet",
    )
    assert code == 2  # skipped files win over --fail-on-match: the result is incomplete
    assert len(out.splitlines()) >= 1
    assert err.count("skipped") == 4


# --------------------------------------------------------------------------------------
# Rules and pipelines
# --------------------------------------------------------------------------------------


def test_rule_file_that_does_not_parse_is_reported(sigscan, tmp_path, rules, good):
    bad = rules / "broken.yml"
    bad.write_text("title: Broken\ndetection: [unclosed\n")
    code, out, err = sigscan(rules, "--input", good, "--output", "-")
    assert code == 0  # the other rules ran
    assert len(out.splitlines()) == 1
    assert "could not compile (1)" in err
    assert str(bad) in err


def test_only_rule_does_not_compile(sigscan, tmp_path, good):
    bad = tmp_path / "broken.yml"
    bad.write_text(
        "title: Broken\nlogsource: {product: windows}\ndetection:\n  sel: {a: 1}\n"
        "  condition: sel and nothere\n"
    )
    out = tmp_path / "hits.parquet"
    code, _, err = sigscan(bad, "--input", good, "--output", out)
    assert code == 2
    assert err.startswith("sigmarrow scan: error: no rule compiled")
    assert str(bad) in err
    assert not out.exists()


def test_missing_rule_path(sigscan, tmp_path, good):
    code, _, err = sigscan(tmp_path / "nope.yml", "--input", good, "--output", "-")
    assert code == 2
    assert "rule file or folder not found" in one_error(err)


def test_unknown_pipeline(sigscan, rules, good):
    code, _, err = sigscan(rules, "--input", good, "--output", "-", "--pipeline", "no_such_pipe")
    assert code == 2
    assert "no_such_pipe" in one_error(err)


def test_pipeline_file_that_is_not_a_pipeline(sigscan, tmp_path, rules, good):
    bad = tmp_path / "pipe.yml"
    bad.write_text("transformations:\n  - type: no_such_transformation\n")
    code, _, err = sigscan(rules, "--input", good, "--output", "-", "--pipeline", bad)
    assert code == 2
    assert err.startswith("sigmarrow scan: error: ")


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def test_missing_input(sigscan, tmp_path, rules):
    code, _, err = sigscan(rules, "--input", tmp_path / "nope.parquet", "--output", "-")
    assert code == 2
    assert f"input not found: {tmp_path / 'nope.parquet'}" in one_error(err)


def test_glob_without_matches(sigscan, tmp_path, rules):
    code, _, err = sigscan(rules, "--input", str(tmp_path / "*.parquet"), "--output", "-")
    assert code == 2
    assert "no file matches" in one_error(err)


def test_folder_without_data_files(sigscan, tmp_path, rules):
    folder = tmp_path / "lake"
    (folder / "date=2024-01-01").mkdir(parents=True)
    (folder / "_SUCCESS").write_text("")
    code, _, err = sigscan(rules, "--input", folder, "--output", "-")
    assert code == 2
    assert "holds no data files" in one_error(err)


def test_file_of_unknown_format(sigscan, tmp_path, rules):
    data = tmp_path / "events.csv"
    data.write_text("Image\nx\n")
    code, _, err = sigscan(rules, "--input", data, "--output", "-")
    assert code == 2
    assert "cannot tell the format" in one_error(err)


def test_bad_json_line(sigscan, tmp_path, rules):
    data = tmp_path / "events.jsonl"
    data.write_text('{"Image": "a"}\n{"Image": \n')
    code, _, err = sigscan(rules, "--input", data, "--output", "-")
    assert code == 2
    line = one_error(err)
    assert str(data) in line and "line 2" in line


def test_unusable_column_type(sigscan, tmp_path, rules):
    data = tmp_path / "binary.parquet"
    pq.write_table(pa.table({"Image": pa.array([b"C:\\x.exe"], pa.binary())}), data)
    out = tmp_path / "hits.arrow"
    code, _, err = sigscan(rules, "--input", data, "--output", out)
    assert code == 2
    line = one_error(err)
    assert str(data) in line and "Image" in line
    assert not out.exists() and leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["no_folder", "is_folder", "under_a_file", "bad_extension"])
def test_unwritable_output(sigscan, tmp_path, rules, good, case):
    output = {
        "no_folder": tmp_path / "missing" / "hits.parquet",
        "is_folder": tmp_path,
        "under_a_file": good / "hits.parquet",
        "bad_extension": tmp_path / "hits.txt",
    }[case]
    code, _, err = sigscan(rules, "--input", good, "--output", output)
    assert code == 2
    line = one_error(err)
    assert str(output) in line
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="file permissions do not stop root"
)
def test_read_only_output_folder(sigscan, tmp_path, rules, good):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = sigscan(rules, "--input", good, "--output", folder / "hits.parquet")
    finally:
        folder.chmod(0o755)
    assert code == 2
    assert "cannot write output" in one_error(err)


def test_failed_scan_keeps_the_previous_output(sigscan, tmp_path, rules, good):
    out = tmp_path / "hits.parquet"
    out.write_bytes(b"previous result")
    bad = corrupt_files(tmp_path / "bad")["garbage"]
    code, _, _ = sigscan(rules, "--input", good, bad, "--output", out)
    assert code == 2
    assert out.read_bytes() == b"previous result"
    assert leftovers(tmp_path) == []


# --------------------------------------------------------------------------------------
# Usage
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["scan"],
        ["scan", "rules"],
        ["scan", "rules", "--input", "x.parquet"],
        ["scan", "rules", "--input", "x.parquet", "--output", "-", "--threads", "0"],
        ["nosuchcommand"],
        [],
    ],
)
def test_usage_errors(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: sigmarrow" in err and "Traceback" not in err


def test_help(capsys):
    from sigmarrow.scan import FORMATS

    assert main(["scan", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--skip-bad-files" in text
    # The output formats come from the registry.
    for fmt in FORMATS.values():
        assert ", ".join(fmt.suffixes) in text and fmt.help in text
    for command in ("bench", "profile", "explain"):
        assert main([command, "--help"]) == 0
        assert f"usage: sigmarrow {command}" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["scan", "--help"]])
def test_help_does_not_load_the_engine(argv):
    """Help is there without the compiled extension and pySigma (a fresh interpreter)."""
    script = (
        "import sys\n"
        "from sigmarrow.cli import main\n"
        f"code = main({argv!r})\n"
        "print(code, sorted(m for m in ('sigmarrow._engine', 'sigma') if m in sys.modules))\n"
    )
    env = dict(os.environ)
    package_root = str(Path(sigmarrow.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: sigmarrow" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "0 []"


def test_closed_stdout_ends_quietly(tmp_path, rules):
    """`sigmarrow scan ... --output - | head -1`: the scan stops with the shell's SIGPIPE
    status and no message (it is not the input file's fault)."""
    data = tmp_path / "many.parquet"
    pq.write_table(pa.table({"Image": [HIT] * 200_000}), data)  # 200 batches of hits below
    env = dict(os.environ)
    package_root = str(Path(sigmarrow.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "sigmarrow", "scan", str(rules), "-i", str(data), "-o", "-"]
    argv += ["--batch-rows", "1000"]  # still writing when the reader goes
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert json.loads(proc.stdout.readline())["source_row"] == 0
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=300) == 141, err
    assert "error" not in err and "Traceback" not in err


def test_subprocess_reports_a_corrupt_file_without_traceback(tmp_path, rules, good):
    bad = corrupt_files(tmp_path / "bad")["truncated"]
    env = dict(os.environ)
    package_root = str(Path(sigmarrow.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sigmarrow",
            "scan",
            str(rules),
            "--input",
            str(good),
            str(bad),
            "--output",
            str(tmp_path / "hits.parquet"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert (
        one_error(proc.stderr).endswith(
            "not a readable Parquet file: Parquet magic bytes not found in footer. Either the file "
            "is corrupted or this is not a parquet file."
        )
        and str(bad) in proc.stderr
    )
    assert not (tmp_path / "hits.parquet").exists()


def test_signal_turned_into_another_error_by_a_library_is_still_the_signal(capsys):
    # What CI met: SIGHUP arrived inside numpy, which turned our Terminated into a TypeError.
    def run() -> int:
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)
        except KeyboardInterrupt as exc:
            raise TypeError("Cannot compare structured arrays") from exc
        return 0

    assert run_guarded("sigmarrow scan", run) == 128 + signal.SIGHUP
    assert "interrupted" in capsys.readouterr().err


def test_an_error_without_a_signal_is_reported_as_a_bug(capsys):
    def run() -> int:
        raise TypeError("boom")

    assert run_guarded("sigmarrow scan", run) == 3
    assert "internal error: TypeError: boom" in capsys.readouterr().err
