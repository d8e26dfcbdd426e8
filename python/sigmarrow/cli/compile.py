"""``sigmarrow compile RULES... -o rules.sigmarrow``: compile once, scan many times.

The program file is what ``scan``, ``profile``, ``explain`` and ``sigmarrow.Matcher.load``
take in place of the rules; it holds the compiled rules, the rules left out and why, and the
compile errors (reported here too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sigmarrow.cli import EXIT_OK
from sigmarrow.cli.rules import add_rule_arguments, check_rule_paths, load_matcher, logsources
from sigmarrow.scan.writers import AtomicFile, check_output

HELP = "compile rules once into a program file that scan, profile and explain take"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (__doc__ or "").split("\n\n")[0]
    p.add_argument("rules", nargs="+", metavar="RULES", help="Sigma rule files or folders")
    p.add_argument("--output", "-o", required=True, metavar="OUT",
                   help="the program file to write (conventionally .sigmarrow)")
    add_rule_arguments(p, "Default: none (every rule);")


def run(args: argparse.Namespace) -> int:
    check_rule_paths(args.rules)
    check_rule_paths(args.filter, "filter file or folder")
    check_output(args.output)  # before compiling: fail before the work, not after it
    declared, _ = logsources(args.logsource)
    args.no_cache = True  # the output is the compile: never a cached copy of another
    compiled = load_matcher(args, declared)
    m = compiled.matcher
    with AtomicFile(args.output) as out:
        Path(out.path).write_bytes(m.to_bytes())
    for e in m.errors:
        print(f"sigmarrow compile: rule not compiled: {e}", file=sys.stderr)
    print(
        f"compiled {len(m.rules):,} rules in {compiled.seconds:.2f} s to {args.output} "
        f"({len(m.skipped):,} left out, {len(m.errors):,} errors)",
        file=sys.stderr,
    )
    return EXIT_OK
