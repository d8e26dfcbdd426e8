"""The rule options every subcommand that takes RULES shares (scan, compile), and the one way
they turn into a Matcher: a compiled program file, the compile cache, or a compile."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sigmarrow.errors import SigmarrowError, UsageError
from sigmarrow.rulefiles import RULE_SUFFIXES

if TYPE_CHECKING:
    import sigmarrow
    from sigmarrow.cache import Compiled
    from sigmarrow.logsource import LogSource
    from sigmarrow.scan.inputs import InputFile
    from sigmarrow.selection import RuleSelection


def add_rule_arguments(p: argparse.ArgumentParser, logsource_default: str) -> None:
    p.add_argument(
        "--pipeline",
        "-p",
        action="append",
        default=[],
        metavar="NAME_OR_FILE",
        help="pySigma processing pipeline: an installed or built-in name (windows, "
        "sysmon, sentinel_asim, ecs_windows, ...) or a YAML file; repeat to "
        "apply several, in order",
    )
    p.add_argument(
        "--logsource",
        "-l",
        action="append",
        default=[],
        metavar="SOURCE",
        help="what the data holds: PRODUCT[/CATEGORY[/SERVICE]] (windows, "
        "windows/process_creation, windows//security), repeatable; rules of other log sources "
        f"are left out and counted. {logsource_default} 'any' runs every rule "
        "(docs/logsources.md)",
    )
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="FILE",
        help="Sigma filter documents (a file or folder of them), ANDed onto the rules they "
        "target as pySigma does; repeatable (filters among the rules apply too)",
    )
    p.add_argument(
        "--unrouted",
        action="store_true",
        help="also run rules whose category or service the pipeline's routing does not know "
        "(they see every row)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="compile the rules even when the compile cache ($XDG_CACHE_HOME/sigmarrow) "
        "holds the program of the same rule files and options",
    )
    select = p.add_argument_group(
        "rule selection", "rules left out are counted in the summary, with the reason"
    )
    select.add_argument("--level", metavar="LEVEL",
                        help="minimum level: informational, low, medium, high or critical")
    select.add_argument("--status", action="append", default=[], metavar="STATUS[,...]",
                        help="only rules of these statuses (stable, test, experimental, ...)")
    select.add_argument("--exclude-status", metavar="STATUS[,...]", default=None,
                        help="leave out rules of these statuses (default: deprecated,unsupported; "
                        "'' keeps every status)")
    select.add_argument("--tag", action="append", default=[], metavar="GLOB",
                        help="only rules with a tag matching GLOB, e.g. 'attack.t1059*' (repeatable)")
    select.add_argument("--rule-id", action="append", default=[], metavar="ID[,...]",
                        help="only these rules (repeatable)")
    select.add_argument("--exclude-rule", action="append", default=[], metavar="ID_OR_TITLE",
                        help="leave out this rule (repeatable)")


def take_back_rules(args: argparse.Namespace) -> None:
    """`scan --input x.parquet rules/` lets --input's list swallow RULES: take back the
    trailing inputs that are rule files or rule folders."""
    if args.rules:
        return
    while args.input and _is_rule_path(args.input[-1]):
        args.rules.insert(0, args.input.pop())
    if not args.rules:
        raise UsageError("give the rule files or folders (RULES) before --input")


def _is_rule_path(path: str) -> bool:
    from sigmarrow.cache import is_program_file

    if os.path.isdir(path):
        names = [n for _, _, files in os.walk(path) for n in files]
        return any(n.endswith(RULE_SUFFIXES) for n in names) and not any(
            n.endswith((".parquet", ".arrow", ".jsonl", ".evtx", ".json", ".ndjson")) for n in names
        )
    return path.endswith(RULE_SUFFIXES) or is_program_file(path)


def check_rule_paths(rules: Sequence[str], what: str = "rule file or folder") -> None:
    for rule_path in rules:
        if not os.path.exists(rule_path):
            raise UsageError(f"{what} not found: {rule_path}")


def selection(args: argparse.Namespace) -> RuleSelection:
    from sigmarrow.selection import RuleSelection

    def items(values: Sequence[str]) -> list[str]:
        return [v for value in values for v in value.split(",")]

    return RuleSelection.of(
        min_level=args.level,
        statuses=items(args.status),
        exclude_statuses=None if args.exclude_status is None else items([args.exclude_status]),
        tags=args.tag,
        rule_ids=items(args.rule_id),
        exclude_rules=args.exclude_rule,
    )


def logsources(
    given: Sequence[str], files: Sequence[InputFile] = ()
) -> tuple[list[LogSource] | None, str]:
    """The declared log sources and how they were found (docs/logsources.md)."""
    from sigmarrow.logsource import parse_logsources
    from sigmarrow.scan.logsources import detect

    if any(g.strip().lower() == "any" for g in given):
        return None, "--logsource any: every rule runs"
    if given:
        return parse_logsources(given), "--logsource"
    return detect(files) if files else (None, "")


def warn_if_unconstrained(matcher: sigmarrow.Matcher, declared: list[LogSource] | None) -> None:
    products = sorted({r.logsource.get("product") or "(none)" for r in matcher.rules})
    if declared is None and len(products) > 1:
        shown = ", ".join(products[:8]) + (f" and {len(products) - 8} more" if len(products) > 8 else "")
        print(
            f"sigmarrow: warning: the rules are of {len(products)} products ({shown}) and "
            "nothing says what the data holds, so every rule runs on every row (a rule of "
            "another product can match events it was never written for). Declare it, e.g. "
            "--logsource windows",
            file=sys.stderr,
        )


def load_matcher(
    args: argparse.Namespace, declared: list[LogSource] | None
) -> Compiled:
    """The Matcher of `args.rules` with the shared rule options."""
    from sigmarrow.cache import compile_or_load

    settings = {
        "pipeline": list(args.pipeline) or None,
        "logsource": declared,
        "unrouted": args.unrouted,
        "select": selection(args),
        "filters": list(args.filter),
    }
    try:
        compiled = compile_or_load(list(args.rules), settings, use_cache=not args.no_cache)
    except SigmarrowError:
        raise
    except Exception as exc:
        # pySigma errors that escape the compiler (a pipeline file it cannot read, ...)
        import yaml
        from sigma.exceptions import SigmaError

        if isinstance(exc, SigmaError | yaml.YAMLError):
            reason = " ".join(str(exc).split())
            raise UsageError(f"cannot compile the rules: {reason}") from None
        raise
    m = compiled.matcher
    if not m.rules:
        lines = [f"  {e}" for e in m.errors]
        reasons = Counter(e.reason for e in m.skipped)
        lines += [f"  left out: {reason} ({count})" for reason, count in reasons.most_common(10)]
        found = " (no rules found)" if not (m.errors or m.skipped) else ":\n" + "\n".join(lines)
        raise UsageError("no rule compiled" + found)
    return compiled
