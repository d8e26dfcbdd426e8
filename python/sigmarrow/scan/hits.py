"""Hits: the one hit schema, and the rows the scan writes for the engine's (row, rule) pairs.

A hit row starts with its place on a timeline (``timestamp``, ``host``, ``channel``,
``event_id``: taken from the event's own columns, see :class:`Timeline`), names its event
(``source_file``, ``source_row``) and its rule (``rule_id``, ``rule_title``, ``level``,
``tags``: SigmaHQ rules are under the DRL 1.1, which asks for attribution) and carries event
columns: by default those the matching rule references (null for the columns of other
rules), else the requested ones (``*``: every column).

Formats that store a schema (Parquet, Arrow IPC) get it before the first hit, decided from
the schemas of the inputs (:func:`event_fields`); JSON Lines takes each hit's values as
they come. The schema's metadata says which kind of event columns it has
(:data:`EVENT_COLUMNS_KEY`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.columns import ColumnRef, SchemaMemo, resolve
from sigmarrow.errors import DataError, UsageError
from sigmarrow.scan.inputs import InputFile
from sigmarrow.scan.readers import json_text
from sigmarrow.times import DEFAULT_HOST_FIELDS, DEFAULT_TIME_FIELDS, event_times, first_present

__all__ = [
    "EVENT_COLUMNS_KEY",
    "HIT_COLUMNS",
    "HIT_SCHEMA",
    "RULE_COLUMNS",
    "TIMELINE_COLUMNS",
    "EventColumns",
    "HitBuilder",
    "RuleColumns",
    "Timeline",
    "event_fields",
]

#: When and where the event happened, from its own columns (see :class:`Timeline`): the
#: event time in UTC, the host, and the Windows channel and event id. Null where the data
#: has no such column, or a value is not one (a time that does not parse, an event id that
#: is not a whole number).
TIMELINE_FIELDS = (
    pa.field("timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("host", pa.string()),
    pa.field("channel", pa.string()),
    pa.field("event_id", pa.int64()),
)

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
HIT_SCHEMA = pa.schema([*TIMELINE_FIELDS, *SOURCE_FIELDS, *RULE_FIELDS])
HIT_COLUMNS = tuple(HIT_SCHEMA.names)
RULE_COLUMNS = tuple(f.name for f in RULE_FIELDS)
TIMELINE_COLUMNS = tuple(f.name for f in TIMELINE_FIELDS)
#: The event columns tried for the channel and the event id (Windows, ECS).
DEFAULT_CHANNEL_FIELDS = ("Channel", "winlog.channel")
DEFAULT_EVENT_ID_FIELDS = ("EventID", "winlog.event_id")
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


class Timeline:
    """Which event columns the timeline columns of hits come from: for each, the names tried
    in order, the first one the data has giving the values (per file: files may differ).

    The names the rules' pipeline's field mappings give the usual fields come first
    (``mapped``, as ``Matcher.program.mapped_fields`` records them: ``sentinel_asim`` maps
    ``Computer`` to ``DvcHostname``, ``ecs_windows`` maps ``Channel`` to ``winlog.channel``), then the usual names themselves: ``sigmarrow.times``'
    ``DEFAULT_TIME_FIELDS`` and ``DEFAULT_HOST_FIELDS``, :data:`DEFAULT_CHANNEL_FIELDS`,
    :data:`DEFAULT_EVENT_ID_FIELDS`. ``time_field`` alone names the time column.
    """

    def __init__(self, time_field: str | None = None, mapped: Mapping[str, Sequence[str]] | None = None) -> None:
        mapped = mapped or {}

        def tried(defaults: Sequence[str]) -> tuple[str, ...]:
            first = [m for d in defaults for m in mapped.get(d, ())]
            return tuple(dict.fromkeys([*first, *defaults]))

        self.sources = {
            "timestamp": (time_field,) if time_field else tried(DEFAULT_TIME_FIELDS),
            "host": tried(DEFAULT_HOST_FIELDS),
            "channel": tried(DEFAULT_CHANNEL_FIELDS),
            "event_id": tried(DEFAULT_EVENT_ID_FIELDS),
        }

    @property
    def names(self) -> list[str]:
        """Every event column tried: what the readers read beside the rules' fields."""
        return list(dict.fromkeys(n for names in self.sources.values() for n in names))

    def columns(self, schema: pa.Schema) -> dict[str, str | None]:
        """The event column each timeline column comes from in data of ``schema``."""
        return {hit: first_present(schema, names) for hit, names in self.sources.items()}

    @staticmethod
    def values(column: str, values: pa.Array) -> pa.Array:
        """The timeline column ``column`` of these event values."""
        if column == "timestamp":
            nanos, usable = event_times(values)
            return pa.array(nanos // 1000, pa.int64(), mask=~usable).cast(TIMELINE_FIELDS[0].type)
        if column == "event_id":
            return _whole_numbers(values)
        return values if values.type == pa.string() else _cast(values, pa.string(), column)


def _whole_numbers(values: pa.Array) -> pa.Array:
    """int64 of integers, and of text that is a whole number; null for anything else."""
    if pa.types.is_integer(values.type):
        return values.cast(pa.int64())
    if values.type != pa.string():
        return pa.nulls(len(values), pa.int64())
    text = pc.utf8_trim_whitespace(values)
    number = pc.match_substring_regex(text, r"^[+-]?[0-9]{1,18}$")
    return pc.if_else(number, text, pa.scalar(None, pa.string())).cast(pa.int64())


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


class _Plan:
    """How hits are made from data of one schema: where each timeline and event column's
    values are."""

    def __init__(self, timeline: dict[str, str | None], schema: pa.Schema, columns: list[_Column]):
        self.timeline = timeline  #: the event column each timeline column comes from
        self.timeline_refs = [
            (hit, None if name is None else resolve(schema, name)) for hit, name in timeline.items()
        ]
        self.columns = columns


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
        timeline: Timeline | None = None,
    ) -> None:
        self.rules = RuleColumns(rules)
        self.events = events
        self.timeline = timeline or Timeline()
        self.fixed = None if inputs is None else event_fields(events, inputs)
        fields = [*HIT_SCHEMA, *(f for _, f in self.fixed or ())]
        self.schema = pa.schema(fields, metadata=events.metadata)
        self._plans: SchemaMemo[_Plan] = SchemaMemo()

    def _plan(self, schema: pa.Schema) -> _Plan:
        """The timeline and event columns of hits from data of ``schema``: once per schema."""
        if self.fixed is None:
            columns = [(name, output_name(name), None) for name in self.events.of(schema)]
        else:
            columns = [(name, f.name, f.type) for name, f in self.fixed]
        return _Plan(
            self.timeline.columns(schema),
            schema,
            [
                (out, resolve(schema, name), target, self.events.used.get(name))
                for name, out, target in columns
            ],
        )

    def timeline_columns(self, schema: pa.Schema) -> dict[str, str | None]:
        """The event column each timeline column comes from in data of ``schema``."""
        return self._plans.get(schema, lambda: self._plan(schema)).timeline

    def build(
        self, f: InputFile, batch: pa.RecordBatch, offset: int, rows: pa.Array, rule_index: pa.Array
    ) -> pa.RecordBatch:
        n = len(rows)
        names = list(HIT_COLUMNS)
        plan = self._plans.get(batch.schema, lambda: self._plan(batch.schema))
        arrays: list[pa.Array] = [
            pa.nulls(n, field.type) if ref is None else Timeline.values(hit, take(ref, batch, rows))
            for (hit, ref), field in zip(plan.timeline_refs, TIMELINE_FIELDS, strict=True)
        ]
        arrays += [
            pa.repeat(pa.scalar(f.display, pa.string()), n),
            pc.add(rows.cast(pa.int64()), offset),
            *self.rules.take(rule_index),
        ]
        for name, ref, target, used in plan.columns:
            if ref is None:
                values = pa.nulls(n, target or pa.null())
            else:
                # A column of another rule's is null in the hit: taken at a null row, so the
                # event strings are copied once.
                at = rows if used is None else pc.if_else(used.take(rule_index), rows, None)
                values = take(ref, batch, at)
                if target is not None and values.type != target:
                    values = _cast(values, target, name)
            names.append(name)
            arrays.append(values)
        if self.fixed is not None:
            return pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        return pa.RecordBatch.from_arrays(arrays, names=names)


def take(ref: ColumnRef, batch: pa.RecordBatch, rows: pa.Array) -> pa.Array:
    """The plain values (:func:`plain`) of the column ``ref`` at ``rows``."""
    values = ref.array(batch)
    if pa.types.is_string_view(values.type) or pa.types.is_binary_view(values.type):
        return plain(values).take(rows)  # pyarrow has no take for views: cast them first
    return plain(values.take(rows))


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
