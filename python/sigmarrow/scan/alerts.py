"""Correlation alerts of a scan: where they go, and their evidence as (source_file, source_row).

The scan feeds every batch to a `CorrelationState`, naming each event by its file's number
and its row (`event_id`); once every file is read the alerts are computed and written, each
contributing event named by its file and 0-based row within it, like a hit.
"""

from __future__ import annotations

import os

import pyarrow as pa

from sigmarrow.correlation import ALERTS_SCHEMA
from sigmarrow.scan.hits import SOURCE_FIELDS

__all__ = ["SCAN_ALERTS_SCHEMA", "alerts_output", "event_id", "with_sources"]

FILE_SHIFT = 40  # an event id: the file's number above, the row within it below (2^40 rows)

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


def event_id(file_number: int, row: int) -> int:
    """How the scan names row `row` of its `file_number`th file to the correlation state
    (rows of pruned row groups are skipped, so rows are not counted across files)."""
    return (file_number << FILE_SHIFT) + row


def with_sources(alerts: pa.Table, files: list[str]) -> pa.Table:
    """`alerts` with each evidence event (an `event_id`) as its file and row within it."""
    evidence = alerts.column("evidence").combine_chunks()
    ids = evidence.flatten().to_numpy(zero_copy_only=False)
    sources = pa.StructArray.from_arrays(
        [pa.array(files, pa.string()).take(pa.array(ids >> FILE_SHIFT)),
         pa.array(ids & ((1 << FILE_SHIFT) - 1), pa.int64())],
        fields=list(SOURCE_FIELDS),
    )
    listed = pa.ListArray.from_arrays(evidence.offsets, sources)
    index = alerts.schema.get_field_index("evidence")
    return alerts.set_column(index, SCAN_ALERTS_SCHEMA.field("evidence"), listed).replace_schema_metadata(
        alerts.schema.metadata
    )
