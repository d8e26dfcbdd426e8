"""docs/semantics.md, case by case, on the reference evaluator and on the Rust engine."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
from cases import CASES, Case, rule_yaml
from conftest import Engine, events_to_table, load_engine
from sigma.collection import SigmaCollection
from sigmarrow import reference


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(case: Case, engine: Engine) -> None:
    hits = engine(case.rule_yaml, case.events, case.keyword_columns, case.types)
    assert [row for row, _ in hits] == case.expected


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


def _same(python: Any, arrow: Any) -> bool:
    """Does the Arrow round trip give back the value (absent stays absent)?"""
    if python is None or arrow is None:
        return python is None and arrow is None
    if isinstance(python, dict):
        return isinstance(arrow, dict) and all(
            _same(python.get(k), arrow.get(k)) for k in {*python, *arrow}
        )
    if isinstance(python, float) and math.isnan(python):
        return isinstance(arrow, float) and math.isnan(arrow)
    if isinstance(python, dt.datetime):
        # The same instant, whatever the column's zone; ns columns give pandas Timestamps.
        return isinstance(arrow, dt.datetime) and arrow == python
    if isinstance(python, float):  # float32 columns round
        return isinstance(arrow, float) and (arrow == python or math.isclose(arrow, python, rel_tol=1e-6))
    return type(python) is type(arrow) and python == arrow


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_data_survives_arrow(case: Case) -> None:
    """Both engines must see the same values: a column of mixed types would not."""
    rows = events_to_table(case.events, case.types).to_pylist()
    for event, row in zip(case.events, rows, strict=True):
        for name, value in row.items():
            assert _same(event.get(name), value), (name, event.get(name), value)


def test_rows_then_rule_order_and_rule_ids(engine: Engine) -> None:
    first = rule_yaml("sel:\n    A: 'x'\ncondition: sel", title="no id")
    second = rule_yaml(
        "sel:\n    B: 'y'\ncondition: sel",
        title="with id",
        rule_id="5f1a3c52-8f2d-4a57-9a0e-0e9bd8c0a001",
    )
    events = [{"A": "x", "B": "y"}, {"A": "q", "B": "y"}, {"A": "x", "B": "q"}, {"A": "q", "B": "q"}]
    hits = engine(first + "---\n" + second, events)
    assert hits == [
        (0, "no id"),
        (0, "5f1a3c52-8f2d-4a57-9a0e-0e9bd8c0a001"),
        (1, "5f1a3c52-8f2d-4a57-9a0e-0e9bd8c0a001"),
        (2, "no id"),
    ]


_PLACEHOLDER_RULE = rule_yaml("sel:\n    Image|expand: '%programs%\\cmd.exe'\ncondition: sel")


def test_reference_refuses_unresolved_placeholder() -> None:
    collection = SigmaCollection.from_yaml(_PLACEHOLDER_RULE)
    with pytest.raises(ValueError, match="placeholder"):
        reference.match(collection, [{"Image": "x"}])


def test_engine_refuses_unresolved_placeholder() -> None:
    sigmarrow, reason = load_engine()
    if sigmarrow is None:
        pytest.skip(reason)
    matcher = sigmarrow.compile(_PLACEHOLDER_RULE)
    assert len(matcher.errors) == 1
    assert matcher.match(events_to_table([{"Image": "x"}])).num_rows == 0


def test_evaluate_rule_matches_match() -> None:
    collection = SigmaCollection.from_yaml(
        rule_yaml("kw:\n    - 'evil'\nsel:\n    A: 'x'\ncondition: kw or sel")
    )
    (rule,) = collection.rules
    assert reference.evaluate_rule(rule, {"A": "x"}, [])
    assert reference.evaluate_rule(rule, {"A": "y", "B": "EVIL"}, ["B"])
    assert not reference.evaluate_rule(rule, {"A": "y", "B": "EVIL"}, ["A"])
    assert reference.evaluate_rule(rule, {"A": "y", "B": "EVIL"}, None)


def test_engine_reports_missing_fields() -> None:
    sigmarrow, reason = load_engine()
    if sigmarrow is None:
        pytest.skip(reason)
    matcher = sigmarrow.compile(
        rule_yaml(
            "sel:\n    Image: 'x'\n    process.executable: 'y'\n    Missing|exists: false\n"
            "    process.missing: null\ncondition: sel"
        )
    )
    table = events_to_table([{"Image": "x", "process": {"executable": "y"}}])
    hits = matcher.match(table)  # no warning: pytest turns warnings into errors
    assert hits.column("row").to_pylist() == [0]
    assert json.loads(hits.schema.metadata[b"sigmarrow.missing_fields"]) == ["Missing", "process.missing"]
    assert matcher.missing_fields(table) == ["Missing", "process.missing"]
    assert matcher.missing_fields(table.schema) == ["Missing", "process.missing"]


def test_engine_refuses_regex_it_cannot_compile() -> None:
    """Look-arounds are valid for pySigma (Python `re`) but not Rust `regex` syntax."""
    sigmarrow, reason = load_engine()
    if sigmarrow is None:
        pytest.skip(reason)
    matcher = sigmarrow.compile(rule_yaml("sel:\n    A|re: 'a(?=b)'\ncondition: sel", title="lookahead"))
    assert [e.title for e in matcher.errors] == ["lookahead"]
