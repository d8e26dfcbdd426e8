"""What log sources a dataset holds, when the user did not say (docs/logsources.md).

In order: the dataset's own declaration (Parquet key-value metadata `sigmarrow.logsource`, or
hive partition keys `product=` / `category=` / `service=` in the folder names), then a guess from
the columns of the first input file: Windows events have an `EventID` and a Windows system column.
"""

from __future__ import annotations

from collections.abc import Sequence

from sigmarrow.logsource import LogSource
from sigmarrow.scan.inputs import InputFile
from sigmarrow.scan.readers import schema_of

METADATA_KEY = b"sigmarrow.logsource"
_HIVE_KEYS = ("product", "category", "service")
# Columns that only Windows event exports have beside EventID (System part of the event).
_WINDOWS_SYSTEM_COLUMNS = ("Channel", "Computer", "EventRecordID", "Provider_Name")


def detect(files: Sequence[InputFile]) -> tuple[list[LogSource] | None, str]:
    """(declared or guessed log sources or None, how they were found) for the summary."""
    hive = {
        LogSource(**{k: v.lower() for k, v in f.partition if k in _HIVE_KEYS and v})
        for f in files
        if any(k in _HIVE_KEYS and v for k, v in f.partition)
    }
    if hive:
        return sorted(hive, key=str), "from the dataset's partition keys"
    for f in files:
        if f.kind == "evtx":
            return [LogSource("windows")], "guessed: the input holds .evtx files"
        schema = schema_of(f)  # cheap for Parquet and IPC (their footers); None for the others
        if schema is None:
            continue
        declared = (schema.metadata or {}).get(METADATA_KEY)
        if declared:
            specs = declared.decode("utf-8", "replace").split(";")
            return [LogSource.parse(s) for s in specs if s.strip()], f"from {f.display}'s metadata"
        system = [c for c in _WINDOWS_SYSTEM_COLUMNS if c in schema.names]
        if "EventID" in schema.names and system:
            return [LogSource("windows")], f"guessed from the columns EventID, {', '.join(system)}"
        return None, ""
    return None, ""
