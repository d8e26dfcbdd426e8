"""JSON Lines of hits: `sigmarrow.json_lines` (the engine's encoder) and the scan's writer.

The encoder replaced a per-row Python path (`RecordBatch.to_pylist()` and `orjson.dumps`,
binary as hex, anything else orjson cannot write as `str()`). That path is kept here as the
reference: on every type whose format did not change, each line must read (`json.loads`)
as the same object, keys in the same order; the formats that changed (docs/scan.md) are
pinned by hand-written cases.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import struct
from typing import Any

import orjson
import pyarrow as pa
import pytest
import sigmarrow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigmarrow.errors import DataError
from sigmarrow.scan import writers
from sigmarrow.scan.hits import EVENT_COLUMNS_KEY, HIT_COLUMNS, HIT_SCHEMA
from sigmarrow.scan.writers import FORMATS


def reference_lines(batch: pa.RecordBatch, keep_nulls: list[str] | None = None) -> list[bytes]:
    """The lines as the per-row Python writer wrote them."""
    rows = batch.to_pylist()
    if keep_nulls is not None:
        rows = [{k: v for k, v in r.items() if v is not None or k in keep_nulls} for r in rows]

    def default(value: Any) -> Any:
        if isinstance(value, dt.date | dt.time):  # a datetime is a date
            return value.isoformat()
        return value.hex() if isinstance(value, bytes) else str(value)

    # Times through Python's isoformat, which orjson's own format equals, except that
    # orjson 3.11 writes time(0, 0, 0, 10_000) as "00:00:00.10000".
    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME
    return [orjson.dumps(r, default=default, option=option) for r in rows]


def writer_output(batch: pa.RecordBatch) -> bytes:
    sink = io.BytesIO()
    writer = FORMATS["jsonl"].open(sink, batch.schema)
    writer.write(batch)
    writer.close()
    return sink.getvalue()


def objects(lines: list[bytes]) -> list[tuple[list[str], dict[str, Any]]]:
    """Each line's keys in order and its object."""
    parsed = [json.loads(line) for line in lines]
    return [(list(o), o) for o in parsed]


def as_float32(value: Any) -> Any:
    return None if value is None else struct.unpack("f", struct.pack("f", value))[0]


def same_as_reference(batch: pa.RecordBatch, keep_nulls: list[str] | None = None) -> None:
    new = sigmarrow.json_lines(batch, keep_nulls).to_pylist()
    assert all(line.endswith(b"}\n") and line.count(b"\n") == 1 for line in new)
    got, want = objects(new), objects(reference_lines(batch, keep_nulls))
    # float32 is now written in its own shortest digits (0.1, not 0.10000000149011612).
    singles = [f.name for f in batch.schema if f.type == pa.float32()]
    for _, row in got + want:
        for name in singles:
            if name in row:
                row[name] = as_float32(row[name])
    assert got == want


# -- hand-written cases --------------------------------------------------------------------

NASTY = [
    'a"b\\c',
    "\x00\x01\x1f\x7f",
    "tab\there\nnew\r",
    "é ü ß",
    "日本語",
    "😀🚀",
    "\u2028\u2029",
]


def test_strings_are_byte_for_byte_what_orjson_wrote():
    for strings in (pa.string(), pa.large_string(), pa.string_view()):
        batch = pa.record_batch({"s": pa.array([*NASTY, "", None], strings)})
        assert sigmarrow.json_lines(batch).to_pylist() == reference_lines(batch)


def test_every_type_of_a_hit_table_reads_as_before():
    nested = pa.struct([("x", pa.int64()), ("y", pa.string()), ("z", pa.list_(pa.float64()))])
    columns = {
        "i8": pa.array([-128, 127, None], pa.int8()),
        "i16": pa.array([-(2**15), 2**15 - 1, None], pa.int16()),
        "i32": pa.array([-(2**31), 2**31 - 1, None], pa.int32()),
        "i64": pa.array([-(2**63), 2**63 - 1, None], pa.int64()),
        "u8": pa.array([0, 255, None], pa.uint8()),
        "u16": pa.array([0, 2**16 - 1, None], pa.uint16()),
        "u32": pa.array([0, 2**32 - 1, None], pa.uint32()),
        "u64": pa.array([0, 2**64 - 1, None], pa.uint64()),
        "f64": pa.array([0.1, -1e300, 5e-324], pa.float64()),
        "f64_odd": pa.array([float("nan"), float("inf"), float("-inf")], pa.float64()),
        "f32": pa.array([0.1, 3.4e38, None], pa.float32()),
        "bool": pa.array([True, False, None]),
        "null": pa.nulls(3),
        "ts_s": pa.array([0, -1, None], pa.timestamp("s")),
        "ts_ms_utc": pa.array([0, 1_700_000_000_123, None], pa.timestamp("ms", tz="UTC")),
        "ts_us_utc": pa.array([1, 1_700_000_000_123_456, None], pa.timestamp("us", tz="UTC")),
        "ts_us_offset": pa.array([1, -1, None], pa.timestamp("us", tz="+05:30")),
        # winter and summer time of a named zone
        "ts_ms_zone": pa.array(
            [1_700_000_000_000, 1_690_000_000_000, None], pa.timestamp("ms", tz="America/New_York")
        ),
        "date32": pa.array([0, -719_162, 2_932_896], pa.date32()),  # 1970, 0001, 9999
        "date64": pa.array([0, 86_400_000 * 365, None], pa.date64()),
        "time32_s": pa.array([0, 86_399, None], pa.time32("s")),
        "time32_ms": pa.array([1, 3_723_004, None], pa.time32("ms")),
        "time64_us": pa.array([1, 3_723_000_004, None], pa.time64("us")),
        "binary": pa.array([b"\x00\xff", b"", None], pa.binary()),
        "large_binary": pa.array([b"\x01", b"ab", None], pa.large_binary()),
        "fixed_binary": pa.array([b"ab", b"\xff\x00", None], pa.binary(2)),
        "list": pa.array([["a", None], [], None], pa.list_(pa.string())),
        "large_list": pa.array([[1, 2], [None], None], pa.large_list(pa.int64())),
        "fixed_list": pa.array([[1, 2], [3, None], None], pa.list_(pa.int32(), 2)),
        "struct": pa.array(
            [{"x": 1, "y": "é", "z": [0.5]}, {"x": None, "y": None, "z": None}, None], nested
        ),
        "dictionary": pa.array(["a", "b\n", None]).dictionary_encode(),
        "dictionary_i8": pa.DictionaryArray.from_arrays(
            pa.array([1, None, 0], pa.int8()), pa.array(["x", "y"])
        ),
        "map": pa.array([[("a", 1), ("b", None)], [], None], pa.map_(pa.string(), pa.int64())),
        "large_string": pa.array(["😀", "", None], pa.large_string()),
    }
    batch = pa.record_batch(columns)
    same_as_reference(batch)
    same_as_reference(batch.slice(1))  # an offset into every buffer
    line = json.loads(sigmarrow.json_lines(batch).to_pylist()[0])
    assert line["ts_ms_zone"] == "2023-11-14T17:13:20-05:00"
    assert line["f64_odd"] is None  # NaN and infinities, as orjson wrote them
    assert line["f32"] == 0.1


# Formats that changed (docs/scan.md, "JSON Lines"), and the types Python wrote as str().
CHANGED = [
    # nanoseconds: as the other units ("T", not pandas's space), 9 digits only when needed
    (pa.timestamp("ns", tz="UTC"), 1, "1970-01-01T00:00:00.000000001+00:00"),
    (pa.timestamp("ns", tz="UTC"), 1_000, "1970-01-01T00:00:00.000001+00:00"),
    (pa.timestamp("ns"), 1_700_000_000_000_000_000, "2023-11-14T22:13:20"),
    (pa.time64("ns"), 3_723_000_000_001, "01:02:03.000000001"),  # was cut to 01:02:03
    # orjson 3.11 wrote time(0, 0, 0, 10_000) as 00:00:00.10000 (found by hypothesis)
    (pa.time64("us"), 10_000, "00:00:00.010000"),
    # an old local time whose offset has seconds keeps them (orjson cut them off)
    (pa.timestamp("s", tz="America/New_York"), -5_364_644_638, "1800-01-01T00:00:00-04:56:02"),
    (pa.float32(), 0.1, 0.1),
    (pa.float16(), 0.5, 0.5),
    # Arrow's text of the value: durations in ISO 8601, decimals in plain digits
    (pa.duration("us"), -1_500_000, "-PT1.5S"),
    (pa.decimal128(10, 7), decimal.Decimal("-0.0000001"), "-0.0000001"),  # was -1E-7
    (pa.decimal128(5, 2), decimal.Decimal("1.50"), "1.50"),
    (pa.decimal256(40, 0), decimal.Decimal(10**39), str(10**39)),
    (pa.month_day_nano_interval(), (1, 2, 3), "1 mons 2 days 0.000000003 secs"),
]


@pytest.mark.parametrize(("type", "value", "written"), CHANGED, ids=lambda c: str(c))
def test_changed_and_text_formats(type, value, written):
    batch = pa.record_batch({"v": pa.array([value, None], type)})
    lines = sigmarrow.json_lines(batch).to_pylist()
    assert [json.loads(line) for line in lines] == [{"v": written}, {"v": None}]


def test_per_rule_hits_leave_out_null_event_columns_but_keep_the_hit_columns():
    hits = pa.table({f.name: pa.nulls(2, f.type) for f in HIT_SCHEMA})
    hits = hits.append_column("Image", pa.array(["a.exe", None]))
    hits = hits.append_column("event.host", pa.array([None, "h"]))
    for per_rule, expected in ((b"rule", 1), (b"requested", 2)):
        batch = hits.replace_schema_metadata({EVENT_COLUMNS_KEY: per_rule}).to_batches()[0]
        keep = list(HIT_COLUMNS) if per_rule == b"rule" else None
        got = objects(writer_output(batch).splitlines(keepends=True))
        assert got == objects(reference_lines(batch, keep))
        assert [len(keys) - len(HIT_COLUMNS) for keys, _ in got] == [expected, expected]
        assert all(keys[: len(HIT_COLUMNS)] == list(HIT_COLUMNS) for keys, _ in got)


def test_lines_are_written_as_encoded_sliced_or_in_parts(monkeypatch):
    """The sorted path writes slices of encoded lines; a large batch is encoded in parts."""
    batch = pa.record_batch({"n": pa.array(range(10)), "s": pa.array(NASTY + [None] * 3)})
    writer = FORMATS["jsonl"].open(sink := io.BytesIO(), batch.schema)
    lines = writer.encode(batch)
    writer.write_lines(lines.slice(3, 4))
    writer.write_lines(lines.slice(0, 0))
    assert sink.getvalue() == b"".join(reference_lines(batch)[3:7])
    assert writer_output(batch) == b"".join(lines.to_pylist())
    monkeypatch.setattr(writers, "JSON_ROWS", 3)  # a batch of hits encoded in parts
    assert writer_output(batch) == b"".join(lines.to_pylist())


def test_a_value_that_cannot_be_written_names_its_column():
    too_late = pa.record_batch({"when": pa.array([0, 2**62], pa.timestamp("s"))})
    with pytest.raises(DataError, match='column "when": a value out of the range of dates'):
        sigmarrow.json_lines(too_late)
    late_time = pa.record_batch({"at": pa.array([86_400], pa.time32("s"))})
    with pytest.raises(DataError, match='column "at"'):
        sigmarrow.json_lines(late_time)
    nowhere = pa.record_batch({"t": pa.array([0], pa.timestamp("s", tz="Nowhere/Land"))})
    with pytest.raises(DataError, match='column "t": time zone "Nowhere/Land"'):
        sigmarrow.json_lines(nowhere)


# -- randomized batches --------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
# Datetimes Python (the reference) can hold, in zones whose offsets are whole minutes then.
SECONDS = st.integers(-1_577_923_200, 4_102_444_800)  # 1920 .. 2100
ZONES = st.sampled_from([None, "UTC", "+05:30", "-11:00", "Europe/Paris", "Asia/Tokyo"])


KINDS = ("int", "uint", "float", "bool", "string", "dictionary", "binary")
KINDS += ("timestamp", "date", "time", "list", "struct")


@st.composite
def columns(draw: st.DrawFn) -> pa.Array:
    rows = draw(st.shared(st.integers(0, 6), key="rows"))

    def values(element: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(st.none() | element, min_size=rows, max_size=rows))

    kind = draw(st.sampled_from(KINDS))
    if kind in ("int", "uint"):
        bits = draw(st.sampled_from([8, 16, 32, 64]))
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if kind == "int" else (0, 2**bits - 1)
        return pa.array(values(st.integers(low, high)), getattr(pa, f"{kind}{bits}")())
    if kind == "float":
        width = draw(st.sampled_from([32, 64]))
        return pa.array(
            values(st.floats(width=width)), pa.float32() if width == 32 else pa.float64()
        )
    if kind == "bool":
        return pa.array(values(st.booleans()), pa.bool_())
    if kind == "string":
        return pa.array(values(TEXT), draw(st.sampled_from([pa.string(), pa.large_string()])))
    if kind == "dictionary":
        strings = pa.array(values(st.sampled_from(["a", "b", "é"])), pa.string())
        return strings.dictionary_encode()
    if kind == "binary":
        return pa.array(values(st.binary(max_size=8)), pa.binary())
    if kind == "timestamp":
        unit = draw(st.sampled_from(["s", "ms", "us"]))
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
        fraction = st.integers(0, per_second - 1)
        counts = st.tuples(SECONDS, fraction).map(lambda t: t[0] * per_second + t[1])
        return pa.array(values(counts), pa.timestamp(unit, tz=draw(ZONES)))
    if kind == "date":
        return pa.array(values(st.dates()), draw(st.sampled_from([pa.date32(), pa.date64()])))
    if kind == "time":
        return pa.array(values(st.times()), pa.time64("us"))
    if kind == "list":
        return pa.array(values(st.lists(st.none() | TEXT, max_size=3)), pa.list_(pa.string()))
    struct = st.fixed_dictionaries({"n": st.none() | st.integers(-5, 5), "s": st.none() | TEXT})
    return pa.array(values(struct), pa.struct([("n", pa.int64()), ("s", pa.string())]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(columns(), min_size=1, max_size=6), st.booleans(), st.data())
def test_random_batches_read_as_the_reference(arrays, per_rule, data):
    names = [f"c{i}" for i in range(len(arrays))]
    batch = pa.record_batch(arrays, names)
    keep = data.draw(st.lists(st.sampled_from(names), unique=True)) if per_rule else None
    same_as_reference(batch, keep)
    if batch.num_rows:
        start = data.draw(st.integers(0, batch.num_rows - 1))
        same_as_reference(batch.slice(start), keep)


def test_dates_python_cannot_hold_are_written_too():
    batch = pa.record_batch({"d": pa.array([2_932_897], pa.date32())})  # 10000-01-01
    assert json.loads(sigmarrow.json_lines(batch).to_pylist()[0]) == {"d": "10000-01-01"}
