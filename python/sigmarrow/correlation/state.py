"""The explicit state of a correlation run: the base hits the correlations need, gathered batch
by batch beside the immutable matcher (regex-automata's `Regex` + `Cache`, STYLE habit 15).

Feed it every batch of the stream in order with that batch's hits (`Matcher.match_indices`),
then ask for the alerts; it can keep taking batches afterwards. Batches may come in any time
order: nothing is computed until `alerts`, which sorts everything gathered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sigmarrow.columns import resolve
from sigmarrow.correlation.sweep import Hits, alerts_table
from sigmarrow.correlation.values import texts
from sigmarrow.errors import DataError, UsageError
from sigmarrow.program import Correlation
from sigmarrow.times import DEFAULT_TIME_FIELDS, event_times, first_present

#: Base hits a state holds before it refuses more (docs/limits.md): about 2.4 GB at the
#: ~40 bytes a hit takes with short group and value texts.
DEFAULT_MAX_HITS = 60_000_000
MODES = ("merged", "every")


def _column(data: pa.RecordBatch | pa.Table, name: str) -> pa.Array | pa.ChunkedArray | None:
    """A field of `data`: a column, or a path into struct columns; None when it has none."""
    ref = resolve(data.schema, name)
    return None if ref is None else ref.array(data)


@dataclass
class _Chunk:
    rows: np.ndarray  # int64: the stream row of each distinct hit row
    time: np.ndarray  # int64 nanoseconds
    timed: np.ndarray  # bool: the time was usable
    fields: dict[str, pa.Array]  # the text of each needed field (dictionaries stay), per hit row
    hit_row: np.ndarray  # int64, per (row, rule) hit: index into `rows`
    hit_rule: np.ndarray  # uint32, per hit: RuleIndex

    @property
    def nbytes(self) -> int:
        arrays = [self.rows, self.time, self.timed, self.hit_row, self.hit_rule]
        return sum(a.nbytes for a in arrays) + sum(f.nbytes for f in self.fields.values())


class CorrelationState:
    """Base hits of the rules the correlations reference, with their time and the text of the
    group-by and value fields the correlations read. Per hit it holds 12 bytes (row index and
    rule), per distinct hit row 17 bytes (stream row, time) plus the text of its fields; over
    `max_hits` hits `add` raises a DataError instead of growing further."""

    def __init__(
        self,
        correlations: Sequence[Correlation],
        time_field: str | None = None,
        max_hits: int = DEFAULT_MAX_HITS,
        time_fields: Sequence[str] = DEFAULT_TIME_FIELDS,
    ) -> None:
        self.correlations = list(correlations)
        self.time_field = time_field
        #: The columns tried for the event time when `time_field` is not given, in order.
        self.time_fields = tuple(time_fields)
        self.max_hits = max_hits
        self._rules = sorted({i["rule"] for c in self.correlations for i in c["inputs"] if "rule" in i})
        #: The group-by and value fields the correlations read (through `aliases`).
        self.field_names = sorted(
            {
                inp["fields"].get(name, name)
                for c in self.correlations
                for inp in c["inputs"]
                if "rule" in inp
                for name in [*c["group_by"], *([c["field"]] if c["field"] else [])]
            }
        )
        self._chunks: list[_Chunk] = []
        #: Rows fed so far: evidence rows are numbered across the whole stream.
        self.rows_seen = 0
        self.hits = 0

    @property
    def fields(self) -> list[str]:
        """The fields the correlations read (group-by and value fields), and the time
        fields it may take: the columns a reader must keep."""
        return [*self.field_names, *([self.time_field] if self.time_field else self.time_fields)]

    @property
    def nbytes(self) -> int:
        """Memory held by the gathered hits."""
        return sum(c.nbytes for c in self._chunks)

    def _time_column(self, data: pa.RecordBatch | pa.Table) -> pa.Array | pa.ChunkedArray:
        name = first_present(data.schema, self.time_fields, self.time_field)
        if name is not None:
            return _column(data, name)
        if self.time_field:
            raise DataError(f"correlations: the time field {self.time_field!r} is not in the data")
        raise DataError(
            "correlations need an event time: the data has none of the columns "
            f"{', '.join(self.time_fields)}; name one with time_field= (--time-field)"
        )

    def add(self, data: Any, rows: Any, rules: Any, first_row: int | None = None) -> None:
        """Gathers the hits of one batch (or table): `rows` (row within `data`) and `rules`
        (RuleIndex), ordered by row then rule as `Matcher.match_indices` returns them.
        Evidence names row r of `data` as `first_row + r`; by default rows are numbered
        across everything added (`rows_seen`)."""
        rows = np.asarray(rows, np.int64)
        rules = np.asarray(rules, np.uint32)
        wanted = np.isin(rules, self._rules) if self._rules else np.zeros(len(rules), bool)
        rows, rules = rows[wanted], rules[wanted]
        offset = self.rows_seen if first_row is None else first_row
        self.rows_seen += data.num_rows
        if not len(rows):
            return
        if self.hits + len(rows) > self.max_hits:
            raise DataError(
                f"correlations: more than {self.max_hits:,} base hits to hold "
                f"({self.nbytes / 1e6:,.0f} MB so far); raise max_hits, or correlate a "
                "smaller time range at a time (docs/limits.md)"
            )
        starts = np.r_[True, rows[1:] != rows[:-1]]
        distinct = rows[starts]
        take = pa.array(distinct)
        time, timed = event_times(self._time_column(data).take(take))
        fields = {}
        for name in self.field_names:
            found = _column(data, name)
            fields[name] = texts(None if found is None else found.take(take), len(distinct))
        self._chunks.append(
            _Chunk(distinct + offset, time, timed, fields, np.cumsum(starts) - 1, rules)
        )
        self.hits += len(rows)

    def gathered(self) -> Hits:
        """Every chunk gathered so far, as one set of arrays."""
        chunks = self._chunks
        base = np.cumsum([0] + [len(c.rows) for c in chunks])[:-1]

        def cat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype)

        return Hits.of(
            rows=cat([c.rows for c in chunks], np.int64),
            time=cat([c.time for c in chunks], np.int64),
            timed=cat([c.timed for c in chunks], bool),
            hit_row=cat([c.hit_row + b for c, b in zip(chunks, base)], np.int64),
            hit_rule=cat([c.hit_rule for c in chunks], np.uint32),
            fields={name: [c.fields[name] for c in chunks] for name in self.field_names},
        )

    def alerts(self, mode: str = "merged", evidence: int | None = None) -> pa.Table:
        """The alerts of every reported correlation over everything gathered so far (see
        docs/semantics.md, "Correlations"): `mode` "merged" (one alert per run of overlapping
        qualifying windows) or "every" (one per qualifying anchor); `evidence` None for all
        contributing rows, or at most that many (the earliest) plus their count."""
        if mode not in MODES:
            raise UsageError(f"correlation mode {mode!r}: expected one of {', '.join(MODES)}")
        if evidence is not None and (isinstance(evidence, bool) or not isinstance(evidence, int) or evidence < 0):
            raise UsageError(f"evidence={evidence!r}: expected None (all) or a count >= 0")
        return alerts_table(self.correlations, self.gathered(), mode, evidence)
