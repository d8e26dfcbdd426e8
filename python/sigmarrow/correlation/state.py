"""The explicit state of a correlation run: the base hits the correlations need, gathered batch
by batch beside the immutable matcher (regex-automata's `Regex` + `Cache`, STYLE habit 15).

Feed it every batch of the stream in order with that batch's hits (`Matcher.match_indices`),
then ask for the alerts; it can keep taking batches afterwards. Batches may come in any time
order: nothing is computed until `alerts`, which sorts everything gathered. Past its memory
bound it spills what it holds to disk (`spill`), and `alerts` then works partition by
partition; `close` (or collecting the state) removes its files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pyarrow as pa

from sigmarrow.columns import resolve
from sigmarrow.correlation.spill import FIELD, HIT_COLUMNS, Spill, alerts_from_disk, run_schema
from sigmarrow.correlation.sweep import Hits, alerts_table
from sigmarrow.correlation.values import texts
from sigmarrow.errors import DataError, UsageError
from sigmarrow.program import Correlation
from sigmarrow.times import DEFAULT_TIME_FIELDS, event_times, first_present

#: Bytes of base hits a state holds in memory before it spills them to disk, and the most
#: it reads back at a time to compute alerts (docs/limits.md): about 27 million hits at the
#: ~40 bytes a hit takes with short group and value texts.
DEFAULT_MAX_MEMORY = 1 << 30
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

    def batch(self) -> pa.RecordBatch:
        """A row per hit, as a run keeps it (`spill.run_schema`)."""
        take = pa.array(self.hit_row)
        fixed = [self.rows[self.hit_row], self.time[self.hit_row], self.timed[self.hit_row], self.hit_rule]
        names = [*HIT_COLUMNS, *(FIELD + name for name in self.fields)]
        return pa.RecordBatch.from_arrays([*map(pa.array, fixed), *(f.take(take) for f in self.fields.values())],
                                          names)


class CorrelationState:
    """Base hits of the rules the correlations reference, with their time and the text of the
    group-by and value fields the correlations read. Per hit it holds 12 bytes (row index and
    rule), per distinct hit row 17 bytes (stream row, time) plus the text of its fields.

    Past `spill_at` bytes held (default `max_memory`) `add` writes them to a run under
    `spill_dir` (default: the system's temporary folder); `alerts` then reads at most
    `max_memory` bytes of hits back at a time, or raises a DataError. A low `spill_at` with
    a larger `max_memory` spills early and splits into many partitions (the tests do)."""

    def __init__(
        self,
        correlations: Sequence[Correlation],
        time_field: str | None = None,
        max_memory: int = DEFAULT_MAX_MEMORY,
        time_fields: Sequence[str] = DEFAULT_TIME_FIELDS,
        spill_dir: str | None = None,
        spill_at: int | None = None,
    ) -> None:
        self.correlations = list(correlations)
        self.time_field = time_field
        #: The columns tried for the event time when `time_field` is not given, in order.
        self.time_fields = tuple(time_fields)
        for name, value in (("max_memory", max_memory), ("spill_at", spill_at)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UsageError(f"{name}={value!r}: expected a number of bytes, at least 1")
        self.max_memory = max_memory
        self.spill_at = max_memory if spill_at is None else spill_at
        self.spill = Spill(spill_dir)
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
        self._held = 0  # the bytes of `_chunks`
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
        """Memory held by the gathered hits (not those spilled to disk)."""
        return self._held

    def close(self) -> None:
        """Remove the spilled hits (they are gone from the state)."""
        self.spill.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

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
        starts = np.r_[True, rows[1:] != rows[:-1]]
        distinct = rows[starts]
        take = pa.array(distinct)
        time, timed = event_times(self._time_column(data).take(take))
        fields = {}
        for name in self.field_names:
            found = _column(data, name)
            fields[name] = texts(None if found is None else found.take(take), len(distinct))
        chunk = _Chunk(distinct + offset, time, timed, fields, np.cumsum(starts) - 1, rules)
        self._chunks.append(chunk)
        self._held += chunk.nbytes
        self.hits += len(rows)
        if self._held > self.spill_at:
            self._spill()

    def _spill(self) -> None:
        """Every chunk held, written as one run and let go."""
        types = {name: {c.fields[name].type for c in self._chunks} for name in self.field_names}
        self.spill.write(run_schema(types), (c.batch() for c in self._chunks))
        self._chunks, self._held = [], 0

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
        if not self.spill.runs:
            return alerts_table(self.correlations, self.gathered(), mode, evidence)

        def batches() -> Iterator[pa.RecordBatch]:
            yield from self.spill.batches()
            yield from (c.batch() for c in self._chunks)

        held = self.spill.nbytes + self._held
        return alerts_from_disk(self.correlations, batches, self.spill.folder(), held,
                                self.max_memory, self.spill_at, mode, evidence)
