"""Log-source applicability: which rules may run on the data at all.

A Sigma rule names the log source it was written for (`product`, `category`, `service`). Data
holds the events of some log sources; the user declares which (`--logsource`, `logsource=`,
Parquet metadata or hive keys), and a routing pipeline tells which of a product's categories and
services it can pick out of a mixed table (its `add_condition` items that have log-source rule
conditions). A rule runs only when:

1. **its product is declared**: a declared `windows` keeps `product: windows` rules and drops
   zeek, linux, cisco, ... rules; a rule with no product (a generic `category: webserver` rule)
   runs on product-declared data only when a routing pipeline routes its category (the built-in
   `windows` pipeline routes `category: antivirus`) or the declaration names that category;
2. **its category and service fit the declaration**: `windows/process_creation` keeps only
   process-creation rules (and product-only rules), `windows//security` only Security ones;
3. **a routing pipeline that routes its product's categories (or services) routes its own**
   (`windows` + a category or service that no routing knows is not run, unless
   `unrouted=True`): on a mixed table such a rule would see events of every channel. A
   pipeline that routes only services (`ecs_windows`) leaves category rules alone, and the
   other way round.

Nothing declared means no constraint of the first two kinds. Each rule left out gets a reason, and
the reasons are counted ("not applicable: product zeek (24 rules)").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sigmarrow.errors import UsageError

if TYPE_CHECKING:  # pySigma loads only where rules are read: a cached scan never needs it
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.pipeline import ProcessingPipeline
    from sigma.rule import SigmaLogSource, SigmaRuleBase

_ATTRIBUTES = ("product", "category", "service")


@dataclass(frozen=True)
class LogSource:
    """A declared log source of the data; None is "any"."""

    product: str | None = None
    category: str | None = None
    service: str | None = None

    @classmethod
    def parse(cls, spec: str) -> LogSource:
        """`windows`, `windows/process_creation`, `windows//security`, `/webserver`,
        `product=windows,service=security`."""
        text = spec.strip()
        if "=" in text:
            values: dict[str, str] = {}
            for item in text.split(","):
                key, _, value = item.partition("=")
                key = key.strip().lower()
                if key not in _ATTRIBUTES or not value.strip():
                    raise UsageError(
                        f"log source {spec!r}: expected product=..., category=..., service=..."
                    )
                values[key] = value.strip().lower()
            return cls(**values)
        parts = [p.strip().lower() or None for p in text.split("/")]
        if len(parts) > 3 or not any(parts):
            raise UsageError(
                f"log source {spec!r}: expected PRODUCT[/CATEGORY[/SERVICE]], e.g. windows, "
                "windows/process_creation, windows//security"
            )
        return cls(*parts)

    def __str__(self) -> str:
        product, category, service = (v or "" for v in (self.product, self.category, self.service))
        return f"{product}/{category}/{service}".rstrip("/") or "any"


def parse_logsources(
    specs: str | LogSource | Iterable[str | LogSource] | None,
) -> list[LogSource] | None:
    """Declarations from strings (each may hold several, comma-free `;`-separated) or
    LogSources; None when nothing is declared."""
    if specs is None:
        return None
    items = [specs] if isinstance(specs, str | LogSource) else list(specs)
    out: list[LogSource] = []
    for item in items:
        if isinstance(item, LogSource):
            out.append(item)
        else:
            out += [LogSource.parse(part) for part in item.split(";") if part.strip()]
    return out or None


def routes(pipeline: ProcessingPipeline | None) -> list[LogsourceCondition]:
    """The log sources a pipeline routes: the log-source conditions of its `add_condition`
    items (`EventID: 1` for process_creation, `Channel: Security` for security, ...)."""
    from sigma.processing.conditions import LogsourceCondition
    from sigma.processing.transformations import AddConditionTransformation

    if pipeline is None:
        return []
    found = []
    for item in pipeline.items:
        if isinstance(item.transformation, AddConditionTransformation):
            found += [c for c in item.rule_conditions if isinstance(c, LogsourceCondition)]
    return found


def _norm(logsource: SigmaLogSource) -> LogSource:
    return LogSource(*((getattr(logsource, k) or "").lower() or None for k in _ATTRIBUTES))


def _routed(rule: LogSource, route_list: Sequence[LogsourceCondition]) -> bool:
    """Is some routing specific to this rule's category or service (not only its product)?"""
    for route in route_list:
        r = _norm(route.logsource)
        if not (r.category or r.service):
            continue
        if all(getattr(r, k) in (None, getattr(rule, k)) for k in _ATTRIBUTES):
            return True
    return False


def _fits(rule: LogSource, declared: LogSource, route_list: Sequence[LogsourceCondition]) -> str | None:
    """Why `rule` cannot run on data of `declared`, or None when it can."""
    if declared.product:
        if rule.product and rule.product != declared.product:
            return f"product {rule.product}"
        if not rule.product and not (
            (rule.category and rule.category == declared.category)
            or (rule.service and rule.service == declared.service)
            or _routed(rule, route_list)
        ):
            what = rule.category or rule.service or "none"
            return f"generic rule (no product) of {'category' if rule.category else 'service'} {what}"
    if declared.category and rule.category and rule.category != declared.category:
        return f"category {rule.category}"
    if declared.service and rule.service and rule.service != declared.service:
        return f"service {rule.service}"
    if declared.category and not rule.category and rule.service:
        return f"service {rule.service}"
    if declared.service and not rule.service and rule.category:
        return f"category {rule.category}"
    return None


def not_applicable(
    rule: SigmaRuleBase,
    declared: Sequence[LogSource] | None,
    pipeline: ProcessingPipeline | None,
    unrouted: bool = False,
) -> str | None:
    """Why `rule` does not run on the declared data with this pipeline's routing, or None."""
    logsource = getattr(rule, "logsource", None)
    if logsource is None:  # correlation rules have none: their base rules decide
        return None
    mine = _norm(logsource)
    route_list = routes(pipeline)
    if declared:
        reasons = [_fits(mine, d, route_list) for d in declared]
        if all(reasons):
            return f"not applicable: {reasons[0]}"
        explicit = any(
            reason is None
            and ((d.category and d.category == mine.category) or (d.service and d.service == mine.service))
            for reason, d in zip(reasons, declared, strict=True)
        )
        if explicit:  # the data holds exactly this category/service: no routing needed
            return None
    # A pipeline that routes some categories (services) of a product must route this one's:
    # ecs_windows routes services only, so its category rules are not checked.
    kind, value = ("category", mine.category) if mine.category else ("service", mine.service)
    served = {
        _norm(r.logsource).product for r in route_list if getattr(_norm(r.logsource), kind)
    }
    if not unrouted and value and mine.product in served and not _routed(mine, route_list):
        return f"not routed: no routing for {mine.product} {kind} {value} in the pipeline"
    return None
