"""Hits: the one hit schema, and the rows the scan writes for the engine's (row, rule) pairs.

A hit row names its event (``source_file``, ``source_row``), its rule (``rule_id``,
``rule_title``, ``level``, ``tags``: SigmaHQ rules are under the DRL 1.1, which asks for
attribution) and carries event columns: by default those the matching rule references,
else the requested ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.columns import resolve
from sigmarrow.scan.inputs import InputFile

__all__ = ["HIT_COLUMNS", "HIT_SCHEMA", "RULE_COLUMNS", "HitBuilder", "RuleColumns"]

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


class HitBuilder:
    """Turns the engine's (row, rule index) pairs into output rows."""

    def __init__(self, matcher: Any, columns: Sequence[str] | None):
        self.rules = list(matcher.rules)
        self.rule_columns_arrays = RuleColumns(self.rules)
        all_fields = list(matcher.fields)
        self.per_rule = columns is None
        if columns is None:
            # Default: the columns of the rule that matched (others are null for that hit).
            self.columns = all_fields
            rule_fields = [set(getattr(r, "fields", all_fields)) for r in self.rules]
            self.used = {
                c: pa.array([c in fields for fields in rule_fields], pa.bool_())
                for c in self.columns
            }
            self.rule_columns = [[c for c in self.columns if c in fields] for fields in rule_fields]
        else:
            self.columns = list(dict.fromkeys(columns))
            self.used = {}
            self.rule_columns = [self.columns] * len(self.rules)
        # An event column named like a hit column is written as "event.<name>".
        self.out_names = {c: (f"event.{c}" if c in HIT_COLUMNS else c) for c in self.columns}
        self.seen_types: dict[str, pa.DataType] = {}

    def expand_all(self, batch: pa.RecordBatch) -> None:
        """With ``--columns '*'``: the columns are those of the data."""
        for name in batch.schema.names:
            if name not in self.out_names:
                self.columns.append(name)
                self.out_names[name] = f"event.{name}" if name in HIT_COLUMNS else name
        self.rule_columns = [self.columns] * len(self.rules)

    def build(
        self, f: InputFile, batch: pa.RecordBatch, offset: int, rows: pa.Array, rule_index: pa.Array
    ) -> pa.RecordBatch:
        n = len(rows)
        arrays: list[pa.Array] = [
            pa.repeat(pa.scalar(f.display, pa.string()), n),
            pc.add(rows.cast(pa.int64()), offset),
            *self.rule_columns_arrays.take(rule_index),
        ]
        names = list(HIT_COLUMNS)
        for c in self.columns:
            ref = resolve(batch.schema, c)
            column = None if ref is None else ref.array(batch)
            if column is None:
                values = pa.nulls(n)
            else:
                values = plain(column.take(rows))
                if values.type != pa.null():
                    self.seen_types.setdefault(c, values.type)
                if self.per_rule:
                    values = pc.if_else(
                        self.used[c].take(rule_index), values, pa.nulls(n, values.type)
                    )
            arrays.append(values)
            names.append(self.out_names[c])
        arrays.append(rule_index.cast(pa.uint32()))
        names.append("__rule_index")
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def note_types(self, batch: pa.RecordBatch) -> None:
        for c in self.columns:
            if c not in self.seen_types:
                ref = resolve(batch.schema, c)
                column = None if ref is None else ref.array(batch)
                if column is not None and column.type != pa.null():
                    self.seen_types[c] = plain_type(column.type)


def plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


def plain(array: pa.Array) -> pa.Array:
    """Output values: dictionaries decoded, string flavours as plain strings."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    target = plain_type(array.type)
    return array if target == array.type else array.cast(target)
