"""The whole SigmaHQ rule set over one mixed Windows table (issue 10).

The table (``tests/lake.py``) holds every event of SigmaHQ's 202 regression ``.evtx`` files,
all channels, in one wide, sparse table. The rules of the three main folders are compiled
once per pipeline (``windows``; ``sysmon`` + ``windows-logsources``) with
``logsource="windows"``, and matched over the whole table. Then:

- every regression case's rule is compiled (none is left out as not applicable or not
  routed) and fires at least ``match_count`` times on the rows of its own file;
- no rule fires on a row of a channel (or, where pySigma states them, an event id) that its
  log source does not allow, on this table and on a widened one whose synthetic events of 28
  channels collide in event ids: the table is :func:`allowed_channels`, from pySigma's own
  mappings, not from the pipelines under test;
- every rule's hits equal the reference evaluator's (``sigmarrow.reference``), for both
  pipelines: every rule on a sample of the rows, and on all rows every rule that fires
  there or anywhere on the engine, plus a seeded random subset (what exactly, and why not
  everything: :func:`test_every_rule_agrees_with_the_reference`);
- the newcomer command of the issue (``sigmarrow scan <sigma>/rules --input
  examples/process_creation.parquet --output -``) gives only Windows hits: through the API with
  ``logsource="windows"``, and as the command itself (which guesses the log source from the
  columns).

Needs the SigmaHQ snapshot at ``SIGMARROW_SIGMA_DIR`` and the PyPI package ``evtx``.
"""

from __future__ import annotations

import functools
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
import yaml
from lake import (
    SYSMON,
    compile_with_rules,
    filled_per_row,
    hits_by_rule,
    reference_disagreements,
    regression_lake,
    widen,
)
from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.pipelines.windows.windows import windows_generic_category_channel_mapping
from sigmahq import (
    SIGMA_DIR,
    RegressionCase,
    regression_cases,
    requires_sigma,
    rule_dirs,
    rule_index,
)
from sigmarrow.cli import main
from sigmarrow.evtx import read_evtx

pytest.importorskip("evtx", reason="reading .evtx files needs the PyPI package 'evtx'")
pytestmark = requires_sigma

REPO_DIR = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_DIR / "examples" / "process_creation.parquet"
PIPELINES: dict[str, Any] = {
    "windows": "windows",
    "sysmon+windows-logsources": ["sysmon", "windows-logsources"],
}
DEFENDER = "Microsoft-Windows-Windows Defender/Operational"


# --------------------------------------------------------------------------------------
# What a rule's log source allows
# --------------------------------------------------------------------------------------


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def allowed_channels(
    logsource: dict[str, str], pipeline: str
) -> dict[str, frozenset[int] | None] | None:
    """Channel -> the event ids allowed there (None: any id) for a rule's log source; None
    when any channel is (a rule of product windows alone). The table, from pySigma:

    - ``service: S``: the channels of ``windows_logsource_mapping[S]``, any event id;
    - ``category`` of ``windows_generic_category_channel_mapping`` (ps_module, ps_script,
      ps_classic_*): the channels of its service, its event id;
    - a Sysmon category (``sysmon_generic_logsource_eventid_mapping``): the Sysmon channel, its
      event ids; with the ``windows`` pipeline process_creation is also Security 4688;
    - ``category: antivirus`` (``windows`` pipeline only): the Defender channel.
    """
    category, service = logsource.get("category"), logsource.get("service")
    if service:
        return dict.fromkeys(_listed(windows_logsource_mapping[service]))
    if category in windows_generic_category_channel_mapping:
        info = windows_generic_category_channel_mapping[category]
        ids = frozenset(_listed(info["EventID"]))
        return dict.fromkeys(_listed(windows_logsource_mapping[info["service"]]), ids)
    if category in sysmon_generic_logsource_eventid_mapping:
        allowed: dict[str, frozenset[int] | None] = {
            SYSMON: frozenset(_listed(sysmon_generic_logsource_eventid_mapping[category]))
        }
        if category == "process_creation" and pipeline == "windows":
            allowed["Security"] = frozenset({4688})
        return allowed
    if category == "antivirus" and pipeline == "windows":
        return {DEFENDER: None}
    if category is None:
        return None
    raise AssertionError(f"no channel is known for log source {logsource} with {pipeline}")


# --------------------------------------------------------------------------------------
# The rule set, compiled and matched once per pipeline
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The rule set compiled with one pipeline, and its hits on the lake."""

    matcher: sigmarrow.Matcher
    rules: list[Any]  # the processed pySigma rules, in the matcher's rule order
    hits: dict[str, list[int]]  # rule id (lower case) -> rows, in order
    compile_seconds: float


@functools.cache
def run(pipeline: str) -> Run:
    started = time.perf_counter()
    matcher, rules = compile_with_rules(rule_dirs(), PIPELINES[pipeline])
    seconds = time.perf_counter() - started
    return Run(matcher, rules, hits_by_rule(matcher, regression_lake().table), seconds)


@functools.cache
def rule_logsource(source: str) -> dict[str, str]:
    """The log source a rule file declares (before any pipeline changed it)."""
    return yaml.safe_load(Path(source).read_text(encoding="utf-8"))["logsource"]


# --------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------


def test_the_lake_holds_every_regression_event() -> None:
    lake = regression_lake()
    table = lake.table
    channels: set[str] = set()
    for case in lake.cases:
        own = read_evtx(case.evtx)
        rows = lake.rows_of(case)
        assert len(rows) == own.num_rows, case.test_id
        got = table.slice(rows.start, len(rows)).to_pylist()
        assert [{k: v for k, v in r.items() if v is not None} for r in got] == [
            {k: v for k, v in r.items() if v is not None} for r in own.to_pylist()
        ], case.test_id
        channels |= set(own.column("Channel").to_pylist())
    names = {n for case in lake.cases for n in read_evtx(case.evtx).column_names}
    assert set(table.column_names) == names
    assert table.schema.field("EventID").type == pa.int64()
    assert all(f.type == pa.string() for f in table.schema if f.name != "EventID")
    assert len(lake.cases) == len(regression_cases()) == 202
    filled = filled_per_row(table)
    print(f"\nlake: {table.num_rows} rows, {table.num_columns} columns, {len(channels)} channels "
          f"({', '.join(sorted(channels))}), {min(filled)}-{max(filled)} filled per row "
          f"(mean {sum(filled) / len(filled):.1f})")


# --------------------------------------------------------------------------------------
# SigmaHQ's regression suite, every rule among all the others, on the whole table
# --------------------------------------------------------------------------------------

CASES = [
    pytest.param(pipeline, case, id=f"{pipeline}-{case.test_id}")
    for pipeline in PIPELINES
    for case in regression_cases()
]


@pytest.mark.parametrize(("pipeline", "case"), CASES)
def test_regression_case_in_the_lake(pipeline: str, case: RegressionCase) -> None:
    result = run(pipeline)
    compiled = {r.id.lower() for r in result.matcher.rules}
    if case.rule_id not in compiled:
        why = [s.reason for s in result.matcher.skipped + result.matcher.errors
               if (s.rule_id or "").lower() == case.rule_id]
        pytest.fail(f"{case.rule_title!r} ({case.rule_id}) is not in the compiled set with "
                    f"{pipeline}: {why or 'no reason recorded'}")
    own = regression_lake().rows_of(case)
    hits = [row for row in result.hits.get(case.rule_id, []) if row in own]
    assert len(hits) >= case.match_count, (
        f"{case.rule_title!r} ({case.rule_id}) fires {len(hits)} times on the {len(own)} rows of "
        f"{case.evtx.relative_to(SIGMA_DIR)} with {pipeline}, wants >= {case.match_count}"
    )


#: Rows of the widened lake (tests/lake.py `widen`): the regression events among synthetic
#: events of 28 channels whose event ids collide (4625 in Security and Application, ...).
WIDE_ROWS = 20_000


@functools.cache
def wide_lake() -> pa.Table:
    return widen(regression_lake().table, WIDE_ROWS)


def outside_channel(matcher: sigmarrow.Matcher, table: pa.Table, pipeline: str) -> list[str]:
    """The hits of rules on rows whose channel (or event id) their log source does not allow."""
    channel = table.column("Channel").to_pylist()
    event_id = table.column("EventID").to_pylist()
    rows, indices = matcher.match_indices(table)
    wrong = []
    for row, index in zip(rows.to_pylist(), indices.to_pylist(), strict=True):
        rule = matcher.rules[index]
        allowed = allowed_channels(rule_logsource(rule.source), pipeline)
        if allowed is None:
            continue
        ids = allowed.get(channel[row], frozenset())
        if channel[row] not in allowed or (ids is not None and event_id[row] not in ids):
            wrong.append(f"{rule.title!r} ({rule.id}, {rule_logsource(rule.source)}) on row {row}: "
                         f"Channel {channel[row]!r}, EventID {event_id[row]}; allowed {allowed}")
    return wrong


@pytest.mark.parametrize("table", ["regression", "widened"])
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_no_rule_fires_outside_its_channel(pipeline: str, table: str) -> None:
    data = regression_lake().table if table == "regression" else wide_lake()
    wrong = outside_channel(run(pipeline).matcher, data, pipeline)
    assert not wrong, f"{len(wrong)} hits outside the rule's channel:\n" + "\n".join(wrong[:30])


def test_the_channel_check_sees_routing_by_event_id_alone() -> None:
    """Without channel tests (the sysmon pipeline routes nothing but Sysmon event ids, and
    `unrouted` runs the service rules everywhere), the check above finds the issue's
    example: "Failed Logon From Public IP" (Security 4625) on Application events 4625."""
    m = sigmarrow.compile(SIGMA_DIR / "rules/windows/builtin/security", pipeline="sysmon",
                          logsource="windows", unrouted=True)
    wrong = outside_channel(m, wide_lake(), "windows")
    assert any("'Failed Logon From Public IP'" in w and "'Application', EventID 4625" in w
               for w in wrong), wrong[:5]


#: Every SAMPLE_EVERY-th Sysmon row (and every row of another channel) is compared for all rules.
SAMPLE_EVERY = 12
#: Rules compared on every row besides those with a hit (seeded: the same ones each run).
RANDOM_RULES, SEED = 100, 10


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_rule_agrees_with_the_reference(pipeline: str) -> None:
    """The engine's rows equal the reference's (1) for EVERY rule on the sample rows (all rows
    of the non-Sysmon channels and every SAMPLE_EVERY-th Sysmon row), and (2) on ALL rows for
    every rule that has a hit on either engine there, or an engine hit anywhere, and for
    RANDOM_RULES rules drawn with SEED. (All rules on all rows takes the reference ~3 min per
    pipeline: ~260 µs per rule and event, most of it in four emoji rules.)"""
    result = run(pipeline)
    table = regression_lake().table
    channel = table.column("Channel").to_pylist()
    sample = [row for row in range(table.num_rows)
              if channel[row] != SYSMON or row % SAMPLE_EVERY == 0]
    started = time.perf_counter()
    found = reference_disagreements(result.matcher, result.rules, table, sample, RANDOM_RULES, SEED)
    seconds = time.perf_counter() - started
    print(f"\n{pipeline}: {len(result.rules)} rules compiled in {result.compile_seconds:.1f} s "
          f"({len(result.matcher.skipped)} left out); reference: {len(result.rules)} rules on "
          f"{len(sample)} rows, {found.rules_on_all_rows} rules on all {table.num_rows}: "
          f"{found.evaluations:,} evaluations in {seconds:.1f} s "
          f"({seconds / found.evaluations * 1e6:.0f} µs each); {found.reference_hits} hits")
    assert not found.differences, (f"{len(found.differences)} disagreements:\n"
                                   + "\n".join(found.differences[:30]))
    assert found.reference_hits, "no rule fired at all: the comparison would prove nothing"


# --------------------------------------------------------------------------------------
# The newcomer command: only Windows hits on the bundled Sysmon example
# --------------------------------------------------------------------------------------

ZEEK_RDP = SIGMA_DIR / "rules/network/zeek/zeek_rdp_public_listener.yml"


def non_windows(rule_ids: list[str]) -> dict[str, int]:
    """Hits per rule id whose rule file is not of product windows."""
    return dict(Counter(
        rule_id for rule_id in rule_ids
        if rule_logsource(str(rule_index()[rule_id.lower()])).get("product") != "windows"
    ))


def test_newcomer_rules_declared_windows_give_only_windows_hits() -> None:
    example = pq.read_table(EXAMPLE)
    # Undeclared, the Zeek rule `not id.orig_h|cidr ...` matches every Sysmon event:
    zeek = sigmarrow.compile(ZEEK_RDP)
    assert zeek.match(example).num_rows == example.num_rows
    m = sigmarrow.compile(SIGMA_DIR / "rules", logsource="windows")
    assert any(s.rule_id == zeek.rules[0].id and "product zeek" in s.reason for s in m.skipped)
    hits = m.match(example)
    assert hits.num_rows > 0
    assert non_windows(hits.column("rule_id").to_pylist()) == {}


def test_newcomer_command_gives_only_windows_hits(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", str(SIGMA_DIR / "rules"), "--input", str(EXAMPLE), "--output", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    hits = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    assert hits
    assert non_windows([h["rule_id"] for h in hits]) == {}
