"""Correlation alerts of a scan: where they go, and their evidence as (source_file, source_row).

The scan feeds every batch to a `CorrelationState` (rows numbered across the whole scan);
once every file is read the alerts are computed and written, each contributing event named
by its file and 0-based row within it, like a hit.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from sigmarrow.correlation import ALERTS_SCHEMA
from sigmarrow.scan.hits import SOURCE_FIELDS

__all__ = ["SCAN_ALERTS_SCHEMA", "alerts_output", "with_sources"]

#: The alerts a scan writes: `sigmarrow.correlation.ALERTS_SCHEMA` with the evidence as
#: (source_file, source_row) pairs.
SCAN_ALERTS_SCHEMA = ALERTS_SCHEMA.set(
    ALERTS_SCHEMA.get_field_index("evidence"), pa.field("evidence", pa.list_(pa.struct(SOURCE_FIELDS)))
)


def alerts_output(output: str, alerts: str | None) -> str:
    """Where alerts go: `alerts`, else beside the hits (`hits.parquet` -> `hits.alerts.parquet`),
    else, when hits go to standard output, after them there."""
    if alerts:
        return alerts
    if output == "-":
        return "-"
    root, suffix = os.path.splitext(output)
    return f"{root}.alerts{suffix}"


def with_sources(alerts: pa.Table, files: list[str], starts: list[int]) -> pa.Table:
    """`alerts` with each evidence row (numbered across the scan) as its file and row within
    it; `starts[i]` is the scan row where `files[i]` begins."""
    evidence = alerts.column("evidence").combine_chunks()
    rows = evidence.flatten().to_numpy(zero_copy_only=False)
    first = np.asarray(starts, np.int64)
    which = np.searchsorted(first, rows, "right") - 1
    sources = pa.StructArray.from_arrays(
        [pa.array(files, pa.string()).take(pa.array(which)), pa.array(rows - first[which], pa.int64())],
        fields=list(SOURCE_FIELDS),
    )
    listed = pa.ListArray.from_arrays(evidence.offsets, sources)
    index = alerts.schema.get_field_index("evidence")
    return alerts.set_column(index, SCAN_ALERTS_SCHEMA.field("evidence"), listed).replace_schema_metadata(
        alerts.schema.metadata
    )
