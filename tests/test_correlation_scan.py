"""`sigmarrow scan` with correlation rules and Sigma filters: alerts beside the hits, their
evidence as (source_file, source_row), files in any order, `--time-field`, `--filter`, the
summary, and one clear error for bad input."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_scan
from sigmarrow.correlation import CorrelationState
from sigmarrow.scan.alerts import SCAN_ALERTS_SCHEMA
from test_correlation_dataset import RULES, security_log, write_partitions

FILTER = """
title: Not the service accounts
id: 9b8d2c1e-3f4a-4b5c-8d9e-0f1a2b3c4d5e
logsource: {product: windows, service: security}
filter:
    rules: [failed_logon, nowhere]
    service: {TargetUserName|startswith: svc_}
    condition: not service
"""

# The fixture of the scan tests: the scan run in-process (status, stdout, stderr).
sigscan = test_scan.sigscan


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[int]]]:
    root = tmp_path_factory.mktemp("lake")
    events, planted = security_log()
    for i in range(12):  # a burst of a service account, which the filter takes out
        events.append({**events[0], "EventID": 4625, "TargetUserName": "svc_backup",
                       "TimeCreated": events[0]["TimeCreated"].replace(hour=5, minute=1, second=i),
                       "EventRecordID": 10_000 + i})
    write_partitions(events, root / "security")
    (root / "rules.yml").write_text(RULES)
    (root / "filter.yml").write_text(FILTER)
    return root, planted


def by_record(alerts: list[dict[str, Any]], root: Path) -> list[tuple[Any, ...]]:
    """Alerts with their evidence as EventRecordIDs, read back from the files named."""
    records: dict[str, list[int]] = {}

    def record(source: dict[str, Any]) -> int:
        path = source["source_file"]
        if path not in records:
            records[path] = pq.read_table(root / path).column("EventRecordID").to_pylist()
        return records[path][source["source_row"]]

    return sorted(
        (a["title"], str(a["window_start"]), str(a["window_end"]), a["metric"],
         sorted(record(s) for s in a["evidence"]))
        for a in alerts
    )


def test_alerts_go_beside_the_hits(sigscan, lake, monkeypatch: pytest.MonkeyPatch) -> None:
    root, planted = lake
    monkeypatch.chdir(root)
    (root / "out").mkdir(exist_ok=True)
    code, _, err = sigscan("rules.yml", "--input", "security", "--output", "out/hits.parquet",
                           "--no-cache", "-q")
    assert code == 0, err
    alerts = pq.read_table(root / "out" / "hits.alerts.parquet")
    assert alerts.schema.remove_metadata() == SCAN_ALERTS_SCHEMA
    found = {(a[0], a[4][0]): a for a in by_record(alerts.to_pylist(), root)}
    assert found["Brute force, then success", planted["alice"][0]][4] == planted["alice"]
    assert found["Brute force, then success", planted["bob"][0]][4] == planted["bob"]
    assert ("Brute force", 10_000) in found  # the service account: no filter given
    # base hits: the failures are only read by correlations; the successes are generated
    hits = pq.read_table(root / "out" / "hits.parquet")
    assert set(hits.column("rule_title").to_pylist()) == {"Successful logon"}


def test_files_in_any_order_and_a_filter(sigscan, lake, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = lake
    monkeypatch.chdir(root)
    days = sorted(str(p.relative_to(root)) for p in (root / "security").rglob("*.parquet"))
    results = []
    for order in (days, days[::-1]):
        code, out, err = sigscan("rules.yml", "--input", *order, "--output", "-", "--alerts",
                                 "alerts.jsonl", "--filter", "filter.yml", "--no-cache")
        assert code == 0, err
        alerts = [json.loads(line) for line in (root / "alerts.jsonl").read_text().splitlines()]
        results.append(by_record(alerts, root))
        assert "filter Not the service accounts (9b8d2c1e-3f4a-4b5c-8d9e-0f1a2b3c4d5e): " \
               "ANDed onto 1 rule: 5c8b3e4a-1f2d-4a6b-9c0d-1e2f3a4b5c6d" in err
        assert "warning: names rule nowhere, which is not loaded" in err
        assert "correlations: 5 alerts from 2 correlation rules written to alerts.jsonl" in err
        assert all(json.loads(line)["rule_title"] == "Successful logon" for line in out.splitlines())
    assert results[0] == results[1]
    assert not any(a[4][0] >= 10_000 for a in results[0])  # filtered out


def test_alerts_follow_the_hits_on_standard_output(sigscan, lake, monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = lake
    monkeypatch.chdir(root)
    code, out, err = sigscan("rules.yml", "--input", "security", "--output", "-", "--no-cache",
                             "--correlation-mode", "every", "--evidence", "2")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    first_alert = next(i for i, r in enumerate(rows) if "correlation_id" in r)
    assert all("rule_id" in r for r in rows[:first_alert])
    alerts = rows[first_alert:]
    assert all("correlation_id" in a and len(a["evidence"]) <= 2 for a in alerts)
    assert {a["anchors"] for a in alerts} == {1}
    assert "written to standard output" in err


TOO_SMALL = ("correlations Brute force, Brute force, then success: chained correlations read all "
             "their base hits at once, more than the bound of 1,024 bytes")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time-field", "When"], "the time field 'When' is not in the data"),
        (["--alerts", "alerts.xlsx"], "cannot tell the output format of alerts.xlsx"),
        (["--filter", "nowhere.yml"], "filter file or folder not found: nowhere.yml"),
        (["--evidence", "-1"], "must be at least 0"),
        (["--max-correlation-memory", "12X"], "not a size (bytes, or with K, M, G): '12X'"),
        (["--max-correlation-memory", "1K"], TOO_SMALL),
    ],
)
def test_bad_input_is_one_clear_error(sigscan, lake, monkeypatch: pytest.MonkeyPatch, args, message) -> None:
    root, _ = lake
    monkeypatch.chdir(root)
    code, _, err = sigscan("rules.yml", "--input", "security", "--output", "x.parquet", "--no-cache", *args)
    assert code == 2
    assert message in err
    assert not (root / "x.parquet").exists()


def test_scan_summary_records_alerts(lake) -> None:
    import sigmarrow
    from sigmarrow.scan import scan

    root, _ = lake
    m = sigmarrow.compile(str(root / "rules.yml"), filters=str(root / "filter.yml"))
    summary = scan(m, [root / "security"], str(root / "s.arrow"))
    record = summary.to_dict()
    assert [(a["id"], a["count"]) for a in record["alerts"]] == [("Brute force", 3),
                                                                 ("Brute force, then success", 2)]
    assert record["alerts_output"] == str(root / "s.alerts.arrow")
    assert record["filters"][0]["touched"] == ["5c8b3e4a-1f2d-4a6b-9c0d-1e2f3a4b5c6d"]
    assert pa.ipc.open_file(root / "s.alerts.arrow").read_all().num_rows == 5


def test_a_time_range_correlates_only_its_events(sigscan, lake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Row groups before the range are skipped unread: evidence rows still name the right
    rows of their files."""
    root, planted = lake
    monkeypatch.chdir(root)
    code, _, err = sigscan("rules.yml", "--input", "security", "--output", "r.parquet", "--no-cache",
                           "--since", "2024-03-02T12:00:00Z")
    assert code == 0, err
    found = by_record(pq.read_table(root / "r.alerts.parquet").to_pylist(), root)
    sequences = [a[4] for a in found if a[0] == "Brute force, then success"]
    assert sequences == [planted["bob"]]


def test_a_small_memory_bound_spills_and_gives_the_same_alerts(
    sigscan, lake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    root, _ = lake
    monkeypatch.chdir(root)
    (root / "burst.yml").write_text("---".join(RULES.split("---")[:3]))  # no chaining
    spills = []
    spill = CorrelationState._spill
    monkeypatch.setattr(CorrelationState, "_spill", lambda state: spills.append(1) or spill(state))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    found = []
    for bound in ([], ["--max-correlation-memory", "2K"]):
        code, _, err = sigscan("burst.yml", "--input", "security", "--output", "b.parquet", "--no-cache",
                               "--correlation-mode", "every", "--batch-rows", "50", *bound)
        assert code == 0, err
        found.append(pq.read_table(root / "b.alerts.parquet"))
    assert len(spills) > 2  # the 2K bound, several times
    assert found[1].equals(found[0]) and found[0].num_rows > 10
    assert list(tmp_path.iterdir()) == []
