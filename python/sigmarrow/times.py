"""Event times and hosts, as every part reads them: the scan's time range and timeline, the
correlator's windows. Times are int64 nanoseconds since the epoch, UTC, computed vectorized.
docs/semantics.md ("Event times") states the rules."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.columns import resolve

NS = 1_000_000_000
#: The time columns tried, in order, when no time field is given (Windows EVTX exports,
#: ECS, Sentinel ASIM, generic, Sysmon's own).
DEFAULT_TIME_FIELDS = ("TimeCreated", "@timestamp", "TimeGenerated", "EventTime", "timestamp", "UtcTime")
#: The host columns tried, in order (Windows, ECS, ASIM, OCSF).
DEFAULT_HOST_FIELDS = ("Computer", "host.name", "Hostname", "DvcHostname", "device.hostname", "hostname")

_ISO = (
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<z>[Zz]|(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}))?)?$"
)
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _plain(array: pa.Array) -> pa.Array:
    """Dictionary arrays decoded, chunked arrays combined."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _ints(parts: pa.StructArray, name: str, default: int = 0) -> np.ndarray:
    field = parts.field(name)
    return pc.cast(pc.if_else(pc.equal(field, ""), str(default), field), pa.int64()).to_numpy(False)


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _iso_times(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    parts = pc.extract_regex(pc.fill_null(text, ""), _ISO)
    valid = parts.is_valid().to_numpy(zero_copy_only=False)  # the fields are "" where not
    y, mo, d = _ints(parts, "y"), _ints(parts, "mo", 1), _ints(parts, "d", 1)
    h, mi, s = _ints(parts, "h"), _ints(parts, "mi"), _ints(parts, "s")
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    month_ok = (mo >= 1) & (mo <= 12)
    days_in_month = _DAYS_IN_MONTH[np.where(month_ok, mo, 0)] - ((mo == 2) & ~leap)
    valid &= month_ok & (d >= 1) & (d <= days_in_month) & (h <= 23) & (mi <= 59) & (s <= 59)
    # The fraction's first nine digits are nanoseconds; further digits are ignored.
    fraction = pc.utf8_rpad(pc.utf8_slice_codeunits(parts.field("f"), 0, 9), 9, "0")
    nanos = pc.cast(fraction, pa.int64()).to_numpy(False)
    sign = np.where(pc.equal(parts.field("sign"), "-").to_numpy(False), -1, 1)
    offset = sign * (_ints(parts, "oh") * 3600 + _ints(parts, "om") * 60)
    valid &= _ints(parts, "om") <= 59
    seconds = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
    return np.where(valid, seconds * NS + nanos, 0), valid


def event_times(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(nanoseconds since the epoch, usable) of each value: timestamps (naive ones are UTC),
    dates (midnight UTC), ISO-8601 text (no offset: UTC; a bare date: midnight UTC), epoch
    seconds as numbers (fractions allowed). Anything else, and null, is not usable."""
    array = _plain(array)
    kind = array.type
    n = len(array)
    if pa.types.is_timestamp(kind):
        ns = pc.cast(array.cast(pa.timestamp(kind.unit)), pa.timestamp("ns"), safe=False)
        out = ns.cast(pa.int64())
    elif pa.types.is_date(kind):
        out = pc.multiply(array.cast(pa.date32()).cast(pa.int32()).cast(pa.int64()), 86400 * NS)
    elif pa.types.is_integer(kind):
        seconds = array.cast(pa.int64()).to_numpy(zero_copy_only=False)
        valid = array.is_valid().to_numpy(zero_copy_only=False) & (np.abs(seconds) < 9_000_000_000)
        return np.where(valid, seconds, 0) * NS, valid
    elif pa.types.is_floating(kind):
        seconds = pc.fill_null(array.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        valid = np.isfinite(seconds) & (np.abs(seconds) < 9e9)
        return np.where(valid, np.rint(seconds * NS), 0).astype(np.int64), valid
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return _iso_times(array.cast(pa.string()))
    else:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    valid = out.is_valid().to_numpy(zero_copy_only=False)
    return pc.fill_null(out, 0).to_numpy(zero_copy_only=False), valid


def first_present(schema: pa.Schema, names: tuple[str, ...], given: str | None = None) -> str | None:
    """`given` when the schema has it, else the first of `names` it has (None: none)."""
    candidates = (given,) if given else names
    return next((n for n in candidates if resolve(schema, n) is not None), None)
