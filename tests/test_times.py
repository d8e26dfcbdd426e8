"""Event times (sigmarrow.times): what the scan's time range, the timeline and the correlator
read as the time of an event."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from sigmarrow.times import DEFAULT_TIME_FIELDS, event_times, first_present

NS = 1_000_000_000
T0 = int(dt.datetime(2026, 11, 1, 12, 30, 5, tzinfo=dt.UTC).timestamp()) * NS


def test_iso_text_with_and_without_offsets_dates_and_fractions() -> None:
    text = pa.array([
        "2026-11-01T12:30:05Z", "2026-11-01 12:30:05", "2026-11-01T13:30:05+01:00",
        "2026-11-01T13:30:05+0100", "2026-11-01T12:30:05.123456789123", "2026-11-01",
        "2026-02-30T00:00:00", "not a time", None,
    ])
    ns, ok = event_times(text)
    assert list(ok) == [True] * 6 + [False] * 3
    assert list(ns[:4]) == [T0] * 4
    assert ns[4] == T0 + 123_456_789
    assert ns[5] == T0 - (12 * 3600 + 30 * 60 + 5) * NS


def test_timestamps_dates_and_epoch_numbers() -> None:
    aware = pa.array([dt.datetime(2026, 11, 1, 13, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))],
                     pa.timestamp("us", tz="+01:00"))
    naive = pa.array([dt.datetime(2026, 11, 1, 12, 30, 5)], pa.timestamp("ms"))
    assert event_times(aware)[0][0] == event_times(naive)[0][0] == T0
    assert event_times(pa.array([T0 // NS], pa.int64()))[0][0] == T0
    ns, ok = event_times(pa.array([T0 / NS + 0.25, float("nan")]))
    assert abs(ns[0] - (T0 + NS // 4)) < 1_000 and list(ok) == [True, False]  # float seconds: µs
    assert event_times(pa.array([dt.date(2026, 11, 1)]))[0][0] == T0 - (12 * 3600 + 30 * 60 + 5) * NS
    assert not event_times(pa.array([True]))[1][0]


def test_the_first_usual_time_column_present() -> None:
    schema = pa.schema([("UtcTime", pa.string()), ("@timestamp", pa.string())])
    assert first_present(schema, DEFAULT_TIME_FIELDS) == "@timestamp"
    assert first_present(schema, DEFAULT_TIME_FIELDS, "UtcTime") == "UtcTime"
    assert first_present(schema, DEFAULT_TIME_FIELDS, "Nope") is None
