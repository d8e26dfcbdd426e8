"""Hostile input to the engine (issue 14): data and programs from outside, and a forked
process. Each case that once crashed or hung the interpreter runs in a child process, so
that a regression fails the test instead of taking the test run down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
from test_engine_api import RULE

# The child imports the sigmarrow this test run imported.
PYTHONPATH = os.pathsep.join([str(Path(sigmarrow.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter with this sigmarrow; RULE is defined there."""
    script = f"RULE = {RULE!r}\n" + textwrap.dedent(code)
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    return subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_a_forked_child_matches_with_the_thread_count_its_parent_used():
    # The parent's thread pool is cached; in the child its threads do not exist.
    result = run_python(
        """
        import os, signal, sys, time
        import pyarrow as pa
        import sigmarrow

        m = sigmarrow.compile(RULE)
        data = pa.table({"Image": [r"C:\\Windows\\whoami.exe", r"C:\\x\\cmd.exe"] * 10_000})
        expected = m.match(data, threads=2).num_rows
        pid = os.fork()
        if pid == 0:
            os._exit(0 if m.match(data, threads=2).num_rows == expected else 3)
        for _ in range(300):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                sys.exit(os.waitstatus_to_exitcode(status))
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.exit("the forked child hung")
        """
    )
    assert result.returncode == 0, result.stderr


def test_invalid_utf8_in_any_string_layout_and_path_is_a_data_error_naming_the_column():
    # pyarrow reads such Parquet files, and views binary as string, without validating.
    result = run_python(
        r"""
        import json
        import pyarrow as pa
        import sigmarrow

        def rule(detection):
            return f"title: t\nlogsource: {{product: test}}\ndetection:\n{detection}\n  condition: sel\n"

        rules = {
            "endswith": rule("  sel:\n    Image|endswith: '\\whoami.exe'"),
            "contains": rule("  sel:\n    Image|contains: 'whoami'"),
            "regex": rule("  sel:\n    Image|re: 'who.mi'"),
            "keyword": rule("  sel:\n    - 'whoami'"),
            "filter": rule("  sel:\n    Other: 'x'\n  filter:\n    Image|contains: 'y'").replace(
                "condition: sel", "condition: sel and not filter"),
        }
        layouts = {
            "utf8": lambda v: pa.array(v, pa.binary()).view(pa.string()),
            "large_utf8": lambda v: pa.array(v, pa.large_binary()).view(pa.large_string()),
            "utf8_view": lambda v: pa.array(v, pa.binary_view()).view(pa.string_view()),
            "dictionary": lambda v: pa.DictionaryArray.from_arrays(
                pa.array(range(len(v)), pa.int32()), pa.array(v, pa.binary()).view(pa.string())),
        }
        outcomes = []
        for bad in [b"\xe4\xb8", b"\xc3", b"C:\\\xff\\whoami.exe"]:
            for name, text in rules.items():
                for layout, make in layouts.items():
                    data = pa.table({"Image": make([b"C:\\whoami.exe", bad]), "Other": ["x", "x"]})
                    try:
                        sigmarrow.compile(text).match(data)
                        outcome = "no error"
                    except Exception as e:
                        outcome = f"{type(e).__name__}: {e}"
                    outcomes.append([name, layout, repr(bad), outcome])
        print(json.dumps(outcomes))
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outcomes = json.loads(result.stdout)
    assert len(outcomes) == 3 * 5 * 4
    for name, layout, bad, outcome in outcomes:
        assert outcome.startswith('DataError: column "Image" holds a value that is not UTF-8'), (
            name, layout, bad, outcome)



def test_dictionary_keys_past_the_values_are_a_data_error_and_keys_under_nulls_are_not_read():
    m = sigmarrow.compile(RULE)
    images = pa.array([r"C:\Windows\whoami.exe", r"C:\x\cmd.exe"])
    for keys, key_type, bad in [([0, 2], pa.int32(), "2"), ([0, -1], pa.int32(), "-1"), ([-3, 0], pa.int8(), "-3"),
                                ([0, 2**32], pa.int64(), "4294967296"), ([None, 1, 7], pa.uint16(), "7")]:
        column = pa.DictionaryArray.from_arrays(pa.array(keys, key_type), images, safe=False)
        with pytest.raises(sigmarrow.DataError) as error:
            m.match(pa.table({"Image": column}))
        assert str(error.value) == f'column "Image" is not valid Arrow data: dictionary key {bad} past its 2 values'
    # A null entry's key is whatever the buffer holds: here 99, never read.
    validity = pa.py_buffer(bytes([0b101]))
    keys = pa.Array.from_buffers(pa.int32(), 3, [validity, pa.py_buffer(pa.array([0, 99, 1], pa.int32()).buffers()[1])])
    column = pa.DictionaryArray.from_arrays(keys, images)
    assert m.match_indices(pa.table({"Image": column}))[0].to_pylist() == [0]

def test_a_parquet_file_with_invalid_utf8_is_one_bad_file_that_skip_bad_files_skips(tmp_path):
    (tmp_path / "rule.yml").write_text(RULE)
    pq.write_table(pa.table({"Image": [r"C:\Windows\whoami.exe"]}), tmp_path / "good.parquet")
    bad = pa.array([b"C:\\\xe4\xb8\\whoami.exe"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"Image": bad}), tmp_path / "bad.parquet")
    result = run_python(
        f"""
        import sys
        from sigmarrow.cli import main
        sys.exit(main(["scan", {str(tmp_path / "rule.yml")!r}, "--input", {str(tmp_path / "good.parquet")!r},
                       {str(tmp_path / "bad.parquet")!r}, "--output", "-", "--skip-bad-files"]))
        """
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "panicked" not in result.stderr, result.stderr
    assert "skipped 1 bad file" in result.stderr
    assert f'{tmp_path / "bad.parquet"}: column "Image" holds a value that is not UTF-8' in result.stderr
    assert [json.loads(line)["source_file"] for line in result.stdout.splitlines()] == [
        str(tmp_path / "good.parquet")
    ]


def _with_deep_rules(conditions: dict[str, str]) -> bytes:
    """RULE's program, with a rule per condition (JSON text) placed before it."""
    program = json.loads(sigmarrow.compile(RULE).to_bytes())
    (rule,) = program["rules"]
    deep = [{**rule, "id": name, "title": name, "condition": "@" + name} for name in conditions]
    program["rules"] = [*deep, rule]
    text = json.dumps(program)
    for name, condition in conditions.items():
        text = text.replace(json.dumps("@" + name), condition)
    return text.encode()


def test_a_rule_nested_too_deep_is_that_rules_error_and_the_others_still_match():
    # The atoms stay true under an even number of nots, and under and/or alternated.
    conditions = {
        "not-150": '{"not": ' * 150 + '{"atom": 0}' + "}" * 150,
        "not-500": '{"not": ' * 500 + '{"atom": 0}' + "}" * 500,
        "and-or-64": '{"and": [{"or": [' * 32 + '{"atom": 0}' + "]}]}" * 32,
    }
    m = sigmarrow.Matcher.from_bytes(_with_deep_rules(conditions))
    assert [e.rule_id for e in m.errors] == ["not-150", "not-500"]
    assert all("nested deeper than 128 levels" in e.reason for e in m.errors), m.errors
    assert [r.id for r in m.rules] == ["and-or-64", "11111111-0000-0000-0000-000000000001"]
    hits = m.match(pa.table({"Image": [r"C:\x\cmd.exe", r"C:\Windows\whoami.exe"]}))
    assert hits["row"].to_pylist() == [1, 1]
    assert hits["rule_id"].to_pylist() == [r.id for r in m.rules]


def test_a_program_nested_past_the_loaders_limit_is_a_program_error():
    deep = _with_deep_rules({"deep": '{"not": ' * 100_000 + '{"atom": 0}' + "}" * 100_000})
    # Refused by the engine before the Python loader (which overflows its stack) reads it.
    with pytest.raises(sigmarrow.ProgramError, match=r"rules\[0\]\.condition: .*nested deeper than 1000 levels"):
        sigmarrow.Matcher.from_bytes(deep)


def _edited(edit) -> bytes:
    program = json.loads(sigmarrow.compile(RULE).to_bytes())
    edit(program)
    return json.dumps(program).encode()


def _set(path: str, value):
    """An edit setting (or, for `...`, deleting) the key at a dotted path."""

    def edit(program):
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = program
        for p in parents:
            node = node[p]
        if value is ...:
            del node[last]
        else:
            node[last] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        pytest.param(_set("rules.0.fields", [5]), r"rules\[0\]\.fields", id="rule-field-out-of-range"),
        pytest.param(_set("rules.0.fields", [-1]), r"rules\[0\]\.fields", id="negative-rule-field"),
        pytest.param(_set("atoms.0.field", -1), r"atoms\[0\]: invalid value: integer `-1`", id="negative-atom-field"),
        pytest.param(_set("rules.0.title", ...), "title", id="missing-title"),
        pytest.param(_set("rules.0.level", ...), "level", id="missing-level"),
        pytest.param(_set("rules.0.tags", 5), r"rules\[0\]\.tags", id="tags-not-a-list"),
        pytest.param(_set("errors", ...), "errors", id="missing-errors"),
        pytest.param(_set("has_keywords", ...), "has_keywords", id="missing-has-keywords"),
        pytest.param(_set("errors", [{"reason": "x", "line": 3}]), r"errors\[0\]", id="error-with-unknown-key"),
        pytest.param(_set("errors", [{"source": None}]), r"errors\[0\]", id="error-without-reason"),
        pytest.param(_set("rules", {}), "rules", id="rules-not-a-list"),
        pytest.param(_set("atoms.0", {"op": "re", "field": 0, "pattern": "x", "flags": "ix"}),
                     r"atoms\[0\]\.flags", id="unknown-regex-flag"),
        pytest.param(_set("atoms.0", {"op": "str", "field": None, "anchor": "exact", "value": "x",
                                       "cased": False}), "has_keywords", id="keyword-atom-without-has-keywords"),
        pytest.param(_set("atoms.0", {"op": "cidr", "field": 0, "network": "10.0.0.0/33"}),
                     r"atoms\[0\]\.network", id="bad-network"),
    ],
)
def test_a_hand_edited_program_is_one_program_error_naming_the_node(edit, named):
    with pytest.raises(sigmarrow.ProgramError, match=named):
        sigmarrow.Matcher.from_bytes(_edited(edit))
