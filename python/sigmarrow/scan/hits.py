"""Hits: the one hit schema, and the rows the scan writes for the engine's (row, rule) pairs.

A hit row names its event (``source_file``, ``source_row``), its rule (``rule_id``,
``rule_title``, ``level``, ``tags``: SigmaHQ rules are under the DRL 1.1, which asks for
attribution) and carries event columns: by default those the matching rule references
(null for the columns of other rules), else the requested ones (``*``: every column).

Formats that store a schema (Parquet, Arrow IPC) get it before the first hit, decided from
the schemas of the inputs (:func:`event_fields`); JSON Lines takes each hit's values as
they come. The schema's metadata says which kind of event columns it has
(:data:`EVENT_COLUMNS_KEY`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.columns import ColumnRef, SchemaMemo, resolve
from sigmarrow.errors import DataError, UsageError
from sigmarrow.scan.inputs import InputFile
from sigmarrow.scan.readers import json_text

__all__ = [
    "EVENT_COLUMNS_KEY",
    "HIT_COLUMNS",
    "HIT_SCHEMA",
    "RULE_COLUMNS",
    "EventColumns",
    "HitBuilder",
    "RuleColumns",
    "event_fields",
]

#: Where the event is: its file, as given or found inside an input folder, and its 0-based
#: row within that file.
SOURCE_FIELDS = (
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_row", pa.int64(), nullable=False),
)
#: Which rule fired, from the rule's metadata.
RULE_FIELDS = (
    pa.field("rule_id", pa.string()),
    pa.field("rule_title", pa.string()),
    pa.field("level", pa.string()),
    pa.field("tags", pa.list_(pa.string())),
)
#: The columns every hit has, before its event columns.
HIT_SCHEMA = pa.schema([*SOURCE_FIELDS, *RULE_FIELDS])
HIT_COLUMNS = tuple(HIT_SCHEMA.names)
RULE_COLUMNS = tuple(f.name for f in RULE_FIELDS)
#: Schema metadata: ``rule`` (the event columns of a hit are those its rule references;
#: the others are null) or ``requested`` (the same columns for every hit).
EVENT_COLUMNS_KEY = b"sigmarrow.event_columns"


class RuleColumns:
    """The rule columns as arrays indexed by rule index: ``take`` gives them for hits."""

    def __init__(self, rules: Sequence[Any]) -> None:
        self.arrays = {
            "rule_id": pa.array([r.id for r in rules], pa.string()),
            "rule_title": pa.array([r.title for r in rules], pa.string()),
            "level": pa.array([r.level for r in rules], pa.string()),
            "tags": pa.array([list(r.tags or ()) for r in rules], pa.list_(pa.string())),
        }

    def take(self, rule_index: pa.Array, names: Sequence[str] = RULE_COLUMNS) -> list[pa.Array]:
        return [self.arrays[name].take(rule_index) for name in names]


class EventColumns:
    """Which event columns hits carry: ``requested`` ones (``*`` for every column of the
    data), or by default (``None``) those of the rule that matched."""

    def __init__(self, matcher: Any, requested: Sequence[str] | None) -> None:
        self.per_rule = requested is None
        self.everything = requested is not None and "*" in requested
        if requested is None:
            self.names = list(matcher.fields)
            # Per column, whether each rule (by index) references it.
            self.used = {
                name: pa.array([name in r.fields for r in matcher.rules], pa.bool_())
                for name in self.names
            }
        else:
            self.names = [c for c in dict.fromkeys(requested) if c != "*"]
            self.used = {}
        self.metadata = {EVENT_COLUMNS_KEY: b"rule" if self.per_rule else b"requested"}

    def of(self, schema: pa.Schema) -> list[str]:
        """The columns hits from data of ``schema`` carry, when no schema is decided first."""
        if self.per_rule:
            return [name for name in self.names if resolve(schema, name) is not None]
        if self.everything:
            return list(dict.fromkeys([*self.names, *schema.names]))
        return self.names


def output_name(column: str) -> str:
    """An event column named like a hit column is written as ``event.<name>``."""
    return f"event.{column}" if column in HIT_COLUMNS else column


def event_fields(
    events: EventColumns, schemas: Sequence[pa.Schema | None]
) -> list[tuple[str, pa.Field]]:
    """The event columns of every hit as (column, field of the hit schema), decided before
    the first hit from the inputs' schemas (``None`` for an input whose columns are known
    only once read: JSON Lines, EVTX).

    A column's type is the common type of its types in the inputs (dictionaries decoded,
    string flavours as ``string``; ``string`` when they have none in common, e.g. a number
    in one file and text in another). An input without a schema may hold any column with
    any values: with one among the inputs, every event column is ``string``, and by default
    every referenced field is a column; without, a referenced field that no input has is
    left out (a large rule set references hundreds).
    """
    known = list(dict.fromkeys(s for s in schemas if s is not None))
    schemaless = None in schemas
    names = events.names
    if events.everything:
        if schemaless:
            raise UsageError(
                "columns '*' needs the columns of every input before the scan, and JSON "
                "Lines and EVTX files have none to read: name the columns, or write .jsonl"
            )
        names = [*names, *(n for s in known for n in s.names)]
    fields: dict[str, tuple[str, pa.Field]] = {}
    for name in names:
        if output_name(name) in fields:
            continue
        types = []
        for schema in known:
            ref = resolve(schema, name)
            if ref is not None and ref.type != pa.null():
                types.append(plain_type(ref.type))
        if schemaless:
            types.append(pa.string())
        if types or not events.per_rule:
            fields[output_name(name)] = (name, pa.field(output_name(name), _common_type(types)))
    return list(fields.values())


def _common_type(types: list[pa.DataType]) -> pa.DataType:
    types = list(dict.fromkeys(types))
    if not types:
        return pa.string()
    if len(types) == 1:
        return types[0]
    try:
        schema = pa.unify_schemas(
            [pa.schema([pa.field("x", t)]) for t in types], promote_options="permissive"
        )
        return schema.field("x").type
    except (pa.ArrowException, TypeError):
        return pa.string()


# (output name, where the values are in the batch or None, the type to write or None for
# the batch's own, which rules reference the column or None for all)
_Column = tuple[str, ColumnRef | None, pa.DataType | None, pa.Array | None]


class HitBuilder:
    """Turns the engine's (row, rule index) pairs into batches of hits.

    With ``inputs`` (the schemas of the inputs, see :func:`event_fields`) every batch has
    the one ``schema`` decided from them; without, the event columns of each batch are
    those its data has (``schema`` then holds the hit columns only).
    """

    def __init__(
        self,
        rules: Sequence[Any],
        events: EventColumns,
        inputs: Sequence[pa.Schema | None] | None = None,
    ) -> None:
        self.rules = RuleColumns(rules)
        self.events = events
        self.fixed = None if inputs is None else event_fields(events, inputs)
        fields = [*HIT_SCHEMA, *(f for _, f in self.fixed or ())]
        self.schema = pa.schema(fields, metadata=events.metadata)
        self._plans: SchemaMemo[list[_Column]] = SchemaMemo()

    def _plan(self, schema: pa.Schema) -> list[_Column]:
        """The event columns of hits from data of ``schema``: once per schema."""
        if self.fixed is None:
            columns = [(name, output_name(name), None) for name in self.events.of(schema)]
        else:
            columns = [(name, f.name, f.type) for name, f in self.fixed]
        return [
            (out, resolve(schema, name), target, self.events.used.get(name))
            for name, out, target in columns
        ]

    def build(
        self, f: InputFile, batch: pa.RecordBatch, offset: int, rows: pa.Array, rule_index: pa.Array
    ) -> pa.RecordBatch:
        n = len(rows)
        names = list(HIT_COLUMNS)
        arrays: list[pa.Array] = [
            pa.repeat(pa.scalar(f.display, pa.string()), n),
            pc.add(rows.cast(pa.int64()), offset),
            *self.rules.take(rule_index),
        ]
        plan = self._plans.get(batch.schema, lambda: self._plan(batch.schema))
        for name, ref, target, used in plan:
            if ref is None:
                values = pa.nulls(n, target or pa.null())
            else:
                values = plain(ref.array(batch).take(rows))
                if target is not None and values.type != target:
                    values = _cast(values, target, name)
                if used is not None:
                    values = pc.if_else(used.take(rule_index), values, pa.nulls(n, values.type))
            names.append(name)
            arrays.append(values)
        if self.fixed is not None:
            return pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _cast(values: pa.Array, target: pa.DataType, column: str) -> pa.Array:
    try:
        return values.cast(target)
    except (pa.ArrowException, TypeError):
        if target == pa.string():  # e.g. a struct where other inputs have text: as JSON
            return pa.array([json_text(v) for v in values.to_pylist()], type=pa.string())
        raise DataError(f"column {column}: cannot write {values.type} values as {target}") from None


def plain_type(t: pa.DataType) -> pa.DataType:
    """The type hits store values of type ``t`` as: dictionaries decoded, string and binary
    flavours as plain ``string`` and ``binary``."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


def plain(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``array`` with the values of :func:`plain_type`."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    target = plain_type(array.type)
    return array if target == array.type else array.cast(target)
