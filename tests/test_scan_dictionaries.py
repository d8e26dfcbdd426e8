"""Parquet string columns read as dictionaries where the file stores them so (issue 13).

The scan reads a string column as an Arrow dictionary when every data page of it, in every
row group, is dictionary-encoded (`sigmarrow.scan.encodings`), and as it is stored when the
writer fell back to plain pages. Nothing a user sees may depend on that: the hits, their
schema and every output's bytes are those of the same events stored without dictionaries,
across files that differ in encoding, and the hits are those of the reference evaluator.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
from hypothesis import given, settings
from hypothesis import strategies as st
from lake import compile_with_rules, reference_hits
from sigmarrow.scan import TimeRange, discover_inputs, scan
from sigmarrow.scan.encodings import dictionary_columns
from sigmarrow.scan.readers import FileProgress, Projection, read
from test_bench_tools import CMD_ECHO, POWERSHELL, generate
from test_scan_inputs import corrupt_row_group

REPO = Path(__file__).resolve().parents[1]

RULES = {
    "system_services.yml": r"""
title: System process started by services.exe
id: 00000000-0000-4000-8000-0000000000d1
logsource: {category: process_creation, product: windows}
detection:
    selection:
        IntegrityLevel: System
        ParentImage|endswith: '\services.exe'
        User|startswith: 'NT AUTHORITY'
    condition: selection
level: low
""",
    "cmd_echo.yml": CMD_ECHO,
    "powershell.yml": POWERSHELL,
    "no_description.yml": r"""
title: Medium integrity without a description
id: 00000000-0000-4000-8000-0000000000d4
logsource: {category: process_creation, product: windows}
detection:
    selection:
        IntegrityLevel: Medium
        Company|contains: 'Microsoft'
    filter:
        Description: null
    condition: selection and not filter
level: informational
""",
}
KEYWORD_RULE = r"""
title: Keyword svchost netsvcs
id: 00000000-0000-4000-8000-0000000000d5
logsource: {product: windows}
detection:
    keywords: ['*-k netsvcs*']
    condition: keywords
level: low
"""
CORRELATION_RULES = r"""
title: Medium integrity process
name: medium_integrity
id: 00000000-0000-4000-8000-0000000000d6
logsource: {category: process_creation, product: windows}
detection:
    selection: {IntegrityLevel: Medium}
    condition: selection
---
title: Many medium-integrity processes on one host
name: busy_host
level: medium
correlation:
    type: event_count
    rules: [medium_integrity]
    group-by: [Computer]
    timespan: 10m
    condition: {gte: 3}
"""
#: The rows of each file of the dataset (1,200 events in all).
FILES = {"part-0.parquet": (0, 600), "part-1.parquet": (600, 900), "part-2.parquet": (900, 1200)}
#: Columns part-0 keeps as dictionaries throughout, and columns it falls back to plain for.
DICTIONARY, FELL_BACK = {"User", "IntegrityLevel", "ParentImage"}, {"Image", "CommandLine"}


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rules")
    for name, text in RULES.items():
        (folder / name).write_text(text)
    for path in (REPO / "examples" / "rules").glob("*.yml"):  # the cloudflared rules
        (folder / path.name).write_text(path.read_text())
    return folder


@pytest.fixture(scope="module")
def events(rules: Path) -> pa.Table:
    """Generated Sysmon events with positives of the rules planted (checked by the reference)."""
    matcher, parsed = compile_with_rules(rules, None)
    positives = generate.Positives(rules=parsed, program=matcher.program)
    table, planted = generate.generate_events(1200, seed=11, positives=positives, synth_rate=0.05)
    assert len({rule for _, rule, _ in planted}) >= 4
    return table


def write_dataset(folder: Path, events: pa.Table, as_stored: bool) -> Path:
    """The events in three files of several row groups. ``as_stored``: as writers store
    them, part-0 with a dictionary page limit that some columns outgrow (they fall back to
    plain pages in some row groups), part-1 without dictionaries, part-2 with dictionaries
    throughout; else all three without dictionaries."""
    folder.mkdir()
    for (name, (start, end)), options in zip(
        FILES.items(),
        [
            {"dictionary_pagesize_limit": 4096, "data_page_size": 2048, "write_batch_size": 50},
            {"use_dictionary": False},
            {},
        ],
        strict=True,
    ):
        pq.write_table(
            events.slice(start, end - start),
            folder / name,
            row_group_size=200,
            **(options if as_stored else {"use_dictionary": False}),
        )
    return folder


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory, events: pa.Table) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("datasets")
    return {
        layout: write_dataset(root / layout, events, layout == "as_stored")
        for layout in ("as_stored", "plain")
    }


def read_types(path: Path) -> dict[str, pa.DataType]:
    """The types the scan reads the columns of one file as (every column, every batch)."""
    [f], _ = discover_inputs([str(path)])
    projection = Projection([], keywords=False, everything=True)
    types: dict[str, set[pa.DataType]] = {}
    for _, batch in read(f, projection, 128, True, FileProgress()):
        for field in batch.schema:
            types.setdefault(field.name, set()).add(field.type)
    assert all(len(t) == 1 for t in types.values()), types
    return {name: t.pop() for name, t in types.items()}


def test_columns_dictionary_encoded_throughout_are_read_as_dictionaries(datasets) -> None:
    folder = datasets["as_stored"]
    part0, part1, part2 = (read_types(folder / name) for name in FILES)
    dictionary = pa.dictionary(pa.int32(), pa.string())
    assert {n for n, t in part0.items() if t == dictionary} >= DICTIONARY
    assert {n for n, t in part0.items() if t == pa.string()} >= FELL_BACK
    assert all(t != dictionary for t in part1.values())
    assert {n for n, t in part2.items() if t == dictionary} == set(part2) - {"EventID"}
    assert part2["EventID"] == pa.int64()  # numbers are read as stored
    assert all(t != dictionary for t in read_types(datasets["plain"] / "part-0.parquet").values())


@pytest.mark.parametrize("version", ["1.0", "2.6"])
@pytest.mark.parametrize("data_page_version", ["1.0", "2.0"])
def test_fallback_to_plain_pages_is_seen_in_any_row_group(tmp_path, version, data_page_version):
    """A column whose dictionary outgrows its limit in one row group only is read plain,
    whatever the format version (in format 2, the dictionary page itself is PLAIN)."""
    rows = 4000
    table = pa.table(
        {
            "low": [f"value {i % 7}" for i in range(rows)],
            # distinct values in the second row group only
            "late": [
                f"value {i % 3}" if i < rows // 2 else f"distinct {i:08d}" for i in range(rows)
            ],
            "high": [f"distinct {i:08d}" for i in range(rows)],
            "never": [f"value {i % 5}" for i in range(rows)],
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(
        table,
        path,
        version=version,
        data_page_version=data_page_version,
        row_group_size=rows // 2,
        dictionary_pagesize_limit=4096,
        write_batch_size=100,
        use_dictionary=["low", "late", "high"],
    )
    with pa.OSFile(str(path)) as handle:
        assert dictionary_columns(handle, table.column_names) == ["low"]
        assert dictionary_columns(handle, ["high", "low", "missing"]) == ["low"]
        assert dictionary_columns(handle, []) == []


def test_footers_without_page_encoding_stats(tmp_path) -> None:
    """Polars writes no page encoding stats, and its format 2 layout lists PLAIN for the
    dictionary page: the encodings cannot say that no data page fell back, so such columns
    are read as stored; pyarrow writes the stats."""
    frame = pl.DataFrame({"low": [f"v{i % 5}" for i in range(1000)]})
    frame.write_parquet(tmp_path / "polars.parquet")
    pq.write_table(frame.to_arrow(), tmp_path / "pyarrow.parquet")
    with pa.OSFile(str(tmp_path / "polars.parquet")) as handle:
        assert dictionary_columns(handle, ["low"]) == []
    with pa.OSFile(str(tmp_path / "pyarrow.parquet")) as handle:
        assert dictionary_columns(handle, ["low"]) == ["low"]


def test_an_unreadable_footer_reads_nothing_as_dictionaries(tmp_path) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table({"low": ["a", "b"] * 10}), path)
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[-8:-4], "little")
    data[-8 - length : -8] = b"\xff" * length  # a footer pyarrow would reject too
    path.write_bytes(bytes(data))
    with pa.OSFile(str(path)) as handle:
        assert dictionary_columns(handle, ["low"]) == []


def _with_footer(tmp_path: Path, footer: bytes) -> Path:
    path = tmp_path / "hostile.parquet"
    path.write_bytes(b"PAR1" + footer + len(footer).to_bytes(4, "little") + b"PAR1")
    return path


@pytest.mark.parametrize(
    "footer",
    [
        b"\x49\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # field 4: a list of ~2^63 row groups...
        b"\x49\xf7\xff\xff\xff\xff\x0f",  # ...of doubles, which read no byte each
        b"\x1c" * 100_000 + b"\x00",  # structs nested 100,000 deep
        b"\x4b\xff\xff\xff\xff\x0f\x55",  # a map of 2^32 entries
        b"A\x00",  # the row groups as a boolean (found by hypothesis)
    ],
    ids=["huge-list", "list-of-doubles", "deep-structs", "huge-map", "row-groups-of-another-type"],
)
def test_a_hostile_footer_reads_nothing_as_dictionaries_at_once(tmp_path, footer: bytes) -> None:
    with pa.OSFile(str(_with_footer(tmp_path, footer))) as handle:
        assert dictionary_columns(handle, ["low"]) == []


@settings(max_examples=300, deadline=None)
@given(footer=st.binary(max_size=300))
def test_any_footer_bytes_give_columns_or_none(tmp_path_factory, footer: bytes) -> None:
    path = _with_footer(tmp_path_factory.mktemp("footer"), footer)
    with pa.OSFile(str(path)) as handle:
        assert set(dictionary_columns(handle, ["low", "x"])) <= {"low", "x"}


def scan_both(datasets, rules: Path, tmp_path: Path, monkeypatch, suffix: str, **options) -> dict:
    """Scan both layouts of the dataset (from inside each folder, so that hits name the same
    files); the output bytes of each, and the summaries."""
    out = {}
    matcher = sigmarrow.compile([rules, *options.pop("extra_rules", [])])
    for layout, folder in datasets.items():
        monkeypatch.chdir(folder)
        target = tmp_path / f"{layout}{suffix}"
        summary = scan(matcher, sorted(FILES), target, **options)
        out[layout] = (target.read_bytes(), summary)
        if matcher.correlations:
            out[layout] += (target.with_suffix(".alerts" + suffix).read_bytes(),)
    return out


@pytest.mark.parametrize("suffix", [".parquet", ".arrow", ".jsonl", ".csv"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"columns": ["*"]},
        {"columns": ["Image", "CommandLine", "User", "EventID"], "sort": "time"},
        {"time_range": "2026-11-02T08:00:01", "sort": "time"},
    ],
    ids=["rule-columns", "every-column", "named-columns-time-order", "time-range"],
)
def test_outputs_do_not_depend_on_the_encoding(
    datasets, rules, tmp_path, monkeypatch, suffix, options
):
    options = dict(options)
    if "time_range" in options:
        options["time_range"] = TimeRange.parse(since=options["time_range"], until=None)
    both = scan_both(datasets, rules, tmp_path, monkeypatch, suffix, **options)
    (stored, stored_summary), (plain, plain_summary) = both["as_stored"], both["plain"]
    assert stored_summary.hits > 100
    assert stored_summary.hits == plain_summary.hits
    assert stored_summary.rows == plain_summary.rows
    if "time_range" in options:
        assert 0 < stored_summary.rows_out_of_range == plain_summary.rows_out_of_range
    assert stored == plain


def test_hits_schema_has_plain_strings(datasets, rules, tmp_path, monkeypatch) -> None:
    both = scan_both(datasets, rules, tmp_path, monkeypatch, ".parquet", columns=["*"])
    schema = pq.read_schema(tmp_path / "as_stored.parquet")
    assert schema.field("Image").type == schema.field("User").type == pa.string()
    assert schema.field("EventID").type == pa.int64()
    assert both["as_stored"][0] == both["plain"][0]


def test_keywords_and_correlations_do_not_depend_on_the_encoding(
    datasets, rules, tmp_path, monkeypatch
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "keyword.yml").write_text(KEYWORD_RULE)
    (extra / "correlation.yml").write_text(CORRELATION_RULES)
    both = scan_both(datasets, rules, tmp_path, monkeypatch, ".jsonl", extra_rules=[extra])
    stored, plain = both["as_stored"], both["plain"]
    alerts = [(a.id, a.count) for a in stored[1].alerts]
    assert alerts == [(a.id, a.count) for a in plain[1].alerts] and alerts[0][1] > 0
    assert b"Keyword svchost netsvcs" in stored[0]
    assert stored[0] == plain[0] and stored[2] == plain[2]


def test_skipped_bad_files_do_not_depend_on_the_encoding(
    datasets, rules, tmp_path, monkeypatch
) -> None:
    broken = {}
    for layout, folder in datasets.items():
        copy = tmp_path / layout
        copy.mkdir()
        for name in FILES:
            (copy / name).write_bytes((folder / name).read_bytes())
        corrupt_row_group(copy / "part-0.parquet", 1)
        broken[layout] = copy
    both = scan_both(broken, rules, tmp_path, monkeypatch, ".csv", skip_bad_files=True)
    (stored, stored_summary), (plain, plain_summary) = both["as_stored"], both["plain"]
    assert [(s.path, s.rows_read) for s in stored_summary.skipped_files] == [
        ("part-0.parquet", 200)
    ]
    assert stored_summary.skipped_files[0].reason.startswith("corrupt Parquet data in row group 1")
    assert stored_summary.skipped_files == plain_summary.skipped_files
    assert stored == plain


def test_hits_equal_the_reference(datasets, rules, events, tmp_path) -> None:
    matcher, parsed = compile_with_rules(rules, None)
    out = tmp_path / "hits.parquet"
    folder = datasets["as_stored"]
    scan(matcher, [str(folder / name) for name in FILES], out)
    hits = pq.read_table(out, columns=["source_file", "source_row", "rule_id"]).to_pylist()
    first = {str(folder / name): start for name, (start, _) in FILES.items()}
    engine: dict[str, list[int]] = {}
    for hit in hits:
        engine.setdefault(hit["rule_id"].lower(), []).append(
            first[hit["source_file"]] + hit["source_row"]
        )
    as_events = [{k: v for k, v in e.items() if v is not None} for e in events.to_pylist()]
    reference = reference_hits(parsed, as_events)
    assert len(reference) >= 4
    assert {rule: sorted(rows) for rule, rows in engine.items()} == reference
