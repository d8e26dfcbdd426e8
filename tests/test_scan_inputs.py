"""The scan's inputs: time ranges (partitions, row groups, rows), JSON documents, symlink
loops, long JSON lines, and the messages of bad inputs (EVTX, FIFOs, a bad row group).

Pruning is proven by corrupting what must not be read: a scan that opened it would fail.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
from sigmarrow.cli import main
from sigmarrow.errors import UsageError
from sigmarrow.scan import TimeRange, discover_inputs, scan
from sigmarrow.scan.readers import MAX_JSON_BYTES
from test_scan import PORTABLE_RULE, Run

HIT = r"C:\Users\alice\Downloads\cloudflared.exe"
MISS = r"C:\Windows\explorer.exe"
NS = 1_000_000_000


@pytest.fixture(scope="module")
def matcher():
    return sigmarrow.compile(PORTABLE_RULE)


@pytest.fixture
def sigscan(capsys, tmp_path):
    rules = tmp_path / "rule.yml"
    rules.write_text(PORTABLE_RULE)

    def run(*args: object) -> Run:
        code = main(["scan", str(rules), *map(str, args)])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Run(code, captured.out, captured.err)

    return run


def day_table(day: dt.date, hours: range = range(24), **columns: pa.Array) -> pa.Table:
    """One event per hour of `day`; the even hours run cloudflared."""
    times = [dt.datetime(day.year, day.month, day.day, h, tzinfo=dt.UTC) for h in hours]
    return pa.table(
        {
            "TimeCreated": [t.isoformat().replace("+00:00", "Z") for t in times],
            "Image": [HIT if h % 2 == 0 else MISS for h in hours],
            **columns,
        }
    )


def hits_of(path: Path) -> list[tuple[str, int]]:
    table = pq.read_table(path)
    return list(zip(table["source_file"].to_pylist(), table["source_row"].to_pylist(), strict=True))


def corrupt(path: Path) -> None:
    """Bytes that no reader accepts, under the name of a data file."""
    path.write_bytes(b"PAR1 this is not Parquet " * 40)


def corrupt_row_group(path: Path, index: int) -> None:
    """Overwrite the pages of one row group; the footer (and its statistics) stay intact."""
    meta = pq.ParquetFile(path).metadata.row_group(index)
    data = bytearray(path.read_bytes())
    for j in range(meta.num_columns):
        column = meta.column(j)
        start = column.dictionary_page_offset or column.data_page_offset
        data[start : start + column.total_compressed_size] = b"\xff" * column.total_compressed_size
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------
# --since / --until
# --------------------------------------------------------------------------------------


def test_time_range_parsing():
    since = TimeRange.parse("2026-11-01", "2026-11-02T06:00:00+02:00")
    assert since.since == int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()) * NS
    assert since.until == int(dt.datetime(2026, 11, 2, 4, tzinfo=dt.UTC).timestamp()) * NS
    now = time.time_ns()
    for text, seconds in (("90d", 90 * 86400), ("12h", 12 * 3600), ("30m", 1800), ("2w", 14 * 86400)):
        got = TimeRange.parse(text).since
        assert abs(now - seconds * NS - got) < 60 * NS, text
    assert TimeRange.parse(dt.datetime(2026, 11, 1)).since == since.since  # naive: UTC
    assert TimeRange.parse(None, None) is None
    with pytest.raises(UsageError, match="--since: not a time: 'yesterday'"):
        TimeRange.parse("yesterday")
    with pytest.raises(UsageError, match="--since .* is not before --until"):
        TimeRange.parse("2026-11-02", "2026-11-01")


LAYOUTS = {
    "EventDate": lambda d: f"EventDate={d:%Y-%m-%d}",
    "Security Lake eventDay": lambda d: f"region=eu-west-1/eventDay={d:%Y%m%d}",
    "year/month/day": lambda d: f"year={d.year}/month={d.month:02d}/day={d.day:02d}",
    "hourly dt": lambda d: f"dt={d:%Y-%m-%d}-00",
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hive_date_partitions_outside_the_range_are_never_opened(matcher, tmp_path, layout):
    lake = tmp_path / "lake"
    days = [dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    for day in days:
        folder = lake / LAYOUTS[layout](day)
        folder.mkdir(parents=True)
        hours = range(1) if layout == "hourly dt" else range(24)  # an hour's partition
        pq.write_table(day_table(day, hours), folder / "part-0.parquet")
        if day != dt.date(2026, 11, 1):
            corrupt(folder / "part-0.parquet")
    out = tmp_path / "hits.parquet"
    window = TimeRange.parse("2026-11-01", "2026-11-02")
    summary = scan(matcher, [lake], out, time_range=window)
    shown = str(lake / LAYOUTS[layout](days[1]) / "part-0.parquet")
    expected = 1 if layout == "hourly dt" else 12
    assert hits_of(out) == [(shown, row) for row in range(0, 24, 2)][:expected]
    assert (summary.files, summary.files_pruned) == (1, 2)
    assert "2 files" in summary.format() and "skipped unread" in summary.format()


def test_row_groups_outside_the_range_are_never_read(matcher, tmp_path):
    """Four days a week apart, a row group each, by an ISO string and by a timestamp column
    (string statistics bound dates, not times: they prune only days away from the range)."""
    days = [dt.date(2026, 11, d) for d in (1, 8, 15, 22)]
    table = pa.concat_tables(day_table(day) for day in days)
    seconds = [
        int(dt.datetime(d.year, d.month, d.day, h, tzinfo=dt.UTC).timestamp())
        for d in days
        for h in range(24)
    ]
    table = table.append_column("ts", pa.array(seconds, pa.int64()).cast(pa.timestamp("s")))
    path = tmp_path / "days.parquet"
    pq.write_table(table, path, row_group_size=24)
    for index in (0, 3):
        corrupt_row_group(path, index)
    for time_field in ("TimeCreated", "ts"):
        out = tmp_path / "hits.parquet"
        window = TimeRange.parse("2026-11-08T12:00:00Z", "2026-11-15T12:00:00Z", time_field)
        summary = scan(matcher, [path], out, time_range=window)
        assert [row for _, row in hits_of(out)] == list(range(36, 60, 2)), time_field
        assert (summary.row_groups_pruned, summary.rows_pruned) == (2, 48)
        assert (summary.rows, summary.rows_out_of_range) == (24, 24)


def test_rows_are_filtered_exactly_and_rows_without_time_counted(matcher, tmp_path):
    times = [
        "2026-11-01T00:00:00Z",  # since: included
        "2026-11-01T01:00:00+02:00",  # 2026-10-31T23:00Z: before
        "2026-11-01 12:00:00",  # no offset: UTC
        "2026-11-02T00:00:00Z",  # until: excluded
        "2026-11-02T01:00:00+02:00",  # 2026-11-01T23:00Z: inside
        "not a time",
        None,
    ]
    data = tmp_path / "events.jsonl"
    data.write_text("".join(json.dumps({"TimeCreated": t, "Image": HIT}) + "\n" for t in times))
    out = tmp_path / "hits.parquet"
    summary = scan(matcher, [data], out, time_range=TimeRange.parse("2026-11-01", "2026-11-02"))
    assert [row for _, row in hits_of(out)] == [0, 2, 4]
    assert (summary.rows, summary.rows_out_of_range, summary.rows_without_time) == (3, 2, 2)
    text = summary.format()
    assert "2 rows out of the range" in text and "2 rows without a usable time" in text


def test_time_field_option_and_default(sigscan, tmp_path):
    data = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "UtcTime": ["2026-11-01 10:00:00", "2026-12-01 10:00:00"],
                "@timestamp": ["2026-12-01T10:00:00Z", "2026-11-01T10:00:00Z"],
                "Image": [HIT, HIT],
            }
        ),
        data,
    )
    window = ("--since", "2026-11-01", "--until", "2026-11-02")
    # By default the first usual time column present: @timestamp comes before UtcTime.
    default = sigscan("-i", data, "-o", "-", *window)
    assert default.code == 0, default.err
    assert [h["source_row"] for h in default.jsonl()] == [1]
    assert "@timestamp" in default.err
    chosen = sigscan("-i", data, "-o", "-", *window, "--time-field", "UtcTime")
    assert [h["source_row"] for h in chosen.jsonl()] == [0]
    bad = sigscan("-i", data, "-o", "-", "--since", "soon")
    assert bad.code == 2 and "--since: not a time: 'soon'" in bad.err


# --------------------------------------------------------------------------------------
# JSON documents, not only JSON Lines
# --------------------------------------------------------------------------------------

EVENTS = [{"Image": HIT, "n": {"depth": 1}}, {"Image": MISS}, {"Image": HIT, "n": 3}]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(EVENTS, indent=2),  # an array of objects, pretty-printed
        "\n".join(json.dumps(e, indent=4) for e in EVENTS),  # concatenated objects
        "".join(json.dumps(e) for e in EVENTS),  # concatenated on one line
        "\n".join(json.dumps(e) for e in EVENTS) + "\n",  # JSON Lines
        "\ufeff" + json.dumps(EVENTS, indent=2),  # with the byte order mark Windows tools write
    ],
    ids=["array", "concatenated", "one line", "JSON Lines", "BOM"],
)
@pytest.mark.parametrize("name", ["events.json", "events.json.gz"])
def test_json_documents(matcher, tmp_path, text, name):
    data = tmp_path / name
    with pa.CompressedOutputStream(str(data), "gzip") if name.endswith(".gz") else open(data, "wb") as f:
        f.write(text.encode())
    out = tmp_path / "hits.parquet"
    summary = scan(matcher, [data], out)
    assert [row for _, row in hits_of(out)] == [0, 2]
    assert summary.rows == 3


def test_large_json_document_is_read_in_pieces(matcher, tmp_path):
    """Values cut across read chunks, a batch per batch_rows, the events in file order."""
    events = [{"Image": HIT if i % 7 == 0 else MISS, "pad": "x" * (i % 5000)} for i in range(3000)]
    data = tmp_path / "big.json"
    data.write_text(json.dumps(events, indent=1))
    out = tmp_path / "hits.parquet"
    summary = scan(matcher, [data], out, batch_rows=500)
    assert [row for _, row in hits_of(out)] == [i for i in range(3000) if i % 7 == 0]
    assert summary.rows == 3000


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[{"Image": "a"},\n {"Image": }]', "line 2"),
        ('{"Image": "a"}\n{\n  "Image": "b",\n  oops\n}', "line 4"),
        ('[{"Image": "a"}, 3]', "line 1 is not a JSON object"),
        ('[{"Image": "a"}', "line 1"),
        ('[{"Image": "a"}] {"Image": "b"}', "after the array"),
    ],
)
def test_bad_json_documents_name_the_line(sigscan, tmp_path, text, where):
    data = tmp_path / "events.json"
    data.write_text(text)
    run = sigscan("-i", data, "-o", "-")
    assert run.code == 2
    assert f"{data}: " in run.err and where in run.err


# --------------------------------------------------------------------------------------
# Small things: --columns that no input has, empty Parquet files
# --------------------------------------------------------------------------------------


def test_requested_column_that_no_input_has_is_named(sigscan, tmp_path):
    data = tmp_path / "events.parquet"
    pq.write_table(pa.table({"Image": [HIT], "Computer": ["pc1"]}), data)
    run = sigscan("-i", data, "-o", "-", "--columns", "Computer,NoSuchCol")
    assert run.code == 0, run.err
    assert run.jsonl()[0]["NoSuchCol"] is None
    assert "requested columns no input has (null in every hit): NoSuchCol" in run.err
    assert "Computer" not in run.err.split("no input has")[1]


def test_empty_parquet_file_has_its_columns(matcher, tmp_path):
    data = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"Image": pa.array([], pa.string())}), data)
    summary = scan(matcher, [data], tmp_path / "hits.parquet")
    assert summary.files == 1 and summary.rows == 0
    assert summary.missing_fields == {}


# --------------------------------------------------------------------------------------
# Hostile folders and files (issue 14)
# --------------------------------------------------------------------------------------


def test_symlink_loops_are_walked_once(matcher, tmp_path):
    lake = tmp_path / "lake"
    (lake / "a" / "b").mkdir(parents=True)
    pq.write_table(pa.table({"Image": [HIT]}), lake / "a" / "b" / "x.parquet")
    (lake / "a" / "b" / "up").symlink_to("..")  # a loop
    (lake / "a" / "back").symlink_to(lake)  # a second loop: the walk doubled at every level
    (lake / "same.parquet").symlink_to(lake / "a" / "b" / "x.parquet")  # one file, two names
    started = time.perf_counter()
    files, _ = discover_inputs([lake])
    assert time.perf_counter() - started < 5
    assert [f.display for f in files] == [str(lake / "a" / "b" / "x.parquet")]
    summary = scan(matcher, files, tmp_path / "hits.parquet")
    assert summary.hits == 1
    # The same through a recursive glob, and a file:// URI.
    files, _ = discover_inputs([str(lake / "**" / "*.parquet")])
    assert [f.display for f in files] == [str(lake / "a" / "b" / "x.parquet")]
    files, _ = discover_inputs([lake.as_uri()])
    assert [f.display for f in files] == [lake.as_uri() + "/a/b/x.parquet"]


def test_json_line_over_the_limit_is_a_clear_error(sigscan, tmp_path):
    data = tmp_path / "events.jsonl"
    with open(data, "w") as f:
        f.write(json.dumps({"Image": HIT}) + "\n")
        f.write(json.dumps({"Image": "x" * (MAX_JSON_BYTES + 10)}) + "\n")
    run = sigscan("-i", data, "-o", "-")
    assert run.code == 2
    assert f"{data}: line 2 is longer than 16 MiB" in run.err
    # A JSON document with a value that large: the same limit.
    data = tmp_path / "events.json"
    data.write_text(json.dumps([{"Image": HIT}, {"Image": "x" * (MAX_JSON_BYTES + 10)}], indent=1))
    run = sigscan("-i", data, "-o", "-")
    assert run.code == 2
    assert f"{data}: the JSON value at line 5 is larger than 16 MiB" in run.err


def test_evtx_errors_say_what_is_wrong(sigscan, tmp_path):
    pytest.importorskip("evtx", reason="the evtx package is not installed")
    data = tmp_path / "broken.evtx"
    data.write_bytes(b"ElfFile\x00" + b"\x07" * 200)
    run = sigscan("-i", data, "-o", "-")
    assert run.code == 2
    message = run.err.strip().splitlines()[-1]
    assert message.startswith(f"sigmarrow scan: error: {data}: truncated .evtx file: its header"), message
    assert message.count(str(data)) == 1


def test_fifo_input_is_named_as_such(sigscan, tmp_path):
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    run = sigscan("-i", fifo, "-o", "-")
    assert run.code == 2
    assert f"input {fifo} is a named pipe (FIFO), not a file" in run.err


def test_bad_row_group_keeps_the_good_ones(sigscan, tmp_path):
    data = tmp_path / "events.parquet"
    table = pa.table({"Image": [HIT if i % 10 == 0 else MISS for i in range(400)]})
    pq.write_table(table, data, row_group_size=100)
    corrupt_row_group(data, 2)
    out = tmp_path / "hits.parquet"
    run = sigscan("-i", data, "-o", out, "--skip-bad-files")
    assert run.code == 2
    assert [row for _, row in hits_of(out)] == list(range(0, 200, 10))
    assert f"{data}: corrupt Parquet data in row group 2" in run.err
    assert "(after 200 rows)" in run.err


# A batch is matched while the hits of the one before are written (`_Loop.file`): a file
# that fails half way must still keep exactly the hits of the batches before the failure.
def test_a_batch_that_cannot_be_matched_keeps_the_hits_before_it_and_none_after(matcher, tmp_path):
    lines = ['{"Image": "C:\\\\Users\\\\a\\\\cloudflared.exe"}'] * 3 + ['{"Image": {"a": 1}}']
    lines += ['{"Image": "C:\\\\Users\\\\b\\\\cloudflared.exe"}'] * 3
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    out = tmp_path / "hits.parquet"
    summary = scan(matcher, [events], out, batch_rows=1, skip_bad_files=True)
    assert hits_of(out) == [(str(events), 0), (str(events), 1), (str(events), 2)]
    assert [(s.rows_read, "Struct" in s.reason) for s in summary.skipped_files] == [(3, True)]


def test_a_row_group_that_cannot_be_read_keeps_the_hits_of_the_batches_before_it(matcher, tmp_path):
    image = [f"C:\\Users\\u{i}\\cloudflared.exe" if i % 7 == 0 else "C:\\x.exe" for i in range(300)]
    data = tmp_path / "events.parquet"
    pq.write_table(pa.table({"Image": image}), data, row_group_size=100)
    corrupt_row_group(data, 2)
    out = tmp_path / "hits.parquet"
    summary = scan(matcher, [data], out, batch_rows=30, skip_bad_files=True)
    assert hits_of(out) == [(str(data), i) for i in range(0, 200, 7)]
    assert [s.rows_read for s in summary.skipped_files] == [200]
