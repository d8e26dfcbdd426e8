"""The one field -> column resolver (sigmarrow.columns) and what the matcher does with it."""

from __future__ import annotations

import threading

import pyarrow as pa
import sigmarrow
from sigmarrow.columns import SchemaMemo, bind, is_string, resolve

PROCESS = pa.struct([pa.field("executable", pa.string()), pa.field("pid", pa.int64())])


def test_is_string_covers_every_text_type():
    text = (pa.string(), pa.large_string(), pa.string_view(), pa.dictionary(pa.int8(), pa.utf8()))
    for t in text:
        assert is_string(t), t
    for t in (pa.binary(), pa.int64(), pa.null(), pa.list_(pa.string()), PROCESS):
        assert not is_string(t), t


def test_resolve_columns_and_struct_paths():
    schema = pa.schema(
        [
            pa.field("Image", pa.string()),
            pa.field("process", PROCESS),
            pa.field("process.parent", pa.struct([pa.field("name", pa.large_string())])),
            pa.field("a.b", pa.int32()),
        ]
    )
    assert resolve(schema, "Image").path == ("Image",)
    ref = resolve(schema, "process.executable")
    assert ref is not None and ref.path == ("process", "executable") and ref.type == pa.string()
    # The longest column name that starts the path wins.
    assert resolve(schema, "process.parent.name").path == ("process.parent", "name")
    assert resolve(schema, "a.b").path == ("a.b",)  # a column whose name has a dot
    for absent in ("process.nothere", "process.pid.x", "Image.x", "nothere", "a"):
        assert resolve(schema, absent) is None, absent

    bound = bind(schema, ["process.pid", "nothere", "Image", "process.executable", "Image"])
    assert list(bound.found) == ["process.pid", "Image", "process.executable"]
    assert bound.missing == ("nothere",)
    assert bound.columns == ["process", "Image"]

    batch = pa.record_batch(
        [
            pa.array(["x"]),
            pa.array([{"executable": "e.exe", "pid": 4}], PROCESS),
            pa.array([{"name": "p"}], schema.field("process.parent").type),
            pa.array([1], pa.int32()),
        ],
        schema=schema,
    )
    assert bound.found["process.executable"].array(batch).to_pylist() == ["e.exe"]


def test_schema_memo_keeps_the_last_few():
    memo: SchemaMemo[int] = SchemaMemo(size=2)
    made: list[str] = []

    def make(key: str) -> int:
        made.append(key)
        return len(made)

    assert memo.get("a", lambda: make("a")) == 1
    assert memo.get("a", lambda: make("a")) == 1  # kept
    memo.get("b", lambda: make("b"))
    memo.get("a", lambda: make("a"))  # a is now the most recent
    memo.get("c", lambda: make("c"))  # evicts b
    memo.get("a", lambda: make("a"))
    memo.get("b", lambda: make("b"))
    assert made == ["a", "b", "c", "b"]

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(memo.get("x", lambda: 42)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8


RULE = r"""
title: Evil Or Absent
id: 0b3f6a52-8a0e-4c59-9a55-000000000001
logsource: {category: process_creation, product: windows}
detection:
    selection:
        process.executable|endswith: '\evil.exe'
    absent:
        CommandLine: null
    condition: selection and absent
"""


def test_matcher_resolves_once_per_schema_and_skips_null_columns():
    m = sigmarrow.compile(RULE)
    process = pa.array([{"executable": r"C:\evil.exe", "pid": 1}] * 3, PROCESS)
    # CommandLine of type null: present (not a missing field), absent in every row.
    table = pa.table({"process": process, "CommandLine": pa.nulls(3)})
    assert m.missing_fields(table) == []
    assert m.missing_fields(pa.schema([])) == ["CommandLine", "process.executable"]
    rows, rules = m.match_indices(table)
    assert rows.to_pylist() == [0, 1, 2] and rules.to_pylist() == [0, 0, 0]
    # Another schema after it: resolved on its own, not taken from the first.
    other = pa.record_batch({"process": process, "CommandLine": pa.array(["x", None, "y"])})
    assert m.match_indices(other)[0].to_pylist() == [1]
    assert m.match_indices(other.select(["CommandLine"]))[0].to_pylist() == []
    assert m.match_indices(table)[0].to_pylist() == [0, 1, 2]
