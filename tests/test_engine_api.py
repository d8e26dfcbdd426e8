"""The Python API around the engine: errors, column types, serialization, inputs."""

import pickle

import pyarrow as pa
import pytest
import sigmarrow
import yaml

RULE = r"""
title: Whoami
id: 11111111-0000-0000-0000-000000000001
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|endswith: '\whoami.exe'
  condition: sel
"""
PRESENCE = """
title: Presence
id: 11111111-0000-0000-0000-000000000002
logsource: {category: test}
detection:
  has_process:
    process|exists: true
  no_tags:
    tags: null
  condition: has_process and no_tags
"""
EVENTS = pa.table({"Image": [r"C:\Windows\System32\WHOAMI.EXE", r"C:\x\cmd.exe", None]})


def test_unsupported_column_type_is_one_clear_error():
    m = sigmarrow.compile(RULE)
    data = pa.table({"Image": pa.array([[1, 2], [3]], pa.list_(pa.int64()))})
    with pytest.raises(sigmarrow.DataError, match=r'(?i)"Image".*list'):
        m.match(data)


def test_presence_tests_read_any_column_type():
    m = sigmarrow.compile(PRESENCE)
    data = pa.table(
        {
            "process": pa.array([{"pid": 1}, None, {"pid": 3}]),
            "tags": pa.array([None, None, ["a"]], pa.list_(pa.string())),
        }
    )
    assert m.match(data)["row"].to_pylist() == [0]


def test_program_round_trips_through_bytes_files_and_pickle(tmp_path):
    m = sigmarrow.compile(RULE)
    expected = m.match(EVENTS)
    m.save(tmp_path / "rules.sigmarrow")
    for again in (
        sigmarrow.Matcher.load(tmp_path / "rules.sigmarrow"),
        sigmarrow.Matcher.from_bytes(m.to_bytes()),
        pickle.loads(pickle.dumps(m)),
    ):
        assert again.match(EVENTS).equals(expected)
        assert again.rules == m.rules


def test_incompatible_program_is_refused():
    data = sigmarrow.compile(RULE).to_bytes().replace(b'"version":1', b'"version":99')
    with pytest.raises(sigmarrow.ProgramError, match="version"):
        sigmarrow.Matcher.from_bytes(data)


def test_bad_rules_are_reported_with_file_id_and_reason(tmp_path):
    (tmp_path / "good.yml").write_text(RULE)
    (tmp_path / "regex.yml").write_text(
        RULE.replace("0001", "0003").replace(r"Image|endswith: '\whoami.exe'", "Other|contains: x\n    Image|re: 'a(?=b)'")
    )
    (tmp_path / "broken.yml").write_text("title: Broken\ndetection: [unclosed\n")
    m = sigmarrow.compile(tmp_path)
    assert [r.id for r in m.rules] == ["11111111-0000-0000-0000-000000000001"]
    reasons = {e.source.rsplit("/", 1)[-1]: e for e in m.errors}
    assert set(reasons) == {"regex.yml", "broken.yml"}
    assert reasons["regex.yml"].rule_id == "11111111-0000-0000-0000-000000000003"
    assert "look-around" in reasons["regex.yml"].reason
    assert "does not parse" in reasons["broken.yml"].reason
    # What the failed rule added to the program went with it.
    assert m.fields == ["Image"] and len(m.program.atoms) == 1


def test_unknown_pipeline_is_named():
    with pytest.raises(sigmarrow.PipelineError, match="no-such-pipeline"):
        sigmarrow.compile(RULE, pipeline="no-such-pipeline")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(EVENTS, id="table"),
        pytest.param(EVENTS.to_batches()[0], id="batch"),
        pytest.param(EVENTS.to_reader(max_chunksize=1), id="reader"),
        pytest.param(pa.RecordBatchReader.from_stream(EVENTS), id="capsule-stream"),
    ],
)
def test_every_arrow_input_gives_the_same_hits(data):
    hits = sigmarrow.compile(RULE).match(data)
    assert hits["row"].to_pylist() == [0]
    assert hits.schema.metadata[b"sigmarrow.missing_fields"] == b"[]"


def test_threads_and_shortcuts_do_not_change_results():
    m = sigmarrow.compile(RULE)
    images = [r"C:\Windows\System32\whoami.exe", r"C:\x\cmd.exe", None, "WHOAMI.exe"] * 5000
    data = pa.table({"Image": images})
    expected = m.match(data, threads=1)
    assert expected.num_rows == 5000
    assert m.match(data, threads=2).equals(expected)
    assert m.with_options(prefilter=False, memo=False).match(data, threads=2).equals(expected)


def test_a_reused_matcher_gives_the_same_hits_on_new_data_and_dictionaries():
    # The engine keeps its memos from call to call and sends dictionary values through
    # them: neither may leak one call's answers into another's.
    m = sigmarrow.compile(RULE)
    plain = m.with_options(prefilter=False, memo=False)
    images = [r"C:\Windows\System32\whoami.exe", r"C:\x\cmd.exe", None, "WHOAMI.exe", "x\\whoami.exe.bak"]
    first = pa.table({"Image": images * 3000})
    # Two batches with different dictionaries, one value under two keys.
    chunks = [pa.array(images * 2 + ["y"]).dictionary_encode(), pa.array(["y", *images[::-1]] * 2).dictionary_encode()]
    dictionaries = pa.table({"Image": pa.chunked_array(chunks)})
    other = pa.table({"Image": [f"C:\\{i}\\WhoAmI.EXE" if i % 3 else f"C:\\{i}\\ok.exe" for i in range(20_000)]})
    # Slices of 3 rows keep the whole dictionary: read row by row, not evaluated whole.
    sliced = pa.Table.from_batches(dictionaries.to_batches(max_chunksize=3))
    for data in (first, dictionaries, other, first, sliced, dictionaries):
        expected = plain.match(data, threads=1)
        assert m.match(data, threads=2).equals(expected)
        assert m.match(data, threads=1).equals(expected)
    assert plain.match(other).num_rows == 13_333



@pytest.mark.parametrize("key_type", [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(),
                                      pa.uint32(), pa.uint64()])
def test_dictionaries_of_every_key_type_sliced_and_with_nulls_give_the_hits_of_plain_strings(key_type):
    # 32-bit keys without nulls are read in place, the others converted: both at an offset.
    m = sigmarrow.compile(RULE)
    images = pa.array([r"C:\Windows\System32\whoami.exe", r"C:\x\cmd.exe", r"D:\WHOAMI.exe", "whoami.exe.bak"])
    for keys in ([0, 1, 2, 3, 2, 0, 1] * 700, [0, None, 2, 3, None, 0, 1] * 700):
        column = pa.DictionaryArray.from_arrays(pa.array(keys, key_type), images)
        for offset in (0, 1, 3):
            sliced = column.slice(offset)
            expected = m.with_options(prefilter=False, memo=False).match(pa.table({"Image": sliced.cast(pa.string())}))
            assert expected.num_rows == sum(k in (0, 2) for k in keys[offset:])
            assert m.match(pa.table({"Image": sliced}), threads=2).equals(expected)

BAD_REGEX = RULE.replace("0001", "0004").replace(
    r"Image|endswith: '\whoami.exe'", r"Image|endswith: '\whoami.exe'" + "\n    CommandLine|re: 'x(?<=y)'"
)


def test_a_rule_whose_regex_the_engine_rejects_is_reported_and_the_others_still_match():
    # The rejected rule comes first, and shares its Image atom with the good one: hits must
    # still name the right rule.
    m = sigmarrow.compile([BAD_REGEX, RULE])
    (error,) = m.errors
    assert error.rule_id == "11111111-0000-0000-0000-000000000004"
    assert error.reason.startswith("regex 'x(?<=y)' does not compile: ") and "look-around" in error.reason
    assert [r.id for r in m.rules] == ["11111111-0000-0000-0000-000000000001"]
    assert m.fields == ["Image"]
    data = pa.table({"Image": EVENTS["Image"], "CommandLine": ["xy", "xy", None]})
    assert m.match(data)["rule_id"].to_pylist() == ["11111111-0000-0000-0000-000000000001"]
    again = sigmarrow.Matcher.from_bytes(m.to_bytes())
    assert again.errors == m.errors and again.rules == m.rules


def test_rule_plan_and_atom_triggers_come_from_the_engine():
    m = sigmarrow.compile(RULE)
    plan = m.rule_plan(0)
    assert plan == ([[0]], [0], []) and plan.witness == [0]
    with pytest.raises(IndexError):
        m.rule_plan(1)
    assert m.atom_triggers({"op": "re", "field": 0, "pattern": "(?i)Foo|bar\\d", "flags": ""}) == ["bar", "foo"]
    assert m.atom_triggers({"op": "null", "field": 0}) is None
    with pytest.raises(sigmarrow.ProgramError):
        m.atom_triggers({"op": "re", "field": 0})


def test_sparse_string_columns_across_chunks() -> None:
    """Wide tables are mostly nulls: null rows are set word by word and only valid rows are
    read. Chunk (4,096 rows) and word (64) boundaries, every shortcut on and off."""
    import random

    rng = random.Random(7)
    n = 10_000
    values = [None if rng.random() < 0.9 else rng.choice(["C:\\x\\evil.exe", "a evil b", "good"]) for _ in range(n)]
    rules = [
        "s: {F: null}\ncondition: s",
        "s: {F|endswith: '\\evil.exe'}\ncondition: s",
        "s: {F|contains: 'evil'}\ncondition: s",
        "s: {F|contains: 'evil'}\ncondition: not s",
    ]
    from cases import rule_yaml

    texts = [rule_yaml(d, title=f"r{i}", rule_id=f"00000000-0000-0000-0000-00000000000{i}") for i, d in enumerate(rules)]
    expected = {
        "0": [i for i, v in enumerate(values) if v is None],
        "1": [i for i, v in enumerate(values) if v is not None and v.endswith("\\evil.exe")],
        "2": [i for i, v in enumerate(values) if v is not None and "evil" in v],
        "3": [i for i, v in enumerate(values) if v is None or "evil" not in v],
    }
    for typ in (pa.string(), pa.large_string(), pa.string_view()):
        table = pa.table({"F": pa.array(values, typ)})
        for options in ({}, {"prefilter": False, "memo": False}):
            m = sigmarrow.compile(texts).with_options(**options)
            hits = m.match(table)
            got: dict[str, list[int]] = {k: [] for k in expected}
            for row, rule_id in zip(hits["row"].to_pylist(), hits["rule_id"].to_pylist(), strict=True):
                got[rule_id[-1]].append(row)
            assert got == expected, (typ, options)


def test_a_rule_the_engine_rejects_keeps_the_correlations_and_filters_of_the_others():
    from correlation_cases import base, corr, ev

    lookahead = base("bad", 3, detection={"s": {"Image|re": "a(?=b)"}, "condition": "s"})
    quiet = {"title": "quiet", "name": "quiet", "logsource": {"product": "test"},
             "filter": {"rules": ["a"], "selection": {"Host": "other"}, "condition": "not selection"}}
    docs = [base("b", 2), lookahead, base("a"), corr("burst", "event_count", ["a"]),
            corr("reads-bad", "event_count", ["bad"]), corr("top", "event_count", ["reads-bad"]),
            corr("pair", "temporal", ["b", "burst"], generate=True), quiet]
    m = sigmarrow.compile(yaml.safe_dump_all(docs, sort_keys=False))
    assert [r.title for r in m.rules] == ["b", "a"]
    assert {e.title: e.reason for e in m.errors if e.title != "bad"} == {
        "reads-bad": "references rule bad, which the engine rejected",
        "top": "references correlation reads-bad, which failed",
    }
    assert [c.id for c in m.correlations] == ["burst", "pair"]
    assert [(f.title, f.touched) for f in m.filters] == [("quiet", [m.rules[1].id])]
    events = pa.Table.from_pylist([ev(0, 2), ev(1), ev(2), ev(3, Host="other"), ev(3.5)])
    alerts = m.correlate(events, mode="every")
    # burst: 2 events of rule a on one host within 5 s (the filter drops host "other"'s);
    # pair: b and a burst within 5 s, and it reports burst's alerts (generate).
    assert sorted(zip(alerts["correlation_id"].to_pylist(), alerts["metric"].to_pylist())) == [
        ("burst", 2.0), ("burst", 3.0), ("pair", 2.0), ("pair", 2.0)
    ]
