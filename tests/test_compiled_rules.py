"""Compiled rule sets reused: `sigmarrow compile`, program files where rules are expected,
and the compile cache (sigmarrow.cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
from sigmarrow import cache
from sigmarrow.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "rules"
EXAMPLE_DATA = ROOT / "examples" / "process_creation.parquet"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "sigmarrow"


def _scan(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, list[dict], str]:
    code = main(["scan", *map(str, args)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, [json.loads(line) for line in out.out.splitlines() if line.strip()], out.err


def test_compile_writes_a_program_that_scan_takes(capsys, tmp_path) -> None:
    program = tmp_path / "rules.sigmarrow"
    assert main(["compile", str(EXAMPLES), "-o", str(program)]) == 0
    assert "compiled 3 rules" in capsys.readouterr().err
    assert cache.is_program_file(program)
    direct = _scan(capsys, EXAMPLES, "--input", EXAMPLE_DATA, "--output", "-")
    loaded = _scan(capsys, program, "--input", EXAMPLE_DATA, "--output", "-")
    assert loaded[0] == direct[0] == 0 and loaded[1] == direct[1] and len(direct[1]) == 6
    assert f"rules: 3 loaded {program} in " in loaded[2]
    assert sigmarrow.Matcher.load(program).fields == sigmarrow.compile(str(EXAMPLES)).fields


def test_a_program_file_must_come_alone(capsys, tmp_path) -> None:
    program = tmp_path / "rules.sigmarrow"
    main(["compile", str(EXAMPLES), "-o", str(program)])
    code, _, err = _scan(capsys, program, EXAMPLES, "--input", EXAMPLE_DATA, "--output", "-")
    assert code == 2 and "is a compiled program: give it alone" in err


def test_second_scan_of_the_same_rules_uses_the_cache(capsys, tmp_path, private_cache) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for f in EXAMPLES.glob("*.yml"):
        (rules / f.name).write_text(f.read_text())
    first = _scan(capsys, rules, "-i", EXAMPLE_DATA, "-o", "-")
    assert "rules: 3 compiled in" in first[2] and len(list(private_cache.glob("*.sigmarrow"))) == 1
    second = _scan(capsys, rules, "-i", EXAMPLE_DATA, "-o", "-")
    assert "rules: 3 from the cache in" in second[2] and second[1] == first[1]
    # Any change to the inputs is a new key: a rule edited, an option changed.
    edited = rules / "proc_creation_win_cloudflared_tunnel_run.yml"
    edited.write_text(edited.read_text().replace("level: medium", "level: high"))
    third = _scan(capsys, rules, "-i", EXAMPLE_DATA, "-o", "-")
    assert "rules: 3 compiled in" in third[2]
    assert {h["level"] for h in third[1] if h["rule_title"] == "Cloudflared Tunnel Execution"} == {"high"}
    assert "compiled in" in _scan(capsys, rules, "-i", EXAMPLE_DATA, "-o", "-", "--level", "high")[2]
    assert "compiled in" in _scan(capsys, rules, "-i", EXAMPLE_DATA, "-o", "-", "--no-cache")[2]


# A child process tells whether the scan imported pySigma (what a cache hit never needs: its
# import and a plugin pipeline's load took most of a cached start).
_SCAN_REPORTING_IMPORTS = """
import sys
from sigmarrow.cli import main
code = main(sys.argv[1:])
print("pysigma imported:", "sigma" in sys.modules, "exit", code, file=sys.stderr)
"""


def test_a_cached_scan_neither_imports_pysigma_nor_loses_the_pipelines_mappings(
    tmp_path, private_cache
) -> None:
    data = tmp_path / "edr.parquet"
    pq.write_table(
        pa.table({"EventID": [1], "Image": ["C:\\Users\\x\\cloudflared.exe"], "dvc": ["edr-a"]}),
        data,
    )
    mapping = tmp_path / "edr.yml"
    mapping.write_text(
        "name: edr fields\npriority: 30\ntransformations:\n"
        "  - id: edr_fields\n    type: field_name_mapping\n    mapping:\n      Computer: dvc\n"
    )
    package = Path(sigmarrow.__file__).resolve().parents[1]  # the sigmarrow these tests import
    env = {**os.environ, "PYTHONPATH": str(package), "XDG_CACHE_HOME": str(private_cache.parent)}
    argv = [sys.executable, "-c", _SCAN_REPORTING_IMPORTS, "scan", str(EXAMPLES), "-i", str(data),
            "-p", str(mapping), "-o", "-"]
    runs = [subprocess.run(argv, check=True, env=env, capture_output=True, text=True) for _ in range(2)]
    assert ["rules: 3 compiled in" in runs[0].stderr, "rules: 3 from the cache in" in runs[1].stderr] == [True, True]
    assert ["pysigma imported: True exit 0" in runs[0].stderr,
            "pysigma imported: False exit 0" in runs[1].stderr] == [True, True], runs[1].stderr
    hits = [json.loads(line) for line in runs[1].stdout.splitlines()]
    assert runs[1].stdout == runs[0].stdout and [h["host"] for h in hits] == ["edr-a"]


def test_a_corrupt_cache_entry_is_compiled_again(capsys, tmp_path, private_cache) -> None:
    _scan(capsys, EXAMPLES, "-i", EXAMPLE_DATA, "-o", "-")
    (entry,) = private_cache.glob("*.sigmarrow")
    entry.write_text("{not a program")
    code, hits, err = _scan(capsys, EXAMPLES, "-i", EXAMPLE_DATA, "-o", "-")
    assert code == 0 and len(hits) == 6 and "rules: 3 compiled in" in err


def test_an_unwritable_cache_is_no_error(capsys, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: the folder cannot be made
    code, hits, _ = _scan(capsys, EXAMPLES, "-i", EXAMPLE_DATA, "-o", "-")
    assert code == 0 and len(hits) == 6


def test_cache_key_is_stable_and_yaml_text_is_not_cached() -> None:
    settings = {"pipeline": ["windows"], "logsource": None, "unrouted": False, "select": None}
    assert cache.cache_key([str(EXAMPLES)], settings) == cache.cache_key([str(EXAMPLES)], dict(settings))
    assert cache.cache_key([str(EXAMPLES)], settings) != cache.cache_key([str(EXAMPLES)], {**settings, "unrouted": True})
    assert cache.cache_key(["title: x\nlogsource: {}\n"], settings) is None


def test_rules_after_input_are_taken_back(capsys, tmp_path) -> None:
    """`--input x.parquet rules/` used to say RULES is required (the list swallowed it)."""
    code, hits, err = _scan(capsys, "--input", EXAMPLE_DATA, EXAMPLES, "--output", "-")
    assert code == 0 and len(hits) == 6, err
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"A": ["x"]}), data)
    code, _, err = _scan(capsys, "--input", data, "--output", "-")
    assert code == 2 and "give the rule files or folders (RULES) before --input" in err


def test_profile_and_explain_take_a_program_file(capsys, tmp_path) -> None:
    program = tmp_path / "rules.sigmarrow"
    main(["compile", str(EXAMPLES), "-o", str(program)])
    capsys.readouterr()
    assert main(["explain", "fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd", "--rules", str(program)]) == 0
    assert "Cloudflared Portable Execution" in capsys.readouterr().out
    assert main(["profile", str(program), "--input", str(EXAMPLE_DATA), "--repeat", "1", "--no-columns"]) == 0
    assert "Cloudflared" in capsys.readouterr().out
    assert os.path.exists(program)


def test_explain_a_folder_explains_each_rule(capsys) -> None:
    assert main(["explain", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert out.count("Witness") == 3 and "Cloudflared Quick Tunnel Execution" in out
