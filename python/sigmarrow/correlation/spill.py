"""Base hits on disk: what a `CorrelationState` holds past its memory bound, and the alerts
computed from them one partition at a time (docs/limits.md, "Correlations").

A spill is one run: an Arrow IPC stream file with a row per (row, rule) hit (stream row, time,
whether it was usable, rule, the text of each field read). `alerts` reads the runs once per
correlation and splits that correlation's hits by a hash of their case-folded group key into
partition files, then sweeps partition by partition: a group never spans two partitions, so
each one's alerts are exact, and sorted by window end then folded group they are in the order
of the in-memory path. Correlations chained to others are computed together from all their
hits read back at once (their groups differ from their children's).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.correlation.sweep import ALERTS_SCHEMA, Hits, assemble, correlation_tables
from sigmarrow.correlation.values import fold
from sigmarrow.errors import DataError
from sigmarrow.program import Correlation

HIT_COLUMNS = ("hit:row", "hit:time", "hit:timed", "hit:rule")
HIT_TYPES = (pa.int64(), pa.int64(), pa.bool_(), pa.uint32())
FIELD = "field:"  # the prefix of a field's column in a run
#: The most partitions one correlation's hits are split into (files open at once).
MAX_PARTITIONS = 256

Batches = Callable[[], Iterator[pa.RecordBatch]]  # every gathered hit, runs first, in order


def _size(nbytes: int) -> str:
    return f"{nbytes:,} bytes" if nbytes < 1 << 20 else f"{nbytes / (1 << 20):,.1f} MiB"


def run_schema(field_types: dict[str, set[pa.DataType]]) -> pa.Schema:
    """The schema of a run: a field keeps its type when every chunk has it (a dictionary
    stays one), and is plain text otherwise."""
    fields = [(FIELD + n, next(iter(t)) if len(t) == 1 else pa.string()) for n, t in field_types.items()]
    return pa.schema([*zip(HIT_COLUMNS, HIT_TYPES), *fields])


class Spill:
    """The temporary folder of one state's runs, created on the first spill under `folder`
    (None: the system's temporary folder) and removed by `close`, when the state is
    collected, or at exit."""

    def __init__(self, folder: str | None) -> None:
        self._parent = folder
        self.path: str | None = None
        self.runs: list[str] = []
        self.nbytes = 0  # the Arrow bytes of the hits written
        self._remove: weakref.finalize | None = None

    def folder(self) -> str:
        """The folder of the runs, created on first use."""
        if self.path is None:
            with _disk_errors(self._parent or tempfile.gettempdir()):
                self.path = tempfile.mkdtemp(prefix="sigmarrow-correlation-", dir=self._parent)
            self._remove = weakref.finalize(self, shutil.rmtree, self.path, True)
        return self.path

    def write(self, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
        """One run of `batches`, each cast to `schema`."""
        path = os.path.join(self.folder(), f"run-{len(self.runs)}.arrow")
        with _disk_errors(path, remove=True), pa.OSFile(path, "wb") as sink, \
                pa.ipc.new_stream(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(_cast(batch, schema))
                self.nbytes += batch.nbytes
        self.runs.append(path)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The batches of every run, in order."""
        for path in self.runs:
            with _disk_errors(path), pa.memory_map(path) as source:
                yield from pa.ipc.open_stream(source)

    def close(self) -> None:
        if self._remove is not None:
            self._remove()
        self.path, self.runs, self.nbytes = None, [], 0


@contextlib.contextmanager
def _disk_errors(path: str, remove: bool = False) -> Iterator[None]:
    """An OSError (a full disk, a folder that cannot be written) as one DataError naming the
    file; with `remove`, the partial file goes."""
    try:
        yield
    except BaseException as error:
        if remove:
            with contextlib.suppress(OSError):
                os.remove(path)
        if isinstance(error, OSError):
            raise DataError(
                f"correlations: cannot spill base hits to {path}: {error.strerror or error}; "
                "free space there or give another folder (spill_dir=, $TMPDIR)"
            ) from error
        raise


def _cast(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    columns = [c if c.type == f.type else pc.cast(c, f.type) for c, f in zip(batch.columns, schema)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


# --------------------------------------------------------------------------- partitions


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: every bit of x moves every bit of the result."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def folded_hashes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(a hash of each value's case fold, whether it is absent): equal folds, equal hashes."""
    if pa.types.is_dictionary(text.type):
        values, _ = folded_hashes(text.dictionary)
        index = pc.fill_null(text.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
        hashes = values[np.maximum(index, 0)] if len(values) else np.zeros(len(index), np.uint64)
        return hashes, index < 0
    folded = fold(text.cast(pa.string()))
    offsets = np.frombuffer(folded.buffers()[1], np.int32)[folded.offset : folded.offset + len(folded) + 1]
    data = folded.buffers()[2]
    first, lengths = int(offsets[0]), np.diff(offsets)
    raw = np.frombuffer(data, np.uint8)[first : offsets[-1]] if data is not None else np.zeros(0, np.uint8)
    position = np.arange(len(raw), dtype=np.int64) - np.repeat(offsets[:-1] - first, lengths)
    weighted = raw.astype(np.uint64) * _mix(position.astype(np.uint64) + np.uint64(1))
    prefix = np.r_[np.uint64(0), np.cumsum(weighted, dtype=np.uint64)]
    sums = prefix[offsets[1:] - first] - prefix[offsets[:-1] - first]
    absent = ~folded.is_valid().to_numpy(zero_copy_only=False)
    return _mix(sums ^ lengths.astype(np.uint64)), absent


def _field(corr: Correlation, rule: int, name: str) -> str:
    """The column of field `name` in the hits of `rule` (through the correlation's aliases)."""
    inp = next(i for i in corr["inputs"] if i.get("rule") == rule)
    return FIELD + inp["fields"].get(name, name)


def _columns(correlations: Sequence[Correlation]) -> list[str]:
    """The run columns the correlations read."""
    names = {_field(c, i["rule"], n) for c in correlations for i in c["inputs"] if "rule" in i
             for n in [*c["group_by"], *([c["field"]] if c["field"] else [])]}
    return [*HIT_COLUMNS, *sorted(names)]


def _rules(correlations: Sequence[Correlation]) -> pa.Array:
    return pa.array(sorted({i["rule"] for c in correlations for i in c["inputs"] if "rule" in i}), pa.uint32())


def _partition_of(corr: Correlation, batch: pa.RecordBatch, count: int) -> np.ndarray:
    """The partition of each hit: its folded group key's hash; 0 without a usable time or
    with an absent group value, so what a correlation drops is counted in one partition."""
    rule = batch.column(HIT_COLUMNS[3]).to_numpy()
    part = np.zeros(batch.num_rows, np.int64)
    for r in np.unique(rule).tolist():
        mine = np.flatnonzero(rule == r)
        key = np.zeros(len(mine), np.uint64)
        absent = np.zeros(len(mine), bool)
        for name in corr["group_by"]:
            hashes, missing = folded_hashes(batch.column(_field(corr, r, name)).take(pa.array(mine)))
            key, absent = _mix(key * np.uint64(0x9E3779B97F4A7C15) ^ hashes), absent | missing
        part[mine] = np.where(absent, 0, (key % np.uint64(count)).astype(np.int64))
    timed = batch.column(HIT_COLUMNS[2]).to_numpy(zero_copy_only=False)
    return np.where(timed, part, 0)


def _hits(batches: Sequence[pa.RecordBatch], columns: Sequence[str]) -> Hits:
    """The Hits of hit rows read back (one hit row per (row, rule) hit)."""
    def cat(i: int) -> np.ndarray:
        arrays = [b.column(HIT_COLUMNS[i]).to_numpy(zero_copy_only=False) for b in batches]
        return np.concatenate(arrays) if arrays else np.zeros(0, HIT_TYPES[i].to_pandas_dtype())

    rows = cat(0)
    fields = {c.removeprefix(FIELD): [b.column(c) for b in batches] for c in columns[len(HIT_COLUMNS):]}
    return Hits.of(rows, cat(1), cat(2), np.arange(len(rows), dtype=np.int64), cat(3), fields)


def _selected(batches: Batches, correlations: Sequence[Correlation]) -> Iterator[pa.RecordBatch]:
    """The hits of the correlations' rules, with the columns they read."""
    columns, rules = _columns(correlations), _rules(correlations)
    for batch in batches():
        kept = batch.select(columns).filter(pc.is_in(batch.column(HIT_COLUMNS[3]), rules))
        if kept.num_rows:
            yield kept


class Partitions:
    """One correlation's hits split into `count` partition files under `folder`, with the
    Arrow bytes of each."""

    def __init__(self, corr: Correlation, batches: Batches, folder: str, count: int) -> None:
        self.corr, self.folder = corr, folder
        self.nbytes = np.zeros(count, np.int64)
        writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        try:
            for batch in _selected(batches, [corr]):
                batch = _cast(batch, self._schema(batch))
                part = _partition_of(corr, batch, count)
                order = np.argsort(part, kind="stable")
                bounds = np.r_[0, np.cumsum(np.bincount(part, minlength=count))]
                for p in np.flatnonzero(np.diff(bounds)).tolist():
                    piece = batch.take(pa.array(order[bounds[p] : bounds[p + 1]]))
                    if p not in writers:
                        with _disk_errors(self.path(p)):
                            writers[p] = pa.ipc.new_stream(self.path(p), piece.schema)
                    with _disk_errors(self.path(p)):
                        writers[p].write_batch(piece)
                    self.nbytes[p] += piece.nbytes
        finally:
            for writer in writers.values():
                writer.close()

    @staticmethod
    def _schema(batch: pa.RecordBatch) -> pa.Schema:
        """Fields as plain text: runs may differ in a field's type, a partition may not."""
        return pa.schema([f if f.name in HIT_COLUMNS else f.with_type(pa.string()) for f in batch.schema])

    def path(self, p: int) -> str:
        return os.path.join(self.folder, f"part-{p}.arrow")

    def tables(self, max_memory: int) -> Iterator[pa.Table]:
        """Each non-empty partition read back, removed once read; one larger than
        `max_memory` is one DataError."""
        for p in np.flatnonzero(self.nbytes).tolist():
            if self.nbytes[p] > max_memory:
                why = ("it has no group-by, so its hits are one group" if not self.corr["group_by"]
                       else "its largest groups are that large")
                raise DataError(
                    f"correlation {self.corr['id']}: one partition of its base hits takes "
                    f"{_size(self.nbytes[p])}, more than the bound of {_size(max_memory)} "
                    f"({why}); raise max_memory (--max-correlation-memory), or correlate a smaller "
                    "time range at a time (docs/limits.md)"
                )
            with _disk_errors(self.path(p)):
                with pa.memory_map(self.path(p)) as source:
                    table = pa.ipc.open_stream(source).read_all()
                os.remove(self.path(p))
            yield table


def _in_order(tables: list[pa.Table], group_by: Sequence[str]) -> pa.Table:
    """One correlation's alerts from its partitions, in order of window end, then folded
    group values (the order of the in-memory path's group numbers)."""
    table = pa.concat_tables(tables) if tables else ALERTS_SCHEMA.empty_table()
    keys = {"end": table.column("window_end")}
    for k, name in enumerate(group_by if table.num_rows else []):
        value = pc.map_lookup(table.column("group"), pa.scalar(name), "first")
        keys[f"g{k}"] = fold(value.combine_chunks())
    order = pc.sort_indices(pa.table(keys), [(k, "ascending") for k in keys])
    return table.take(order)


def _chained(correlations: Sequence[Correlation]) -> list[int]:
    """The correlations that read or are read by another correlation."""
    linked = {i for i, c in enumerate(correlations) for inp in c["inputs"] if "correlation" in inp}
    linked |= {inp["correlation"] for c in correlations for inp in c["inputs"] if "correlation" in inp}
    return sorted(linked)


def _renumbered(correlations: Sequence[Correlation], chosen: list[int]) -> list[Correlation]:
    """The chosen correlations on their own, their references into each other renumbered."""
    new = {old: i for i, old in enumerate(chosen)}
    out = []
    for i in chosen:
        corr = correlations[i]
        inputs = [{**inp, "correlation": new[inp["correlation"]]} if "correlation" in inp else inp
                  for inp in corr["inputs"]]
        out.append({**corr, "inputs": inputs})
    return out  # type: ignore[return-value]


def _read_back(batches: Batches, chained: Sequence[Correlation], max_memory: int) -> Hits:
    """All the hits chained correlations read, within the bound."""
    held, read = 0, []
    for batch in _selected(batches, chained):
        held += batch.nbytes
        if held > max_memory:
            raise DataError(
                f"correlations {', '.join(c['id'] for c in chained)}: chained correlations read "
                f"all their base hits at once, more than the bound of {_size(max_memory)}; raise "
                "max_memory (--max-correlation-memory), or correlate a smaller time range at a "
                "time (docs/limits.md)"
            )
        read.append(batch)
    return _hits(read, _columns(chained))


def _partitioned(corr: Correlation, batches: Batches, folder: str, count: int, max_memory: int,
                 mode: str, limit: int | None) -> tuple[pa.Table, dict[str, int]]:
    """One correlation's alerts and dropped counts, partition by partition."""
    with _disk_errors(folder):
        own = tempfile.mkdtemp(prefix="partitions-", dir=folder)
    try:
        parts = Partitions(corr, batches, own, count if corr["group_by"] else 1)
        found, dropped = [], {"no_time": 0, "no_group": 0}
        for part in parts.tables(max_memory):
            [(table, counts)] = correlation_tables([corr], _hits(part.to_batches(), _columns([corr])),
                                                    mode, limit)
            found.append(table)
            dropped = {k: dropped[k] + v for k, v in counts.items()}
        return _in_order(found, corr["group_by"]), dropped
    finally:
        shutil.rmtree(own, ignore_errors=True)


def alerts_from_disk(
    correlations: Sequence[Correlation],
    batches: Batches,
    folder: str,
    nbytes: int,
    max_memory: int,
    spill_at: int,
    mode: str,
    limit: int | None,
) -> pa.Table:
    """The alerts `alerts_table` computes, from `batches` (hits of `nbytes` Arrow bytes, partly
    on disk) with at most `max_memory` bytes of hits read back at a time; partitions (files
    under `folder`) aim at a quarter of `spill_at`."""
    results: list[tuple[pa.Table | None, dict[str, int]]] = [(None, {})] * len(correlations)
    chained = _chained(correlations)
    if chained:
        subset = _renumbered(correlations, chained)
        for i, result in zip(chained, correlation_tables(subset, _read_back(batches, subset, max_memory),
                                                         mode, limit)):
            results[i] = result
    count = min(MAX_PARTITIONS, max(1, math.ceil(4 * nbytes / spill_at)))
    for i, corr in enumerate(correlations):
        if i not in chained:
            results[i] = _partitioned(corr, batches, folder, count, max_memory, mode, limit)
    return assemble(correlations, [t for t, _ in results], [d for _, d in results])
