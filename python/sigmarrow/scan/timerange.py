"""The scan's time range (``--since``/``--until``): what it never opens, never reads, and
leaves out.

The range is half-open, ``since <= time < until``, so that consecutive ranges tile: a day is
``--since 2026-11-01 --until 2026-11-02``. An event's time is its time field (``--time-field``;
by default the first of :data:`sigmarrow.times.DEFAULT_TIME_FIELDS` present), read by
:func:`sigmarrow.times.event_times`; an event without a usable time is not in the range.
Three levels, each exact given the one before:

* hive partitions whose key is a date or time (``EventDate=2026-11-01``, Security Lake's
  ``eventDay=20261101``, ``year=/month=/day=/hour=``) cover a period, UTC; files whose
  period misses the range are never opened;
* Parquet row groups whose min/max statistics of the time column miss it are never read;
* the remaining rows are filtered on their times.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sigmarrow.columns import is_string, resolve
from sigmarrow.errors import UsageError
from sigmarrow.scan.inputs import InputFile
from sigmarrow.times import DEFAULT_TIME_FIELDS, NS, event_times, first_present

__all__ = ["TimeRange"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"(\d+)([smhdw])")
_HOUR = 3600 * NS
_DAY = 24 * _HOUR
# event_times reads offsets up to ±99:59, so the date of an ISO text bounds its time within
# that much: string statistics prune only what lies further away.
_MAX_OFFSET = 100 * _HOUR
# Partition values: an ISO month, day or hour (minutes and seconds are read as their hour),
# or, for keys named like a day or time, Security Lake's compact 20261101 and 2026110113.
_ISO_PARTITION = re.compile(
    r"(\d{4})-(\d{2})(?:-(\d{2})(?:[T -](\d{2})(?::\d{2}(?::\d{2}(?:\.\d+)?)?)?Z?)?)?"
)
_COMPACT_PARTITION = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})?")
_TIME_KEY_WORDS = ("date", "day", "hour", "time")
_CALENDAR_KEYS = ("year", "month", "day", "hour")


@dataclass(frozen=True)
class TimeRange:
    """Events with ``since <= time < until`` (nanoseconds since the epoch, UTC; None: open)."""

    since: int | None
    until: int | None
    field: str | None = None  #: the time column; None: the first of DEFAULT_TIME_FIELDS present

    @classmethod
    def parse(
        cls,
        since: str | dt.datetime | None = None,
        until: str | dt.datetime | None = None,
        field: str | None = None,
    ) -> TimeRange | None:
        """The range of ``--since``/``--until``: ISO dates or times (no offset: UTC), times
        before now (``90d``, ``12h``, ``30m``, ``45s``, ``2w``) or datetimes (naive: UTC).
        None when neither is given. Raises :class:`sigmarrow.UsageError` for text that is
        not a time, or a ``since`` that is not before ``until``."""
        if since is None and until is None:
            return None
        now = time.time_ns()
        start, end = _instant(since, "--since", now), _instant(until, "--until", now)
        if start is not None and end is not None and start >= end:
            raise UsageError(f"--since {since} is not before --until {until}: the range is empty")
        return cls(start, end, field or None)

    def overlaps(self, start: int, end: int) -> bool:
        """Whether the period ``[start, end)`` has times in the range."""
        return (self.since is None or end > self.since) and (self.until is None or start < self.until)

    def prune(self, files: Sequence[InputFile]) -> tuple[list[InputFile], int]:
        """The files whose date and time partitions may hold events in the range, and how
        many were left out (never to be opened)."""
        kept = [
            f for f in files if all(self.overlaps(*p) for p in _partition_periods(f.partition))
        ]
        return kept, len(files) - len(kept)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names the time may be read from, in order."""
        return (self.field,) if self.field else DEFAULT_TIME_FIELDS

    def column(self, schema: pa.Schema) -> str | None:
        """The time field in ``schema`` (a column or dotted path), or None."""
        return first_present(schema, self.fields)

    def row_groups(self, metadata: pq.FileMetaData, schema: pa.Schema) -> list[bool]:
        """Whether each row group of a Parquet file may hold events in the range, by the
        min/max statistics of its time column (without them, or without a time column, it
        may: its rows are filtered, and counted)."""
        name = self.column(schema)
        ref = resolve(schema, name) if name else None
        path = ".".join(ref.path) if ref else None
        index = next(
            (j for j in range(metadata.num_columns) if metadata.schema.column(j).path == path),
            None,
        )
        keep = []
        for i in range(metadata.num_row_groups):
            statistics = None if index is None else metadata.row_group(i).column(index).statistics
            bounds = _bounds(statistics, ref.type) if statistics is not None and ref else None
            keep.append(bounds is None or self.overlaps(*bounds))
        return keep

    def rows(self, batch: pa.RecordBatch) -> tuple[pa.Array | None, int, int]:
        """(the indices of the rows in the range, or None for all of them; how many rows are
        out of it; how many have no usable time)."""
        name = self.column(batch.schema)
        if name is None:
            return pa.array([], pa.int64()), 0, batch.num_rows
        ns, usable = event_times(resolve(batch.schema, name).array(batch))  # type: ignore[union-attr]
        inside = usable.copy()
        if self.since is not None:
            inside &= ns >= self.since
        if self.until is not None:
            inside &= ns < self.until
        kept, timed = int(inside.sum()), int(usable.sum())
        if kept == batch.num_rows:
            return None, 0, 0
        return pa.array(np.flatnonzero(inside)), timed - kept, batch.num_rows - timed

    def describe(self) -> str:
        """For the summary: ``2026-11-01T00:00:00Z to 2026-12-01T00:00:00Z (excluded), on X``."""
        since = _iso(self.since) if self.since is not None else "the start"
        until = f"{_iso(self.until)} (excluded)" if self.until is not None else "the end"
        on = self.field or "the first present of " + ", ".join(DEFAULT_TIME_FIELDS)
        return f"{since} to {until}, on {on}"


def _instant(value: str | dt.datetime | None, option: str, now: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000
    text = value.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - int(relative[1]) * _UNITS[relative[2]] * NS
    ns, usable = event_times(pa.array([text], pa.string()))
    if not usable[0]:
        raise UsageError(
            f"{option}: not a time: {value!r} (an ISO date or time such as 2026-11-01 or "
            "2026-11-01T12:00:00Z, or a time before now such as 90d, 12h, 30m)"
        )
    return int(ns[0])


def _iso(ns: int) -> str:
    seconds, nanos = divmod(ns, NS)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}".rstrip("0").rstrip(".") + "Z"


def _period(
    year: int, month: int | None = None, day: int | None = None, hour: int | None = None
) -> tuple[int, int] | None:
    """[start, end) of a calendar year, month, day or hour, UTC (None: not a date)."""
    try:
        start = dt.datetime(year, month or 1, day or 1, hour or 0, tzinfo=dt.UTC)
    except ValueError:
        return None
    if hour is not None:
        end = start + dt.timedelta(hours=1)
    elif day is not None:
        end = start + dt.timedelta(days=1)
    elif month is not None:
        end = start.replace(year=year + month // 12, month=month % 12 + 1)
    else:
        end = start.replace(year=year + 1)
    return int(start.timestamp()) * NS, int(end.timestamp()) * NS


def _partition_periods(partition: tuple[tuple[str, str | None], ...]) -> list[tuple[int, int]]:
    """The periods that the date and time keys of a file's partitions say it covers."""
    periods = []
    calendar: dict[str, int] = {}
    for key, value in partition:
        if value is None:
            continue
        lower = key.lower()
        if lower in _CALENDAR_KEYS and value.isdigit():
            calendar[lower] = int(value)
            continue
        match = _ISO_PARTITION.fullmatch(value)
        if match is None and (lower == "dt" or any(w in lower for w in _TIME_KEY_WORDS)):
            match = _COMPACT_PARTITION.fullmatch(value)
        if match:
            parts = [int(p) if p else None for p in match.groups()]
            periods.append(_period(parts[0], parts[1], parts[2], parts[3]))  # type: ignore[arg-type]
    if "year" in calendar:  # year=, then month=, day=, hour= as far as they go
        given = [calendar.get(k) for k in _CALENDAR_KEYS]
        cut = given.index(None) if None in given else len(given)
        periods.append(_period(*given[:cut]))  # type: ignore[arg-type]
    return [p for p in periods if p is not None]


def _bounds(statistics: Any, kind: pa.DataType) -> tuple[int, int] | None:
    """[start, end) that holds every usable time of a row group, from its statistics."""
    if not statistics.has_min_max:
        return None
    if is_string(kind):
        # Lexicographic bounds of ISO text bound its dates (the first ten characters); the
        # offsets of the text can move a time by up to _MAX_OFFSET around its date.
        dates = pa.array([_text(statistics.min)[:10], _text(statistics.max)[:10]], pa.string())
        ns, usable = event_times(dates)
        return (int(ns[0]) - _MAX_OFFSET, int(ns[1]) + _DAY + _MAX_OFFSET) if usable.all() else None
    try:
        ns, usable = event_times(pa.array([statistics.min, statistics.max]))
    except (pa.ArrowException, TypeError, ValueError):
        return None
    # Statistics may come as microseconds (datetime): the end is the next one.
    return (int(ns[0]), int(ns[1]) + 1000) if usable.all() else None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
