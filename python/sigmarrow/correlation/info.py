"""What a compiled program says of its correlations and filters, as `Matcher` lists them:
plain records, without pySigma (a cached program loads without importing it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigmarrow.program import Correlation


@dataclass(frozen=True)
class CorrelationInfo:
    """A compiled correlation rule, as `Matcher.correlations` lists it."""

    index: int
    id: str
    title: str
    name: str | None
    level: str | None
    type: str
    rules: list[str]  # the references, as the rule gives them
    group_by: list[str]
    timespan: int  # seconds
    condition: dict[str, float]
    field: str | None
    generate: bool
    source: str | None

    @classmethod
    def of(cls, index: int, corr: Correlation) -> CorrelationInfo:
        return cls(
            index=index, id=corr["id"], title=corr["title"], name=corr["name"], level=corr["level"],
            type=corr["type"], rules=[i["reference"] for i in corr["inputs"]], group_by=corr["group_by"],
            timespan=corr["timespan"], condition={str(k): v for k, v in corr["condition"].items()},
            field=corr["field"],
            generate=corr["generate"], source=corr["source"],
        )


@dataclass(frozen=True)
class FilterInfo:
    """A Sigma filter and what it did, as `Matcher.filters` lists it: the rules it names
    (`["any"]`: every rule of its log source), the rules it was ANDed onto (their ids) and
    warnings (a named rule not loaded, or whose log source the filter does not cover)."""

    id: str | None
    name: str | None
    title: str
    source: str | None
    rules: list[str]
    touched: list[str]
    warnings: list[str]


def quiet_rules(correlations: Sequence[Correlation]) -> set[int]:
    """The rules whose own hits are not reported: referenced by correlations, none of which
    has `generate: true`."""
    referenced: set[int] = set()
    generated: set[int] = set()
    for corr in correlations:
        for inp in corr["inputs"]:
            if "rule" in inp:
                referenced.add(inp["rule"])
                if corr["generate"]:
                    generated.add(inp["rule"])
    return referenced - generated
