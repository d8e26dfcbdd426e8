"""End to end over a generated Security log in day partitions (Parquet, read with
pyarrow.dataset): a brute-force `event_count` and a `temporal_ordered` "failed logons, then a
success", with attacks planted among background logons (one across midnight, so across two
files), in file order and in reverse order; and the same alerts as the reference."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import sigmarrow
from sigmarrow import reference_correlation

RULES = """
title: Failed logon
id: 5c8b3e4a-1f2d-4a6b-9c0d-1e2f3a4b5c6d
name: failed_logon
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4625}
    condition: selection
---
title: Successful logon
name: successful_logon
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4624}
    condition: selection
---
title: Brute force
name: brute_force
level: medium
correlation:
    type: event_count
    rules: [failed_logon]
    group-by: [TargetUserName]
    timespan: 5m
    condition: {gte: 10}
---
title: Brute force, then success
name: brute_then_success
level: high
correlation:
    type: temporal_ordered
    rules: [brute_force, successful_logon]
    group-by: [TargetUserName]
    timespan: 10m
    generate: true
"""
DAY = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def security_log(seed: int = 7) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    """Events over three days, and the record ids of the planted attacks' events."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    planted: dict[str, list[int]] = {}

    def add(when: dt.datetime, event_id: int, user: str, plant: str | None = None) -> None:
        record = len(events) + 1
        events.append({"TimeCreated": when, "EventID": event_id, "TargetUserName": user,
                       "IpAddress": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                       "Computer": "dc1.corp", "EventRecordID": record})
        if plant:
            planted.setdefault(plant, []).append(record)

    for _ in range(1500):  # background: logons, a few failures per user, other events
        when = DAY + dt.timedelta(seconds=rng.uniform(0, 3 * 86400))
        add(when, rng.choice([4624, 4624, 4625, 4634, 4688]), f"user{rng.randrange(600)}")
    start = DAY + dt.timedelta(hours=10)  # alice: 12 failures in 3 minutes, success a minute later
    for i in range(12):
        add(start + dt.timedelta(seconds=15 * i), 4625, "alice", "alice")
    add(start + dt.timedelta(minutes=4), 4624, "Alice", "alice")
    start = DAY + dt.timedelta(days=1, hours=23, minutes=58)  # bob: across midnight
    for i in range(15):
        add(start + dt.timedelta(seconds=16 * i), 4625, "BOB", "bob")
    add(start + dt.timedelta(minutes=7), 4624, "bob", "bob")
    start = DAY + dt.timedelta(days=2, hours=3)  # carol: failures, never a success
    for i in range(11):
        add(start + dt.timedelta(seconds=20 * i), 4625, "carol", "carol")
    return events, planted


def write_partitions(events: list[dict[str, Any]], root: Path) -> list[Path]:
    """One Parquet file per day, each in time order within the file; rows of a day shuffled
    between two row groups would not change anything, files in any order must not either."""
    files = []
    for day in range(3):
        lo, hi = DAY + dt.timedelta(days=day), DAY + dt.timedelta(days=day + 1)
        rows = sorted((e for e in events if lo <= e["TimeCreated"] < hi), key=lambda e: e["TimeCreated"])
        path = root / f"day={lo.date()}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=200)
        files.append(path)
    return files


def alerts_by_record(files: list[Path]) -> tuple[list[tuple[Any, ...]], pa.Table]:
    """The alerts over the files in the given order, evidence as EventRecordIDs."""
    data = ds.dataset([str(f) for f in files], format="parquet")
    records = data.to_table(columns=["EventRecordID"]).column(0).to_pylist()
    m = sigmarrow.compile(RULES)
    alerts = m.correlate(data.scanner(batch_size=300).to_reader())
    view = sorted(
        ((a["title"], dict(a["group"]), a["window_start"], a["window_end"], a["metric"],
          sorted(records[r] for r in a["evidence"])) for a in alerts.to_pylist()),
        key=lambda a: (a[0], a[2], sorted(a[1].items())),
    )
    return view, alerts


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[dict[str, Any]], dict[str, list[int]]]:
    events, planted = security_log()
    return write_partitions(events, tmp_path_factory.mktemp("security")), events, planted


def test_planted_attacks_are_found(dataset: tuple[list[Path], list[dict[str, Any]], dict[str, list[int]]]) -> None:
    files, _, planted = dataset
    view, alerts = alerts_by_record(files)
    found = {(title, group["TargetUserName"].lower()): (metric, evidence)
             for title, group, _, _, metric, evidence in view}
    assert set(found) == {("Brute force", "alice"), ("Brute force", "bob"), ("Brute force", "carol"),
                          ("Brute force, then success", "alice"), ("Brute force, then success", "bob")}
    assert found["Brute force", "alice"] == (12, planted["alice"][:12])
    assert found["Brute force", "bob"][0] == 15
    assert found["Brute force", "carol"] == (11, planted["carol"])
    assert found["Brute force, then success", "alice"] == (2, planted["alice"])
    assert found["Brute force, then success", "bob"] == (2, planted["bob"])
    assert set(alerts.column("level").to_pylist()) == {"medium", "high"}


def test_files_in_any_order_give_the_same_alerts(
    dataset: tuple[list[Path], list[dict[str, Any]], dict[str, list[int]]],
) -> None:
    files, _, _ = dataset
    assert alerts_by_record(list(reversed(files)))[0] == alerts_by_record(files)[0]
    assert alerts_by_record([files[1], files[2], files[0]])[0] == alerts_by_record(files)[0]


def test_the_reference_agrees(dataset: tuple[list[Path], list[dict[str, Any]], dict[str, list[int]]]) -> None:
    files, _, _ = dataset
    rows = ds.dataset([str(f) for f in files], format="parquet").to_table().to_pylist()
    alerts, _ = reference_correlation.correlate(RULES, rows)
    expected = sorted(
        (a["type"], a["group"]["TargetUserName"], a["window_start"], a["window_end"], a["metric"],
         sorted(rows[r]["EventRecordID"] for r in a["evidence"]))
        for a in alerts
    )
    _, table = alerts_by_record(files)
    records = [r["EventRecordID"] for r in rows]
    got = sorted(
        (a["type"], dict(a["group"])["TargetUserName"], a["window_start"].value, a["window_end"].value,
         a["metric"], sorted(records[r] for r in a["evidence"]))
        for a in table.to_pylist()
    )
    assert got == expected
