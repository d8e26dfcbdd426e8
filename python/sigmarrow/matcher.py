"""The compiled matcher: a program plus the Rust engine built from it."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow import _engine
from sigmarrow.columns import Binding, ColumnRef, SchemaMemo, bind, is_string, resolve
from sigmarrow.correlation import (
    DEFAULT_MAX_MEMORY,
    CorrelationInfo,
    CorrelationState,
    FilterInfo,
    quiet_rules,
)
from sigmarrow.errors import DataError, ProgramError, RuleError
from sigmarrow.program import Atom, Correlation, CorrelationInput, ErrorRecord, Program
from sigmarrow.times import DEFAULT_TIME_FIELDS

#: The version of sigmarrow: the Cargo workspace's, which the extension carries.
__version__: str = _engine.__version__

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
    they used), which join its errors with the engine's reasons; correlations are renumbered
    to the rules kept, and those that read a rejected rule join the errors too."""
    kept_rules = [i for i in range(len(program.rules)) if i not in reasons]
    kept = program.subprogram([program.rules[i] for i in kept_rules])
    rejected: list[ErrorRecord] = [
        {"source": r["source"], "rule_id": r["id"], "title": r["title"], "reason": reasons[i]}
        for i, r in enumerate(program.rules)
        if i in reasons
    ]
    correlations, failed = _relinked(program.correlations, {old: new for new, old in enumerate(kept_rules)})
    kept.data["errors"] = [*program.errors, *rejected, *failed]
    for key in ("skipped", "filters", "mapped_fields"):
        if key in program.data:
            kept.data[key] = program.data[key]
    if correlations:
        kept.data["correlations"] = correlations
    return kept


def _relinked(
    correlations: Sequence[Correlation], rule_index: dict[int, int]
) -> tuple[list[Correlation], list[ErrorRecord]]:
    """Correlations whose inputs point at the new index of each rule kept (`rule_index`, old
    to new); one reading a removed rule or a failed correlation fails, as an error record."""
    kept: list[Correlation] = []
    failed: list[ErrorRecord] = []
    corr_index: dict[int, int] = {}

    def kept_input(inp: CorrelationInput) -> bool:
        return inp["rule"] in rule_index if "rule" in inp else inp["correlation"] in corr_index

    for i, corr in enumerate(correlations):  # children come before their parents
        lost = [
            f"rule {inp['reference']}, which the engine rejected" if "rule" in inp
            else f"correlation {inp['reference']}, which failed"
            for inp in corr["inputs"]
            if not kept_input(inp)
        ]
        if lost:
            failed.append({"source": corr["source"], "rule_id": corr["id"], "title": corr["title"],
                           "reason": f"references {lost[0]}"})
            continue
        corr_index[i] = len(kept)
        inputs = [
            {**inp, "rule": rule_index[inp["rule"]]} if "rule" in inp
            else {**inp, "correlation": corr_index[inp["correlation"]]}
            for inp in corr["inputs"]
        ]
        kept.append(cast(Correlation, {**corr, "inputs": inputs}))
    return kept, failed


def json_lines(batch: pa.RecordBatch, skip_nulls_except: list[str] | None = None) -> pa.Array:
    """The JSON Lines of ``batch`` as the engine encodes them (for the scan's output; see
    `sigmarrow._engine.json_lines`)."""
    return _engine.json_lines(batch, skip_nulls_except)


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
                id=r["id"],
                title=r["title"],
                level=r["level"],
                status=r["status"],
                tags=r["tags"],
                logsource=r["logsource"],
                source=r["source"],
                author=r["author"],
                description=r["description"],
                fields=[names[f] for f in r["fields"]],
            )
            for i, r in enumerate(program.rules)
        ]
        self.errors = [RuleError(**e) for e in program.data["errors"]]
        #: Rules left out because they do not apply to the declared log sources, and why.
        self.skipped = [RuleError(**e) for e in program.data.get("skipped", [])]
        self._rule_ids = pa.array([r.id for r in self.rules], pa.string())
        #: Correlation rules (children before the correlations that reference them).
        self.correlations = [CorrelationInfo.of(i, c) for i, c in enumerate(program.correlations)]
        #: The Sigma filters applied, the rules each touched, and warnings.
        self.filters = [FilterInfo(**f) for f in program.filters]
        quiet = quiet_rules(program.correlations)
        # Rules only correlations read (no `generate: true`): `match` does not report them.
        self._reported = pa.array([i not in quiet for i in range(len(self.rules))]) if quiet else None

    def __repr__(self) -> str:
        correlations = f", {len(self.correlations)} correlations" if self.correlations else ""
        return f"<sigmarrow.Matcher: {len(self.rules)} rules{correlations}, {len(self.errors)} errors>"

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
    def atom_triggers(atom: Atom) -> list[str] | None:
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
    @functools.cached_property
    def _bindings(self) -> SchemaMemo[tuple[Binding, list[str], list[tuple[str, ColumnRef]]]]:
        return SchemaMemo()

    def _bind(
        self, schema: pa.Schema, keyword_columns: Sequence[str] | None = None
    ) -> tuple[Binding, list[str], list[tuple[str, ColumnRef]]]:
        """What depends on the schema only, once per schema: the program's fields there,
        the keyword columns, and the columns handed to the engine."""

        def make() -> tuple[Binding, list[str], list[tuple[str, ColumnRef]]]:
            fields = bind(schema, self.program.fields)
            if not self.has_keywords:
                keyword = []
            elif keyword_columns is None:
                keyword = [f.name for f in schema if is_string(f.type)]
            else:
                keyword = [c for c in keyword_columns if resolve(schema, c) is not None]
            engine = bind(schema, [*self.program.fields, *keyword]).found.items()
            # A column of type null (all values null, as JSON or an all-null Parquet column
            # can give) is absent in every row: the engine need not see it.
            return fields, keyword, [(n, ref) for n, ref in engine if ref.type != pa.null()]

        key = (schema, None if keyword_columns is None else tuple(keyword_columns))
        return self._bindings.get(key, make)

    def missing_fields(self, data: Any) -> list[str]:
        """Referenced fields that `data` (a schema, or data with one) does not have."""
        schema = data if isinstance(data, pa.Schema) else data.schema
        return sorted(self._bind(schema)[0].missing)

    def keyword_columns(
        self, schema: pa.Schema, keyword_columns: Sequence[str] | None = None
    ) -> list[str]:
        """The columns keyword values search: given ones, or every string column."""
        return list(self._bind(schema, keyword_columns)[1])

    @staticmethod
    def _project(batch: pa.RecordBatch, engine: list[tuple[str, ColumnRef]]) -> pa.RecordBatch:
        """The batch reduced to the columns the engine reads, each named as it expects."""
        if not engine:
            return pa.RecordBatch.from_pydict({"__rows": pa.nulls(batch.num_rows)})
        return pa.RecordBatch.from_arrays(
            [ref.array(batch) for _, ref in engine], names=[name for name, _ in engine]
        )

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
            _, batch_keyword, engine = self._bind(batch.schema, keyword_columns)
            if group and batch_keyword != keyword:
                flush()
            keyword = batch_keyword
            group.append(self._project(batch, engine))
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
        under `sigmarrow.missing_fields`. Rules only correlations read (none of them with
        `generate: true`) are not reported: `correlate` reports their correlations."""
        if isinstance(data, (pa.RecordBatch, pa.Table)):
            missing = self.missing_fields(data)
        else:
            missing = None
            if not isinstance(data, pa.RecordBatchReader) and hasattr(data, "__arrow_c_stream__"):
                data = pa.RecordBatchReader.from_stream(data)
            if isinstance(data, pa.RecordBatchReader):
                missing = self.missing_fields(data.schema)
        rows, rules = self.reported(*self.match_indices(data, threads, keyword_columns))
        metadata = {MISSING_FIELDS_KEY: orjson.dumps(missing)} if missing is not None else None
        return pa.table(
            [rows, self._rule_ids.take(rules)], schema=HITS_SCHEMA.with_metadata(metadata)
        )

    def reported(self, rows: pa.Int64Array, rules: pa.UInt32Array) -> tuple[pa.Int64Array, pa.UInt32Array]:
        """The hits of `match_indices` that `match` (and a scan) reports: not those of rules
        only correlations without `generate: true` read."""
        if self._reported is None:
            return rows, rules
        keep = self._reported.take(rules)
        return rows.filter(keep), rules.filter(keep)

    # --- correlations ---
    def correlation_state(
        self,
        time_field: str | None = None,
        max_memory: int = DEFAULT_MAX_MEMORY,
        time_fields: Sequence[str] = DEFAULT_TIME_FIELDS,
        spill_dir: str | None = None,
    ) -> CorrelationState:
        """An empty state for this matcher's correlations, owned by the caller: feed it each
        batch with its hits (`state.add(batch, *m.match_indices(batch))`), in stream order,
        then call `state.alerts()`, and `state.close()` (or use it as a context manager).
        `time_field`: the event time column (default: the first of `time_fields` present);
        past `max_memory` bytes of hits it spills them under `spill_dir` (docs/limits.md)."""
        return CorrelationState(self.program.correlations, time_field, max_memory, time_fields, spill_dir)

    def correlate(
        self,
        data: Any,
        *,
        time_field: str | None = None,
        mode: str = "merged",
        evidence: int | None = None,
        threads: int | None = None,
        keyword_columns: Sequence[str] | None = None,
        max_memory: int = DEFAULT_MAX_MEMORY,
    ) -> pa.Table:
        """The alerts of the correlation rules over `data` (a table, batch, reader or Arrow
        stream, in any time order), one row each (`sigmarrow.correlation.ALERTS_SCHEMA`);
        `evidence` rows are numbered across the whole stream. `mode`: "merged" (one alert
        per run of overlapping qualifying windows) or "every" (one per qualifying anchor);
        `evidence`: None for every contributing row, or the earliest that many (with
        `evidence_count`). docs/semantics.md ("Correlations") defines them."""
        with self.correlation_state(time_field, max_memory) as state:
            return self._correlate(state, data, threads, keyword_columns, mode, evidence)

    def _correlate(self, state: CorrelationState, data: Any, threads: int | None,
                   keyword_columns: Sequence[str] | None, mode: str, evidence: int | None) -> pa.Table:
        group: list[pa.RecordBatch] = []

        def flush() -> None:
            table = pa.Table.from_batches(group)
            rows, rules = self.match_indices(table, threads, keyword_columns)
            state.add(table, rows, rules)
            group.clear()

        for batch in _batches(data):
            if group and batch.schema != group[0].schema:
                flush()
            group.append(batch)
            if sum(b.num_rows for b in group) >= ROWS_PER_CALL:
                flush()
        if group:
            flush()
        return state.alerts(mode, evidence)
