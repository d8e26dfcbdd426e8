"""The compiled matcher: a program plus the Rust engine built from it."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow import _engine
from sigmarrow.errors import DataError, ProgramError, RuleError
from sigmarrow.program import Program

MISSING_FIELDS_KEY = b"sigmarrow.missing_fields"
# Rows handed to the engine per call when reading a stream: bounds memory, keeps all
# cores busy.
ROWS_PER_CALL = 1 << 20

HITS_SCHEMA = pa.schema([("row", pa.int64()), ("rule_id", pa.string())])


@dataclass(frozen=True)
class RuleInfo:
    """A compiled rule: its metadata (kept for attribution) and the fields it reads."""

    index: int
    id: str
    title: str
    level: str | None
    status: str | None
    tags: list[str]
    logsource: dict[str, str]
    source: str | None
    author: str | None
    description: str | None
    fields: list[str] = field(default_factory=list)


class RulePlan(NamedTuple):
    """How the engine runs one rule, as atom ids (see docs/engine.md)."""

    needs: list[list[int]]  # sets of atoms each of which must hit for the rule to run
    witness: list[int] | None  # the needed set chosen as the rule's witness
    lazy: list[int]  # atoms tested only where every needed set hit


def _without_rules(program: Program, reasons: dict[int, str]) -> Program:
    """The program without the rules the engine rejected (and the atoms and fields only
    they used), which join its errors with the engine's reasons."""
    from sigmarrow.profile import subprogram

    kept = subprogram(program, [r for i, r in enumerate(program.rules) if i not in reasons])
    rejected = [
        RuleError(source=r["source"], rule_id=r["id"], title=r["title"], reason=reasons[i])
        for i, r in enumerate(program.rules)
        if i in reasons
    ]
    kept.data["errors"] = [*program.data["errors"], *(vars(e) for e in rejected)]
    return kept


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _struct_path(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    """The array at a dotted path into struct columns (`process.executable`), or None."""
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        head, rest = ".".join(parts[:split]), parts[split:]
        if head not in batch.schema.names:
            continue
        array = batch.column(head)
        for part in rest:
            if not pa.types.is_struct(array.type) or array.type.get_field_index(part) < 0:
                array = None
                break
            array = pc.struct_field(array, [array.type.get_field_index(part)])
        if array is not None:
            return array
    return None


def _batches(data: Any) -> Iterator[pa.RecordBatch]:
    """Record batches of anything Arrow-shaped, without copying."""
    if isinstance(data, pa.RecordBatch):
        yield data
    elif isinstance(data, pa.Table):
        yield from data.to_batches()
    elif isinstance(data, pa.RecordBatchReader):
        yield from data
    elif hasattr(data, "__arrow_c_stream__"):
        yield from pa.RecordBatchReader.from_stream(data)
    elif hasattr(data, "__arrow_c_array__"):
        yield pa.record_batch(data)
    else:
        raise DataError(
            f"cannot match {type(data).__name__}: expected a pyarrow RecordBatch, Table or "
            "RecordBatchReader, or an object exporting the Arrow PyCapsule interface"
        )


class Matcher:
    """Sigma rules compiled into one program, ready to match Arrow data."""

    def __init__(self, program: Program, *, prefilter: bool = True, memo: bool = True) -> None:
        self._build(program.to_json(), program, prefilter=prefilter, memo=memo)

    def _build(self, text: bytes, program: Program | None, *, prefilter: bool, memo: bool) -> None:
        """Builds the engine from the program's JSON `text`, which it validates before
        Python reads any of it (`program`, when not given, is read from `text` then)."""
        self.options = {"prefilter": prefilter, "memo": memo}
        try:
            self._engine = _engine.Engine(text.decode(), **self.options)
        except UnicodeDecodeError as e:
            raise ProgramError(f"not a compiled program: not UTF-8 ({e})") from None
        if program is None:
            program = Program.from_json(text)
        rejected = dict(self._engine.rule_errors())
        if rejected:  # regexes the engine cannot compile, conditions nested too deep
            program = _without_rules(program, rejected)
            self._engine = _engine.Engine(program.to_json().decode(), **self.options)
        self.program = program
        names = program.fields
        self.rules = [
            RuleInfo(
                index=i,
                fields=[names[f] for f in r["fields"]],
                **{k: r[k] for k in ("id", "title", "level", "status", "tags", "logsource", "source", "author", "description")},
            )
            for i, r in enumerate(program.rules)
        ]
        self.errors = [RuleError(**e) for e in program.data["errors"]]
        self._rule_ids = pa.array([r.id for r in self.rules], pa.string())

    def __repr__(self) -> str:
        return f"<sigmarrow.Matcher: {len(self.rules)} rules, {len(self.errors)} errors>"

    @property
    def fields(self) -> list[str]:
        """Every field (column) a rule references."""
        return sorted(self.program.fields)

    @property
    def has_keywords(self) -> bool:
        """Whether a rule has keyword (fieldless) values, which search string columns."""
        return bool(self.program.data["has_keywords"])

    def with_options(self, *, prefilter: bool = True, memo: bool = True) -> Matcher:
        """The same program on an engine with its shortcuts switched: `prefilter` runs
        globs and regexes only on values holding one of their literals, `memo` remembers
        the atoms of repeated values. Results are the same either way (the tests check)."""
        return Matcher(self.program, prefilter=prefilter, memo=memo)

    # --- the engine's plan ---
    def rule_plan(self, index: int) -> RulePlan:
        """How the engine runs rule number `index` of `rules`."""
        return RulePlan(*self._engine.rule_plan(index))

    @staticmethod
    def atom_triggers(atom: dict[str, Any]) -> list[str] | None:
        """The trigger literals of a glob or regex atom: the engine runs the check only on
        values holding one of them (none: on every value). None for other atoms."""
        return _engine.check_triggers(orjson.dumps(atom).decode())

    # --- serialization: the program travels, never the YAML ---
    def to_bytes(self) -> bytes:
        return self.program.to_json()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Matcher:
        """The matcher of a saved program; `ProgramError` for anything malformed."""
        matcher = cls.__new__(cls)
        matcher._build(data.encode() if isinstance(data, str) else data, None, prefilter=True, memo=True)
        return matcher

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> Matcher:
        return cls.from_bytes(Path(path).read_bytes())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Matcher.from_bytes, (self.to_bytes(),))

    # --- matching ---
    def missing_fields(self, data: Any) -> list[str]:
        """Referenced fields that `data` (a schema, or data with one) does not have."""
        schema = data if isinstance(data, pa.Schema) else data.schema
        empty = pa.RecordBatch.from_pylist([], schema=schema)
        return sorted(f for f in self.program.fields if f not in schema.names and _struct_path(empty, f) is None)

    def keyword_columns(self, schema: pa.Schema, keyword_columns: Sequence[str] | None = None) -> list[str]:
        """The columns keyword values search: given ones, or every string column."""
        if not self.has_keywords:
            return []
        if keyword_columns is not None:
            empty = pa.RecordBatch.from_pylist([], schema=schema)
            return [c for c in keyword_columns if c in schema.names or _struct_path(empty, c) is not None]
        return [f.name for f in schema if _is_string(f.type)]

    def _project(self, batch: pa.RecordBatch, keyword: list[str]) -> pa.RecordBatch:
        """The batch reduced to the program's fields (struct paths resolved) and keyword
        columns, each named as the engine expects."""
        names, arrays = [], []
        for name in dict.fromkeys([*self.program.fields, *keyword]):
            if name in batch.schema.names:
                array = batch.column(name)
            else:
                array = _struct_path(batch, name)
                if array is None:
                    continue
            names.append(name)
            arrays.append(array)
        if not arrays:
            return pa.RecordBatch.from_pydict({"__rows": pa.nulls(batch.num_rows)})
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def match_indices(
        self, data: Any, threads: int | None = None, keyword_columns: Sequence[str] | None = None
    ) -> tuple[pa.Int64Array, pa.UInt32Array]:
        """Hits as (row, rule index) arrays, ordered by row then rule."""
        threads = threads or default_threads()
        rows: list[pa.Array] = []
        rules: list[pa.Array] = []
        group: list[pa.RecordBatch] = []
        keyword: list[str] = []
        offset = 0

        def flush() -> None:
            nonlocal offset
            r, k = self._engine.match_batches(group, keyword, threads)
            rows.append(pc.add(r, offset) if offset else r)
            rules.append(k)
            offset += sum(b.num_rows for b in group)
            group.clear()

        for batch in _batches(data):
            batch_keyword = self.keyword_columns(batch.schema, keyword_columns)
            if group and batch_keyword != keyword:
                flush()
            keyword = batch_keyword
            group.append(self._project(batch, keyword))
            if sum(b.num_rows for b in group) >= ROWS_PER_CALL:
                flush()
        if group:
            flush()
        if not rows:
            return pa.array([], pa.int64()), pa.array([], pa.uint32())
        return pa.concat_arrays(rows), pa.concat_arrays(rules)

    def match(
        self, data: Any, threads: int | None = None, keyword_columns: Sequence[str] | None = None
    ) -> pa.Table:
        """One row per (event, rule) hit: `row` (index into data) and `rule_id`, ordered
        by row then rule. The schema metadata lists the referenced fields the data lacks
        under `sigmarrow.missing_fields`."""
        if isinstance(data, (pa.RecordBatch, pa.Table)):
            missing = self.missing_fields(data)
        else:
            missing = None
            if not isinstance(data, pa.RecordBatchReader) and hasattr(data, "__arrow_c_stream__"):
                data = pa.RecordBatchReader.from_stream(data)
            if isinstance(data, pa.RecordBatchReader):
                missing = self.missing_fields(data.schema)
        rows, rules = self.match_indices(data, threads, keyword_columns)
        metadata = {MISSING_FIELDS_KEY: orjson.dumps(missing)} if missing is not None else None
        return pa.table(
            [rows, self._rule_ids.take(rules)], schema=HITS_SCHEMA.with_metadata(metadata)
        )
