"""Run a compiled Sigma rule set inside Apache Spark.

``match(df, rules)`` compiles the rules once on the driver, ships the compiled program
(``Matcher.to_bytes()``, never YAML) to the executors inside the task closure, projects the
DataFrame to the columns the rules read, and runs the engine through
``DataFrame.mapInArrow``. Each Python worker process turns the program into a matcher at
most once and keeps it for every later task and batch of that program.

Executors need ``sigmarrow`` installed (the extension cannot travel by ``--py-files``):
see ``docs/spark.md``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

import sigmarrow
from sigmarrow.columns import bind
from sigmarrow.scan.hits import RULE_COLUMNS, RuleColumns

try:
    from pyspark.sql import functions as F
    from pyspark.sql.types import (
        CharType,
        DataType,
        StringType,
        StructField,
        StructType,
        VarcharType,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("sigmarrow.spark needs PySpark: pip install 'sigmarrow[spark]'") from exc

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["OUTPUT_COLUMNS", "match"]

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
