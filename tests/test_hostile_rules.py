"""Hostile rules (issue 14): tiny rules of huge cost and deep conditions are one rule's error,
named with the limit, and never take the other rules down; errors pySigma collected on a
collection are reported. docs/limits.md lists every limit."""

from __future__ import annotations

import time

import pytest
import sigmarrow
from sigma.collection import SigmaCollection
from sigmarrow import compiler

GOOD = """title: good
id: 22222222-2222-3333-4444-555555555555
logsource: {product: windows}
detection:
    s: {A: x}
    condition: s
"""


def _rule(detection: str) -> str:
    return (
        "title: hostile\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {product: windows}\n"
        "detection:\n" + detection
    )


def _compile(detection: str) -> sigmarrow.Matcher:
    start = time.perf_counter()
    m = sigmarrow.compile([_rule(detection), GOOD])
    assert time.perf_counter() - start < 30  # generous: the point is "not minutes"
    assert [r.title for r in m.rules] == ["good"]  # the other rule still runs
    assert [e.rule_id for e in m.errors] == ["11111111-2222-3333-4444-555555555555"]
    return m


@pytest.mark.parametrize("dashes", [8, 12])
def test_windash_on_many_dashes_is_refused_before_pysigma_expands_it(dashes: int) -> None:
    value = " ".join(f"-{chr(97 + i)}" for i in range(dashes))
    m = _compile(f"    s:\n        CommandLine|windash|contains: '{value}'\n    condition: s\n")
    assert f"windash on a value with {dashes} dashes expands to {5**dashes:,} values" in m.errors[0].reason
    assert "the limit is 20,000" in m.errors[0].reason


def test_a_yaml_alias_bomb_is_refused() -> None:
    levels = ["    a0: &a0 [" + ", ".join(["'lol'"] * 9) + "]"]
    for i in range(1, 7):
        levels.append(f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    m = _compile("\n".join(levels) + "\n    s: {A: *a6}\n    condition: s\n")
    assert "expands to more than 200,000 nodes once its aliases are followed" in m.errors[0].reason


def test_a_condition_too_deep_for_pysigma_is_that_rules_error() -> None:
    m = _compile("    a: {F: x}\n    condition: " + "not " * 200 + "a\n")
    assert "nests too deep" in m.errors[0].reason


def test_a_condition_too_deep_after_flattening_names_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """pySigma's parser gives up near 20 alternating levels, before the compiler's limit (32):
    lower the limit to see the compiler's own check."""
    monkeypatch.setattr(compiler, "MAX_CONDITION_DEPTH", 8)
    condition = "(" * 12 + "a" + "".join(f" {'and' if i % 2 else 'or'} b)" for i in range(12))
    m = _compile(f"    a: {{F: x}}\n    b: {{G: y}}\n    condition: {condition}\n")
    assert "nests 13 levels deep after flattening (the limit is 8)" in m.errors[0].reason


def test_nested_and_or_not_are_flattened() -> None:
    """Legal rules stay shallow: `a and (b and (c and d))` is one AND, `not not x` is x."""
    m = sigmarrow.compile(_rule("    a: {F: x}\n    b: {G: y}\n    c: {H: z}\n    d: {I: w}\n"
                                "    condition: a and (b and (c and not not d))\n"))
    condition = m.program.rules[0]["condition"]
    assert set(condition) == {"and"} and all("atom" in c for c in condition["and"])


def test_a_rule_of_too_many_values_is_that_rules_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "MAX_RULE_ATOMS", 3)
    m = _compile("    s:\n        A: [a, b, c, d]\n    condition: s\n")
    assert "the rule expands to 4 values; the limit is 3" in m.errors[0].reason


def test_errors_pysigma_collected_on_a_collection_are_reported() -> None:
    collection = SigmaCollection.from_yaml(
        _rule("    s: {A: x}\n    condition: nosuch\n") + "---\n" + GOOD, collect_errors=True
    )
    m = sigmarrow.compile(collection)
    assert [r.title for r in m.rules] == ["good"]
    assert len(m.errors) == 1 and m.errors[0].rule_id == "11111111-2222-3333-4444-555555555555"


def test_a_huge_regex_is_not_echoed_whole_in_its_error() -> None:
    words = "|".join(f"word{i}x" for i in range(120_000))  # 1.3 MB, past the regex size limit
    m = _compile(f"    s: {{A|re: '({words})'}}\n    condition: s\n")
    (error,) = m.errors
    assert "exceeds size limit" in error.reason
    assert f"... ({len(words) + 2:,}".replace(",", "") in error.reason
    assert len(str(error)) < 1_000
