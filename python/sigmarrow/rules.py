"""Loading rules, correlation rules, Sigma filters and processing pipelines through pySigma."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule, SigmaExtendedCorrelationCondition
from sigma.exceptions import SigmaError, SigmaRuleLocation, SigmaRuleNotFoundError
from sigma.filters import SigmaFilter
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule, SigmaRuleBase

from sigmarrow.errors import PipelineError, RuleError
from sigmarrow.logsource import LogSource, not_applicable, parse_logsources
from sigmarrow.program import FilterRecord

RuleSource = str | Path | SigmaCollection
Sources = RuleSource | Sequence[RuleSource]
PipelineSpec = ProcessingPipeline | str | Path | Sequence[ProcessingPipeline | str | Path] | None
LogSourceSpec = str | LogSource | Sequence[str | LogSource] | None

RULE_SUFFIXES = (".yml", ".yaml")
# Where a correlation's own condition is kept when pySigma 1.5 would reject it (a range: two
# operators, which the specification allows); pySigma is given its first operator only.
RANGE_KEY = "sigmarrow-condition"


@dataclass
class LoadedRules:
    """Rules parsed and processed by the pipeline, those that failed on the way, and those
    left out because they do not apply to the declared log sources (a reason each); the
    correlation rules, their references resolved; what each Sigma filter did."""

    rules: list[SigmaRule]
    errors: list[RuleError]
    skipped: list[RuleError] = field(default_factory=list)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    filters: list[FilterRecord] = field(default_factory=list)


def rule_source(rule: SigmaRuleBase) -> str | None:
    """The file a rule came from, when it came from one."""
    return str(rule.source.path) if rule.source and rule.source.path else None


def rule_key(rule: SigmaRuleBase) -> str:
    """How hits, alerts and filter records name a rule: its id, or its title when it has none."""
    return str(rule.id) if rule.id else (rule.title or "")


def rule_error(rule: SigmaRuleBase, reason: str) -> RuleError:
    rule_id = str(rule.id) if rule.id else None
    return RuleError(rule_source(rule), rule_id, rule.title or None, reason)


def _rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
    return [path]


def _is_yaml_text(source: str) -> bool:
    return "\n" in source or source.lstrip().startswith(("title:", "{"))


_ID = re.compile(r"^id:\s*['\"]?([0-9A-Za-z-]+)", re.MULTILINE)


def _set_ranges_aside(doc: Any) -> Any:
    """A correlation document whose condition has several operators, with all but the first
    moved to RANGE_KEY (pySigma 1.5 accepts exactly one; sigmarrow reads RANGE_KEY back)."""
    section = doc.get("correlation") if isinstance(doc, dict) else None
    condition = section.get("condition") if isinstance(section, dict) else None
    if not isinstance(condition, dict):
        return doc
    ops = [k for k in condition if k in ("gt", "gte", "lt", "lte", "eq", "neq")]
    if len(ops) < 2:
        return doc
    kept = {k: v for k, v in condition.items() if k not in ops[1:]}
    return {**doc, RANGE_KEY: condition, "correlation": {**section, "condition": kept}}


def _parse(text: str, path: Path | None) -> tuple[SigmaCollection | None, list[RuleError]]:
    """One YAML document set; parse failures become errors naming the file and rule id."""
    where = str(path) if path else None
    try:
        docs = [_set_ranges_aside(doc) for doc in yaml.safe_load_all(text)]
        collection = SigmaCollection.from_dicts(
            docs, collect_errors=True, collect_filters=True, resolve_references=False
        )
    except (SigmaError, yaml.YAMLError, ValueError, TypeError, AttributeError) as e:
        found = _ID.search(text)
        return None, [RuleError(where, found.group(1) if found else None, None, f"does not parse: {e}")]
    if path is not None:
        for rule in list(collection.rules) + list(collection.filters):
            rule.source = SigmaRuleLocation(path)
    return collection, collected_errors(collection)


def collected_errors(collection: SigmaCollection) -> list[RuleError]:
    """The errors pySigma collected on a collection's rules (`collect_errors=True`)."""
    return [
        rule_error(rule, str(problem))
        for rule in list(collection.rules) + list(collection.filters)
        for problem in rule.errors
    ]


def _source_items(sources: Sources) -> Iterable[RuleSource]:
    if isinstance(sources, (str, Path, SigmaCollection)):
        yield sources
    else:
        yield from sources


def _collections(sources: Sources, errors: list[RuleError]) -> list[SigmaCollection]:
    collections: list[SigmaCollection] = []
    for item in _source_items(sources):
        if isinstance(item, SigmaCollection):
            collections.append(copy.deepcopy(item))
            errors += collected_errors(item)
            continue
        if isinstance(item, str) and _is_yaml_text(item):
            parsed, errs = _parse(item, None)
            collections += [parsed] if parsed is not None else []
            errors += errs
            continue
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"rule path does not exist: {path}")
        for file in _rule_files(path):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                errors.append(RuleError(str(file), None, None, f"cannot read: {e}"))
                continue
            parsed, errs = _parse(text, file)
            collections += [parsed] if parsed is not None else []
            errors += errs
    return collections


def load_rules(
    sources: Sources,
    pipeline: PipelineSpec = None,
    logsource: LogSourceSpec = None,
    unrouted: bool = False,
    filters: Sources = (),
) -> LoadedRules:
    """Parses rule files, folders (recursive), YAML text or SigmaCollections and applies
    the processing pipeline to a fresh copy of every rule (pipelines mutate rules). Rules
    that do not apply to the declared `logsource`s, or that the pipeline's routing does not
    route (unless `unrouted`), are left out with the reason (see `sigmarrow.logsource`).

    Sigma filters, from the rule sources and from `filters` (files, folders, YAML text), are
    ANDed onto the rules they target as pySigma does, before the pipeline. Correlation rules
    keep their references resolved to the loaded rules (`SigmaRuleReference.rule`)."""
    declared = parse_logsources(logsource)
    processing = resolve_pipeline(pipeline)
    errors: list[RuleError] = []
    skipped: list[RuleError] = []
    collections = _collections(sources, errors)
    filter_collections = _collections(filters, errors)
    for collection in filter_collections:
        errors += [rule_error(r, "is a rule, not a filter (given as a filter)") for r in collection.rules]
    merged = SigmaCollection(
        [r for c in collections for r in c.rules + c.filters]
        + [f for c in filter_collections for f in c.filters],
        collect_filters=True,
        resolve_references=False,
    )
    records = [_apply_filter(f, merged, errors) for f in merged.filters if not f.errors]
    rules, correlations = [], []
    for rule in merged.rules:
        if rule.errors:  # already reported, with the collection's errors
            continue
        if isinstance(rule, SigmaCorrelationRule):
            correlation = _correlation(rule, merged, processing, errors)
            correlations += [correlation] if correlation else []
            continue
        reason = not_applicable(rule, declared, processing, unrouted)
        if reason:
            skipped.append(rule_error(rule, reason))
            continue
        try:
            if processing is not None:
                processing.apply(rule)
        except (SigmaError, ValueError, TypeError, KeyError) as e:
            errors.append(rule_error(rule, f"pipeline failed: {e}"))
            continue
        rules.append(rule)
    return LoadedRules(rules, errors, skipped, correlations, records)


def _apply_filter(sigma_filter: SigmaFilter, collection: SigmaCollection, errors: list[RuleError]) -> FilterRecord:
    """ANDs a filter onto the rules it targets (pySigma's own `apply_on_rule`), and records
    which rules it touched and which of its targets it could not reach."""
    targets = sigma_filter.filter.rules
    record: FilterRecord = {
        "id": str(sigma_filter.id) if sigma_filter.id else None,
        "name": sigma_filter.name,
        "title": sigma_filter.title or "",
        "source": rule_source(sigma_filter),
        "rules": ["any"] if isinstance(targets, str) else [t.reference for t in targets],
        "touched": [],
        "warnings": [],
    }
    for rule in collection.rules:
        if not isinstance(rule, SigmaRule) or rule.errors:
            continue
        before = list(rule.detection.condition)
        try:
            sigma_filter.apply_on_rule(rule)
        except SigmaError as e:
            rule.errors.append(e)
            errors.append(rule_error(rule, f"filter {record['title']!r} failed on it: {e}"))
            continue
        if rule.detection.condition != before:
            record["touched"].append(rule_key(rule))
    for reference in [] if isinstance(targets, str) else targets:
        try:
            target = collection[reference.reference]
        except SigmaRuleNotFoundError:
            record["warnings"].append(f"names rule {reference.reference}, which is not loaded")
            continue
        if rule_key(target) not in record["touched"]:
            record["warnings"].append(
                f"names rule {reference.reference}, whose log source it does not cover"
            )
    return record


def _correlation(
    rule: SigmaCorrelationRule,
    collection: SigmaCollection,
    processing: ProcessingPipeline | None,
    errors: list[RuleError],
) -> SigmaCorrelationRule | None:
    """The correlation with its references resolved and the pipeline applied (field mappings
    rename its group-by fields), or None with the reason in `errors`."""
    if isinstance(rule.condition, SigmaExtendedCorrelationCondition):
        errors.append(rule_error(rule, "boolean (extended) temporal conditions are not supported"))
        return None
    for reference in rule.rules or []:
        try:
            reference.resolve(collection)
        except SigmaRuleNotFoundError:
            errors.append(rule_error(rule, f"references rule {reference.reference}, which is not loaded"))
            return None
    try:
        if processing is not None:
            processing.apply(rule)
    except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as e:
        errors.append(rule_error(rule, f"pipeline failed: {e}"))
        return None
    return rule


@cache
def _registry() -> dict[str, Any]:
    from sigma.plugins import InstalledSigmaPlugins

    return dict(InstalledSigmaPlugins.autodiscover().pipelines)


def resolve_pipeline(spec: PipelineSpec) -> ProcessingPipeline | None:
    """A pipeline object, a built-in or registry name, a YAML file, or a list of these
    (applied in order)."""
    if spec is None:
        return None
    if isinstance(spec, ProcessingPipeline):
        return copy.deepcopy(spec)
    if isinstance(spec, (str, Path)):
        return _named_pipeline(spec)
    parts = [resolve_pipeline(s) for s in spec]
    result = ProcessingPipeline()
    for part in parts:
        if part is not None:
            result = result + part
    return result


def _named_pipeline(spec: str | Path) -> ProcessingPipeline:
    from sigmarrow.pipelines import builtin_pipeline

    name = str(spec)
    builtin = builtin_pipeline(name) if isinstance(spec, str) else None
    path = builtin or Path(name)
    if path.suffix in RULE_SUFFIXES and path.is_file():
        try:
            return ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))
        except (SigmaError, ValueError, TypeError, KeyError) as e:
            raise PipelineError(f"pipeline file {path}: {e}") from None
    registry = _registry()
    if name in registry:
        return registry[name]()
    known = ", ".join(sorted(registry))
    raise PipelineError(f"unknown pipeline {name!r}: not a YAML file, and not one of: windows, {known}")
