"""sigmarrow: Sigma detection rules compiled by pySigma, matched by a Rust engine over
Apache Arrow data.

    >>> import sigmarrow
    >>> m = sigmarrow.compile("rules/")                  # doctest: +SKIP
    >>> hits = m.match(table)                            # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sigmarrow._lazy import lazy_getattr
from sigmarrow.errors import (
    DataError,
    PipelineError,
    ProgramError,
    RuleError,
    SigmarrowError,
    UsageError,
)

if TYPE_CHECKING:
    from sigmarrow.logsource import LogSource
    from sigmarrow.matcher import Matcher, RuleInfo, __version__, json_lines
    from sigmarrow.program import Program
    from sigmarrow.rules import LogSourceSpec, PipelineSpec, Sources, load_rules
    from sigmarrow.selection import RuleSelection

# The engine and pySigma load on first use, so that `sigmarrow --help` starts without them.
_LAZY = {
    "__version__": "sigmarrow.matcher",
    "LogSource": "sigmarrow.logsource",
    "Matcher": "sigmarrow.matcher",
    "RuleInfo": "sigmarrow.matcher",
    "json_lines": "sigmarrow.matcher",  # for the scan's JSON Lines output
    "RuleSelection": "sigmarrow.selection",
    "Program": "sigmarrow.program",
    "load_rules": "sigmarrow.rules",
}


__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = [
    "DataError",
    "LogSource",
    "Matcher",
    "PipelineError",
    "Program",
    "ProgramError",
    "RuleError",
    "RuleInfo",
    "RuleSelection",
    "SigmarrowError",
    "UsageError",
    "__version__",
    "compile",
    "json_lines",
    "load_rules",
]


def compile(
    sources: Sources,
    pipeline: PipelineSpec = None,
    logsource: LogSourceSpec = None,
    unrouted: bool = False,
    select: RuleSelection | None = None,
    filters: Sources = (),
) -> Matcher:
    """Compiles Sigma rules into a Matcher.

    `sources`: rule files, folders (recursive *.yml/*.yaml), YAML text, pySigma
    SigmaCollections, or a list of these. `pipeline`: a pySigma ProcessingPipeline, a
    pipeline name (built-in `windows`, or any name pySigma's plugin registry knows, e.g.
    `sysmon`, `sentinel_asim`), a pipeline YAML file, or a list of these applied in order.
    Rules that fail to parse, process or compile are in `Matcher.errors`, never dropped
    silently.

    `logsource`: what the data holds (`"windows"`, `"windows/process_creation"`,
    `"windows//security"`, a list, or `sigmarrow.LogSource`s): rules of other log sources are
    left out, each with its reason, in `Matcher.skipped`. A routing pipeline (built-in
    `windows`, `sysmon`, `windows-logsources`) also leaves out the rules of a product it serves
    whose category or service it cannot route, unless `unrouted=True` (docs/logsources.md).

    `select`: a `sigmarrow.RuleSelection` (level, status, tags, ids); the rules it leaves out
    are in `Matcher.skipped` too. None selects every rule (the CLI's default leaves out
    deprecated and unsupported rules).

    Correlation rules among the sources are compiled too (`Matcher.correlations`, computed
    by `Matcher.correlate`). Sigma filters, from the sources and from `filters` (files,
    folders, YAML text), are ANDed onto the rules they target as pySigma does; `Matcher.filters`
    records each and the rules it touched.
    """
    from sigmarrow.compiler import compile_rules
    from sigmarrow.matcher import Matcher
    from sigmarrow.rules import load_rules

    loaded = load_rules(sources, pipeline, logsource, unrouted, select, filters)
    errors = list(loaded.errors)
    program = compile_rules(loaded.rules, errors, loaded.skipped, loaded.correlations, loaded.filters)
    if loaded.mapped_fields:
        program.data["mapped_fields"] = loaded.mapped_fields
    return Matcher(program)
