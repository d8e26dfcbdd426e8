"""End-to-end tests of ``sigmarrow scan``: every input kind, every output kind, pipelines.

The command runs in-process through ``sigmarrow.cli.main`` (fast); one test runs it as
``python -m sigmarrow`` in a subprocess. Bad input is covered by ``test_cli_errors.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
from pyarrow import feather
from sigmarrow.cli import main
from sigmarrow.scan import HIT_COLUMNS, discover_inputs, scan

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SIGMA_DIR = Path(os.environ.get("SIGMARROW_SIGMA_DIR", REPO.parent / "shared" / "sigma"))
CLOUDFLARED_RULE = (
    SIGMA_DIR
    / "rules/windows/process_creation/proc_creation_win_cloudflared_portable_execution.yml"
)
CLOUDFLARED_ID = "fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd"
requires_sigma = pytest.mark.skipif(
    not CLOUDFLARED_RULE.is_file(),
    reason=f"SigmaHQ rules not found at {SIGMA_DIR} (set SIGMARROW_SIGMA_DIR)",
)

# The example rule, inline, for tests that must not depend on the SigmaHQ snapshot.
# The SigmaHQ rule as bundled with the example (DRL 1.1: id, title and author kept).
PORTABLE_RULE = (REPO / "examples/rules/proc_creation_win_cloudflared_portable_execution.yml").read_text()

NULL_FILTER_RULE = r"""
title: Child Of Explorer With An Image
id: 3c3bd1a8-57a3-4f0e-9a59-1b0c0c7e0001
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        ParentImage|endswith: '\explorer.exe'
    filter_null:
        Image: null
    condition: selection and not filter_null
level: low
"""

KEYWORD_RULE = r"""
title: Keyword Mimikatz
id: 3c3bd1a8-57a3-4f0e-9a59-1b0c0c7e0002
logsource:
    product: windows
detection:
    keywords:
        - '*sekurlsa::logonpasswords*'
    condition: keywords
level: high
"""


class Run(NamedTuple):
    """What a scan run in-process gave: its status, standard output and error."""

    code: int
    out: str
    err: str

    def jsonl(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def sigscan(capsys):
    def run(*args: object) -> Run:
        code = main(["scan", *map(str, args)])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Run(code, captured.out, captured.err)

    return run


def rule_file(folder: Path, text: str, name: str = "rule.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def is_portable_hit(image: str | None) -> bool:
    """The cloudflared rule, written out by hand (the oracle of these tests)."""
    if image is None:
        return False
    v = image.casefold()
    return v.endswith("\\cloudflared.exe") and not (
        ":\\program files (x86)\\cloudflared\\" in v or ":\\program files\\cloudflared\\" in v
    )


IMAGES = [
    r"C:\Users\alice\Downloads\cloudflared.exe",  # hit
    r"c:\users\bob\appdata\local\temp\CLOUDFLARED.EXE",  # hit: case does not matter
    r"C:\PROGRAM FILES\CLOUDFLARED\cloudflared.exe",  # filtered, whatever the case
    r"C:\Program Files (x86)\cloudflared\cloudflared.exe",  # filtered
    r"C:\Windows\System32\cloudflared.exe.bak",  # not .exe at the end
    r"D:\Tools\CloudFlared.Exe",  # hit
    r"C:\Program Files\cloudflared-old\cloudflared.exe",  # hit: not the admin folder
    None,  # absent
    "cloudflared.exe",  # no backslash before the name
    "C:\\Users\\x\\cloudflared.exe ",  # trailing space is significant
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\explorer.exe",
]


def hits_table(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".arrow":
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()
    return pa.Table.from_pylist([json.loads(x) for x in path.read_text().splitlines()])


def hit_keys(table: pa.Table) -> set[tuple[str, int, str]]:
    return set(
        zip(
            table.column("source_file").to_pylist(),
            table.column("source_row").to_pylist(),
            table.column("rule_id").to_pylist(),
            strict=True,
        )
    )


# --------------------------------------------------------------------------------------
# The bundled example (the README's first command)
# --------------------------------------------------------------------------------------


def _example_expected() -> dict[str, list[int]]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import make_example
    finally:
        sys.path.remove(str(EXAMPLES))
    return make_example.EXPECTED


def test_example_to_stdout(sigscan, monkeypatch):
    monkeypatch.chdir(REPO)
    run = sigscan("examples/rules", "--input", "examples/process_creation.parquet", "--output", "-")
    assert run.code == 0, run.err
    got: dict[str, list[int]] = {}
    for hit in run.jsonl():
        assert hit["source_file"] == "examples/process_creation.parquet"
        assert list(hit)[: len(HIT_COLUMNS)] == list(HIT_COLUMNS)
        got.setdefault(hit["rule_title"], []).append(hit["source_row"])
    assert {k: sorted(v) for k, v in got.items()} == _example_expected()
    # The summary: rows, hits per rule with level.
    assert "1,000 rows" in run.err
    assert "Cloudflared Portable Execution" in run.err and "medium" in run.err


def test_example_file_is_current():
    """examples/process_creation.parquet is what make_example.py makes."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import make_example
    finally:
        sys.path.remove(str(EXAMPLES))
    assert pq.read_table(EXAMPLES / "process_creation.parquet").equals(make_example.make_table())


def test_example_rules_keep_attribution():
    for path in (EXAMPLES / "rules").glob("*.yml"):
        text = path.read_text()
        assert "\nid: " in text and "\nauthor: " in text and text.startswith("title: ")
    assert "DRL" in (EXAMPLES / "rules" / "README.md").read_text()


# --------------------------------------------------------------------------------------
# Output kinds
# --------------------------------------------------------------------------------------


@pytest.fixture
def sysmon_parquet(tmp_path) -> Path:
    path = tmp_path / "data" / "sysmon.parquet"
    path.parent.mkdir()
    table = pa.table(
        {
            "EventID": pa.array([1] * len(IMAGES), pa.int64()),
            "Image": pa.array(IMAGES, pa.string()),
            "CommandLine": [f"cmd {i}" for i in range(len(IMAGES))],
            "Computer": [f"host{i % 3}" for i in range(len(IMAGES))],
        }
    )
    pq.write_table(table, path)
    return path


def expected_rows() -> list[int]:
    return [i for i, image in enumerate(IMAGES) if is_portable_hit(image)]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".arrow"])
def test_output_kinds(sigscan, tmp_path, sysmon_parquet, suffix):
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = tmp_path / f"hits{suffix}"
    run = sigscan(rules, "--input", sysmon_parquet, "--output", out)
    assert run.code == 0, run.err
    assert run.out == ""
    table = hits_table(out)
    assert table.column("source_row").to_pylist() == expected_rows()
    assert set(table.column("rule_id").to_pylist()) == {CLOUDFLARED_ID}
    assert table.column_names[: len(HIT_COLUMNS)] == list(HIT_COLUMNS)
    assert table.column("Image").to_pylist() == [IMAGES[i] for i in expected_rows()]
    assert table.column("tags").to_pylist()[0] == ["attack.command-and-control", "attack.t1090.001"]
    assert table.column("level").to_pylist()[0] == "medium"
    # Only the final file is left in the folder: no temporary or spool files.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", "rules", out.name])


def test_output_without_hits_is_written(sigscan, tmp_path):
    data = tmp_path / "quiet.parquet"
    pq.write_table(pa.table({"Image": [r"C:\Windows\explorer.exe"]}), data)
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    for suffix in (".parquet", ".arrow", ".jsonl"):
        out = tmp_path / f"none{suffix}"
        run = sigscan(rules, "--input", data, "--output", out)
        assert run.code == 0, run.err
        table = hits_table(out) if suffix != ".jsonl" else None
        if table is not None:
            assert table.num_rows == 0
            assert table.column_names[: len(HIT_COLUMNS)] == list(HIT_COLUMNS)
        else:
            assert out.read_text() == ""


def test_columns_option(sigscan, tmp_path, sysmon_parquet):
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(
        rules,
        "--input",
        sysmon_parquet,
        "--output",
        "-",
        "--columns",
        "Computer,CommandLine",
        "--columns",
        "NotThere",
    )
    assert run.code == 0, run.err
    hits = run.jsonl()
    assert [list(h)[len(HIT_COLUMNS) :] for h in hits] == [["Computer", "CommandLine", "NotThere"]] * len(hits)
    assert hits[0]["CommandLine"] == f"cmd {expected_rows()[0]}"
    assert hits[0]["NotThere"] is None

    out = tmp_path / "all.parquet"
    run = sigscan(rules, "--input", sysmon_parquet, "--output", out, "--columns", "*")
    assert run.code == 0, run.err
    assert pq.read_table(out).column_names[len(HIT_COLUMNS) :] == ["EventID", "Image", "CommandLine", "Computer"]


def test_default_columns_are_those_of_the_rule(sigscan, tmp_path, sysmon_parquet):
    rules = tmp_path / "rules"
    rule_file(rules, PORTABLE_RULE, "a.yml")
    rule_file(
        rules,
        PORTABLE_RULE.replace(
            "fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd", "0d0a0b0c-0000-4000-8000-000000000001"
        ).replace("Image|endswith: '\\cloudflared.exe'", "CommandLine|startswith: 'cmd 0'"),
        "b.yml",
    )
    out = tmp_path / "hits.parquet"
    run = sigscan(rules, "--input", sysmon_parquet, "--output", out)
    assert run.code == 0, run.err
    table = pq.read_table(out)
    assert set(table.column_names[len(HIT_COLUMNS) :]) == {"Image", "CommandLine"}
    for hit in table.to_pylist():
        if hit["rule_id"] == CLOUDFLARED_ID:
            assert hit["Image"] is not None and hit["CommandLine"] is None
        else:
            assert hit["CommandLine"] is not None


def test_fail_on_match(sigscan, tmp_path, sysmon_parquet):
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(
        rules,
        "--input",
        sysmon_parquet,
        "--output",
        tmp_path / "h.jsonl",
        "--fail-on-match",
        "--quiet",
    )
    assert run.code == 1
    assert run.err == ""  # --quiet: no summary
    quiet_data = tmp_path / "nothing.parquet"
    pq.write_table(pa.table({"Image": ["C:\\a.exe"]}), quiet_data)
    run = sigscan(rules, "--input", quiet_data, "--output", tmp_path / "h.jsonl", "--fail-on-match")
    assert run.code == 0, run.err


def test_threads_and_small_batches_keep_rows(sigscan, tmp_path):
    """source_row counts rows of the file across batches and row groups."""
    images = [IMAGES[i % len(IMAGES)] for i in range(500)]
    data = tmp_path / "many.parquet"
    pq.write_table(pa.table({"Image": images}), data, row_group_size=37)
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(rules, "--input", data, "--output", "-", "--threads", "2", "--batch-rows", "16")
    assert run.code == 0, run.err
    assert [h["source_row"] for h in run.jsonl()] == [
        i for i, image in enumerate(images) if is_portable_hit(image)
    ]


# --------------------------------------------------------------------------------------
# Input kinds
# --------------------------------------------------------------------------------------


def write_inputs(folder: Path) -> dict[str, Path]:
    """The same events as Parquet, Arrow IPC file and stream, and JSON Lines."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"EventID": pa.array([1] * len(IMAGES), pa.int64()), "Image": IMAGES})
    paths = {
        "parquet": folder / "events.parquet",
        "ipc": folder / "events.arrow",
        "stream": folder / "events.arrows",
        "jsonl": folder / "events.jsonl",
    }
    pq.write_table(table, paths["parquet"])
    feather.write_feather(table, paths["ipc"], compression="uncompressed")
    with pa.OSFile(str(paths["stream"]), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table, max_chunksize=5)
    with open(paths["jsonl"], "w") as f:
        f.writelines(
            json.dumps({k: v for k, v in row.items() if v is not None}) + "\n"
            for row in table.to_pylist()
        )
    return paths


@pytest.mark.parametrize("kind", ["parquet", "ipc", "stream", "jsonl"])
def test_input_kinds(sigscan, tmp_path, kind):
    paths = write_inputs(tmp_path / "in")
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(rules, "--input", paths[kind], "--output", "-")
    assert run.code == 0, run.err
    assert [h["source_row"] for h in run.jsonl()] == expected_rows()
    assert {h["source_file"] for h in run.jsonl()} == {str(paths[kind])}


def test_mixed_inputs_folder_and_glob(sigscan, tmp_path):
    paths = write_inputs(tmp_path / "in")
    (tmp_path / "in" / "_SUCCESS").write_text("")
    (tmp_path / "in" / "notes.txt").write_text("not data")
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    n = len(expected_rows())

    run = sigscan(rules, "--input", tmp_path / "in", "--output", "-")
    assert run.code == 0, run.err
    assert len(run.jsonl()) == 4 * n
    assert "ignored 1 file" in run.err

    run = sigscan(
        rules, "--input", str(tmp_path / "in" / "*.arrow*"), paths["jsonl"], "--output", "-"
    )
    assert run.code == 0, run.err
    assert {h["source_file"] for h in run.jsonl()} == {
        str(paths["ipc"]),
        str(paths["stream"]),
        str(paths["jsonl"]),
    }

    files, ignored = discover_inputs([tmp_path / "in", paths["parquet"]])
    assert len(files) == 4 and ignored == 1  # a file named twice is scanned once


def test_jsonl_with_mixed_types_and_nesting(sigscan, tmp_path):
    data = tmp_path / "events.jsonl"
    lines = [
        {"EventID": 1, "Image": IMAGES[0], "extra": {"a": 1}},
        {"EventID": "1", "Image": IMAGES[1]},  # a string where others have ints
        {"EventID": 1, "Image": IMAGES[2], "extra": [1, 2]},
        {},
        {"EventID": 1, "Image": IMAGES[5]},
    ]
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    rules = rule_file(
        tmp_path / "rules",
        PORTABLE_RULE.replace(
            "condition: selection and",
            "sel_id:\n        EventID: 1\n    condition: selection and sel_id and",
        ),
    )
    run = sigscan(rules, "--input", data, "--output", "-")
    assert run.code == 0, run.err
    assert [h["source_row"] for h in run.jsonl()] == [0, 1, 4]


EVTX_DIR = (
    SIGMA_DIR / "regression_data/rules/windows/process_creation/proc_creation_win_cmd_dir_execution"
)


@pytest.mark.skipif(
    not EVTX_DIR.is_dir(), reason=f"SigmaHQ regression data not found at {SIGMA_DIR}"
)
def test_evtx_input(sigscan, tmp_path):
    pytest.importorskip("evtx", reason="the evtx package is not installed")
    rule = SIGMA_DIR / "rules/windows/process_creation/proc_creation_win_cmd_dir_execution.yml"
    evtx_file = next(EVTX_DIR.glob("*.evtx"))
    for pipeline in ([], ["--pipeline", "windows"]):
        run = sigscan(rule, "--input", evtx_file, "--output", "-", *pipeline)
        assert run.code == 0, run.err
        hits = run.jsonl()
        assert len(hits) == 1  # match_count of the regression test
        assert hits[0]["rule_id"] == "7c9340a9-e2ee-4e43-94c5-c54ebbea1006"
        assert hits[0]["source_file"] == str(evtx_file)


# --------------------------------------------------------------------------------------
# Pipelines
# --------------------------------------------------------------------------------------


def write_asim_dataset(root: Path) -> dict[tuple[str, int], str | None]:
    """An ASIM imProcessCreate export, hive-partitioned by day, as a data lake holds it.

    The string columns are dictionary-encoded in some files and not in others (and
    large_string in one); one file lacks a column; one file is empty; metadata files sit
    beside the data. Returns {(file, row): TargetProcessName} for every event.
    """
    events: dict[tuple[str, int], str | None] = {}
    benign = [
        r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\explorer.exe",
        r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    ]
    days = {
        "2024-05-01": IMAGES[:6] + benign,
        "2024-05-02": benign + IMAGES[6:] + IMAGES[:3],
        "2024-05-03": [IMAGES[0], benign[0], IMAGES[5], IMAGES[2]],
    }
    for n, (day, names) in enumerate(days.items()):
        folder = root / f"EventDate={day}"
        folder.mkdir(parents=True)
        rows = len(names)
        columns = {
            "TimeGenerated": pa.array([1714550400 + i for i in range(rows)], pa.timestamp("s")),
            "DvcHostname": [f"ws-{i % 4:04d}" for i in range(rows)],
            "EventType": ["ProcessCreated"] * rows,
            "TargetProcessName": pa.array(names, pa.string()),
            "TargetProcessCommandLine": [f'"{x}" tunnel run' if x else None for x in names],
            "ActingProcessName": [r"C:\Windows\System32\cmd.exe"] * rows,
            "TargetUsername": ["CORP\\alice"] * rows,
        }
        if n == 0:  # dictionary-encoded strings
            for key in ("TargetProcessName", "DvcHostname", "ActingProcessName"):
                columns[key] = pa.array(columns[key], pa.string()).dictionary_encode()
        if n == 2:  # large strings, and no command line column at all
            columns["TargetProcessName"] = pa.array(names, pa.large_string())
            del columns["TargetProcessCommandLine"]
        path = folder / "part-00000.parquet"
        pq.write_table(pa.table(columns), path)
        for row, name in enumerate(names):
            events[(str(path), row)] = name
    empty = root / "EventDate=2024-05-03" / "part-00001.parquet"
    pq.write_table(pa.table({"TargetProcessName": pa.array([], pa.string())}), empty)
    (root / "_SUCCESS").write_text("")
    (root / "EventDate=2024-05-01" / ".part-00000.parquet.crc").write_bytes(b"\0\1")
    return events


@requires_sigma
def test_asim_seed_scenario(sigscan, tmp_path):
    """The seed scenario: SigmaHQ's cloudflared rule over an ASIM export via sentinel_asim."""
    lake = tmp_path / "imProcessCreate"
    events = write_asim_dataset(lake)
    out = tmp_path / "hits.parquet"
    run = sigscan(
        CLOUDFLARED_RULE,
        "--input",
        lake,
        "--pipeline",
        "sentinel_asim",
        "--output",
        out,
        "--columns",
        "TargetProcessName,EventDate",
    )
    assert run.code == 0, run.err
    table = pq.read_table(out)
    expected = {(f, r) for (f, r), name in events.items() if is_portable_hit(name)}
    assert len(expected) == 8
    got = {
        (os.path.abspath(f), r)
        for f, r in zip(
            table.column("source_file").to_pylist(),
            table.column("source_row").to_pylist(),
            strict=True,
        )
    }
    assert got == expected
    assert set(table.column("rule_id").to_pylist()) == {CLOUDFLARED_ID}
    assert set(table.column("rule_title").to_pylist()) == {"Cloudflared Portable Execution"}
    for hit in table.to_pylist():
        assert is_portable_hit(hit["TargetProcessName"])
        assert f"EventDate={hit['EventDate']}" in hit["source_file"]  # partition value
    assert "8 hits" in run.err and "4 files" in run.err


def windows_mixed_table() -> tuple[pa.Table, dict[str, set[int]]]:
    rows = [
        # EventID, Image, NewProcessName, ParentImage, ParentProcessName
        (1, r"C:\Users\a\cloudflared.exe", None, r"C:\Windows\explorer.exe", None),
        (4688, None, r"C:\Users\b\CLOUDFLARED.exe", None, r"C:\Windows\explorer.exe"),
        (4688, None, r"C:\Program Files\cloudflared\cloudflared.exe", None, r"C:\x.exe"),
        (11, r"C:\Users\c\cloudflared.exe", None, r"C:\Windows\explorer.exe", None),
        (1, r"C:\Program Files\cloudflared\cloudflared.exe", None, r"C:\x.exe", None),
        (4688, None, None, None, r"C:\Windows\explorer.exe"),  # no image at all
        (1, None, None, r"C:\Windows\explorer.exe", None),  # no image at all
        (1, r"C:\Windows\notepad.exe", None, r"C:\Windows\explorer.exe", None),
    ]
    table = pa.table(
        {
            "EventID": pa.array([r[0] for r in rows], pa.int64()),
            "Image": pa.array([r[1] for r in rows], pa.string()),
            "NewProcessName": pa.array([r[2] for r in rows], pa.string()),
            "ParentImage": pa.array([r[3] for r in rows], pa.string()),
            "ParentProcessName": pa.array([r[4] for r in rows], pa.string()),
        }
    )
    expected = {
        CLOUDFLARED_ID: {0, 1},  # not 2 or 4 (admin folder), not 3 (EID 11)
        "3c3bd1a8-57a3-4f0e-9a59-1b0c0c7e0001": {0, 1, 7},  # not 3 (EID 11), not 5, 6 (no image)
    }
    return table, expected


def test_windows_pipeline_routes_sysmon_and_security(sigscan, tmp_path):
    table, expected = windows_mixed_table()
    data = tmp_path / "windows.parquet"
    pq.write_table(table, data)
    rules = tmp_path / "rules"
    rule_file(rules, PORTABLE_RULE, "portable.yml")
    rule_file(rules, NULL_FILTER_RULE, "null_filter.yml")
    run = sigscan(rules, "--input", data, "--pipeline", "windows", "--output", "-")
    assert run.code == 0, run.err
    got: dict[str, set[int]] = {}
    for hit in run.jsonl():
        got.setdefault(hit["rule_id"], set()).add(hit["source_row"])
    assert got == expected


def test_windows_pipeline_is_valid_pysigma_yaml():
    from sigma.processing.pipeline import ProcessingPipeline
    from sigmarrow.pipelines import builtin_pipeline, builtin_pipeline_names

    assert "windows" in builtin_pipeline_names()
    assert builtin_pipeline("no-such-pipeline") is None
    assert builtin_pipeline("../windows") is None
    path = builtin_pipeline("windows")
    assert path is not None and path.name == "windows.yml"
    pipeline = ProcessingPipeline.from_yaml(path.read_text())
    ids = {item.identifier for item in pipeline.items}
    assert {
        "windows_process_creation_eventid",
        "windows_process_creation_security_fields",
        "windows_registry_set_eventid",
        "windows_ps_script_eventid",
    } <= ids


def test_sysmon_and_windows_audit_pipelines(sigscan, tmp_path):
    table, _ = windows_mixed_table()
    data = tmp_path / "windows.parquet"
    pq.write_table(table, data)
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(rules, "--input", data, "--pipeline", "sysmon", "--output", "-")
    assert run.code == 0, run.err
    assert [h["source_row"] for h in run.jsonl()] == [0]  # EventID 1 only
    run = sigscan(rules, "--input", data, "--pipeline", "windows-audit", "--output", "-")
    assert run.code == 0, run.err
    assert [h["source_row"] for h in run.jsonl()] == [1]  # EventID 4688, NewProcessName


def test_pipeline_yaml_file_and_several_pipelines(sigscan, tmp_path):
    data = tmp_path / "edr.parquet"
    pq.write_table(pa.table({"proc_path": IMAGES, "EventID": [1] * len(IMAGES)}), data)
    mapping = tmp_path / "edr.yml"
    mapping.write_text(
        "name: edr fields\npriority: 30\ntransformations:\n"
        "  - id: edr_fields\n    type: field_name_mapping\n    mapping:\n      Image: proc_path\n"
    )
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(
        rules, "--input", data, "--pipeline", "sysmon", "--pipeline", mapping, "--output", "-"
    )
    assert run.code == 0, run.err
    hits = run.jsonl()
    assert [h["source_row"] for h in hits] == expected_rows()
    assert set(hits[0]) == set(HIT_COLUMNS) | {"proc_path", "EventID"}


def test_ecs_windows_on_struct_columns(sigscan, tmp_path):
    """ECS exports keep process.executable inside a struct column `process`."""
    data = tmp_path / "ecs.parquet"
    process = pa.array([{"executable": x, "pid": i} for i, x in enumerate(IMAGES)])
    event = pa.array([{"code": "1", "category": "process"}] * len(IMAGES))
    pq.write_table(pa.table({"process": process, "event": event}), data)
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(rules, "--input", data, "--pipeline", "ecs_windows", "--output", "-")
    assert run.code == 0, run.err
    assert [h["source_row"] for h in run.jsonl()] == expected_rows()


def test_keyword_rules_read_string_columns(sigscan, tmp_path):
    data = tmp_path / "k.parquet"
    pq.write_table(
        pa.table(
            {
                "Image": [r"C:\m.exe", r"C:\n.exe", r"C:\o.exe"],
                "Payload": pa.array(
                    ["x", "Invoke sekurlsa::LogonPasswords now", None]
                ).dictionary_encode(),
                "Count": [1, 2, 3],
            }
        ),
        data,
    )
    rules = rule_file(tmp_path / "rules", KEYWORD_RULE)
    run = sigscan(rules, "--input", data, "--output", "-")
    assert run.code == 0, run.err
    assert [h["source_row"] for h in run.jsonl()] == [1]


# --------------------------------------------------------------------------------------
# Data shapes: empty, all-null, differing schemas
# --------------------------------------------------------------------------------------


def test_empty_dataset(sigscan, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    pq.write_table(pa.table({"Image": pa.array([], pa.string())}), folder / "a.parquet")
    pq.write_table(pa.table({"Other": pa.array([], pa.int64())}), folder / "b.parquet")
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = tmp_path / "hits.parquet"
    run = sigscan(rules, "--input", folder, "--output", out)
    assert run.code == 0, run.err
    assert pq.read_table(out).num_rows == 0
    assert "2 files, 0 rows" in run.err


def test_all_null_column(sigscan, tmp_path):
    folder = tmp_path / "nulls"
    folder.mkdir()
    pq.write_table(pa.table({"Image": pa.nulls(5), "EventID": [1] * 5}), folder / "a.parquet")
    pq.write_table(pa.table({"Image": pa.nulls(3, pa.string())}), folder / "b.parquet")
    (folder / "c.jsonl").write_text('{"Image": null}\n{"Image": null}\n')
    rules = tmp_path / "rules"
    rule_file(rules, PORTABLE_RULE, "a.yml")
    rule_file(
        rules,
        r"""
title: No Image
id: 3c3bd1a8-57a3-4f0e-9a59-1b0c0c7e0003
logsource: {category: process_creation, product: windows}
detection:
    selection:
        Image: null
    condition: selection
level: low
""",
        "b.yml",
    )
    run = sigscan(rules, "--input", folder, "--output", "-")
    assert run.code == 0, run.err
    hits = run.jsonl()
    assert {h["rule_id"] for h in hits} == {"3c3bd1a8-57a3-4f0e-9a59-1b0c0c7e0003"}
    assert len(hits) == 10  # every row: a null value is absent
    assert "missing" not in run.err  # an all-null column is there, just empty


def test_differing_schemas(sigscan, tmp_path):
    folder = tmp_path / "lake"
    folder.mkdir()
    # Image plain string; dictionary-encoded; large_string; missing; a struct elsewhere.
    pq.write_table(
        pa.table({"Image": IMAGES[:4], "EventID": pa.array([1] * 4, pa.int32())}),
        folder / "1.parquet",
    )
    pq.write_table(
        pa.table(
            {"Image": pa.array(IMAGES[4:8]).dictionary_encode(), "EventID": pa.array(["1"] * 4)}
        ),
        folder / "2.parquet",
    )
    pq.write_table(
        pa.table({"Image": pa.array(IMAGES[8:], pa.large_string())}), folder / "3.parquet"
    )
    pq.write_table(pa.table({"CommandLine": ["x", "y"]}), folder / "4.parquet")
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = tmp_path / "hits.parquet"
    run = sigscan(rules, "--input", folder, "--output", out, "--columns", "Image,EventID")
    assert run.code == 0, run.err
    table = pq.read_table(out)
    rows = {
        (Path(f).name, r)
        for f, r in zip(
            table.column("source_file").to_pylist(),
            table.column("source_row").to_pylist(),
            strict=True,
        )
    }
    expected = set()
    for name, start, stop in (("1.parquet", 0, 4), ("2.parquet", 4, 8), ("3.parquet", 8, 12)):
        expected |= {(name, i - start) for i in range(start, stop) if is_portable_hit(IMAGES[i])}
    assert rows == expected
    assert table.schema.field("Image").type == pa.string()
    assert table.schema.field("EventID").type == pa.string()  # int in one file, text in another
    assert "Image (1 of 4 files)" in run.err  # missing in 4.parquet: reported, not an error


# --------------------------------------------------------------------------------------
# Library API and the subprocess entry point
# --------------------------------------------------------------------------------------


def test_scan_api_summary(tmp_path, sysmon_parquet):
    m = sigmarrow.compile([str(rule_file(tmp_path / "rules", PORTABLE_RULE))])
    out = tmp_path / "hits.jsonl"
    summary = scan(m, [sysmon_parquet], out)
    assert summary.files == 1 and summary.rows == len(IMAGES)
    assert summary.hits == len(expected_rows())
    assert [(h.id, h.count) for h in summary.hits_per_rule] == [
        (CLOUDFLARED_ID, len(expected_rows()))
    ]
    assert summary.to_dict()["hits"] == summary.hits
    assert "rows/s" in summary.format()


def test_python_dash_m(tmp_path):
    env = dict(os.environ)
    package_root = str(Path(sigmarrow.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sigmarrow",
            "scan",
            str(EXAMPLES / "rules"),
            "--input",
            str(EXAMPLES / "process_creation.parquet"),
            "--output",
            "-",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == sum(len(v) for v in _example_expected().values())
    assert "\r" not in proc.stderr  # no progress bar when stderr is not a terminal


def test_progress_bar_rendering(monkeypatch):
    import io

    from sigmarrow.cli.scan import ProgressBar
    from sigmarrow.scan import Progress

    monkeypatch.setenv("COLUMNS", "120")
    stream = io.StringIO()
    bar = ProgressBar(stream)
    bar.update(
        Progress(
            files_done=3,
            files_total=10,
            rows=1_234_567,
            bytes_done=50.0,
            bytes_total=100,
            seconds=12.0,
            current="x",
            hits=5,
        )
    )
    line = stream.getvalue()
    assert line.startswith("\r[") and " 50%  ETA 0:12  3/10 files  1,234,567 rows" in line
    assert len(line) <= 120 + len("\r\x1b[K")
    bar.clear()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_uri_input_and_hive_keys_from_a_glob(sigscan, tmp_path):
    """URIs go through pyarrow.fs (as object-store URIs do); a glob keeps hive keys."""
    for day, images in (("2024-05-01", IMAGES[:6]), ("2024-05-02", IMAGES[6:])):
        folder = tmp_path / "lake" / f"day={day}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"Image": images}), folder / "part-0.parquet")
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)

    uri = (tmp_path / "lake").as_uri()
    run = sigscan(rules, "--input", uri, "--output", "-", "--columns", "day")
    assert run.code == 0, run.err
    hits = run.jsonl()
    assert all(h["source_file"].startswith(uri + "/day=") for h in hits)
    assert [(h["day"], h["source_row"]) for h in hits] == [
        ("2024-05-01", 0),
        ("2024-05-01", 1),
        ("2024-05-01", 5),
        ("2024-05-02", 0),
    ]

    run = sigscan(
        rules,
        "--input",
        str(tmp_path / "lake" / "day=*" / "*.parquet"),
        "--output",
        "-",
        "--columns",
        "day",
    )
    assert run.code == 0, run.err
    assert [h["day"] for h in run.jsonl()] == ["2024-05-01"] * 3 + ["2024-05-02"]


def test_output_inside_the_scanned_folder_is_not_scanned(sigscan, tmp_path, sysmon_parquet):
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = sysmon_parquet.parent / "hits.parquet"
    for _ in range(2):
        run = sigscan(rules, "--input", sysmon_parquet.parent, "--output", out)
        assert run.code == 0, run.err
        assert pq.read_table(out).num_rows == len(expected_rows())


def test_compressed_jsonl_and_sniffed_format(sigscan, tmp_path):
    import gzip

    rows = [json.dumps({"Image": image}) for image in IMAGES if image is not None]
    (tmp_path / "events.jsonl.gz").write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    table = pa.table({"Image": IMAGES})
    pq.write_table(table, tmp_path / "part-0")  # no extension: recognised by its magic bytes
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    run = sigscan(
        rules, "--input", tmp_path / "events.jsonl.gz", tmp_path / "part-0", "--output", "-"
    )
    assert run.code == 0, run.err
    by_file: dict[str, int] = {}
    for hit in run.jsonl():
        by_file[Path(hit["source_file"]).name] = by_file.get(Path(hit["source_file"]).name, 0) + 1
    assert by_file == {"events.jsonl.gz": len(expected_rows()), "part-0": len(expected_rows())}


# --------------------------------------------------------------------------------------
# Streaming outputs: one schema decided before the first hit, written as the scan goes
# --------------------------------------------------------------------------------------


def test_parquet_output_streams_while_scanning(tmp_path):
    """Hits reach the (temporary) output file while later files are still unread, in row
    groups of bounded size, and nothing else is written beside it."""
    from sigmarrow.scan.writers import ROW_GROUP_ROWS

    data = tmp_path / "lake"
    data.mkdir()
    rows = ROW_GROUP_ROWS + 1000  # each file's hits fill a row group
    for i in range(3):
        pq.write_table(pa.table({"Image": [IMAGES[0]] * rows}), data / f"{i}.parquet")
    out = tmp_path / "hits.parquet"
    seen: list[tuple[str | None, list[str], int]] = []

    def watch(p):
        temps = sorted(x.name for x in tmp_path.iterdir() if x.name.startswith("."))
        size = sum((tmp_path / t).stat().st_size for t in temps)
        seen.append((p.current, temps, size))

    m = sigmarrow.compile(PORTABLE_RULE)
    summary = scan(m, [data], out, progress=watch)
    assert summary.hits == 3 * rows
    starts = [(t, size) for current, t, size in seen if current and current.endswith("2.parquet")]
    assert starts, seen
    temps, size = starts[0]
    assert len(temps) == 1 and temps[0].startswith(".hits.parquet.")  # no spool beside it
    assert size > 100_000  # the first two files' hits are on disk already
    meta = pq.ParquetFile(out).metadata
    assert meta.num_rows == 3 * rows
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert len(groups) > 1 and max(groups) <= 2 * ROW_GROUP_ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hits.parquet", "lake"]


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl"])
def test_interrupted_scan_leaves_nothing(tmp_path, sysmon_parquet, suffix):
    out = tmp_path / f"hits{suffix}"
    out.write_bytes(b"previous result")
    m = sigmarrow.compile(PORTABLE_RULE)
    calls = []

    def interrupt(p):
        calls.append(p)
        if p.current is None:  # after the last file, before the output is renamed
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan(m, [sysmon_parquet, sysmon_parquet.parent], out, progress=interrupt)
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", out.name])
    assert len(calls) >= 2


def test_schema_is_decided_before_the_first_hit(sigscan, tmp_path):
    """A column that only a later file has, and types that differ between files, are in
    the one schema from the start; the first file's hits have nulls there."""
    folder = tmp_path / "lake"
    folder.mkdir()
    pq.write_table(pa.table({"Image": [IMAGES[0]]}), folder / "1.parquet")
    pq.write_table(
        pa.table(
            {
                "Image": pa.array([IMAGES[1]], pa.large_string()),
                "Pid": pa.array([7], pa.int32()),
                "Size": pa.array([2**40], pa.int64()),
            }
        ),
        folder / "2.parquet",
    )
    pq.write_table(
        pa.table({"Image": [IMAGES[5]], "Size": pa.array([3], pa.int16())}), folder / "3.parquet"
    )
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    for suffix in (".parquet", ".arrow"):
        out = tmp_path / f"hits{suffix}"
        run = sigscan(rules, "--input", folder, "--output", out, "--columns", "Pid,Size,Image")
        assert run.code == 0, run.err
        table = hits_table(out)
        assert table.schema.field("Pid").type == pa.int32()
        assert table.schema.field("Size").type == pa.int64()
        assert table.schema.field("Image").type == pa.string()
        assert table.column("Pid").to_pylist() == [None, 7, None]
        assert table.column("Size").to_pylist() == [None, 2**40, 3]


def test_schemaless_inputs_give_text_columns(sigscan, tmp_path):
    """JSON Lines has no schema to read before its events: into Parquet, the columns it
    may fill are text, and by default every field the rules reference is a column."""
    data = tmp_path / "events.jsonl"
    data.write_text(
        json.dumps({"EventID": 1, "Image": IMAGES[0], "extra": {"a": 1}})
        + "\n"
        + json.dumps({"EventID": 1, "Image": IMAGES[1]})
        + "\n"
    )
    rules = rule_file(tmp_path / "rules", PORTABLE_RULE)
    out = tmp_path / "hits.parquet"
    run = sigscan(rules, "--input", data, "--output", out, "--columns", "EventID,extra")
    assert run.code == 0, run.err
    table = pq.read_table(out)
    assert table.schema.field("EventID").type == pa.string()
    assert table.column("EventID").to_pylist() == ["1", "1"]
    assert [json.loads(x) if x else x for x in table.column("extra").to_pylist()] == [
        {"a": 1},
        None,
    ]
    run = sigscan(rules, "--input", data, "--output", out)
    assert run.code == 0, run.err
    assert pq.read_table(out).column_names[len(HIT_COLUMNS) :] == sigmarrow.compile(PORTABLE_RULE).fields

    run = sigscan(rules, "--input", data, "--output", out, "--columns", "*")
    assert run.code == 2
    assert "columns '*'" in run.err and "JSON" in run.err
    run = sigscan(rules, "--input", data, "--output", "-", "--columns", "*")
    assert run.code == 0, run.err
    assert [list(h)[len(HIT_COLUMNS) :] for h in run.jsonl()] == [["EventID", "Image", "extra"]] * 2


def test_jsonl_hits_carry_the_columns_of_their_rule(sigscan, tmp_path, sysmon_parquet):
    """By default a JSON hit has the event columns its rule references that the event has;
    with --columns it has exactly those, null or not."""
    rules = tmp_path / "rules"
    rule_file(rules, PORTABLE_RULE, "a.yml")
    rule_file(
        rules,
        PORTABLE_RULE.replace(CLOUDFLARED_ID, "0d0a0b0c-0000-4000-8000-000000000002").replace(
            "Image|endswith: '\\cloudflared.exe'", "CommandLine|startswith: 'cmd 1'"
        ),
        "b.yml",
    )
    run = sigscan(rules, "--input", sysmon_parquet, "--output", "-")
    assert run.code == 0, run.err
    by_rule = {h["rule_id"]: set(h) - set(HIT_COLUMNS) for h in run.jsonl()}
    assert by_rule == {
        CLOUDFLARED_ID: {"Image"},
        "0d0a0b0c-0000-4000-8000-000000000002": {"CommandLine", "Image"},
    }
    run = sigscan(rules, "--input", sysmon_parquet, "--output", "-", "--columns", "Computer,X")
    assert run.code == 0, run.err
    assert {tuple(h)[len(HIT_COLUMNS) :] for h in run.jsonl()} == {("Computer", "X")}


def test_atomic_file(tmp_path):
    """The one temp-file-and-rename: whole or nothing, with a new file's permissions."""
    from sigmarrow.scan.writers import AtomicFile

    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), AtomicFile(target) as f:
        Path(f.path).write_bytes(b"half")
        assert Path(f.path).parent == tmp_path and Path(f.path).name.startswith(".out.bin.")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]
    with AtomicFile(target) as f:
        Path(f.path).write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(tmp_path.iterdir()) == [target]
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
