"""Loading rules, correlation rules, Sigma filters and processing pipelines through pySigma."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule, SigmaExtendedCorrelationCondition
from sigma.exceptions import SigmaError, SigmaRuleLocation, SigmaRuleNotFoundError
from sigma.filters import SigmaFilter
from sigma.processing.pipeline import ProcessingPipeline
from sigma.processing.transformations import FieldMappingTransformation
from sigma.rule import SigmaRule, SigmaRuleBase

from sigmarrow.errors import PipelineError, RuleError
from sigmarrow.logsource import LogSource, not_applicable, parse_logsources
from sigmarrow.program import FilterRecord
from sigmarrow.rulefiles import RULE_SUFFIXES, rule_files
from sigmarrow.selection import RuleSelection

RuleSource = str | Path | SigmaCollection
Sources = RuleSource | Sequence[RuleSource]
PipelineSpec = ProcessingPipeline | str | Path | Sequence[ProcessingPipeline | str | Path] | None
LogSourceSpec = str | LogSource | Sequence[str | LogSource] | None

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
    #: The names the pipeline's field mappings give each field (`pipeline_field_names`).
    mapped_fields: dict[str, list[str]] = field(default_factory=dict)


def rule_source(rule: SigmaRuleBase) -> str | None:
    """The file a rule came from, when it came from one."""
    return str(rule.source.path) if rule.source and rule.source.path else None


def rule_key(rule: SigmaRuleBase) -> str:
    """How hits, alerts and filter records name a rule: its id, or its title when it has none."""
    return str(rule.id) if rule.id else (rule.title or "")


def rule_error(rule: SigmaRuleBase, reason: str) -> RuleError:
    rule_id = str(rule.id) if rule.id else None
    return RuleError(rule_source(rule), rule_id, rule.title or None, reason)


def _is_yaml_text(source: str) -> bool:
    return "\n" in source or source.lstrip().startswith(("title:", "{"))


_ID = re.compile(r"^id:\s*['\"]?([0-9A-Za-z-]+)", re.MULTILINE)


#: The most YAML nodes a rule file may expand to once its aliases are followed (SigmaHQ's
#: largest file has ~9,000): beyond, a 600-byte alias bomb would take pySigma gigabytes.
MAX_YAML_NODES = 200_000
#: The most values one `windash` value may expand to (5 per dash at a word start; pySigma
#: expands before anything else sees the rule). SigmaHQ's largest is 125.
MAX_WINDASH_VARIANTS = 20_000
_WINDASH_DASH = re.compile(r"\B[-/]\b")  # where pySigma's windash inserts its variants


#: PyYAML's safe loader, on libyaml when it is there: the same constructors and resolver as
#: the pure-Python one pySigma uses, at a fraction of the cost (YAML was most of a compile).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _screen(documents: list[Any]) -> str | None:
    """Why a rule file must not reach pySigma (it would take minutes or gigabytes), or None.
    Aliases are shared, not copied, by the loader: loading a bomb is cheap, walking it is not."""
    sizes: dict[int, int] = {}
    total = 0
    for document in documents:
        total += _expanded_size(document, sizes)
        if total > MAX_YAML_NODES:
            return (
                f"the YAML expands to more than {MAX_YAML_NODES:,} nodes once its aliases are "
                f"followed (the limit; docs/limits.md)"
            )
        detection = document.get("detection") if isinstance(document, dict) else None
        for key, value in _items(detection):
            if "|windash" not in str(key):
                continue
            for text_value in value if isinstance(value, list) else [value]:
                dashes = len(_WINDASH_DASH.findall(str(text_value)))
                if 5**dashes > MAX_WINDASH_VARIANTS:
                    return (
                        f"windash on a value with {dashes} dashes expands to {5**dashes:,} "
                        f"values; the limit is {MAX_WINDASH_VARIANTS:,} (docs/limits.md)"
                    )
    return None


def _expanded_size(node: Any, sizes: dict[int, int]) -> int:
    """Nodes of `node` with shared (aliased) parts counted each time they appear; iterative,
    memoized by identity, so an alias bomb costs its size in YAML, not its expansion."""
    stack = [(node, False)]
    while stack:
        current, done = stack.pop()
        if id(current) in sizes:
            continue
        children = (
            [*current.keys(), *current.values()] if isinstance(current, dict)
            else current if isinstance(current, list) else []
        )
        if done or not children:
            sizes[id(current)] = 1 + sum(sizes.get(id(c), 1) for c in children)
        else:
            stack.append((current, True))
            stack.extend((c, False) for c in children if isinstance(c, dict | list))
    return sizes.get(id(node), 1)


def _items(detection: Any) -> list[tuple[Any, Any]]:
    """(key, value) of every map inside a detection, however nested in lists."""
    out, stack = [], [detection]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            out += list(current.items())
            stack += list(current.values())
        elif isinstance(current, list):
            stack += current
    return out


def _set_ranges_aside(doc: Any) -> Any:
    """A correlation document whose condition has several operators, with all but the first
    moved to RANGE_KEY (pySigma 1.5 accepts exactly one; sigmarrow reads RANGE_KEY back)."""
    section = doc.get("correlation") if isinstance(doc, dict) else None
    if not isinstance(section, dict) or not isinstance(section.get("condition"), dict):
        return doc
    condition = section["condition"]
    ops = [k for k in condition if k in ("gt", "gte", "lt", "lte", "eq", "neq")]
    if len(ops) < 2:
        return doc
    kept = {k: v for k, v in condition.items() if k not in ops[1:]}
    return {**doc, RANGE_KEY: condition, "correlation": {**section, "condition": kept}}


def _parse(text: str, path: Path | None) -> tuple[SigmaCollection | None, list[RuleError]]:
    """One YAML document set; parse failures become errors naming the file and rule id."""
    where = str(path) if path else None
    try:
        docs = list(yaml.load_all(text, Loader=_LOADER))
        problem = _screen(docs)
        if problem:
            found = _ID.search(text)
            return None, [RuleError(where, found.group(1) if found else None, None, problem)]
        docs = [_set_ranges_aside(doc) for doc in docs]
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
        for file in rule_files(path):
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
    select: RuleSelection | None = None,
    filters: Sources = (),
) -> LoadedRules:
    """Parses rule files, folders (recursive), YAML text or SigmaCollections and applies
    the processing pipeline to a fresh copy of every rule (pipelines mutate rules). Rules
    that do not apply to the declared `logsource`s, or that the pipeline's routing does not
    route (unless `unrouted`), and those `select` leaves out, are left out with the reason
    (see `sigmarrow.logsource`, `sigmarrow.selection`).

    Sigma filters, from the rule sources and from `filters` (files, folders, YAML text), are
    ANDed onto the rules they target as pySigma does, before the pipeline. Correlation rules
    keep their references resolved to the loaded rules (`SigmaRuleReference.rule`); `select`
    chooses correlations, and the rules a chosen correlation references stay whatever their
    own level, status or tags."""
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
    correlations, referenced = _chosen_correlations(merged, select, processing, errors, skipped)
    rules = []
    for rule in merged.rules:
        if rule.errors or isinstance(rule, SigmaCorrelationRule):
            continue  # errors are already reported, with the collection's
        left_out = select.reason_left_out(rule) if select and id(rule) not in referenced else None
        reason = left_out or not_applicable(rule, declared, processing, unrouted)
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
    return LoadedRules(rules, errors, skipped, correlations, records, pipeline_field_names(processing))


def pipeline_field_names(pipeline: ProcessingPipeline | None) -> dict[str, list[str]]:
    """The names the field mappings of `pipeline` give each field, whatever the log sources
    they are limited to."""
    mapped: dict[str, list[str]] = {}
    for item in pipeline.items if pipeline is not None else ():
        transformation = item.transformation
        if isinstance(transformation, FieldMappingTransformation):
            for name, target in transformation.mapping.items():
                targets = mapped.setdefault(name or "", [])
                for t in [target] if isinstance(target, str) else target:
                    if t not in targets:
                        targets.append(t)
    return mapped


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


def _chosen_correlations(
    collection: SigmaCollection,
    select: RuleSelection | None,
    processing: ProcessingPipeline | None,
    errors: list[RuleError],
    skipped: list[RuleError],
) -> tuple[list[SigmaCorrelationRule], set[int]]:
    """The correlations `select` keeps, with those they reference (at any depth), resolved
    and processed; and the ids of every rule they reference, which stay selected too."""
    loaded: list[SigmaCorrelationRule] = []
    for candidate in collection.rules:
        if isinstance(candidate, SigmaCorrelationRule) and not candidate.errors:
            loaded.append(candidate)
    reasons = {id(r): select.reason_left_out(r) if select else None for r in loaded}
    todo = [r for r in loaded if not reasons[id(r)]]
    chosen: dict[int, SigmaCorrelationRule | None] = {}
    while todo:
        rule = todo.pop()
        if id(rule) in chosen:
            continue
        chosen[id(rule)] = _correlation(rule, collection, processing, errors)
        for reference in rule.rules or []:
            target = getattr(reference, "rule", None)  # unset when the reference did not resolve
            if isinstance(target, SigmaCorrelationRule):
                todo.append(target)
    skipped += [rule_error(r, reasons[id(r)] or "") for r in loaded if id(r) not in chosen]
    correlations = [r for r in loaded if chosen.get(id(r)) is not None]
    return correlations, {id(r.rule) for c in correlations for r in c.rules or []}


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
    from sigmarrow.pipelines import builtin_pipeline, builtin_pipeline_names
    from sigmarrow.pipelines.plugins import installed_pipelines

    name = str(spec)
    builtin = builtin_pipeline(name) if isinstance(spec, str) else None
    path = builtin or Path(name)
    if path.suffix in RULE_SUFFIXES and path.is_file():
        try:
            return ProcessingPipeline.from_yaml(path.read_text(encoding="utf-8"))
        except (SigmaError, ValueError, TypeError, KeyError) as e:
            raise PipelineError(f"pipeline file {path}: {e}") from None
    registry = installed_pipelines()
    if name in registry:
        return registry[name]()
    known = ", ".join(sorted({*builtin_pipeline_names(), *registry}))
    raise PipelineError(
        f"unknown pipeline {name!r}: not a pipeline YAML file, and not one of the known names: "
        f"{known} (pySigma pipeline plugins add names: pip install the plugin, e.g. "
        "pysigma-pipeline-sysmon)"
    )
