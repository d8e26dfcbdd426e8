"""Correlations and Sigma filters through the API: compile errors as records, the program
round trip, `generate`, streams in any order, evidence limits, clear errors on bad input."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pytest
import sigmarrow
import yaml
from correlation_cases import base, corr, ev
from sigmarrow import DataError, UsageError
from sigmarrow.correlation import ALERTS_SCHEMA
from test_correlation import event_table
from test_spark import doc_example


def rules(*docs: dict) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


def reasons(m: sigmarrow.Matcher) -> dict[str | None, str]:
    return {e.title: e.reason for e in m.errors}


BURST = rules(base("a"), corr("burst", "event_count", ["a"]))


def test_correlations_are_listed_and_kept_by_the_program(tmp_path: Path) -> None:
    m = sigmarrow.compile(rules(base("a"), base("b", 2), corr("burst", "event_count", ["a"]),
                                corr("seq", "temporal_ordered", ["burst", "b"], "1m")))
    assert [(c.id, c.type, c.rules, c.timespan) for c in m.correlations] == [
        ("burst", "event_count", ["a"], 5), ("seq", "temporal_ordered", ["burst", "b"], 60),
    ]
    assert m.correlations[1].condition == {"gte": 2.0}  # temporal default: all rules
    assert m.program.rules[0]["name"] == "a"
    data = pa.Table.from_pylist([ev(0), ev(1), ev(2, 2)])
    expected = m.correlate(data)
    assert expected.num_rows == 1
    path = tmp_path / "m.json"
    m.save(path)
    for again in (sigmarrow.Matcher.load(path), pickle.loads(pickle.dumps(m))):
        assert again.correlations == m.correlations
        assert again.correlate(data).equals(expected)


@pytest.mark.parametrize(
    ("docs", "title", "reason"),
    [
        ([corr("c", "event_count", ["nowhere"])], "c", "references rule nowhere, which is not loaded"),
        ([base("a"), corr("x", "event_count", ["y"]), corr("y", "event_count", ["x"])],
         "x", "correlation cycle: x -> y -> x"),
        ([base("a"), corr("x", "event_count", ["x"])], "x", "correlation cycle: x -> x"),
        ([base("a"), corr("c", "temporal", ["a"], condition="a")], "c",
         "boolean (extended) temporal conditions are not supported"),
        ([base("a"), corr("c", "event_count", ["a"], condition={"gte": 1, "lt": 4, "neq": 2})], "c",
         "condition needs one operator, or two for a range"),
        ([base("a"), corr("c", "value_percentile", ["a"], condition={"gte": 1, "field": "x"})], "c",
         "value_percentile needs condition.percentile (0-100)"),
        ([base("a"), corr("c", "value_percentile", ["a"], condition={"gte": 1, "field": "x", "percentile": 120})],
         "c", "condition percentile 120 is not within 0-100"),
        ([base("a"), corr("c", "event_count", ["a", "a"])], "c", "references rule a twice"),
        ([base("a", detection={"s": {"x|nosuchmodifier": 1}, "condition": "s"}), corr("c", "event_count", ["a"])],
         "c", "references rule a, which is not in the program"),
    ],
)
def test_bad_correlations_are_error_records(docs: list[dict], title: str, reason: str) -> None:
    m = sigmarrow.compile(rules(*docs))
    assert reasons(m)[title].startswith(reason)
    assert all(c.title != title for c in m.correlations)


def test_a_cycle_fails_its_parents_too() -> None:
    m = sigmarrow.compile(rules(base("a"), corr("x", "event_count", ["y"]), corr("y", "event_count", ["x"]),
                                corr("top", "event_count", ["x"])))
    assert set(reasons(m)) == {"x", "y", "top"}
    assert reasons(m)["top"].startswith("references correlation x, which failed: correlation cycle")


def test_generate_decides_which_base_hits_match_reports() -> None:
    data = pa.Table.from_pylist([ev(0, 1), ev(0, 2), ev(0, 3)])
    quiet = sigmarrow.compile(rules(base("a", 1), base("b", 2), base("c", 3), corr("x", "event_count", ["a", "b"])))
    assert quiet.match(data).column("rule_id").to_pylist() == ["c"]
    assert quiet.match_indices(data)[1].to_pylist() == [0, 1, 2]  # the correlator still sees them
    loud = sigmarrow.compile(rules(base("a", 1), base("b", 2), corr("x", "event_count", ["a"]),
                                   corr("y", "event_count", ["a", "b"], generate=True)))
    assert loud.match(data).column("rule_id").to_pylist() == ["a", "b"]


def test_stream_in_any_time_order_gives_the_same_alerts() -> None:
    m = sigmarrow.compile(rules(base("a"), corr("burst", "event_count", ["a"], group_by=["User"])))
    events = [ev(t, User=u) for t, u in [(0, "x"), (1, "y"), (2, "x"), (3, "y"), (30, "x"), (31, "x")]]
    order = [4, 2, 5, 0, 3, 1]
    table = pa.Table.from_pylist([events[i] for i in order])
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2))
    expected = m.correlate(pa.Table.from_pylist(events), mode="every")
    shuffled = m.correlate(reader, mode="every")
    assert shuffled.drop_columns(["evidence"]).equals(expected.drop_columns(["evidence"]))
    # evidence rows number the stream as given
    assert [sorted(order[r] for r in rows) for rows in shuffled.column("evidence").to_pylist()] == \
        expected.column("evidence").to_pylist()


def test_evidence_limit_keeps_the_earliest_and_the_count() -> None:
    m = sigmarrow.compile(BURST)
    data = pa.Table.from_pylist([ev(t) for t in (3, 0, 2, 1)])
    full = m.correlate(data)
    assert full.column("evidence").to_pylist() == [[1, 3, 2, 0]]
    two = m.correlate(data, evidence=2)
    assert two.column("evidence").to_pylist() == [[1, 3]]
    assert two.column("evidence_count").to_pylist() == [4]
    assert m.correlate(data, evidence=0).column("evidence").to_pylist() == [[]]


def test_alerts_schema_and_no_correlations() -> None:
    m = sigmarrow.compile(rules(base("a")))
    alerts = m.correlate(pa.Table.from_pylist([ev(0)]))
    assert alerts.num_rows == 0 and alerts.schema.remove_metadata() == ALERTS_SCHEMA
    assert sigmarrow.compile(BURST).correlate(pa.Table.from_pylist([ev(0)])).schema.remove_metadata() == ALERTS_SCHEMA


def test_group_by_a_struct_path() -> None:
    m = sigmarrow.compile(rules(base("a"), corr("c", "event_count", ["a"], group_by=["user.name"])))
    data = pa.Table.from_pylist([ev(0, user={"name": "Bob"}), ev(1, user={"name": "bob"})])
    assert [dict(g) for g in m.correlate(data).column("group").to_pylist()] == [{"user.name": "Bob"}]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"time_field": "When"}, DataError, "the time field 'When' is not in the data"),
        ({"mode": "sometimes"}, UsageError, "correlation mode 'sometimes'"),
        ({"evidence": -1}, UsageError, "evidence=-1"),
        ({"max_memory": 0}, UsageError, "max_memory=0: expected a number of bytes, at least 1"),
        ({"max_memory": 1}, DataError, "of its base hits takes .* more than the bound of 1 bytes"),
    ],
)
def test_bad_input_is_one_clear_error(kwargs: dict, error: type, message: str) -> None:
    m = sigmarrow.compile(BURST)
    with pytest.raises(error, match=message):
        m.correlate(pa.Table.from_pylist([ev(0), ev(1)]), **kwargs)


def test_no_time_column_is_a_clear_error() -> None:
    m = sigmarrow.compile(BURST)
    with pytest.raises(DataError, match="need an event time: the data has none of the columns TimeCreated"):
        m.correlate(pa.Table.from_pylist([{"EventID": 1, "Host": "h"}]))


def test_the_state_can_take_batches_after_alerts() -> None:
    m = sigmarrow.compile(BURST)
    state = m.correlation_state()
    for batch in event_table([ev(0)]):
        state.add(batch, *m.match_indices(batch))
    assert state.alerts().num_rows == 0
    for batch in event_table([ev(1)]):
        state.add(batch, *m.match_indices(batch))
    assert state.alerts().column("evidence").to_pylist() == [[0, 1]]
    assert state.rows_seen == 2 and state.hits == 2 and state.nbytes > 0


# ------------------------------------------------------------------------------ filters

FILTER = {
    "title": "not the admin",
    "id": "3a2c4e1f-2d3b-4c5a-8e9f-0a1b2c3d4e5f",
    "logsource": {"product": "test"},
    "filter": {"rules": ["a", "gone"], "admin": {"User": "admin"}, "condition": "not admin"},
}


def test_filters_from_the_rule_sources_apply_and_are_recorded() -> None:
    m = sigmarrow.compile(rules(base("a"), base("b"), FILTER))
    data = pa.Table.from_pylist([ev(0, User="admin"), ev(1, User="eve")])
    hits = [(h["row"], h["rule_id"]) for h in m.match(data).to_pylist()]
    assert hits == [(0, "b"), (1, "a"), (1, "b")]
    (record,) = m.filters
    assert (record.title, record.rules, record.touched) == ("not the admin", ["a", "gone"], ["a"])
    assert record.warnings == ["names rule gone, which is not loaded"]


def test_filters_given_apart_text_and_file(tmp_path: Path) -> None:
    data = pa.Table.from_pylist([ev(0, User="admin"), ev(1, User="eve")])
    path = tmp_path / "filter.yml"
    path.write_text(rules({**FILTER, "filter": {**FILTER["filter"], "rules": "any"}}))
    for given in (path, str(path), path.read_text(), [path]):
        m = sigmarrow.compile(rules(base("a"), base("b")), filters=given)
        assert [h["row"] for h in m.match(data).to_pylist()] == [1, 1]
        assert m.filters[0].touched == ["a", "b"] and m.filters[0].warnings == []


def test_a_filter_of_another_log_source_touches_nothing_and_warns() -> None:
    other = {**FILTER, "logsource": {"product": "windows"}}
    m = sigmarrow.compile(rules(base("a")), filters=rules(other))
    assert m.filters[0].touched == []
    assert m.filters[0].warnings == ["names rule a, whose log source it does not cover",
                                     "names rule gone, which is not loaded"]


def test_a_rule_given_as_a_filter_is_an_error_record() -> None:
    m = sigmarrow.compile(rules(base("a")), filters=rules(base("b")))
    assert reasons(m)["b"] == "is a rule, not a filter (given as a filter)"
    assert [r.title for r in m.rules] == ["a"]


def test_filters_apply_before_correlations() -> None:
    m = sigmarrow.compile(BURST, filters=rules(FILTER))
    data = pa.Table.from_pylist([ev(0, User="admin"), ev(1, User="eve"), ev(2, User="eve")])
    assert m.correlate(data).column("evidence").to_pylist() == [[1, 2]]


def test_the_readme_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    code, printed = doc_example(readme, "tests/test_correlation_api.py runs this block")
    exec(compile(code, str(readme), "exec"), {"__name__": "readme_example"})  # noqa: S102  (our README)
    assert capsys.readouterr().out == printed


def test_a_group_of_dropped_events_only_leaves_the_others_alone() -> None:
    """Found by tests/test_correlation_spill.py: a group seen only in events without a time
    kept its number, so a later group showed another group's values (or an IndexError)."""
    m = sigmarrow.compile(BURST)
    data = pa.Table.from_pylist([ev(0, Host="b"), ev(1, Host="b"), ev(None, Host="a")])
    assert [dict(g) for g in m.correlate(data).column("group").to_pylist()] == [{"Host": "b"}]
