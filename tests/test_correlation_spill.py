"""Correlations past their memory bound: a state that spills its base hits to disk (Arrow IPC
runs) computes, partition by partition, the very alerts of the in-memory path and of the
reference correlator; its files are gone after close, collection and errors; a bound too
small for what must be read back at once is one clear error."""

from __future__ import annotations

import gc
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
import sigmarrow
import yaml
from correlation_cases import CASES, CorrelationCase, base, corr, ev
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigmarrow.correlation import DEFAULT_MAX_MEMORY, DROPPED_KEY, CorrelationState
from sigmarrow.correlation.spill import folded_hashes
from sigmarrow.errors import DataError
from test_correlation import event_table, merged_view, reference_alerts
from test_correlation_properties import events as random_events
from test_correlation_properties import every_view, rule_set


def gathered(rules_yaml: str, batches: list[pa.RecordBatch], folder: Path | None,
             time_field: str | None = None, max_memory: int = DEFAULT_MAX_MEMORY) -> CorrelationState:
    """A state fed `batches`; with `folder`, spilling after every batch into it."""
    m = sigmarrow.compile(rules_yaml)
    assert not m.errors, m.errors
    state = CorrelationState(m.program.correlations, time_field, max_memory,
                             spill_dir=str(folder) if folder else None, spill_at=1 if folder else None)
    for batch in batches:
        state.add(batch, *m.match_indices(batch))
    return state


def same(a: pa.Table, b: pa.Table) -> bool:
    return a.equals(b) and a.schema.metadata == b.schema.metadata


def listed(table: pa.Table) -> list[dict[str, Any]]:
    """Alerts as the reference correlator gives them."""
    return [{**a, "group": dict(a["group"]), "window_start": a["window_start"].value,
             "window_end": a["window_end"].value} for a in table.to_pylist()]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("mode", ["every", "merged"])
def test_spilled_alerts_are_the_in_memory_ones(case: CorrelationCase, mode: str, tmp_path: Path) -> None:
    batches = event_table(case.events)
    expected = gathered(case.rules_yaml, batches, None, case.time_field).alerts(mode)
    with gathered(case.rules_yaml, batches, tmp_path, case.time_field) as state:
        assert bool(state.spill.runs) == (state.hits > 0)
        assert same(state.alerts(mode), expected)
        assert state.alerts(mode, evidence=1).equals(
            gathered(case.rules_yaml, batches, None, case.time_field).alerts(mode, evidence=1))
    assert os.listdir(tmp_path) == []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(rules=rule_set(), data=random_events, cut=st.integers(1, 5))
def test_spilled_equals_reference(rules: str, data: list[dict[str, Any]], cut: int, tmp_path: Path) -> None:
    """Random rules and events, fed in batches of `cut` events, spilled after each."""
    batches = [b for i in range(0, len(data), cut) for b in event_table(data[i : i + cut])]
    for mode, view in (("every", every_view), ("merged", merged_view)):
        with gathered(rules, batches, tmp_path) as state:
            spilled = state.alerts(mode)
        assert same(spilled, gathered(rules, batches, None).alerts(mode))
        ref, ref_dropped = reference_alerts(rules, data, mode)
        assert view(listed(spilled)) == view(ref), mode
        assert orjson.loads(spilled.schema.metadata[DROPPED_KEY]) == ref_dropped
    assert os.listdir(tmp_path) == []


MANY_GROUPS = yaml.safe_dump_all([base("a"), base("b", 2),
                                  corr("burst", "event_count", ["a", "b"], "10s", group_by=["User", "Host"]),
                                  corr("users", "value_count", ["a"], "1m", group_by=["Host"],
                                       condition={"gte": 2, "field": "User"})], sort_keys=False)


def test_groups_split_over_partitions_keep_their_case_folded_members(tmp_path: Path) -> None:
    """Many groups, spelled in several cases (ASCII and not), dictionary-encoded in some
    batches and plain in others: every spelling of a group lands in one partition."""
    users = ["Straße", "STRASSE", "strasse", "Émile", "ÉMILE", "bob", "Bob", "BOB", ""] + \
        [f"user{i}" for i in range(60)]
    events = [ev(i % 37, 1 + i % 2, User=users[i % len(users)], Host=f"H{i % 3}") for i in range(600)]
    batches = []
    for i in range(0, len(events), 50):
        table = pa.Table.from_pylist(events[i : i + 50])
        if i % 100:
            table = table.set_column(table.schema.get_field_index("User"), "User",
                                     table.column("User").dictionary_encode())
        batches.extend(table.to_batches())
    for mode, view in (("every", every_view), ("merged", merged_view)):
        expected = gathered(MANY_GROUPS, batches, None).alerts(mode)
        assert expected.num_rows > 50
        with gathered(MANY_GROUPS, batches, tmp_path, max_memory=1 << 20) as state:
            assert len(state.spill.runs) == len(batches)
            assert same(state.alerts(mode), expected)
        assert view(reference_alerts(MANY_GROUPS, events, mode)[0]) == view(listed(expected))


@given(st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=30), st.integers(0, 5))
def test_equal_folds_hash_equal(values: list[str | None], start: int) -> None:
    text = pa.array(values, pa.string())
    hashes, absent = folded_hashes(text)
    assert absent.tolist() == [v is None for v in values]
    encoded, _ = folded_hashes(text.dictionary_encode())
    assert (encoded[~absent] == hashes[~absent]).all()
    sliced, _ = folded_hashes(text.slice(start))
    assert (sliced == hashes[start:]).all()
    again, _ = folded_hashes(pa.array([None if v is None else v.casefold() for v in values], pa.string()))
    assert (again[~absent] == hashes[~absent]).all()


def test_files_go_on_close_collection_and_errors(tmp_path: Path) -> None:
    batches = event_table([ev(i, Host=f"h{i % 4}") for i in range(40)])
    burst = yaml.safe_dump_all([base("a"), corr("burst", "event_count", ["a"])], sort_keys=False)
    state = gathered(burst, batches, tmp_path)
    [folder] = os.listdir(tmp_path)
    state.alerts()
    assert sorted(os.listdir(tmp_path / folder)) == ["run-0.arrow"]  # partitions are gone
    state.close()
    assert os.listdir(tmp_path) == []
    gathered(burst, batches, tmp_path).alerts()  # dropped without close
    gc.collect()
    assert os.listdir(tmp_path) == []
    state = gathered(burst, batches, tmp_path, max_memory=64)
    with pytest.raises(DataError, match="correlation burst: one partition of its base hits takes"):
        state.alerts()
    assert sorted(os.listdir(tmp_path / os.listdir(tmp_path)[0])) == ["run-0.arrow"]
    state.close()
    assert os.listdir(tmp_path) == []


def test_a_correlation_fails_cleanly_with_a_tiny_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    m = sigmarrow.compile(yaml.safe_dump_all([base("a"), corr("burst", "event_count", ["a"], group_by=None)],
                                             sort_keys=False))
    with pytest.raises(DataError, match="it has no group-by, so its hits are one group"):
        m.correlate(pa.Table.from_pylist([ev(i) for i in range(10)]), max_memory=100)
    assert os.listdir(tmp_path) == []


def test_chained_correlations_read_back_within_the_bound(tmp_path: Path) -> None:
    rules = yaml.safe_dump_all([base("a"), base("b", 2), corr("burst", "event_count", ["a"]),
                                corr("seq", "temporal_ordered", ["burst", "b"], "1m")], sort_keys=False)
    batches = event_table([ev(i, 1 + (i % 5 == 4)) for i in range(30)])
    expected = gathered(rules, batches, None).alerts()
    assert expected.num_rows
    with gathered(rules, batches, tmp_path) as state:
        assert same(state.alerts(), expected)
    with gathered(rules, batches, tmp_path, max_memory=200) as state, \
            pytest.raises(DataError, match="correlations burst, seq: chained correlations read all"):
        state.alerts()
    assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_take_the_spill_is_one_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    batches = event_table([ev(i) for i in range(5)])
    burst = yaml.safe_dump_all([base("a"), corr("burst", "event_count", ["a"])], sort_keys=False)
    with pytest.raises(DataError, match=f"correlations: cannot spill base hits to {blocked}: Not a directory"):
        gathered(burst, batches, blocked)


def test_what_is_dropped_counts_once_over_partitions(tmp_path: Path) -> None:
    """An event without a time through two rules whose aliased group values differ would
    fall in two partitions by its keys: it counts once, as in memory and the reference."""
    rules = yaml.safe_dump_all([base("a"), base("a2", 1), corr(
        "c", "event_count", ["a", "a2"], group_by=["who"],
        aliases={"who": {"a": "User", "a2": "Target"}})], sort_keys=False)
    events = [ev(None, User=f"u{i}", Target=f"t{i}") for i in range(20)] + \
        [ev(i, User=f"u{i}", Target=None) for i in range(20)] + [ev(i, User="u", Target="U") for i in range(5)]
    batches = event_table(events)
    expected = gathered(rules, batches, None).alerts("every")
    assert orjson.loads(expected.schema.metadata[DROPPED_KEY]) == {"c": {"no_time": 20, "no_group": 20}}
    with gathered(rules, batches, tmp_path) as state:
        assert same(state.alerts("every"), expected)
    assert every_view(reference_alerts(rules, events, "every")[0]) == every_view(listed(expected))
