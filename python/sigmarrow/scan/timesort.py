"""``--sort time``: hits in event-time order, in bounded memory (an external merge sort).

Hits arrive in file, row and rule order. :class:`TimeSorted` keeps them until they hold
:data:`RUN_BYTES`, then writes them sorted by their ``timestamp`` as one *run* (a zstd
Parquet file in a spool folder beside the output); at the end it merges the runs, reading
:data:`MERGE_ROWS` hits of each at a time. So memory is one run and one window per run,
whatever the number of hits, and the spool holds every hit once, compressed about as well as
a Parquet output (runs are merged :data:`FAN_IN` at a time, in rounds when there are more).
A scan whose hits fit in one run sorts them in memory and writes no spool.

The order is stable: hits of the same time stay in the order they came, and hits without a
usable time come last, in the order they came.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["FAN_IN", "MERGE_ROWS", "RUN_BYTES", "TimeSorted"]

#: Bytes of hits kept in memory before they are written out as a sorted run.
RUN_BYTES = 64 << 20
#: Hits per Parquet row group of a run, and hits read from each run at a time when merging.
RUN_ROW_GROUP = 16_384
MERGE_ROWS = 2_048
#: Runs merged at once (open files, one window each).
FAN_IN = 64
#: The sort key of a hit: its time in microseconds, hits without one last.
KEY = "__sigmarrow_time"
_NO_TIME = np.iinfo(np.int64).max


class TimeSorted:
    """Takes batches of hits in any time order; :meth:`close` passes them to ``write`` in
    time order. ``pack`` turns hits into what is spooled (by default the hits themselves);
    ``write`` gets batches of that. ``spool()`` makes the spool folder (an object with a
    ``path`` and ``remove()``) when the first run is written."""

    def __init__(
        self,
        spool: Callable[[], Any],
        write: Callable[[pa.RecordBatch], None],
        pack: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
    ) -> None:
        self._make_spool = spool
        self._spool: Any = None
        self._write = write
        self._pack = pack
        self._pending: list[pa.RecordBatch] = []
        self._bytes = 0
        self._runs: list[str] = []
        self._made = 0  #: runs written so far
        self._schema: pa.Schema | None = None  #: of what is spooled, with the key

    def write(self, hits: pa.RecordBatch) -> None:
        key = pc.fill_null(hits.column("timestamp").cast(pa.int64()), _NO_TIME)
        batch = (self._pack(hits) if self._pack else hits).append_column(KEY, key)
        self._schema = self._schema or batch.schema
        self._pending.append(batch)
        self._bytes += batch.nbytes
        if self._bytes >= RUN_BYTES:
            self._spill()

    def close(self) -> None:
        if self._runs:
            self._spill()
            while len(self._runs) > FAN_IN:  # merge the first ones into one run, in order
                self._runs[:FAN_IN] = [self._run(self._merge(self._runs[:FAN_IN]))]
            chunks = self._merge(self._runs)
        else:
            chunks = _sorted(self._pending)
        for chunk in chunks:
            for batch in chunk.drop_columns([KEY]).to_batches():
                self._write(batch)
        self.discard()

    def discard(self) -> None:
        """Forget the hits and remove the spool."""
        self._pending, self._bytes = [], 0
        if self._spool is not None:
            self._spool.remove()
            self._spool = None

    def _spill(self) -> None:
        if self._pending:
            self._runs.append(self._run(_sorted(self._pending)))
            self._pending, self._bytes = [], 0

    def _run(self, chunks: Iterator[pa.Table]) -> str:
        """Write sorted hits as a new run; returns its path."""
        if self._spool is None:
            self._spool = self._make_spool()
        path = os.path.join(self._spool.path, f"run-{self._made}.parquet")
        self._made += 1
        assert self._schema is not None
        with pq.ParquetWriter(path, self._schema, compression="zstd") as writer:
            pending: list[pa.Table] = []
            for chunk in itertools.chain(chunks, [None]):  # the merge yields small pieces
                if chunk is not None:
                    pending.append(chunk)
                if pending and (chunk is None or sum(map(len, pending)) >= RUN_ROW_GROUP):
                    writer.write_table(pa.concat_tables(pending), row_group_size=RUN_ROW_GROUP)
                    pending = []
        return path

    def _merge(self, runs: list[str]) -> Iterator[pa.Table]:
        """The hits of sorted runs, sorted; a run merged is removed once read."""
        assert self._schema is not None
        schema = self._schema
        # Without pre-buffering, an open run holds about one page per column, not a
        # read-ahead of many (25 MB each, measured): memory is the windows, not the runs.
        readers = [pq.ParquetFile(run, pre_buffer=False).iter_batches(MERGE_ROWS) for run in runs]

        def refill(i: int) -> pa.RecordBatch | None:
            for batch in readers[i]:
                if batch.num_rows:
                    # Parquet gives some types back in another unit (date64 as date32).
                    return batch if batch.schema == schema else batch.cast(schema)
            return None

        windows = [refill(i) for i in range(len(runs))]
        while any(w is not None for w in windows):
            # Every hit up to the smallest last key of a window can go: no unread hit of any
            # run comes before it. On a tie, the earlier run's hits come first.
            bound, first = min(
                (w.column(KEY)[-1].as_py(), i) for i, w in enumerate(windows) if w is not None
            )
            parts = []
            for i, window in enumerate(windows):
                if window is None:
                    continue
                keys = window.column(KEY).to_numpy()
                n = int(np.searchsorted(keys, bound, side="right" if i <= first else "left"))
                parts.append(window.slice(0, n))
                windows[i] = window.slice(n) if n < window.num_rows else refill(i)
            yield from _sorted(parts)
        for run in runs:
            os.remove(run)


def _sorted(batches: list[pa.RecordBatch]) -> Iterator[pa.Table]:
    """The hits of ``batches`` sorted by time (stable), in chunks of a run's row group."""
    if not batches:
        return
    table = pa.Table.from_batches(batches)
    order = pc.sort_indices(table, sort_keys=[(KEY, "ascending")])
    for start in range(0, len(order), RUN_ROW_GROUP):
        yield table.take(order[start : start + RUN_ROW_GROUP])
