"""Property tests: random small rules and events, the engine must agree with the reference.

Rules are built as Python data and dumped with yaml.safe_dump, so quoting is never a
question; Sigma's own escapes (`\\*`, `\\?`, `\\\\`) are in the generated values on purpose.
Event strings are assembled from pieces of the rule's values (changed in case, with
wildcards left in literally) and random characters, so near misses are common.
"""

from __future__ import annotations

import re
from typing import Any

import hypothesis
import pytest
import yaml
from conftest import events_to_table, load_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection
from sigma.types import SpecialChars
from sigmarrow import reference

FIELDS = ["a", "b", "c"]
# Case-folding traps: ß/ẞ (-> ss), Σ/σ/ς, the Kelvin sign, dotted and dotless i, an emoji.
LETTERS = ["a", "A", "b", "B", "s", "S", "ß", "ẞ", "Σ", "σ", "ς", "k", "K", "\u212a", "İ", "i", "ı"]
RULE_CHARS = [*LETTERS, "🔥", " ", "-", "/", "*", "?", "\\"]
EVENT_CHARS = [*RULE_CHARS, "\n", "\u2013", "\u0307", "1"]
# Regex atoms in the common subset of Python `re` and Rust `regex`. İ and ı stay out of
# regexes: under `i`, Python folds them to i/I (simple lowercase) and Rust does not (they
# have no simple case folding).
REGEX_LITERALS = [c for c in LETTERS if c not in {"İ", "ı"}] + ["🔥", " ", "-", "/"]
REGEX_ATOMS = [*REGEX_LITERALS, ".", r"\*", r"\?", r"\\", r"\d", r"\s", "[aß]", "[^a]", "[sσ]"]

engine_missing = load_engine()[1]
needs_engine = pytest.mark.skipif(bool(engine_missing), reason=engine_missing or "")


# --- rules -------------------------------------------------------------------------------

sigma_text = st.text(st.sampled_from(RULE_CHARS), max_size=5)


@st.composite
def regexes(draw: st.DrawFn) -> str:
    atoms = draw(st.lists(st.sampled_from(REGEX_ATOMS), min_size=1, max_size=4))
    quantified = [a + draw(st.sampled_from(["", "", "*", "+", "?"])) for a in atoms]
    return (
        draw(st.sampled_from(["", "^"]))
        + "".join(quantified)
        + draw(st.sampled_from(["", "$"]))
    )


@st.composite
def string_items(draw: st.DrawFn, field: str) -> tuple[str, Any]:
    """A string detection item: `field|modifiers: value(s)`."""
    modifiers = []
    if draw(st.booleans()):
        modifiers.append("windash")
    shape = draw(st.sampled_from(["", "contains", "startswith", "endswith"]))
    if shape:
        modifiers.append(shape)
    if draw(st.integers(0, 3)) == 0:
        modifiers.insert(draw(st.integers(0, len(modifiers))), "cased")
    values = draw(st.lists(sigma_text, min_size=1, max_size=3))
    if len(values) > 1 and draw(st.booleans()):
        modifiers.append("all")
    return "|".join([field, *modifiers]), values if len(values) > 1 else values[0]


@st.composite
def regex_items(draw: st.DrawFn, field: str) -> tuple[str, Any]:
    flags = draw(st.lists(st.sampled_from(["i", "m", "s"]), unique=True, max_size=3))
    return "|".join([field, "re", *flags]), draw(regexes())


@st.composite
def other_items(draw: st.DrawFn, field: str) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["exists", "null", "number", "compare", "fieldref", "neq", "bool"]))
    if kind == "exists":
        return f"{field}|exists", draw(st.booleans())
    if kind == "null":
        return field, None
    if kind == "number":
        return field, draw(st.integers(-2, 12))
    if kind == "compare":
        return f"{field}|{draw(st.sampled_from(['gt', 'gte', 'lt', 'lte']))}", draw(st.integers(-2, 12))
    if kind == "fieldref":
        shape = draw(st.sampled_from(["", "|contains", "|startswith", "|endswith"]))
        return f"{field}|fieldref{shape}", draw(st.sampled_from(FIELDS))
    if kind == "neq":
        return f"{field}|neq", draw(st.one_of(sigma_text, st.integers(-2, 12)))
    return field, draw(st.booleans())


@st.composite
def selections(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 7)) == 0:  # a keyword selection
        values = draw(st.lists(sigma_text, min_size=1, max_size=3))
        if draw(st.booleans()):
            return {"|contains": values}
        return values

    def mapping() -> dict[str, Any]:
        items: dict[str, Any] = {}
        for field in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True)):
            kind = draw(st.sampled_from(["string", "string", "string", "regex", "other"]))
            strategy = {"string": string_items, "regex": regex_items, "other": other_items}[kind]
            key, value = draw(strategy(field))
            items[key] = value
        return items

    if draw(st.integers(0, 4)) == 0:  # a list of maps
        return [mapping() for _ in range(draw(st.integers(1, 2)))]
    return mapping()


def conditions(names: list[str]) -> st.SearchStrategy[str]:
    leaves = st.sampled_from([*names, "1 of sel*", "all of sel*", "all of them", "1 of them"])
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            inner.map(lambda c: f"not {c}"),
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: " ".join(t)),
        ),
        max_leaves=4,
    )


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    names = [f"sel{i}" for i in range(draw(st.integers(1, 3)))]
    detection: dict[str, Any] = {name: draw(selections()) for name in names}
    detection["condition"] = draw(conditions(names))
    return {"title": "property", "logsource": {"product": "test"}, "detection": detection}


# --- events ------------------------------------------------------------------------------


def _pieces(value: Any) -> list[str]:
    """Text pieces of a rule's values, to build events that come close to matching."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _pieces(v)]
    if isinstance(value, list):
        return [p for v in value for p in _pieces(v)]
    if isinstance(value, str):
        return [value, value.upper(), value.casefold(), value.replace("\\", "")]
    if isinstance(value, bool):
        return ["true", "FALSE"]
    if isinstance(value, int):
        return [str(value), f"+{value}.0"]
    return []


@st.composite
def rules_and_events(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], list[str] | None]:
    rule = draw(rules())
    pieces = _pieces(rule["detection"]) or ["a"]
    text = st.lists(
        st.one_of(st.sampled_from(pieces), st.text(st.sampled_from(EVENT_CHARS), max_size=2)),
        max_size=3,
    ).map("".join)
    kinds = {f: draw(st.sampled_from(["str", "str", "str", "int", "bool", "missing"])) for f in FIELDS}
    values = {"str": text, "int": st.integers(-3, 14), "bool": st.booleans()}
    events = []
    for _ in range(draw(st.integers(1, 5))):
        event: dict[str, Any] = {}
        for field, kind in kinds.items():
            if kind == "missing":
                continue
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # key missing: null in Arrow
            event[field] = None if choice == 1 else draw(values[kind])
        events.append(event)
    if not any(events):  # a table needs one column to have rows
        events[0]["z"] = "z"
    keyword_columns = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(FIELDS), unique=True, max_size=2))
    )
    return rule, events, keyword_columns


# --- properties --------------------------------------------------------------------------


@needs_engine
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_and_events())
def test_engine_agrees_with_reference(
    case: tuple[dict[str, Any], list[dict[str, Any]], list[str] | None],
) -> None:
    import sigmarrow

    rule, events, keyword_columns = case
    rule_yaml = yaml.safe_dump(rule, allow_unicode=True, sort_keys=False)
    table = events_to_table(events)
    if keyword_columns is not None:  # only columns the table has
        keyword_columns = [c for c in keyword_columns if c in table.column_names]
    expected = reference.match(SigmaCollection.from_yaml(rule_yaml), events, keyword_columns)
    matcher = sigmarrow.compile(rule_yaml)
    assert not matcher.errors, f"{matcher.errors}\n{rule_yaml}"
    hits = matcher.match(table, keyword_columns=keyword_columns)
    got = list(zip(hits.column("row").to_pylist(), hits.column("rule_id").to_pylist()))
    share = "none" if not expected else "all" if len(expected) == len(events) else "some"
    hypothesis.event(f"rows matched: {share}")  # shown by --hypothesis-show-statistics
    assert got == expected, f"\n{rule_yaml}\nevents={events!r}\nkeyword_columns={keyword_columns}"
    if hasattr(matcher, "with_options"):  # the engine's shortcuts must not change answers
        plain = matcher.with_options(prefilter=False, memo=False)
        hits = plain.match(table, keyword_columns=keyword_columns)
        assert list(zip(hits.column("row").to_pylist(), hits.column("rule_id").to_pylist())) == got


# The reference's glob matcher against an independent construction: the same pattern as a
# Python regex. Runs without the engine.

glob_tokens = st.lists(
    st.one_of(
        st.sampled_from([SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE]),
        st.sampled_from(["a", "b", "ß", "\n", "🔥", ".", "*"]),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(glob_tokens, st.text(st.sampled_from(["a", "b", "ß", "\n", "🔥", ".", "*"]), max_size=8))
def test_glob_matcher_agrees_with_regex(pattern: list[Any], text: str) -> None:
    regex = "".join(
        ".*" if t is SpecialChars.WILDCARD_MULTI
        else "." if t is SpecialChars.WILDCARD_SINGLE
        else re.escape(t)
        for t in pattern
    )
    expected = re.fullmatch(regex, text, re.DOTALL) is not None
    assert reference._glob_match(pattern, text) == expected


@settings(max_examples=100, deadline=None)
@given(rules_and_events())
def test_reference_negation_is_complement(
    case: tuple[dict[str, Any], list[dict[str, Any]], list[str] | None],
) -> None:
    """Two-valued logic: `not C` matches exactly the rows `C` does not (absent included)."""
    rule, events, keyword_columns = case
    negated = {**rule, "detection": {**rule["detection"]}}
    negated["detection"]["condition"] = f"not ({rule['detection']['condition']})"
    rows = {r for r, _ in reference.match(SigmaCollection.from_yaml(yaml.safe_dump(rule)), events, keyword_columns)}
    other = {r for r, _ in reference.match(SigmaCollection.from_yaml(yaml.safe_dump(negated)), events, keyword_columns)}
    assert rows.isdisjoint(other) and rows | other == set(range(len(events)))
