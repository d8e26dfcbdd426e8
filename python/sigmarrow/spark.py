"""Run a compiled Sigma rule set inside Apache Spark.

``match(df, rules)`` compiles the rules once on the driver, ships the compiled program
(``Matcher.to_bytes()``, never YAML) to the executors inside the task closure, projects the
DataFrame to the columns the rules read, and runs the engine through
``DataFrame.mapInArrow``. Each Python worker process turns the program into a matcher at
most once and keeps it for every later task and batch of that program.

``correlate(df, rules)`` computes the correlation rules' alerts: the base hits they need
come out of ``mapInArrow`` with their time and group and value fields, keyed by group, and
``groupBy(...).applyInArrow`` runs the single-process sort and sweep on each group, so the
alerts are those of ``Matcher.correlate`` on the same rows.

Executors need ``sigmarrow`` installed (the extension cannot travel by ``--py-files``):
see ``docs/spark.md``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import sigmarrow
from sigmarrow.columns import bind, resolve
from sigmarrow.errors import UsageError
from sigmarrow.scan.hits import RULE_COLUMNS, RuleColumns
from sigmarrow.times import DEFAULT_TIME_FIELDS, event_times, first_present

try:
    from pyspark.sql import functions as F
    from pyspark.sql.types import (
        ArrayType,
        CharType,
        DataType,
        DoubleType,
        IntegerType,
        LongType,
        MapType,
        StringType,
        StructField,
        StructType,
        TimestampType,
        VarcharType,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("sigmarrow.spark needs PySpark: pip install 'sigmarrow[spark]'") from exc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["ALERT_SCHEMA", "OUTPUT_COLUMNS", "correlate", "match"]

#: The columns every output row carries after the requested input columns: the rule
#: columns of a scan's hits (sigmarrow.scan.hits) but tags, so that all are strings.
OUTPUT_COLUMNS = tuple(c for c in RULE_COLUMNS if c != "tags")

# Added only when the rules need no column the data has: Spark hands a zero-column batch
# as zero rows, so a rule that is true on absent fields (`not filter`) would see nothing.
_ROW_COLUMN = "__sigmarrow_row__"

# Per worker process: program digest -> (matcher, its rule columns). Spark reuses Python
# workers across tasks (spark.python.worker.reuse, on by default), so a program is loaded
# once per worker, not once per task or batch.
_CACHE: dict[str, tuple[Any, RuleColumns]] = {}
_CACHE_SIZE = 8
_LOADS: Counter[str] = Counter()  # loads per digest in this process; read by the tests


def match(
    df: DataFrame,
    rules: Any,
    *,
    pipeline: Any = None,
    columns: Sequence[str] | None = None,
) -> DataFrame:
    """Return one row per (event, rule) hit of ``rules`` over ``df``.

    ``rules`` is anything ``sigmarrow.compile`` accepts (with ``pipeline``), or a compiled
    ``sigmarrow.Matcher``. The result has the input columns named in ``columns`` (all input
    columns when ``None``; name the few you need, e.g. an event id, to keep the data sent
    to Python small), then ``rule_id``, ``rule_title`` and ``level`` (strings).

    The hits are exactly those of ``matcher.match`` on the same rows: fields the data lacks
    are absent, and keyword rules search every string column of ``df``.
    """
    matcher = _as_matcher(rules, pipeline)
    names = _unique(df.columns)
    out_columns = list(names if columns is None else columns)
    _check_columns(out_columns, names)

    spark_types = {f.name: f for f in df.schema.fields}
    shape = _arrow_shape(df.schema)
    keyword_columns = None
    if matcher.has_keywords:
        # Name them: the projection below must not change which columns keywords search.
        keyword_columns = matcher.keyword_columns(shape)
    needed = bind(shape, matcher.fields).columns
    wanted = {*needed, *out_columns, *(keyword_columns or ())}
    projection = [F.col(_quote(n)) for n in names if n in wanted]
    if not projection:
        projection = [F.lit(True).alias(_ROW_COLUMN)]

    program = matcher.to_bytes()
    digest = hashlib.sha256(program).hexdigest()
    schema = StructType(
        [spark_types[n] for n in out_columns]
        + [StructField(name, StringType(), True) for name in OUTPUT_COLUMNS]
    )
    fn = _MatchBatches(digest, program, out_columns, keyword_columns)
    return df.select(*projection).mapInArrow(fn, schema)


class _MatchBatches:
    """The executor side: a module-level class, so cloudpickle ships it by reference and
    every task of a worker shares this module's cache."""

    def __init__(
        self,
        digest: str,
        program: bytes,
        columns: list[str],
        keyword_columns: list[str] | None,
    ) -> None:
        self.digest = digest
        self.program = program
        self.columns = columns
        self.keyword_columns = keyword_columns

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        matcher, rule_columns = _load(self.digest, self.program)
        names = [*self.columns, *OUTPUT_COLUMNS]
        for batch in batches:
            # Spark already runs one task per core: one engine thread per task.
            rows, rule_index = matcher.match_indices(
                batch, threads=1, keyword_columns=self.keyword_columns
            )
            if len(rows) == 0:
                continue
            arrays = [batch.column(name).take(rows) for name in self.columns]
            arrays += rule_columns.take(rule_index, OUTPUT_COLUMNS)
            yield pa.RecordBatch.from_arrays(arrays, names=names)


def _load(digest: str, program: bytes) -> tuple[Any, RuleColumns]:
    entry = _CACHE.get(digest)
    if entry is None:
        matcher = sigmarrow.Matcher.from_bytes(program)
        entry = (matcher, RuleColumns(matcher.rules))
        if len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[digest] = entry
        _LOADS[digest] += 1
    return entry


def _as_matcher(rules: Any, pipeline: Any) -> Any:
    if isinstance(rules, sigmarrow.Matcher):
        if pipeline is not None:
            raise ValueError("pipeline= applies when compiling; this Matcher is compiled")
        return rules
    return sigmarrow.compile(rules, pipeline=pipeline)


def _check_columns(columns: Sequence[str], names: Sequence[str]) -> None:
    present = set(names)
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"columns not in the DataFrame: {missing}")
    clash = sorted(set(columns) & set(OUTPUT_COLUMNS))
    if clash:
        raise ValueError(f"columns clash with the output columns {list(OUTPUT_COLUMNS)}: {clash}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"columns named twice: {list(columns)}")


def _unique(names: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for n in names:
        if n in seen:
            raise ValueError(f"the DataFrame has two columns named {n!r}")
        seen.add(n)
        out.append(n)
    return out


def _arrow_shape(schema: StructType) -> pa.Schema:
    """What field resolution looks at in a Spark schema, in Arrow types: names, struct
    children and which columns hold text (any other type is null here)."""

    def shape(t: DataType) -> pa.DataType:
        if isinstance(t, StringType | CharType | VarcharType):
            return pa.string()
        if isinstance(t, StructType):
            return pa.struct([pa.field(f.name, shape(f.dataType)) for f in t.fields])
        return pa.null()

    return pa.schema([pa.field(f.name, shape(f.dataType)) for f in schema.fields])


def _quote(name: str) -> str:
    # Backticks make Spark take dots and other characters in a name literally.
    return "`" + name.replace("`", "``") + "`"


# --------------------------------------------------------------------------- correlations

#: The alerts of `correlate`: `sigmarrow.correlation.ALERTS_SCHEMA` in Spark types (window
#: bounds are Spark timestamps: microseconds), evidence as values of the id column.
ALERT_SCHEMA = StructType(
    [StructField(n, StringType(), True) for n in ("correlation_id", "title", "level", "type")]
    + [
        StructField("group", MapType(StringType(), StringType()), True),
        StructField("window_start", TimestampType(), True),
        StructField("window_end", TimestampType(), True),
        StructField("metric", DoubleType(), True),
        StructField("anchors", LongType(), True),
        StructField("evidence", ArrayType(LongType()), True),
        StructField("evidence_count", LongType(), True),
    ]
)
_ID_COLUMN = "__sigmarrow_id__"
_TIME_COLUMN = "__sigmarrow_time__"
# The base hits between the two stages: one row per (event, group of a set of correlations).
_HIT_COLUMNS = ["part", "key", "id", "time", "rules"]


def correlate(
    df: DataFrame,
    rules: Any,
    *,
    pipeline: Any = None,
    time_field: str | None = None,
    mode: str = "merged",
    evidence: int | None = None,
    id_column: str | None = None,
) -> DataFrame:
    """Return the alerts of the correlation rules among ``rules`` over ``df`` (see
    docs/semantics.md, "Correlations"), one row each (:data:`ALERT_SCHEMA`).

    ``time_field``, ``mode`` and ``evidence`` are those of ``Matcher.correlate``. The
    evidence lists values of ``id_column`` (an integer column identifying events, e.g. a
    record id), or without it Spark's ``monotonically_increasing_id`` of each row.

    Base hits come out of ``mapInArrow``; each correlation's are grouped by its group-by
    values (a set of chained correlations, or one without group-by, is one group) and
    ``applyInArrow`` computes the alerts of a group as ``Matcher.correlate`` does.
    """
    from sigmarrow.correlation import MODES, CorrelationState

    matcher = _as_matcher(rules, pipeline)
    correlations = matcher.program.correlations
    if not correlations:
        raise UsageError("the rules hold no correlation rules")
    if mode not in MODES:
        raise UsageError(f"correlation mode {mode!r}: expected one of {', '.join(MODES)}")
    names = _unique(df.columns)
    shape = _arrow_shape(df.schema)
    time = first_present(shape, DEFAULT_TIME_FIELDS, time_field)
    if time is None:
        raise UsageError(
            f"correlations need an event time: the DataFrame has no column {time_field!r}" if time_field
            else f"correlations need an event time: none of {', '.join(DEFAULT_TIME_FIELDS)}; "
            "name one with time_field="
        )
    if id_column is None:
        df, id_column = df.withColumn(_ID_COLUMN, F.monotonically_increasing_id()), _ID_COLUMN
    elif id_column not in names:
        raise ValueError(f"id_column {id_column!r} is not in the DataFrame")
    fields = CorrelationState(correlations).field_names
    keyword_columns = matcher.keyword_columns(shape) if matcher.has_keywords else None
    needed = bind(shape, [*matcher.fields, *fields, time]).columns
    wanted = {*needed, id_column, *(keyword_columns or ())}
    projection = [F.col(_quote(n)) for n in df.columns if n in wanted]
    program = matcher.to_bytes()
    digest = hashlib.sha256(program).hexdigest()
    parts = _parts(correlations)
    hit_schema = StructType(
        [
            StructField("part", IntegerType(), False),
            StructField("key", StringType(), True),
            StructField("id", LongType(), False),
            StructField("time", LongType(), True),
            StructField("rules", ArrayType(IntegerType()), False),
        ]
        + [StructField(f"f{i}", StringType(), True) for i in range(len(fields))]
    )
    hits = df.select(*projection).mapInArrow(
        _CorrelationHits(digest, program, parts, fields, time, id_column, keyword_columns), hit_schema
    )
    group_alerts = _GroupAlerts(digest, program, parts, fields, mode, evidence)

    def alerts_of(table: pa.Table) -> pa.Table:  # typed: Spark picks the Arrow table form
        return group_alerts(table)

    return hits.groupBy("part", "key").applyInArrow(alerts_of, ALERT_SCHEMA)


def _parts(correlations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The correlations in sets computed together: a correlation with the ones it references
    or is referenced by (chaining), each set in program order. A set of one correlation over
    rules alone is keyed by its group-by values (per rule, through `aliases`); other sets
    are one group each."""
    owner = list(range(len(correlations)))

    def root(i: int) -> int:
        while owner[i] != i:
            i = owner[i]
        return i

    for i, corr in enumerate(correlations):
        for inp in corr["inputs"]:
            if "correlation" in inp:
                owner[root(i)] = root(inp["correlation"])
    members: dict[int, list[int]] = {}
    for i in range(len(correlations)):
        members.setdefault(root(i), []).append(i)
    parts = []
    for indices in members.values():
        only = correlations[indices[0]]
        keyed = len(indices) == 1 and only["group_by"] and all("rule" in i for i in only["inputs"])
        parts.append({
            "correlations": indices,
            "rules": sorted({i["rule"] for c in indices for i in correlations[c]["inputs"] if "rule" in i}),
            # rule -> the fields of its group key, or None: one group
            "key": {i["rule"]: [i["fields"].get(g, g) for g in only["group_by"]] for i in only["inputs"]}
            if keyed else None,
        })
    return parts


class _CorrelationHits:
    """The executor side of the first stage: the hits of the rules correlations reference,
    one row per (event, part, group key) with the event's rules, time and field texts."""

    def __init__(self, digest: str, program: bytes, parts: list[dict[str, Any]], fields: list[str],
                 time: str, id_column: str, keyword_columns: list[str] | None) -> None:
        self.digest, self.program, self.parts = digest, program, parts
        self.fields, self.time, self.id_column = fields, time, id_column
        self.keyword_columns = keyword_columns

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from sigmarrow.correlation.values import fold

        matcher, _ = _load(self.digest, self.program)
        for batch in batches:
            rows, rule_index = matcher.match_indices(batch, threads=1, keyword_columns=self.keyword_columns)
            rows, rule_index = rows.to_numpy(), rule_index.to_numpy()
            for k, part in enumerate(self.parts):
                chosen = np.isin(rule_index, part["rules"])
                if not chosen.any():
                    continue
                at, rule = rows[chosen], rule_index[chosen]
                if part["key"] is None:
                    key = pa.array([""] * len(at), pa.string())
                else:
                    key = pa.nulls(len(at), pa.string())
                    for r, names in part["key"].items():
                        mine = np.flatnonzero(rule == int(r))
                        texts = [fold(_texts_at(batch, n, at[mine])) for n in names]
                        joined = pc.binary_join_element_wise(*texts, "\x1f")
                        key = pc.replace_with_mask(key, pa.array(np.isin(np.arange(len(at)), mine)), joined)
                grouped = pa.table({"row": at, "key": key, "rule": rule.astype(np.int32)}).group_by(
                    ["row", "key"], use_threads=False).aggregate([("rule", "list")])
                grouped = grouped.filter(pc.is_valid(grouped.column("key")))
                at = grouped.column("row").to_numpy()
                take = pa.array(at)
                ns, usable = event_times(resolve(batch.schema, self.time).array(batch).take(take))  # type: ignore[union-attr]
                columns = [
                    pa.array(np.full(len(at), k, np.int32)),
                    grouped.column("key").combine_chunks(),
                    batch.column(self.id_column).take(take).cast(pa.int64()),
                    pa.array(ns, pa.int64(), mask=~usable),
                    grouped.column("rule_list").combine_chunks(),
                    *[_texts_at(batch, f, at) for f in self.fields],
                ]
                names = [*_HIT_COLUMNS, *[f"f{i}" for i in range(len(self.fields))]]
                yield pa.RecordBatch.from_arrays(columns, names=names)


def _texts_at(batch: pa.RecordBatch, name: str, at: np.ndarray) -> pa.StringArray:
    """The text of field `name` at rows `at` (null where the batch lacks it)."""
    from sigmarrow.correlation.values import texts

    ref = resolve(batch.schema, name)
    return texts(None if ref is None else ref.array(batch).take(at), len(at)).cast(pa.string())


class _GroupAlerts:
    """The executor side of the second stage: one group's base hits, correlated as
    `Matcher.correlate` does (in time, then id, order: ties break as a single process's)."""

    def __init__(self, digest: str, program: bytes, parts: list[dict[str, Any]], fields: list[str],
                 mode: str, evidence: int | None) -> None:
        self.digest, self.program, self.parts, self.fields = digest, program, parts, fields
        self.mode, self.evidence = mode, evidence

    def __call__(self, table: pa.Table) -> pa.Table:
        from sigmarrow.correlation import CorrelationState

        matcher, _ = _load(self.digest, self.program)
        table = table.take(pc.sort_indices(table, [("time", "ascending"), ("id", "ascending")]))
        part = self.parts[table.column("part")[0].as_py()]
        local = {g: i for i, g in enumerate(part["correlations"])}
        subset: list[Any] = []
        for g in part["correlations"]:
            corr = matcher.program.correlations[g]
            inputs = [{**i, "correlation": local[i["correlation"]]} if "correlation" in i else i
                      for i in corr["inputs"]]
            subset.append({**corr, "inputs": inputs})
        data = pa.table(
            {_TIME_COLUMN: table.column("time").cast(pa.timestamp("ns", "UTC"))}
            | {name: table.column(f"f{i}") for i, name in enumerate(self.fields)}
        )
        lists = table.column("rules").combine_chunks()
        lengths = pc.list_value_length(lists).to_numpy()
        rows = np.repeat(np.arange(len(lengths)), lengths)
        rules = lists.flatten().to_numpy()
        order = np.lexsort((rules, rows))
        with CorrelationState(subset, _TIME_COLUMN) as state:  # its spill, if any, goes at once
            state.add(data, rows[order], rules[order])
            alerts = state.alerts(self.mode, self.evidence)
        ids = table.column("id").combine_chunks()
        listed = alerts.column("evidence").combine_chunks()
        evidence = pa.ListArray.from_arrays(listed.offsets, ids.take(listed.flatten()))
        out = alerts.set_column(alerts.schema.get_field_index("evidence"), "evidence", evidence)
        spark_times = pa.schema(
            [pa.field(f.name, pa.timestamp("us", "UTC")) if f.name.startswith("window_") else f for f in out.schema]
        )
        return out.cast(spark_times, safe=False)
