"""Correlation rules as the program keeps them: read from pySigma's `SigmaCorrelationRule`,
linked to the compiled rules they reference, checked for cycles (docs/semantics.md,
"Correlations")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule, SigmaRuleBase

from sigmarrow.errors import RuleError
from sigmarrow.program import ConditionOp, Correlation, CorrelationInput, CorrelationType
from sigmarrow.rules import RANGE_KEY, rule_error, rule_key

OPERATORS: tuple[ConditionOp, ...] = ("gt", "gte", "lt", "lte", "eq", "neq")
VALUE_TYPES = ("value_count", "value_sum", "value_avg", "value_median", "value_percentile")


class Invalid(Exception):
    """A correlation rule that cannot be linked; the message is the reason."""


class Cycle(Invalid):
    """Correlations that reference each other in a loop; every member fails with it."""

    def __init__(self, members: list[SigmaCorrelationRule]) -> None:
        super().__init__("correlation cycle: " + " -> ".join(rule_key(c) for c in members))
        self.first = members[0]


def link_correlations(
    correlations: Sequence[SigmaCorrelationRule],
    positions: Mapping[int, int],
    errors: list[RuleError],
) -> list[Correlation]:
    """The program's correlation entries, children before parents. `positions` maps each
    compiled rule (by `id()`) to its RuleIndex; every reference must already be resolved
    (`SigmaRuleReference.rule`). A correlation that cannot be linked (a rule not in the
    program, a cycle, a bad condition, a failed child) joins `errors`."""
    linked: list[Correlation] = []
    index: dict[int, int] = {}  # id(correlation) -> its entry
    failed: dict[int, str] = {}
    visiting: list[SigmaCorrelationRule] = []
    loaded = {id(c) for c in correlations}

    def visit(corr: SigmaCorrelationRule) -> None:
        if id(corr) in index or id(corr) in failed:
            return
        if any(c is corr for c in visiting):
            raise Cycle(visiting[[id(c) for c in visiting].index(id(corr)) :] + [corr])
        visiting.append(corr)
        try:
            for ref in corr.rules or []:
                if isinstance(ref.rule, SigmaCorrelationRule) and id(ref.rule) in loaded:
                    visit(ref.rule)
            entry = _entry(corr, positions, index, failed)
        except Invalid as e:
            failed[id(corr)] = str(e)
            errors.append(rule_error(corr, str(e)))
            if isinstance(e, Cycle) and e.first is not corr:
                raise  # the members above this one on the stack fail the same way
            return
        finally:
            visiting.pop()
        index[id(corr)] = len(linked)
        linked.append(entry)

    for corr in correlations:
        visit(corr)
    return linked


def _entry(
    corr: SigmaCorrelationRule,
    positions: Mapping[int, int],
    index: Mapping[int, int],
    failed: Mapping[int, str],
) -> Correlation:
    kind = cast(CorrelationType, corr.type.name.lower())
    condition, field, percentile = _condition(corr, kind)
    inputs: list[CorrelationInput] = []
    seen: set[int] = set()
    for ref in corr.rules or []:
        target = ref.rule
        if id(target) in seen:
            raise Invalid(f"references rule {rule_key(target)} twice")
        seen.add(id(target))
        item: CorrelationInput = {
            "reference": ref.reference,
            "fields": _aliases(corr, ref.reference, target),
        }
        if isinstance(target, SigmaCorrelationRule):
            if id(target) not in index:
                why = failed.get(id(target), "it did not load")
                raise Invalid(f"references correlation {ref.reference}, which failed: {why}")
            item["correlation"] = index[id(target)]
        elif isinstance(target, SigmaRule) and id(target) in positions:
            item["rule"] = positions[id(target)]
        else:
            raise Invalid(
                f"references rule {ref.reference}, which is not in the program "
                "(it did not compile or was left out: see errors and skipped)"
            )
        inputs.append(item)
    if not inputs:
        raise Invalid("references no rules")
    return {
        "id": rule_key(corr),
        "title": corr.title or "",
        "name": corr.name,
        "level": corr.level.name.lower() if corr.level else None,
        "source": str(corr.source.path) if corr.source and corr.source.path else None,
        "type": kind,
        "inputs": inputs,
        "generate": bool(corr.generate),
        "timespan": int(corr.timespan.seconds),
        "group_by": [str(g) for g in corr.group_by or []],
        "condition": condition,
        "field": field,
        "percentile": percentile,
    }


def _aliases(corr: SigmaCorrelationRule, reference: str, target: SigmaRuleBase) -> dict[str, str]:
    """alias -> the field it stands for in the events of the rule `reference` names."""
    names = {reference, target.name, str(target.id) if target.id else None}
    return {
        alias.alias: field
        for alias in corr.aliases
        for ref, field in alias.mapping.items()
        if ref.reference in names
    }


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"condition {what}: {value!r} is not a number")
    return float(value)


def _condition(
    corr: SigmaCorrelationRule, kind: str
) -> tuple[dict[ConditionOp, float], str | None, float | None]:
    """(operators, value field, percentile). Read from the rule's own YAML where pySigma kept
    it: pySigma 1.5 truncates counts to integers and rejects ranges (rules.py keeps a range
    aside under RANGE_KEY so the rule still parses)."""
    raw = corr.custom_attributes.get(RANGE_KEY)
    if raw is None:
        section = corr.custom_attributes.get("correlation")
        raw = section.get("condition") if isinstance(section, dict) else None
    if not isinstance(raw, dict):  # absent (temporal: pySigma's default) or not from YAML
        parsed = corr.condition
        raw = {
            parsed.op.name.lower(): parsed.count,  # type: ignore[union-attr]
            "field": getattr(parsed, "fieldref", None),
            "percentile": getattr(parsed, "percentile", None),
        }
    ops = {k: raw[k] for k in OPERATORS if k in raw}
    unknown = set(raw) - set(OPERATORS) - {"field", "percentile"}
    if unknown:
        raise Invalid(f"condition has unknown keys: {', '.join(sorted(unknown))}")
    if not 1 <= len(ops) <= 2:
        raise Invalid("condition needs one operator, or two for a range")
    condition = {cast(ConditionOp, k): _number(v, k) for k, v in ops.items()}
    field = raw.get("field")
    if kind in VALUE_TYPES:
        if not isinstance(field, str) or not field:
            raise Invalid(f"{kind} needs condition.field, the field whose values it aggregates")
    else:
        field = None
    percentile = None
    if kind == "value_percentile":
        if raw.get("percentile") is None:
            raise Invalid("value_percentile needs condition.percentile (0-100)")
        percentile = _number(raw["percentile"], "percentile")
        if not 0 <= percentile <= 100:
            raise Invalid(f"condition percentile {raw['percentile']} is not within 0-100")
    return condition, field, percentile
