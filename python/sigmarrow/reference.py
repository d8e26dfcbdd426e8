"""The reference evaluator: slow, obviously correct, pure Python.

It walks pySigma's parsed condition tree (not the sigmarrow program), one event at a time,
and implements docs/semantics.md. The test suite runs every case against it and the Rust
engine; when they disagree, this module is the one that is easy to read and check.

Events are mappings; a missing key or a ``None`` value is *absent*. Values may be ``str``,
``int``, ``float``, ``bool``, ``datetime.datetime``, ``datetime.date`` or nested mappings
(struct columns).
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

__all__ = ["evaluate_rule", "match"]

# A string value is a number when it is a decimal literal. ASCII digits only ([0-9], not
# Python's Unicode-aware \d), and matched with fullmatch (Python's `$` would also accept a
# trailing newline).
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")

# ISO 8601 timestamps accepted in string values:
#   YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH:MM|±HHMM]   or a bare date YYYY-MM-DD.
# Groups: year, month, day, hour, minute, second, offset.
_ISO_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)

_REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
    SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
    SigmaRegularExpressionFlag.DOTALL: re.DOTALL,
}


# --- public API -------------------------------------------------------------------------


def evaluate_rule(
    rule: SigmaRule, event: Mapping[str, Any], keyword_fields: Sequence[str] | None
) -> bool:
    """True when any of the rule's conditions matches the event.

    ``keyword_fields`` lists the fields keyword (fieldless) values search; ``None`` means every
    key of the event whose value is a ``str``. Raises ``ValueError`` for a rule the engine
    would refuse to compile (e.g. an unresolved ``expand`` placeholder).
    """
    return _evaluate_conditions(_conditions(rule), event, keyword_fields)


def match(
    collection: SigmaCollection,
    events: Sequence[Mapping[str, Any]],
    keyword_fields: Sequence[str] | None = None,
) -> list[tuple[int, str]]:
    """(row, rule_id) for every match, ordered by row, then by rule order in the collection.

    ``rule_id`` is ``str(rule.id)``, or the rule's title when it has no id. Correlation rules
    are skipped (filters are already applied to their rules by pySigma).
    """
    rules = [
        (str(rule.id) if rule.id is not None else rule.title, _conditions(rule))
        for rule in collection.rules
        if isinstance(rule, SigmaRule)
    ]
    return [
        (row, rule_id)
        for row, event in enumerate(events)
        for rule_id, conditions in rules
        if _evaluate_conditions(conditions, event, keyword_fields)
    ]


# --- condition trees --------------------------------------------------------------------


def _conditions(rule: SigmaRule) -> list[Any]:
    # `.parsed` re-parses on every access: do it once per rule.
    conditions = [condition.parsed for condition in rule.detection.parsed_condition]
    for node in conditions:
        _check(node)
    return conditions


def _check(node: Any) -> None:
    """Refuse up front what the engine refuses to compile, whatever the event."""
    if isinstance(node, (ConditionAND, ConditionOR, ConditionNOT)):
        for arg in node.args:
            _check(arg)
    elif isinstance(node, ConditionValueExpression) and isinstance(node.value, SigmaNull):
        raise ValueError("a null keyword (value without field) is not supported")  # noqa: TRY004 (a rule refused, not a bad argument)
    elif isinstance(node, (ConditionFieldEqualsValueExpression, ConditionValueExpression)):
        values = node.value.values if isinstance(node.value, SigmaExpansion) else [node.value]
        for value in values:
            if isinstance(value, SigmaRegularExpression):
                value = value.regexp
            if isinstance(value, SigmaString) and value.contains_placeholder():
                raise ValueError(f"unresolved placeholder in {value.original!r}")


def _evaluate_conditions(
    conditions: list[Any], event: Mapping[str, Any], keyword_fields: Sequence[str] | None
) -> bool:
    if keyword_fields is None:
        keyword_fields = [key for key, value in event.items() if isinstance(value, str)]
    return any(_evaluate(node, event, keyword_fields) for node in conditions)


def _evaluate(node: Any, event: Mapping[str, Any], keyword_fields: Sequence[str]) -> bool:
    if isinstance(node, ConditionAND):
        return all(_evaluate(arg, event, keyword_fields) for arg in node.args)
    if isinstance(node, ConditionOR):
        return any(_evaluate(arg, event, keyword_fields) for arg in node.args)
    if isinstance(node, ConditionNOT):
        # Two-valued logic: a test on an absent value is false, so its negation is true.
        return not _evaluate(node.args[0], event, keyword_fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _test(node.value, _lookup(event, node.field), event)
    if isinstance(node, ConditionValueExpression):
        return _test_keyword(node.value, event, keyword_fields)
    if node is None:  # pySigma leaves None for a condition that lost all its items
        return False
    raise ValueError(f"unsupported condition node {type(node).__name__}")


def _test_keyword(value: Any, event: Mapping[str, Any], keyword_fields: Sequence[str]) -> bool:
    """A keyword matches when it is found within the value of any keyword field: a string is
    searched as `*value*` (its own wildcards kept), a number or boolean as its text."""
    if isinstance(value, SigmaExpansion):
        return any(_test_keyword(v, event, keyword_fields) for v in value.values)
    if isinstance(value, SigmaNumber | SigmaBool) and not isinstance(value, SigmaTimestampPart):
        text = str(value.number) if isinstance(value, SigmaNumber) else str(value.boolean).lower()
        value = SigmaString.from_str(text)
    if isinstance(value, SigmaString):
        searched = copy.copy(value)  # keeps SigmaCasedString's class
        many = SpecialChars.WILDCARD_MULTI
        searched.s = type(value.s)([many, *value.s, many])
        value = searched
    return any(_test(value, _lookup(event, field), event) for field in keyword_fields)


# --- events -----------------------------------------------------------------------------


def _lookup(event: Mapping[str, Any], field: str) -> Any:
    """The field's value, or None when absent.

    A top-level key of that name wins; otherwise the name is a path into struct values,
    starting at the longest dotted prefix that is a top-level key (`a.b.c` may be key `a.b`,
    child `c`, or key `a`, children `b`, `c`).
    """
    if field in event:
        return event[field]
    parts = field.split(".")
    for split in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:split])
        if head in event:
            value = event[head]
            for part in parts[split:]:
                if not isinstance(value, Mapping):
                    return None
                value = value.get(part)
            return value
    return None


def _as_text(value: Any) -> str | None:
    """The text string tests see: str as is, integers in decimal, booleans as true/false.

    Floats, timestamps, dates and structs are not text (None).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return None


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):  # booleans are not numbers
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value) if value.lstrip("+-").isdigit() else float(value)
    return None


def _as_datetime(value: Any) -> dt.datetime | None:
    """Timestamps: aware values in UTC, naive ones as they are; dates at midnight."""
    if isinstance(value, dt.datetime):  # before date: datetime is a subclass of date
        return value if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    m = _ISO_TIMESTAMP.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, offset = m.groups()
    try:
        stamp = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
        if offset is None or offset == "Z":
            return stamp
        hours, minutes = int(offset[1:3]), int(offset[-2:])
        if hours > 23 or minutes > 59:
            return None
        sign = -1 if offset[0] == "-" else 1
        delta = dt.timedelta(hours=hours, minutes=minutes)
        return (stamp - sign * delta).replace(tzinfo=None)  # to UTC
    except (ValueError, OverflowError):  # month 13, hour 24, ...: not a timestamp
        return None


def _timestamp_part(value: Any, part: TimestampPart) -> int | None:
    stamp = _as_datetime(value)
    if stamp is None:
        return None
    if part is TimestampPart.WEEK:
        return stamp.isocalendar().week  # ISO week number
    return {
        TimestampPart.MINUTE: stamp.minute,
        TimestampPart.HOUR: stamp.hour,
        TimestampPart.DAY: stamp.day,  # day of the month
        TimestampPart.MONTH: stamp.month,
        TimestampPart.YEAR: stamp.year,
    }[part]


# --- value tests ------------------------------------------------------------------------


def _test(value: Any, event_value: Any, event: Mapping[str, Any]) -> bool:
    """Does one parsed Sigma value match one event value (None = absent)?"""
    if isinstance(value, SigmaExpansion):  # windash, base64offset: always OR
        return any(_test(v, event_value, event) for v in value.values)
    if isinstance(value, SigmaNull):  # null matches only an absent value
        return event_value is None
    if isinstance(value, SigmaExists):
        return (event_value is not None) == value.exists
    if isinstance(value, SigmaCompareExpression) and value.op is CompareOperators.NEQ:
        # pySigma 1.5 turns `neq` into `not`; should a NEQ compare still arrive, give it the
        # same meaning: true for an absent value (or a value that is not a number).
        actual = _comparable(value.number, event_value)
        return actual is None or actual != value.number.number
    if event_value is None:  # every positive test on an absent value is false
        return False

    # SigmaTimestampPart is a subclass of SigmaNumber and SigmaCasedString of SigmaString:
    # check the subclasses first.
    if isinstance(value, SigmaTimestampPart):
        return _timestamp_part(event_value, value.timestamp_part) == value.number
    if isinstance(value, SigmaNumber):
        number = _as_number(event_value)
        return number is not None and number == value.number
    if isinstance(value, SigmaString):
        return _test_string(value, event_value)
    if isinstance(value, SigmaBool):
        if isinstance(event_value, bool):
            return event_value == value.boolean
        if isinstance(event_value, str):  # "true"/"false", ignoring case
            return event_value.casefold() == ("true" if value.boolean else "false")
        return False
    if isinstance(value, SigmaRegularExpression):
        return _test_regex(value, event_value)
    if isinstance(value, SigmaCIDRExpression):
        return _test_cidr(value, event_value)
    if isinstance(value, SigmaCompareExpression):
        return _compare(value.number, value.op, event_value)
    if isinstance(value, SigmaFieldReference):
        return _test_fieldref(value, event_value, event)
    raise ValueError(f"unsupported value type {type(value).__name__}")


def _test_string(value: SigmaString, event_value: Any) -> bool:
    text = _as_text(event_value)
    if text is None:
        return False
    if isinstance(value, SigmaCasedString):  # `cased`: exact comparison
        return _glob_match(_glob_tokens(value, fold=False), text)
    # Full Unicode case folding of both sides (ß -> ss, Σ/σ/ς -> σ, K -> k).
    return _glob_match(_glob_tokens(value, fold=True), text.casefold())


def _glob_tokens(value: SigmaString, fold: bool) -> list[str | SpecialChars]:
    """The pattern as single characters and wildcards; escapes are already resolved."""
    tokens: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, str):
            tokens.extend(part.casefold() if fold else part)
        elif isinstance(part, SpecialChars):
            tokens.append(part)
        else:
            raise ValueError(f"unresolved placeholder %{part.name}% in {value.original!r}")  # noqa: TRY004 (a rule refused)
    return tokens


def _glob_match(pattern: list[str | SpecialChars], text: str) -> bool:
    """Match the whole text: `*` any run (also empty, also line breaks), `?` one code point.

    A plain NFA simulation: `states` holds every pattern position reachable after the text
    consumed so far, with positions before a `*` advanced past it (a `*` may match nothing).
    """

    def skip_stars(positions: set[int]) -> set[int]:
        closed = set()
        for p in positions:
            while p < len(pattern) and pattern[p] is SpecialChars.WILDCARD_MULTI:
                closed.add(p)
                p += 1
            closed.add(p)
        return closed

    states = skip_stars({0})
    for char in text:
        following = set()
        for p in states:
            if p == len(pattern):
                continue
            token = pattern[p]
            if token is SpecialChars.WILDCARD_MULTI:
                following.add(p)  # the star eats this character and stays
            elif token is SpecialChars.WILDCARD_SINGLE or token == char:
                following.add(p + 1)
        states = skip_stars(following)
        if not states:
            return False
    return len(pattern) in states


def _test_regex(value: SigmaRegularExpression, event_value: Any) -> bool:
    """Python `re` standing in for Rust `regex`: the same within the common subset Sigma
    rules use, with known differences outside it (the tests avoid these): under `i`,
    Python folds İ and ı to i/I and Rust does not; `\\w` and `\\s` differ on a few
    characters (combining marks, U+001C..U+001F); look-arounds and back-references work
    here, while the engine refuses them at compile time."""
    text = _as_text(event_value)  # regexes see integers and booleans as text too
    if text is None:
        return False
    flags = 0
    for flag in value.flags:
        flags |= _REGEX_FLAGS[flag]
    # str() gives the regex text, including the `.*` that contains/startswith/endswith add.
    pattern = str(value.regexp)
    compiled = re.compile(pattern, flags)
    if not compiled.flags & re.MULTILINE:
        # Rust's `$` (without `m`) matches only at the very end; Python's also before a final
        # newline. Make Python's behave like Rust's.
        compiled = re.compile(_dollar_to_end_of_text(pattern), flags)
    return compiled.search(text) is not None


def _dollar_to_end_of_text(pattern: str) -> str:
    r"""Rewrite each `$` anchor (not escaped, not in a class) as `\Z`."""
    out = []
    escaped = in_class = False
    for i, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            # `]` right after `[` or `[^` is a literal member, not the end of the class.
            if char == "]" and not (pattern[i - 1] == "[" or pattern[i - 2 : i] == "[^"):
                in_class = False
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


def _test_cidr(value: SigmaCIDRExpression, event_value: Any) -> bool:
    text = _as_text(event_value)
    # Python accepts IPv6 scope ids (fe80::1%eth0); an IP address with a zone is not what a
    # network contains, and Rust's parser rejects it.
    if text is None or "%" in text:
        return False
    try:
        address = ipaddress.ip_address(text)  # rejects surrounding spaces
    except ValueError:
        return False
    # Same family only: an IPv4-mapped IPv6 address is not in an IPv4 network.
    return address.version == value.network.version and address in value.network


def _comparable(number: SigmaNumber, event_value: Any) -> int | float | None:
    """The event value as the compare modifiers see it."""
    if isinstance(number, SigmaTimestampPart):  # `hour|gt: 5` and friends
        return _timestamp_part(event_value, number.timestamp_part)
    return _as_number(event_value)


def _compare(number: SigmaNumber, op: CompareOperators, event_value: Any) -> bool:
    actual = _comparable(number, event_value)
    if actual is None:
        return False
    expected = number.number
    if op is CompareOperators.LT:
        return actual < expected
    if op is CompareOperators.LTE:
        return actual <= expected
    if op is CompareOperators.GT:
        return actual > expected
    if op is CompareOperators.GTE:
        return actual >= expected
    raise ValueError(f"unsupported comparison {op}")


def _test_fieldref(
    value: SigmaFieldReference, event_value: Any, event: Mapping[str, Any]
) -> bool:
    # Compared as text, case-insensitive; absent (or not text) on either side is false.
    text = _as_text(event_value)
    other = _as_text(_lookup(event, value.field))
    if text is None or other is None:
        return False
    text, other = text.casefold(), other.casefold()
    if value.starts_with and value.ends_with:  # contains
        return other in text
    if value.starts_with:
        return text.startswith(other)
    if value.ends_with:
        return text.endswith(other)
    return text == other
