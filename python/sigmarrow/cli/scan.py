"""``sigmarrow scan``: the command line of :func:`sigmarrow.scan.scan`."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from sigmarrow.cli import EXIT_BAD_INPUT, EXIT_MATCHED, EXIT_OK
from sigmarrow.cli.rules import (
    add_rule_arguments,
    check_rule_paths,
    load_matcher,
    logsources,
    take_back_rules,
    warn_if_unconstrained,
)

if TYPE_CHECKING:
    from sigmarrow.scan import Progress, ScanSummary

HELP = "match rules against Parquet, Arrow IPC, JSON Lines or EVTX data; write the hits"

_DESCRIPTION = """\
Match Sigma rules against stored events: Parquet files, folders, globs and hive-partitioned
datasets (local or object-store URIs), Arrow IPC files, JSON Lines and EVTX files. Writes one
row per (event, rule) hit: timestamp, host, channel, event_id (from the event), source_file,
source_row (0-based within its file), rule_id, rule_title, level, tags and event columns;
then a summary on stderr."""

_EPILOG = """\
output formats, by extension:
{formats}

exit status: 0 done (hits or not); 1 hits found with --fail-on-match; 2 bad usage or bad
input (also when --skip-bad-files skipped a file); 3 internal error; 130, 143, 129
interrupted (Ctrl-C, SIGTERM, SIGHUP: nothing left behind); 141 standard output closed
before the end.

example:
  sigmarrow scan examples/rules --input examples/process_creation.parquet --output -"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sigmarrow.scan.writers import FORMATS, STDOUT_FORMAT

    stdout = FORMATS[STDOUT_FORMAT].help
    rows = [(", ".join(f.suffixes), f.help) for f in FORMATS.values()]
    rows.append(("-", f"{stdout} on stdout"))
    width = max(len(suffixes) for suffixes, _ in rows)
    formats = "\n".join(f"  {suffixes:<{width}}  {what}" for suffixes, what in rows)
    p.description = _DESCRIPTION
    p.epilog = _EPILOG.format(formats=formats, stdout=stdout)
    p.add_argument(
        "rules",
        nargs="*",
        metavar="RULES",
        help="Sigma rule files or folders (searched for *.yml, *.yaml), or one compiled "
        "program (sigmarrow compile)",
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
        "--output",
        "-o",
        required=True,
        metavar="OUT",
        help=f"where hits go: {', '.join(f.suffixes[0] for f in FORMATS.values())}, "
        f"or - ({stdout} on stdout)",
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
    _add_input_arguments(p)
    add_rule_arguments(
        p, "Default: the dataset's own declaration, else a guess from its columns;"
    )
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bar and no summary; errors are still reported",
    )
    _add_output_arguments(p)
    _add_correlation_arguments(p)


def _add_correlation_arguments(p: argparse.ArgumentParser) -> None:
    """Where correlation alerts go and how they are made (their time column: --time-field)."""
    corr = p.add_argument_group(
        "correlation rules", "when the rules hold correlations (docs/semantics.md, Correlations)"
    )
    corr.add_argument(
        "--alerts",
        metavar="OUT",
        help="where correlation alerts go, in the format of its suffix (default: beside the "
        "hits, HITS.alerts.SUFFIX; after the hits with --output -)",
    )
    corr.add_argument(
        "--correlation-mode",
        choices=("merged", "every"),
        default="merged",
        help="merged: one alert per run of overlapping windows (default); every: one per "
        "qualifying event time",
    )
    corr.add_argument(
        "--evidence",
        type=_count,
        metavar="N",
        help="at most N contributing events per alert, the earliest (default: all)",
    )
    corr.add_argument(
        "--max-correlation-memory",
        type=_size,
        metavar="SIZE",
        help="memory for the base hits correlations read (bytes, or with K, M, G): past it "
        "they spill to the temporary folder (default: 1G, ~40 bytes a hit; docs/limits.md)",
    )


def _add_output_arguments(p: argparse.ArgumentParser) -> None:
    """The timeline, the order of the hits, and the summary and report files."""
    out = p.add_argument_group("timeline and reports")
    # --time-field is shared with the time range (--since/--until) and correlations.
    out.add_argument(
        "--time-field",
        metavar="NAME",
        help="the event time column (default: the pipeline's mapping of the usual names, "
        "else the first of TimeCreated, @timestamp, TimeGenerated, EventTime, timestamp, "
        "UtcTime the data has)",
    )
    out.add_argument(
        "--sort",
        choices=["time"],
        help="write the hits in event-time order (hits without a time last), through a "
        "spool beside the output; memory stays bounded",
    )
    out.add_argument(
        "--summary",
        metavar="FILE.json",
        help="also write the whole summary as JSON: every rule, host and error",
    )
    out.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write a self-contained HTML report: hits per rule, level, host and "
        "over time, rules that failed and why",
    )


def _add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The time range (its time column: --time-field, with the timeline's)."""
    g = p.add_argument_group(
        "time range",
        "Only events with SINCE <= time < UNTIL (UNTIL excluded, so that ranges tile). Date "
        "partition folders and Parquet row groups outside the range are skipped unread; "
        "events without a usable time are left out. The summary counts both.",
    )
    g.add_argument(
        "--since",
        metavar="TIME",
        help="an ISO date or time (2026-11-01, 2026-11-01T12:00:00Z; no offset: UTC), or a "
        "time before now: 90d, 12h, 30m, 45s, 2w",
    )
    g.add_argument("--until", metavar="TIME", help="the end of the range, excluded (as --since)")


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {text!r}")
        return value

    return parse


_positive_int = _at_least(1)
_count = _at_least(0)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _size(text: str) -> int:
    """An argparse type: a positive number of bytes, or of KiB, MiB, GiB (`512M`)."""
    unit = text[-1:].upper() if text[-1:].isalpha() else ""
    if unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size (bytes, or with K, M, G): {text!r}")
    return _positive_int(text[: len(text) - len(unit)]) * _UNITS[unit]


def run(args: argparse.Namespace) -> int:
    from sigmarrow.scan import DEFAULT_BATCH_ROWS, TimeRange, discover_inputs, output_format, scan
    from sigmarrow.scan.writers import check_output

    output_format(args.output)
    take_back_rules(args)
    check_rule_paths(args.rules)
    check_rule_paths(args.filter, "filter file or folder")
    time_range = TimeRange.parse(args.since, args.until, args.time_field)
    files, ignored = discover_inputs(args.input)
    # Before anything reads a file (the log-source guess does): pruned files are never opened.
    files, pruned = time_range.prune(files) if time_range else (files, 0)
    # Before compiling: fail before the work, not after it.
    for path in (args.output, args.alerts, args.summary, args.report):
        if path is not None and path != "-":
            if path in (args.output, args.alerts):
                output_format(path)
            check_output(path)
    columns = [c.strip() for spec in args.columns for c in spec.split(",") if c.strip()]

    declared, how = logsources(args.logsource, files)
    compiled = load_matcher(args, declared)
    matcher = compiled.matcher
    if not args.quiet:
        warn_if_unconstrained(matcher, declared)

    bar = None if args.quiet or not sys.stderr.isatty() else ProgressBar(sys.stderr)
    try:
        summary = scan(
            matcher,
            files,
            args.output,
            columns=columns or None,
            threads=args.threads,
            skip_bad_files=args.skip_bad_files,
            batch_rows=args.batch_rows or DEFAULT_BATCH_ROWS,
            progress=bar.update if bar else None,
            time_field=args.time_field,
            sort=args.sort,
            time_range=time_range,
            alerts=args.alerts,
            correlation_mode=args.correlation_mode,
            evidence=args.evidence,
            max_correlation_memory=args.max_correlation_memory,
        )
    finally:
        if bar:
            bar.clear()
    summary.ignored_files = ignored
    summary.files_pruned = pruned
    summary.logsource = (", ".join(map(str, declared)) + f" ({how})") if declared else how
    summary.compile_seconds, summary.compile_how = compiled.seconds, compiled.how
    _write_reports(summary, args.summary, args.report)
    if not args.quiet:
        print(summary.format(), file=sys.stderr)
    else:  # quiet: errors only
        for e in summary.compile_errors:
            print(f"sigmarrow scan: rule not compiled: {e}", file=sys.stderr)
        for s in summary.skipped_files:
            print(f"sigmarrow scan: skipped {s.path}: {s.reason}", file=sys.stderr)
    if summary.skipped_files:
        return EXIT_BAD_INPUT
    if args.fail_on_match and summary.hits:
        return EXIT_MATCHED
    return EXIT_OK


def _write_reports(summary: ScanSummary, json_path: str | None, html_path: str | None) -> None:
    import orjson

    from sigmarrow.scan.writers import write_file

    if json_path is not None:
        write_file(json_path, orjson.dumps(summary.to_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    if html_path is not None:
        from sigmarrow.scan.report import report_html

        write_file(html_path, report_html(summary).encode())


class ProgressBar:
    """One line on a terminal: files, rows, rows/s and ETA."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.shown = False

    def update(self, p: Progress) -> None:
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
