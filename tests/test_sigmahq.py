"""The SigmaHQ corpus: every rule compiles, SigmaHQ's regression suite passes on the EVTX
events, and one rule behaves the same on Sysmon and on Sentinel ASIM field names.

Also the EVTX reader (`sigmarrow.evtx`), on synthetic records and on real regression files.
Needs the snapshot at ``SIGMARROW_SIGMA_DIR`` (default ``../shared/sigma``) and the PyPI
package ``evtx``; tests that need either are skipped, saying why, without them.
"""

from __future__ import annotations

import functools
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sigmarrow
from sigmahq import (
    REGRESSION_DIR,
    RULE_FOLDERS,
    SIGMA_DIR,
    RegressionCase,
    regression_cases,
    requires_sigma,
    rule_dirs,
    rule_files,
    rule_index,
)
from sigmarrow.evtx import flatten_event, read_evtx

evtx = pytest.importorskip("evtx", reason="reading .evtx files needs the PyPI package 'evtx'")

#: Rules of the three folders that are expected in ``m.errors``, with the reason.
SKIP: dict[str, str] = {
    "c4a1f389-2e6b-4d9a-8f0c-b73e5a12d947": (
        "`Attributes|contains|expand: '%known_cdcs%'` needs the placeholder's values from a "
        "pipeline; without one the rule is a compile error by design (docs/semantics.md)"
    ),
    "8b7e2c54-1f93-4a6d-b8e0-3c9d7f25a168": (
        "`Attributes|contains|expand: '%known_cdcs%'` needs the placeholder's values from a "
        "pipeline; without one the rule is a compile error by design (docs/semantics.md)"
    ),
}


# --------------------------------------------------------------------------------------
# Shared, cached per session: each rule compiles once and each .evtx is read once.
# --------------------------------------------------------------------------------------


@functools.cache
def rule_matcher(rule_id: str, pipeline: str | None = None, unrouted: bool = False) -> sigmarrow.Matcher:
    return sigmarrow.compile(rule_index()[rule_id], pipeline=pipeline, unrouted=unrouted)


@functools.cache
def events(path: Path) -> pa.Table:
    return read_evtx(path)


@functools.cache
def _corpus() -> tuple[sigmarrow.Matcher, float]:
    started = time.perf_counter()
    matcher = sigmarrow.compile(rule_dirs())
    return matcher, time.perf_counter() - started


@pytest.fixture(scope="module")
def corpus() -> sigmarrow.Matcher:
    """All rules of the three folders in one matcher (compiled once per session)."""
    return _corpus()[0]


def hit_rows(hits: pa.Table, rule_id: str) -> list[int]:
    """The rows the rule matched, in order."""
    rule_id = rule_id.lower()
    rows = hits.column("row").to_pylist()
    ids = hits.column("rule_id").to_pylist()
    return [row for row, rid in zip(rows, ids, strict=True) if rid.lower() == rule_id]


def missing_fields(hits: pa.Table) -> list[str]:
    metadata = hits.schema.metadata or {}
    raw = metadata.get(b"sigmarrow.missing_fields")
    return json.loads(raw) if raw else []


# --------------------------------------------------------------------------------------
# Every rule compiles
# --------------------------------------------------------------------------------------


@requires_sigma
def test_every_rule_compiles() -> None:
    files = rule_files()
    m, seconds = _corpus()
    skipped = sorted(e.rule_id for e in m.errors if e.rule_id in SKIP)
    print(
        f"\n{len(files)} rule files in {', '.join(RULE_FOLDERS)}: {len(m.rules)} compiled, "
        f"{len(m.errors)} errors ({len(skipped)} expected: {skipped}) in {seconds:.1f} s"
    )
    unexpected = [e for e in m.errors if e.rule_id not in SKIP]
    assert not unexpected, f"{len(unexpected)} rules do not compile:\n" + "\n".join(
        f"  {e.source}: {e.rule_id} {e.title!r}: {e.reason}" for e in unexpected[:30]
    )
    assert len(m.rules) == len(files) - len(skipped)
    compiled_ids = [r.id.lower() for r in m.rules]
    assert len(set(compiled_ids)) == len(compiled_ids), "a rule compiled twice"
    assert set(compiled_ids) == set(rule_index()) - set(skipped)
    assert [r.index for r in m.rules] == list(range(len(m.rules)))


@requires_sigma
def test_skipped_rules_compile_with_placeholder_values() -> None:
    """The SKIP rules are only missing values: given them, they compile and match."""
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import ValueListPlaceholderTransformation

    pipeline = ProcessingPipeline(
        items=[ProcessingItem(transformation=ValueListPlaceholderTransformation())],
        vars={"known_cdcs": ["dc01.corp.example", "10.0.0.5"]},
    )
    m = sigmarrow.compile([rule_index()[rule_id] for rule_id in SKIP], pipeline=pipeline)
    assert not m.errors, [e.reason for e in m.errors]
    assert sorted(r.id for r in m.rules) == sorted(SKIP)
    table = pa.table(
        {
            "EventID": pa.array([4886, 4886, 4887, 4887], pa.int64()),
            "Attributes": [
                "cdc:10.6.6.6\nrmd:dc02.corp.example",  # unknown cdc: a hit of the 4886 rule
                "cdc:10.0.0.5\nrmd:dc02.corp.example",  # known cdc: filtered
                "cdc:10.6.6.6\nrmd:dc02.corp.example",  # unknown cdc: a hit of the 4887 rule
                "ccm:x",  # neither cdc nor rmd
            ],
        }
    )
    hits = m.match(table)
    assert list(zip(hits.column("row").to_pylist(), hits.column("rule_id").to_pylist())) == [
        (0, "c4a1f389-2e6b-4d9a-8f0c-b73e5a12d947"),
        (2, "8b7e2c54-1f93-4a6d-b8e0-3c9d7f25a168"),
    ]


# --------------------------------------------------------------------------------------
# SigmaHQ's regression suite, on the .evtx files (the .json renderings lost trailing
# whitespace in 91 values, so they are not used)
# --------------------------------------------------------------------------------------

CASES = [pytest.param(case, id=case.test_id) for case in regression_cases()] or [
    pytest.param(None, id="no-regression-data", marks=requires_sigma)
]


def _describe(case: RegressionCase, table: pa.Table, hits: pa.Table) -> str:
    event_ids = sorted(set(table.column("EventID").to_pylist())) if table.num_rows else []
    return (
        f"{case.rule_title!r} ({case.rule_id}, {case.rule_path.relative_to(SIGMA_DIR)}): "
        f"{case.name!r} of {case.info.relative_to(SIGMA_DIR)} wants >= {case.match_count} "
        f"matching events; {table.num_rows} events (EventID {event_ids}); "
        f"fields the data lacks: {missing_fields(hits)}"
    )


def _check_regression(case: RegressionCase, pipeline: str | None, unrouted: bool = False) -> None:
    assert case.kind == "evtx", f"{case.info}: unsupported test type {case.kind!r}"
    m = rule_matcher(case.rule_id, pipeline, unrouted)
    assert not m.errors, [f"{e.rule_id}: {e.reason}" for e in m.errors]
    assert [r.id.lower() for r in m.rules] == [case.rule_id]
    table = events(case.evtx)
    hits = m.match(table)
    rows = hit_rows(hits, case.rule_id)
    assert len(rows) >= case.match_count, (
        f"{len(rows)} matching events: " + _describe(case, table, hits)
    )


@requires_sigma
@pytest.mark.parametrize("case", CASES)
def test_regression(case: RegressionCase) -> None:
    _check_regression(case, pipeline=None)


@requires_sigma
@pytest.mark.parametrize("case", CASES)
def test_regression_with_sysmon_pipeline(case: RegressionCase) -> None:
    """With the sysmon pipeline, Sysmon rules also test `EventID` (an int64 column here).
    The pipeline routes Sysmon categories only: a rule of another Windows log source is left
    out as not routed, and runs when asked (`unrouted=True`)."""
    routed = rule_matcher(case.rule_id, "sysmon")
    if not routed.rules:
        assert routed.skipped[0].reason.startswith("not routed: no routing for windows")
    _check_regression(case, pipeline="sysmon", unrouted=not routed.rules)


def test_regression_suite_size() -> None:
    """The snapshot holds 202 regression tests over 202 rules (README of shared/)."""
    if not REGRESSION_DIR.is_dir():
        pytest.skip(f"no regression data at {REGRESSION_DIR} (set SIGMARROW_SIGMA_DIR)")
    cases = regression_cases()
    assert len(cases) == 202
    assert len({c.rule_id for c in cases}) == 202
    assert len({c.test_id for c in cases}) == 202


@requires_sigma
def test_regression_rules_match_alike_in_the_full_corpus(corpus: sigmarrow.Matcher) -> None:
    """A rule reports the same rows among all 3.7k rules as alone (shared literal tables,
    prefilters and rule indexing must not change a rule's result)."""
    differences = []
    for case in regression_cases():
        table = events(case.evtx)
        alone = hit_rows(rule_matcher(case.rule_id).match(table), case.rule_id)
        among_all = hit_rows(corpus.match(table), case.rule_id)
        if alone != among_all:
            differences.append(f"{case.test_id}: alone {alone}, in the corpus {among_all}")
    assert not differences, "\n".join(differences)


@requires_sigma
def test_regression_engine_agrees_with_reference() -> None:
    """On the regression events, the engine reports exactly the rows the reference
    evaluator (sigmarrow.reference, pure Python over pySigma's tree) does."""
    from sigma.collection import SigmaCollection
    from sigmarrow import reference

    differences = []
    for case in regression_cases():
        table = events(case.evtx)
        engine = hit_rows(rule_matcher(case.rule_id).match(table), case.rule_id)
        collection = SigmaCollection.from_yaml(case.rule_path.read_text(encoding="utf-8"))
        expected = [
            row for row, rule_id in reference.match(collection, table.to_pylist())
            if rule_id.lower() == case.rule_id
        ]
        if engine != expected:
            differences.append(f"{case.test_id}: engine {engine}, reference {expected}")
    assert not differences, "\n".join(differences)


# --------------------------------------------------------------------------------------
# One rule, two schemas: Cloudflared on Sysmon field names and on Sentinel ASIM ones
# --------------------------------------------------------------------------------------

CLOUDFLARED_ID = "fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd"
CLOUDFLARED = "rules/windows/process_creation/proc_creation_win_cloudflared_portable_execution.yml"

# (Image, CommandLine, ParentImage, matches?) -- the rule: Image|endswith '\cloudflared.exe'
# and not Image|contains ':\Program Files (x86)\cloudflared\' / ':\Program Files\cloudflared\'.
PROCESSES: list[tuple[str | None, str | None, str | None, bool]] = [
    (r"C:\Users\x\cloudflared.exe", r"cloudflared.exe tunnel --url http://localhost:8080",
     r"C:\Windows\System32\cmd.exe", True),
    (r"C:\USERS\X\CLOUDFLARED.EXE", r"CLOUDFLARED.EXE TUNNEL RUN", r"C:\Windows\explorer.exe",
     True),
    (r"C:\Program Files\cloudflared\cloudflared.exe", r"cloudflared.exe tunnel run",
     r"C:\Windows\System32\services.exe", False),
    (r"C:\Program Files (x86)\cloudflared\cloudflared.exe", r"cloudflared.exe tunnel run",
     r"C:\Windows\System32\services.exe", False),
    # The filter ignores case too.
    (r"D:\PROGRAM FILES\CLOUDFLARED\cloudflared.exe", r"cloudflared.exe tunnel run",
     r"C:\Windows\System32\services.exe", False),
    # Another folder under Program Files is not the filtered install location.
    (r"C:\Program Files\Other\cloudflared.exe", r"cloudflared.exe tunnel run",
     r"C:\Windows\System32\cmd.exe", True),
    # Other programs, even with cloudflared in their command line or parent.
    (r"C:\Windows\System32\cmd.exe", r"cmd.exe /c C:\Users\x\cloudflared.exe",
     r"C:\Users\x\cloudflared.exe", False),
    (r"C:\Users\x\notcloudflared.exe", r"notcloudflared.exe", r"C:\Windows\explorer.exe",
     False),
    (r"C:\Users\x\cloudflared.exe.bak", r"x", r"C:\Windows\explorer.exe", False),
    # A trailing space is part of the value: it no longer ends with '\cloudflared.exe'.
    ("C:\\Users\\x\\cloudflared.exe ", r"cloudflared.exe tunnel", r"C:\Windows\explorer.exe",
     False),
    # No Image at all: the selection is false.
    (None, r"cloudflared.exe tunnel", r"C:\Windows\explorer.exe", False),
]
EXPECTED_ROWS = [i for i, process in enumerate(PROCESSES) if process[3]]

# Sysmon field -> imProcessCreate columns, as pySigma-backend-kusto's sentinel_asim maps them
# (sigma/pipelines/sentinelasim/mappings.py; ParentImage maps to two columns: an OR).
ASIM_PROCESS_CREATE = {
    "Image": ["TargetProcessName"],
    "CommandLine": ["TargetProcessCommandLine"],
    "ParentImage": ["ParentProcessName", "ActingProcessName"],
}


def sysmon_processes() -> pa.Table:
    columns: dict[str, list[Any]] = {"Image": [], "CommandLine": [], "ParentImage": []}
    for image, command_line, parent, _ in PROCESSES:
        columns["Image"].append(image)
        columns["CommandLine"].append(command_line)
        columns["ParentImage"].append(parent)
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def asim_processes() -> pa.Table:
    sysmon = sysmon_processes()
    columns = {
        asim: sysmon.column(field)
        for field, asim_names in ASIM_PROCESS_CREATE.items()
        for asim in asim_names
    }
    return pa.table(columns)


@pytest.fixture(scope="module")
def cloudflared_path() -> Path:
    path = SIGMA_DIR / CLOUDFLARED
    if not path.is_file():
        pytest.skip(f"{path} not found (set SIGMARROW_SIGMA_DIR)")
    return path


def test_cloudflared_on_sysmon_fields(cloudflared_path: Path) -> None:
    m = sigmarrow.compile(cloudflared_path)
    assert not m.errors
    assert [r.id for r in m.rules] == [CLOUDFLARED_ID]
    assert m.fields == ["Image"]
    hits = m.match(sysmon_processes())
    assert hits.column("row").to_pylist() == EXPECTED_ROWS
    assert set(hits.column("rule_id").to_pylist()) == {CLOUDFLARED_ID}
    assert missing_fields(hits) == []


def test_cloudflared_with_sysmon_pipeline(cloudflared_path: Path) -> None:
    """The sysmon pipeline adds `EventID: 1`: other event ids no longer match."""
    m = sigmarrow.compile(cloudflared_path, pipeline="sysmon")
    assert not m.errors
    table = sysmon_processes()
    event_ids = [1] * table.num_rows
    event_ids[EXPECTED_ROWS[0]] = 4688  # the same process, from a Security log
    table = table.append_column("EventID", pa.array(event_ids, pa.int64()))
    hits = m.match(table)
    assert hits.column("row").to_pylist() == EXPECTED_ROWS[1:]
    # Without EventID, no event can be a Sysmon process creation.
    no_event_id = m.match(sysmon_processes())
    assert no_event_id.num_rows == 0
    assert "EventID" in missing_fields(no_event_id)


def test_cloudflared_on_sentinel_asim_fields(cloudflared_path: Path) -> None:
    m = sigmarrow.compile(cloudflared_path, pipeline="sentinel_asim")
    assert not m.errors, [e.reason for e in m.errors]
    assert [r.id for r in m.rules] == [CLOUDFLARED_ID]
    assert m.fields == ["TargetProcessName"]
    table = asim_processes()
    assert m.missing_fields(table) == []
    hits = m.match(table)
    assert hits.column("row").to_pylist() == EXPECTED_ROWS
    assert set(hits.column("rule_id").to_pylist()) == {CLOUDFLARED_ID}
    # The same events under Sysmon names: the ASIM rule sees no TargetProcessName.
    sysmon_hits = m.match(sysmon_processes())
    assert sysmon_hits.num_rows == 0
    assert missing_fields(sysmon_hits) == ["TargetProcessName"]


def test_cloudflared_without_pipeline_on_asim_fields(cloudflared_path: Path) -> None:
    m = sigmarrow.compile(cloudflared_path)
    hits = m.match(asim_processes())
    assert hits.num_rows == 0
    assert missing_fields(hits) == ["Image"]
    assert m.missing_fields(asim_processes().schema) == ["Image"]


# --------------------------------------------------------------------------------------
# The EVTX reader
# --------------------------------------------------------------------------------------


#: A Sysmon file of three events whose command lines end in spaces.
WHITESPACE_CASE = "proc_creation_win_findstr_recon_everyone"


def regression_case(test_id: str) -> RegressionCase:
    (case,) = [c for c in regression_cases() if c.test_id == test_id]
    return case


def _json_objects(path: Path) -> list[dict[str, Any]]:
    """The events of a regression .json: one object, a list, or objects one after another."""
    text = path.read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    objects: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        value, position = decoder.raw_decode(text, position)
        objects.extend(value if isinstance(value, list) else [value])
    return objects


@requires_sigma
def test_read_evtx_on_a_regression_file() -> None:
    case = regression_case(WHITESPACE_CASE)
    table = read_evtx(case.evtx)
    records = [json.loads(r["data"]) for r in evtx.PyEvtxParser(str(case.evtx)).records_json()]
    assert table.num_rows == len(records) == 3
    assert table.schema.field("EventID").type == pa.int64()
    assert all(f.type == pa.string() for f in table.schema if f.name != "EventID")
    assert table.column("EventID").to_pylist() == [1, 1, 1]
    assert table.column("EventRecordID").to_pylist() == [
        str(r["Event"]["System"]["EventRecordID"]) for r in records
    ]  # file order
    assert set(table.column("Provider_Name").to_pylist()) == {"Microsoft-Windows-Sysmon"}
    assert set(table.column("Channel").to_pylist()) == {"Microsoft-Windows-Sysmon/Operational"}
    # Values with trailing whitespace survive: the .json rendering lost it, the table keeps it.
    rendered = _json_objects(case.evtx.with_suffix(".json"))
    assert len(rendered) == table.num_rows
    kept = []
    for row, event in enumerate(rendered):
        for name, json_value in event["Event"]["EventData"].items():
            value = table.column(name.replace(" ", ""))[row].as_py()
            if isinstance(json_value, str) and value != json_value:
                assert value.rstrip() == json_value, (name, value, json_value)
                kept.append((name, value))
    assert kept, "expected values with trailing whitespace in this file"
    assert all(value[-1].isspace() for _, value in kept)


@requires_sigma
def test_read_evtx_on_every_regression_file() -> None:
    """Every regression file parses; row counts are the record counts; EventID is an int."""
    for case in regression_cases():
        table = events(case.evtx)
        count = sum(1 for _ in evtx.PyEvtxParser(str(case.evtx)).records_json())
        assert table.num_rows == count > 0, case.evtx
        assert table.schema.field("EventID").type == pa.int64()
        assert table.column("EventID").null_count == 0, case.evtx


def test_read_evtx_rejects_a_corrupt_file(tmp_path: Path) -> None:
    for name, content in [("garbage.evtx", b"not an event log"), ("empty.evtx", b"")]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(sigmarrow.DataError, match=re.escape(str(path))):
            read_evtx(path)
    with pytest.raises(sigmarrow.DataError):
        read_evtx(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_evtx(tmp_path / "missing.evtx")


@requires_sigma
def test_read_evtx_rejects_a_damaged_chunk(tmp_path: Path) -> None:
    case = regression_case(WHITESPACE_CASE)
    data = bytearray(case.evtx.read_bytes())
    assert data[4096:4103] == b"ElfChnk"
    data[4096:4104] = b"\xff" * 8  # the first chunk's magic
    path = tmp_path / "damaged.evtx"
    path.write_bytes(bytes(data))
    with pytest.raises(sigmarrow.DataError, match="damaged.evtx"):
        read_evtx(path)


@requires_sigma
def test_read_evtx_rejects_a_truncated_file(tmp_path: Path) -> None:
    data = regression_case(WHITESPACE_CASE).evtx.read_bytes()
    for size in (5000, len(data) - 1):  # inside the only chunk; one byte short
        path = tmp_path / f"cut-{size}.evtx"
        path.write_bytes(data[:size])
        with pytest.raises(sigmarrow.DataError, match="truncated"):
            read_evtx(path)


@requires_sigma
def test_read_evtx_from_a_file_object() -> None:
    path = regression_case(WHITESPACE_CASE).evtx
    expected = read_evtx(path)
    assert read_evtx(io.BytesIO(path.read_bytes())).equals(expected)
    with path.open("rb") as handle:
        assert read_evtx(handle).equals(expected)
    with pytest.raises(sigmarrow.DataError):
        read_evtx(io.BytesIO(b"junk"))


def _event(system: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {"Event": {"#attributes": {"xmlns": "x"}, "System": system, **sections}}


SYSTEM = {
    "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "{5770385F}"}},
    "EventID": 1,
    "Version": 5,
    "Level": 4,
    "Task": 1,
    "Opcode": 0,
    "Keywords": "0x8000000000000000",
    "TimeCreated": {"#attributes": {"SystemTime": "2024-01-02T03:04:05.123456Z"}},
    "EventRecordID": 42,
    "Correlation": None,
    "Execution": {"#attributes": {"ProcessID": 3000, "ThreadID": 4000}},
    "Channel": "Microsoft-Windows-Sysmon/Operational",
    "Computer": "host",
    "Security": {"#attributes": {"UserID": "S-1-5-18"}},
}


def test_flatten_event_system_fields() -> None:
    flat = flatten_event(_event(SYSTEM, EventData={"Image": "C:\\a.exe"}))
    assert flat == {
        "Provider_Name": "Microsoft-Windows-Sysmon",
        "Provider_Guid": "{5770385F}",
        "EventID": 1,
        "Version": "5",
        "Level": "4",
        "Task": "1",
        "Opcode": "0",
        "Keywords": "0x8000000000000000",
        "TimeCreated": "2024-01-02T03:04:05.123456Z",
        "EventRecordID": "42",
        "Execution_ProcessID": "3000",
        "Execution_ThreadID": "4000",
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": "host",
        "Security_UserID": "S-1-5-18",
        "Image": "C:\\a.exe",
    }


def test_flatten_event_id_with_qualifiers() -> None:
    system = {**SYSTEM, "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 4111}}
    flat = flatten_event(_event(system))
    assert flat["EventID"] == 4111
    assert flat["EventID_Qualifiers"] == "16384"
    assert flatten_event(_event({**SYSTEM, "EventID": "4688"}))["EventID"] == 4688


def test_flatten_event_data_shapes() -> None:
    named_list = {
        "Data": [
            {"#attributes": {"Name": "CommandLine"}, "#text": "cmd.exe /c dir  "},
            {"#attributes": {"Name": "ProcessId"}, "#text": 1234},
            {"#attributes": {"Name": "Empty"}, "#text": ""},
            {"#attributes": {"Name": "Nothing"}},
        ]
    }
    single = {"Data": {"#attributes": {"Name": "CommandLine"}, "#text": " x "}}
    positional = {"Data": {"#text": ["Available", "None", "HostName=ConsoleHost\r\n"]}}
    scalar = {"Data": "one value", "Binary": "0A14"}
    spaced = {"Threat Name": "Virus:DOS/EICAR_Test_File", "Process Name": "C:\\x.exe"}
    typed = {"Flag": True, "Ratio": 0.5, "Count": 7, "Missing": None, "Text": "\ttab\t"}
    assert flatten_event(_event(SYSTEM, EventData=named_list)) == {
        **flatten_event(_event(SYSTEM)),
        "CommandLine": "cmd.exe /c dir  ",
        "ProcessId": "1234",
        "Empty": "",
        "Nothing": None,
    }
    assert flatten_event(_event(SYSTEM, EventData=single))["CommandLine"] == " x "
    assert (
        flatten_event(_event(SYSTEM, EventData=positional))["Data"]
        == "Available\nNone\nHostName=ConsoleHost\r\n"
    )
    flat = flatten_event(_event(SYSTEM, EventData=scalar))
    assert (flat["Data"], flat["Binary"]) == ("one value", "0A14")
    flat = flatten_event(_event(SYSTEM, EventData=spaced))
    assert (flat["ThreatName"], flat["ProcessName"]) == ("Virus:DOS/EICAR_Test_File", "C:\\x.exe")
    assert "Threat Name" not in flat
    flat = flatten_event(_event(SYSTEM, EventData=typed))
    assert (flat["Flag"], flat["Ratio"], flat["Count"], flat["Missing"], flat["Text"]) == (
        "true", "0.5", "7", None, "\ttab\t"
    )


def test_flatten_event_user_data_and_name_clashes() -> None:
    user_data = {
        "LogFileCleared": {
            "#attributes": {"xmlns": "http://manifests.microsoft.com/win/2004/08/windows/eventlog"},
            "SubjectUserName": "admin",
            "Channel": "Security",  # clashes with System's Channel
        }
    }
    flat = flatten_event(_event(SYSTEM, UserData=user_data))
    assert flat["SubjectUserName"] == "admin"
    assert flat["Channel"] == "Microsoft-Windows-Sysmon/Operational"
    assert flat["UserData_Channel"] == "Security"
    flat = flatten_event(_event(SYSTEM, EventData={"Level": "High", "#attributes": {"Name": "T"}}))
    assert (flat["Level"], flat["EventData_Level"]) == ("4", "High")
    assert "Name" not in flat and "T" not in flat


def test_flatten_event_accepts_evtx_items_and_bare_events() -> None:
    event = _event(SYSTEM, EventData={"Image": "x"})
    expected = flatten_event(event)
    assert flatten_event({"event_record_id": 42, "data": json.dumps(event)}) == expected
    assert flatten_event(event["Event"]) == expected


# --------------------------------------------------------------------------------------
# Keywords are searched within values: three real detections the old whole-value
# comparison missed (events shaped as the attack samples' EVTX flatten).
# --------------------------------------------------------------------------------------

KEYWORD_DETECTIONS = [
    (
        "Mimikatz Use",
        "rules/windows/builtin/win_alert_mimikatz_keywords.yml",
        {"Channel": "Microsoft-Windows-Windows Defender/Operational", "EventID": 1116,
         "Path": "file:_C:\\Users\\admin\\Desktop\\x64\\mimidrv.sys", "Threat Name": "HackTool:Win64/Mikatz"},
    ),
    (
        "Possible CVE-2021-1675 Print Spooler Exploitation",
        "rules-emerging-threats/2021/Exploits/CVE-2021-1675/win_exploit_cve_2021_1675_printspooler.yml",
        {"Channel": "Microsoft-Windows-PrintService/Admin", "EventID": 354,
         "param1": "C:\\Windows\\System32\\spool\\drivers\\x64\\3\\mimispool.dll"},
    ),
    (
        "MSExchange Transport Agent Installation - Builtin",
        "rules/windows/builtin/msexchange/win_exchange_transportagent.yml",
        {"Channel": "MSExchange Management", "EventID": 1,
         "Data": 'Install-TransportAgent -Name "Evil" -TransportAgentFactory "x.Factory" -AssemblyPath "c:\\x.dll"'},
    ),
]


@requires_sigma
@pytest.mark.parametrize(("title", "path", "event"), KEYWORD_DETECTIONS, ids=[t for t, _, _ in KEYWORD_DETECTIONS])
def test_keyword_rules_find_real_detections_inside_values(title: str, path: str, event: dict[str, Any]) -> None:
    from sigma.collection import SigmaCollection
    from sigmarrow import reference

    text = (SIGMA_DIR / path).read_text(encoding="utf-8")
    matcher = sigmarrow.compile(text)
    assert [r.title for r in matcher.rules] == [title] and not matcher.errors
    benign = {k: ("nothing to see" if isinstance(v, str) and k != "Channel" else v) for k, v in event.items()}
    table = pa.Table.from_pylist([event, benign])
    assert matcher.match(table).column("row").to_pylist() == [0]
    assert [row for row, _ in reference.match(SigmaCollection.from_yaml(text), [event, benign])] == [0]
