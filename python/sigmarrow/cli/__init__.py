"""The ``sigmarrow`` command line.

Each subcommand is an entry of :data:`SUBCOMMANDS`: a name, a one-line help, a function that
adds its arguments to an ``argparse`` parser and a function that runs it and returns the
exit status. Add one with :func:`subcommand`.

Exit statuses (all subcommands): 0 done; 1 ``scan --fail-on-match`` found hits; 2 bad usage
or bad input (one message on stderr, no traceback); 3 an internal error, which is a bug
(``SIGMARROW_DEBUG=1`` shows its traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from sigmarrow.errors import UsageError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_MATCHED",
    "EXIT_OK",
    "SUBCOMMANDS",
    "Subcommand",
    "main",
    "subcommand",
]

EXIT_OK = 0
EXIT_MATCHED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None
    epilog: str | None = None


#: The subcommands of ``sigmarrow``, by name, in the order ``--help`` lists them.
SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
    description: str | None = None,
    epilog: str | None = None,
) -> None:
    """Register a subcommand (``bench``, ``profile``, ``explain``, ...)."""
    SUBCOMMANDS[name] = Subcommand(help, add_arguments, run, description, epilog)


# --------------------------------------------------------------------------------------
# scan
# --------------------------------------------------------------------------------------

_SCAN_DESCRIPTION = """\
Match Sigma rules against stored events: Parquet files, folders, globs and hive-partitioned
datasets (local or object-store URIs), Arrow IPC files, JSON Lines and EVTX files. Writes one
row per (event, rule) hit: source_file, source_row (0-based within its file), rule_id,
rule_title, level, tags and event columns; then a summary on stderr."""

_SCAN_EPILOG = """\
output formats, by extension: .parquet, .jsonl, .arrow, or - for JSON Lines on stdout.
exit status: 0 done (hits or not); 1 hits found with --fail-on-match; 2 bad usage or bad
input (also when --skip-bad-files skipped a file); 3 internal error.

example:
  sigmarrow scan examples/rules --input examples/process_creation.parquet --output -"""


def _add_scan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "rules",
        nargs="+",
        metavar="RULES",
        help="Sigma rule files or folders (searched for *.yml, *.yaml)",
    )
    p.add_argument(
        "--input",
        "-i",
        nargs="+",
        action="extend",
        required=True,
        metavar="PATH",
        help="data to scan: files, folders, globs or URIs (repeatable)",
    )
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
        "--output",
        "-o",
        required=True,
        metavar="OUT",
        help="where hits go: .parquet, .jsonl, .arrow, or - (JSON Lines on stdout)",
    )
    p.add_argument(
        "--columns",
        "-c",
        action="append",
        default=[],
        metavar="COL,...",
        help="event columns to add to every hit (default: the columns of the rule "
        "that matched; '*' for all)",
    )
    p.add_argument(
        "--threads",
        "-j",
        type=_positive_int,
        metavar="N",
        help="engine threads (default: all cores)",
    )
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="report unreadable files in the summary and go on (exit status 2)",
    )
    p.add_argument(
        "--fail-on-match", action="store_true", help="exit with status 1 when anything matched"
    )
    p.add_argument(
        "--batch-rows",
        type=_positive_int,
        metavar="N",
        help="rows per batch (default: 65536); lower it to use less memory",
    )
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bar and no summary; errors are still reported",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _run_scan(args: argparse.Namespace) -> int:
    # Imported here so that `sigmarrow --help` stays fast and works without the engine.
    import sigmarrow
    from sigmarrow import scan as scanning

    try:
        scanning.output_kind(args.output)
    except sigmarrow.SigmarrowError as exc:
        raise UsageError(str(exc)) from None
    for rule_path in args.rules:
        if not os.path.exists(rule_path):
            raise UsageError(f"rule file or folder not found: {rule_path}")
    files, ignored = scanning.discover_inputs(args.input)
    if args.output != "-":
        _check_output(args.output)
    columns = [c.strip() for spec in args.columns for c in spec.split(",") if c.strip()]

    matcher = _compile(args.rules, args.pipeline)
    if not matcher.rules:
        reasons = "\n".join(f"  {scanning.describe_compile_error(e)}" for e in matcher.errors)
        raise UsageError("no rule compiled" + (f":\n{reasons}" if reasons else " (no rules found)"))

    bar = None if args.quiet or not sys.stderr.isatty() else _ProgressBar(sys.stderr)
    try:
        summary = scanning.scan(
            matcher,
            files,
            args.output,
            columns=columns or None,
            threads=args.threads,
            skip_bad_files=args.skip_bad_files,
            batch_rows=args.batch_rows or scanning.DEFAULT_BATCH_ROWS,
            progress=bar.update if bar else None,
        )
    finally:
        if bar:
            bar.clear()
    summary.ignored_files = ignored
    if not args.quiet:
        print(summary.format(), file=sys.stderr)
    else:  # quiet: errors only
        for e in summary.compile_errors:
            print(
                f"sigmarrow scan: rule not compiled: {scanning.describe_compile_error(e)}",
                file=sys.stderr,
            )
        for s in summary.skipped_files:
            print(f"sigmarrow scan: skipped {s.path}: {s.reason}", file=sys.stderr)
    if summary.skipped_files:
        return EXIT_BAD_INPUT
    if args.fail_on_match and summary.hits:
        return EXIT_MATCHED
    return EXIT_OK


def _compile(rules: Sequence[str], pipelines: Sequence[str]):  # type: ignore[no-untyped-def]
    import sigmarrow

    pipeline: list[str] | None = list(pipelines) or None
    try:
        return sigmarrow.compile(list(rules), pipeline=pipeline)
    except sigmarrow.SigmarrowError:
        raise
    except Exception as exc:
        # pySigma errors that escape the compiler (a pipeline file it cannot read, ...)
        import yaml
        from sigma.exceptions import SigmaError

        if isinstance(exc, SigmaError | yaml.YAMLError):
            reason = " ".join(str(exc).split())
            raise UsageError(f"cannot compile the rules: {reason}") from None
        raise


def _check_output(output: str) -> None:
    """Fail before the scan, not after it, when the output cannot be written."""
    import tempfile

    from sigmarrow.scan import output_folder

    try:
        with tempfile.TemporaryFile(dir=output_folder(output)):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write output {output}: {exc.strerror or exc}") from None


class _ProgressBar:
    """One line on a terminal: files, rows, rows/s and ETA."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.shown = False

    def update(self, p) -> None:  # type: ignore[no-untyped-def]
        width = shutil.get_terminal_size((80, 24)).columns - 1
        fraction = min(p.bytes_done / p.bytes_total, 1.0) if p.bytes_total else 0.0
        eta = p.eta_seconds
        # Most important first: a narrow terminal cuts the end of the line.
        text = (
            f"ETA {_clock(eta) if eta is not None else '--:--'}  "
            f"{p.files_done}/{p.files_total} files  {p.rows:,} rows  "
            f"{p.rows_per_second:,.0f} rows/s  {p.hits:,} hits"
        )
        room = width - len(text) - len("[] 100%  ")
        if room >= 10:
            bar = min(room, 40)
            filled = int(bar * fraction)
            text = f"[{'#' * filled}{'.' * (bar - filled)}] {fraction:4.0%}  {text}"
        self.stream.write("\r" + text[:width] + "\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


subcommand(
    "scan",
    help="match rules against Parquet, Arrow IPC, JSON Lines or EVTX data; write the hits",
    add_arguments=_add_scan_arguments,
    run=_run_scan,
    description=_SCAN_DESCRIPTION,
    epilog=_SCAN_EPILOG,
)


def _register_tools() -> None:
    """bench, profile and explain live in their own modules (they import numpy)."""
    from sigmarrow import bench, explain, profile

    subcommand(
        "bench",
        help="reproduce the headline speed table on generated data (about a minute)",
        add_arguments=bench.add_arguments,
        run=bench.run,
        description=(bench.__doc__ or "").split("\n\n")[0],
    )
    subcommand(
        "profile",
        help="the cost of each rule and each column on your data",
        add_arguments=profile.add_arguments,
        run=profile.run,
        description=(profile.__doc__ or "").split("\n\n")[0],
    )
    subcommand(
        "explain",
        help="the compiled program of a rule: atoms, tables, prefilters",
        add_arguments=explain.add_arguments,
        run=explain.run,
        description=(explain.__doc__ or "").split("\n\n")[0],
    )


_register_tools()


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigmarrow",
        description="Sigma detection rules over Apache Arrow data.",
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        parser.add_argument(
            "--version", action="version", version=f"sigmarrow {version('sigmarrow')}"
        )
    except PackageNotFoundError:  # not installed as a distribution (a source tree)
        pass
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in SUBCOMMANDS.items():
        sub = commands.add_parser(
            name,
            help=command.help,
            description=command.description or command.help,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(_run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (never raises SystemExit)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse printed
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    prog = f"sigmarrow {args.command}"
    try:
        return int(args._run(args))
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (`... --output - | head`): stop quietly.
        _silence_stdout()
        return EXIT_INTERRUPTED + 11  # 141, as a shell reports SIGPIPE
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - the one place that turns any error into a message
        import sigmarrow

        if isinstance(exc, sigmarrow.SigmarrowError):
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if os.environ.get("SIGMARROW_DEBUG"):
            traceback.print_exc()
        else:
            print(
                f"{prog}: internal error: {type(exc).__name__}: {exc}\n"
                "(this is a bug; run with SIGMARROW_DEBUG=1 for the traceback)",
                file=sys.stderr,
            )
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
