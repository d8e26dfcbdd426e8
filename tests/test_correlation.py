"""The correlation case suite on both correlators: the fast one (`Matcher.correlate`, fed
through `Matcher.correlation_state` when a column mixes types) and the brute-force reference
(`sigmarrow.reference_correlation`). Each case states its alerts by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pytest
import sigmarrow
from conftest import events_to_table
from correlation_cases import CASES, T0, CorrelationCase
from sigmarrow import reference_correlation
from sigmarrow.correlation import DROPPED_KEY

T0_NS = int(T0.timestamp()) * 10**9


def seconds(ns: int) -> float:
    return round((ns - T0_NS) / 1e9, 6)


def event_table(events: list[dict[str, Any]]) -> list[pa.RecordBatch]:
    """One batch of every event; one batch per event when a column mixes types (10 and
    "10"), which Arrow cannot hold in one column (files of one dataset can)."""
    if not events:
        return []
    try:
        return events_to_table(events).to_batches()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return [pa.RecordBatch.from_pylist([e]) for e in events]


def fast_alerts(
    rules_yaml: str, events: list[dict[str, Any]], mode: str, time_field: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    m = sigmarrow.compile(rules_yaml)
    assert not m.errors, m.errors
    state = m.correlation_state(time_field)
    for batch in event_table(events):
        state.add(batch, *m.match_indices(batch))
    table = state.alerts(mode)
    alerts = [
        {**a, "group": dict(a["group"]), "window_start": a["window_start"].value,
         "window_end": a["window_end"].value}
        for a in table.to_pylist()
    ]
    return alerts, orjson.loads(table.schema.metadata[DROPPED_KEY])


def reference_alerts(
    rules_yaml: str, events: list[dict[str, Any]], mode: str, time_field: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    return reference_correlation.correlate(rules_yaml, events, time_field, mode)


CORRELATORS: dict[str, Callable[..., tuple[list[dict[str, Any]], dict[str, dict[str, int]]]]] = {
    "fast": fast_alerts,
    "reference": reference_alerts,
}


def every_view(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        ((a["correlation_id"], a["group"], seconds(a["window_end"]), pytest.approx(a["metric"]),
          a["evidence"]) for a in alerts),
        key=lambda t: (t[0], t[2], sorted(t[1].items())),
    )


def merged_view(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        ((a["correlation_id"], a["group"], seconds(a["window_start"]), seconds(a["window_end"]),
          pytest.approx(a["metric"]), a["anchors"], a["evidence"]) for a in alerts),
        key=lambda t: (t[0], t[3], sorted(t[1].items())),
    )


@pytest.fixture(params=list(CORRELATORS))
def correlator(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return CORRELATORS[request.param]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every(case: CorrelationCase, correlator: Callable[..., Any]) -> None:
    alerts, dropped = correlator(case.rules_yaml, case.events, "every", case.time_field)
    expected = sorted(case.every, key=lambda t: (t[0], t[2], sorted(t[1].items())))
    assert every_view(alerts) == [tuple(e) for e in expected]
    for corr_id, counts in case.dropped.items():
        assert dropped[corr_id] == counts


MERGED = [c for c in CASES if c.merged is not None]


@pytest.mark.parametrize("case", MERGED, ids=[c.id for c in MERGED])
def test_merged(case: CorrelationCase, correlator: Callable[..., Any]) -> None:
    alerts, _ = correlator(case.rules_yaml, case.events, "merged", case.time_field)
    expected = sorted(case.merged or [], key=lambda t: (t[0], t[3], sorted(t[1].items())))
    assert merged_view(alerts) == [tuple(e) for e in expected]
