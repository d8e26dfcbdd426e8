"""pySigma condition trees -> the program (see `program.py`).

pySigma has already resolved escapes, modifiers and expansions (windash, base64offset, ...);
this module only maps its parsed types onto atoms, and fails a rule, with the reason, on
anything the engine cannot evaluate exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, cast

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
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
)

from sigmarrow.errors import RuleError
from sigmarrow.program import (
    Anchor,
    Compare,
    ErrorRecord,
    Expr,
    GlobAtom,
    Program,
    ProgramBuilder,
    Rule,
    StrAtom,
    TimePart,
    all_of,
    any_of,
    atom_ids,
    depth,
    negate,
    rule_record,
)
from sigmarrow.rules import rule_error, rule_source


class Unsupported(Exception):
    """A construct of one rule the engine cannot evaluate; the rule fails with this reason."""


#: The deepest condition a rule may have after and/or/not are flattened (an atom is depth 1).
#: SigmaHQ's deepest is far below; deeper is hostile input and one rule's error.
MAX_CONDITION_DEPTH = 32
#: The most atom references one rule may hold after expansion (SigmaHQ's largest: 4,432, the
#: vulnerable-driver hash list), and the most distinct atoms in a program (SigmaHQ: 34,624).
MAX_RULE_ATOMS = 50_000
MAX_PROGRAM_ATOMS = 2_000_000


_CMP: dict[CompareOperators, Compare] = {
    CompareOperators.LT: "lt",
    CompareOperators.LTE: "lte",
    CompareOperators.GT: "gt",
    CompareOperators.GTE: "gte",
}
_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}
_WILDCARD: dict[SpecialChars, Literal["many", "one"]] = {SpecialChars.WILDCARD_MULTI: "many", SpecialChars.WILDCARD_SINGLE: "one"}
# (starts with `*`, ends with `*`) -> the anchor of a value with one literal
_ANCHORS: dict[tuple[bool, bool], Anchor] = {
    (False, False): "exact", (False, True): "prefix", (True, False): "suffix"
}


def _tokens(value: SigmaString, search: bool = False) -> list[str | SpecialChars]:
    """The string's parts with adjacent literals joined and runs of `*` collapsed; with
    `search`, wrapped in `*` (a keyword is searched within a value, not compared with it)."""
    many = SpecialChars.WILDCARD_MULTI
    parts = [many, *value.s, many] if search else list(value.s)
    out: list[str | SpecialChars] = []
    for part in parts:
        if isinstance(part, Placeholder):
            raise Unsupported(f"placeholder %{part.name}% was not resolved by a pipeline (expand)")
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif not (part == many and out and out[-1] == part):
            out.append(part)
    return out


def _string_atom(field: int | None, value: SigmaString, search: bool = False) -> StrAtom | GlobAtom:
    cased = isinstance(value, SigmaCasedString)
    tokens = _tokens(value, search)
    many = SpecialChars.WILDCARD_MULTI
    literal_inside = [t for t in tokens if t != many]
    if len(literal_inside) <= 1 and all(isinstance(t, str) for t in literal_inside):
        text = cast(str, literal_inside[0]) if literal_inside else ""
        starts, ends = tokens[:1] == [many], tokens[-1:] == [many]
        anchor: Anchor = _ANCHORS.get((starts, ends), "contains")
        return {"op": "str", "field": field, "anchor": anchor, "value": text, "cased": cased}
    parts: list[dict[str, str] | Literal["many", "one"]] = [
        {"lit": t} if isinstance(t, str) else _WILDCARD[t] for t in tokens
    ]
    return {"op": "glob", "field": field, "parts": parts, "cased": cased}


def _regex_text(value: SigmaRegularExpression) -> str:
    text = []
    for part in value.regexp.s:
        if isinstance(part, Placeholder):
            raise Unsupported(f"placeholder %{part.name}% was not resolved by a pipeline (expand)")
        text.append(part if isinstance(part, str) else {"many": "*", "one": "?"}[_WILDCARD[part]])
    return "".join(text)


# Elasticsearch multi-field suffixes that pipelines such as `ecs_windows` append: they
# name an index, not a column; the value lives at the path without them.
_MULTI_FIELD_SUFFIXES = (".caseless", ".keyword", ".text")


def column_name(field: str) -> str:
    """The column (or struct path) a pipeline's field name refers to."""
    for suffix in _MULTI_FIELD_SUFFIXES:
        if field.endswith(suffix) and len(field) > len(suffix):
            return field[: -len(suffix)]
    return field


class RuleCompiler:
    """Compiles the conditions of one rule into an expression over shared atoms."""

    def __init__(self, builder: ProgramBuilder) -> None:
        self.builder = builder
        self.fields: set[int] = set()

    def field(self, name: str) -> int:
        fid = self.builder.field(column_name(name))
        self.fields.add(fid)
        return fid

    def rule(self, rule: SigmaRule) -> Expr:
        try:
            condition = any_of([self.condition(c.parsed) for c in rule.detection.parsed_condition])
        except RecursionError:
            raise Unsupported("the condition nests too deep to parse") from None
        if len(atom_ids(condition)) > MAX_RULE_ATOMS:
            raise Unsupported(
                f"the rule expands to {len(atom_ids(condition)):,} values; the limit is "
                f"{MAX_RULE_ATOMS:,} (docs/limits.md)"
            )
        if depth(condition) > MAX_CONDITION_DEPTH:
            raise Unsupported(
                f"the condition nests {depth(condition)} levels deep after flattening "
                f"(the limit is {MAX_CONDITION_DEPTH})"
            )
        return condition

    def condition(self, node: Any) -> Expr:
        if isinstance(node, ConditionAND):
            return all_of([self.condition(a) for a in node.args])
        if isinstance(node, ConditionOR):
            return any_of([self.condition(a) for a in node.args])
        if isinstance(node, ConditionNOT):
            return negate(self.condition(node.args[0]))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.value(self.field(node.field), node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        raise Unsupported(f"unsupported condition node {type(node).__name__}")

    def keyword(self, value: Any) -> Expr:
        if isinstance(value, SigmaExpansion):
            return any_of([self.keyword(v) for v in value.values])
        if isinstance(value, SigmaString):
            return self.builder.atom(_string_atom(None, value, search=True))
        if isinstance(value, (SigmaNumber, SigmaBool)) and not isinstance(value, SigmaTimestampPart):
            # Numbers and booleans as keywords are searched as their text: `4688`, `true`.
            text = str(value.number) if isinstance(value, SigmaNumber) else str(value.boolean).lower()
            return self.builder.atom({"op": "str", "field": None, "anchor": "contains", "value": text, "cased": False})
        if isinstance(value, SigmaRegularExpression):
            return self.regex(None, value)
        raise Unsupported(f"a keyword (value without field) of type {type(value).__name__}")

    def regex(self, field: int | None, value: SigmaRegularExpression) -> Expr:
        pattern = _regex_text(value)
        flags = "".join(sorted(_FLAGS[f] for f in value.flags))
        # Whether the engine can compile it is decided when the matcher is built.
        return self.builder.atom({"op": "re", "field": field, "pattern": pattern, "flags": flags})

    def time(self, field: int, value: SigmaTimestampPart, cmp: Compare) -> Expr:
        part = cast(TimePart, value.timestamp_part.name.lower())
        return self.builder.atom(
            {"op": "time", "field": field, "part": part, "cmp": cmp, "value": int(value.number)}
        )

    def value(self, field: int, value: Any) -> Expr:
        atom = self.builder.atom
        if isinstance(value, SigmaExpansion):
            return any_of([self.value(field, v) for v in value.values])
        if isinstance(value, SigmaString):
            return atom(_string_atom(field, value))
        if isinstance(value, SigmaTimestampPart):
            return self.time(field, value, "eq")
        if isinstance(value, SigmaNumber):
            return atom({"op": "num", "field": field, "cmp": "eq", "value": value.number})
        if isinstance(value, SigmaBool):
            return atom({"op": "bool", "field": field, "value": value.boolean})
        if isinstance(value, SigmaNull):
            return atom({"op": "null", "field": field})
        if isinstance(value, SigmaExists):
            exists = atom({"op": "exists", "field": field})
            return exists if value.exists else negate(exists)
        if isinstance(value, SigmaRegularExpression):
            return self.regex(field, value)
        if isinstance(value, SigmaCIDRExpression):
            return atom({"op": "cidr", "field": field, "network": str(value.network)})
        if isinstance(value, SigmaCompareExpression):
            if value.op == CompareOperators.NEQ:
                return negate(self.value(field, value.number))
            if isinstance(value.number, SigmaTimestampPart):  # e.g. Time|hour|gte: 22
                return self.time(field, value.number, _CMP[value.op])
            return atom({"op": "num", "field": field, "cmp": _CMP[value.op], "value": value.number.number})
        if isinstance(value, SigmaFieldReference):
            # startswith is a value with a trailing `*`, endswith one with a leading `*`
            anchor = _ANCHORS.get((value.ends_with, value.starts_with), "contains")
            other = self.field(value.field)
            return atom({"op": "fieldref", "field": field, "other": other, "anchor": anchor})
        raise Unsupported(f"unsupported value type {type(value).__name__} on field")


def _rule_metadata(rule: SigmaRule) -> dict[str, Any]:
    logsource = {
        k: getattr(rule.logsource, k)
        for k in ("category", "product", "service")
        if getattr(rule.logsource, k, None)
    }
    return {
        "title": rule.title or "",
        "level": rule.level.name.lower() if rule.level else None,
        "status": rule.status.name.lower() if rule.status else None,
        "tags": [str(t) for t in rule.tags],
        "logsource": logsource,
        "source": rule_source(rule),
        "author": rule.author,
        "description": rule.description,
        "name": rule.name,
    }


def compile_rules(
    rules: list[SigmaRule], errors: list[RuleError], skipped: Sequence[RuleError] = ()
) -> Program:
    """Compiles processed rules into one program; a rule that fails joins `errors`;
    `skipped` (rules left out as not applicable) is recorded with them."""
    builder = ProgramBuilder()
    compiled: list[Rule] = []
    for rule in rules:
        rc = RuleCompiler(builder)
        mark = builder.mark()
        try:
            condition = rc.rule(rule)
            if len(builder.atoms) > MAX_PROGRAM_ATOMS:
                raise Unsupported(
                    f"the program would hold more than {MAX_PROGRAM_ATOMS:,} distinct values "
                    "(the limit; docs/limits.md)"
                )
        except (Unsupported, SigmaError) as e:  # SigmaError: e.g. an undefined detection
            builder.rollback(mark)
            errors.append(rule_error(rule, str(e)))
            continue
        rule_id = str(rule.id) if rule.id else (rule.title or "")
        compiled.append(rule_record(rule_id, condition, sorted(rc.fields), **_rule_metadata(rule)))
    return builder.program(compiled, [_record(e) for e in errors], [_record(e) for e in skipped])


def _record(e: RuleError) -> ErrorRecord:
    return {"source": e.source, "rule_id": e.rule_id, "title": e.title, "reason": e.reason}
