"""Scanning datasets with a compiled matcher: inputs -> batches -> hits -> output -> summary.

This is the library behind ``sigmarrow scan`` (the command line lives in
:mod:`sigmarrow.cli.scan`)::

    import sigmarrow
    from sigmarrow.scan import scan

    m = sigmarrow.compile("rules/", pipeline="windows")
    summary = scan(m, ["lake/process_creation/"], "hits.parquet")
    print(summary.format())

How it works, and why, one module each:

* :mod:`.inputs` expands inputs into files first (folders recursively, globs, object-store
  URIs through ``pyarrow.fs``), so that every file is read on its own: hits can name their
  file and row, a bad file can be skipped, and files of one dataset may differ in schema (a
  column that a file lacks is absent there) or in physical type (plain or
  dictionary-encoded strings).
* :mod:`.timerange` is the time range: files of date partitions outside it are never
  opened, Parquet row groups outside it never read, and the other rows filtered exactly.
* :mod:`.readers` reads only the columns the rules reference (``Matcher.fields`` that the
  file has, struct columns for dotted paths, the requested ones, and every string column
  when a rule has keywords, which search all of them), in batches, one file at a time, one
  batch read ahead while the engine matches the previous one; Parquet text that the file
  dictionary-encodes throughout is read as dictionaries (:mod:`.encodings`).
* :mod:`.hits` turns the engine's (row, rule) pairs into hit rows, in one schema decided
  before the first hit for the formats that store one, each with its event's time and host.
* :mod:`.writers` streams them into the output, under a temporary name renamed at the end,
  so a failed scan leaves no partial file; memory follows the batches, not the hits
  (:mod:`.timesort` puts them in time order first, through a spool, for ``sort="time"``).
* :mod:`.summary` says what was scanned, what matched and what was not; :mod:`.report`
  draws it as one HTML page.
* :mod:`.alerts`: with correlation rules, every batch also feeds the matcher's correlation
  state; the alerts are computed once every file is read (files may come in any time
  order) and written beside the hits, their evidence named by file and row (`alerts.event_id`).

This module is the loop. What depends only on a schema (which columns to read, where each
field is, which are missing) is worked out once per schema, not per batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import IO, Any, cast

import pyarrow as pa
import pyarrow.fs as pafs

from sigmarrow.columns import bind
from sigmarrow.errors import DataError, UsageError
from sigmarrow.scan.alerts import SCAN_ALERTS_SCHEMA, alerts_output, event_id, with_sources
from sigmarrow.scan.hits import HIT_COLUMNS, EventColumns, HitBuilder, Timeline
from sigmarrow.scan.inputs import InputFile, discover_inputs, reason
from sigmarrow.scan.readers import FileProgress, Projection, read, schema_of
from sigmarrow.scan.summary import (
    CorrelationAlerts,
    HitTally,
    Progress,
    RuleHits,
    ScanSummary,
    SkippedFile,
)
from sigmarrow.scan.timerange import TimeRange
from sigmarrow.scan.writers import FORMATS, Output, output_format

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "FORMATS",
    "HIT_COLUMNS",
    "InputFile",
    "Progress",
    "RuleHits",
    "ScanSummary",
    "SkippedFile",
    "TimeRange",
    "Timeline",
    "discover_inputs",
    "output_format",
    "scan",
]

#: Rows per batch handed to the engine. Parquet batches never span row groups, so a
#: batch can be smaller (and so can a JSON batch of large events).
DEFAULT_BATCH_ROWS = 65_536


def scan(
    matcher: Any,
    inputs: Sequence[str | os.PathLike[str]] | Sequence[InputFile],
    output: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    threads: int | None = None,
    skip_bad_files: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Callable[[Progress], None] | None = None,
    stdout: IO[bytes] | None = None,
    time_field: str | None = None,
    sort: str | None = None,
    time_range: TimeRange | None = None,
    alerts: str | os.PathLike[str] | None = None,
    correlation_mode: str = "merged",
    evidence: int | None = None,
    max_correlation_memory: int | None = None,
) -> ScanSummary:
    """Match every event of ``inputs`` against ``matcher``; write one row per hit to ``output``.

    ``inputs``: paths, folders, globs or URIs (or files from :func:`discover_inputs`).
    ``output``: a path whose suffix names one of :data:`FORMATS` (``.parquet``, ``.jsonl``,
    ``.arrow``, ``.csv``), or ``"-"`` for JSON Lines on ``stdout``. ``columns``: event
    columns to add to every hit (``["*"]``: all of them); by default each hit carries the
    columns its rule references. ``threads`` goes to the engine. ``progress`` is called now
    and then with a :class:`Progress`. ``time_range`` (:meth:`TimeRange.parse`) keeps only
    the events in it; what it skipped unread and left out is counted in the summary.

    Every hit carries its event's time, host, channel and event id (:class:`Timeline`):
    ``time_field`` names the time column; the field mappings of the rules' pipeline (which
    the compiled program records) help find them. ``sort="time"`` writes the hits in time
    order.

    With correlation rules, their alerts go to ``alerts`` (by default beside ``output``:
    ``hits.parquet`` -> ``hits.alerts.parquet``; after the hits when they go to standard
    output), in ``correlation_mode`` ("merged" or "every"), with at most ``evidence`` events
    of evidence each (None: all), the events timed by the timeline's time column; files may
    come in any time order (docs/scan.md).

    Raises :class:`sigmarrow.SigmarrowError` for bad inputs or an output that cannot be
    written, and :class:`sigmarrow.DataError` (naming the file) for data that cannot be read
    or matched, unless ``skip_bad_files``: then such files are reported in the summary.
    Nothing is left at ``output`` when it raises.
    """
    if batch_rows < 1:
        raise UsageError("batch_rows must be at least 1")
    started = time.perf_counter()
    output = os.fspath(output)
    typed = output_format(output).typed
    files, ignored = _files(inputs, output)
    files, pruned = time_range.prune(files) if time_range else (files, 0)
    events = EventColumns(matcher, columns or None)
    timeline = Timeline(time_field, matcher.program.mapped_fields)
    schemas = [schema_of(f) for f in files] if typed else None
    hits = HitBuilder(matcher.rules, events, schemas, timeline)
    state = None
    if matcher.correlations:
        limits = {} if max_correlation_memory is None else {"max_memory": max_correlation_memory}
        state = matcher.correlation_state(time_field, time_fields=timeline.sources["timestamp"], **limits)
        alerts = alerts_output(output, None if alerts is None else os.fspath(alerts))
        output_format(alerts)  # a bad suffix fails before the scan
    loop = _Loop(
        matcher,
        hits,
        Projection(
            [*matcher.fields, *events.names, *timeline.names, *(state.field_names if state else ())],
            keywords=matcher.has_keywords,
            everything=events.everything,
            time_range=time_range,
        ),
        ScanSummary(
            output=output,
            rules=len(matcher.rules),
            compile_errors=list(matcher.errors),
            skipped_rules=list(matcher.skipped),
            ignored_files=ignored,
            time_range=time_range.describe() if time_range else "",
            files_pruned=pruned,
            filters=list(matcher.filters),
        ),
        threads,
        batch_rows,
        _Reporter(progress, files, started),
        time_range,
        [] if events.everything or not columns else list(events.names),
        state,
    )
    with Output(output, hits.schema, stdout, sort) as out, loop.pool:
        for f in files:
            loop.file(f, out, skip_bad_files)
        loop.reporter.report(loop.summary, None, force=True)
        if state is not None:
            with state:  # before the hits are committed: an error here leaves no output
                table = with_sources(state.alerts(correlation_mode, evidence), loop.names)
    summary = loop.summary
    summary.seconds = time.perf_counter() - started
    if summary.files:
        summary.columns_not_found = list(loop.unfound)
    loop.tally.finish(summary)
    if state is not None:
        with Output(cast(str, alerts), SCAN_ALERTS_SCHEMA, stdout) as out:
            for batch in table.to_batches():
                out.write(batch)
        summary.alerts_output = cast(str, alerts)
        summary.alerts = CorrelationAlerts.of(matcher.correlations, table)
    return summary


def _files(
    inputs: Sequence[str | os.PathLike[str]] | Sequence[InputFile], output: str
) -> tuple[list[InputFile], int]:
    """The files to scan, and how many were ignored (not data, or the output itself)."""
    if inputs and all(isinstance(i, InputFile) for i in inputs):
        files, ignored = cast(list[InputFile], list(inputs)), 0
    else:
        files, ignored = discover_inputs(cast(Sequence[str | os.PathLike[str]], inputs))
    if output == "-":
        return files, ignored
    # Hits written into a scanned folder must not be scanned by the next run.
    target = os.path.abspath(output)
    kept = [
        f
        for f in files
        if not (isinstance(f.filesystem, pafs.LocalFileSystem) and f.path == target)
    ]
    return kept, ignored + len(files) - len(kept)


class _Reporter:
    """Calls ``progress`` at most every 0.1 s (and at each new file)."""

    def __init__(
        self, progress: Callable[[Progress], None] | None, files: list[InputFile], started: float
    ) -> None:
        self.progress = progress
        self.files_total = len(files)
        self.bytes_total = sum(f.size for f in files)
        self.bytes_done = 0.0  #: of the files done
        self.started = started
        self.last = 0.0

    def report(
        self, summary: ScanSummary, current: str | None, fraction: float = 0.0, force: bool = False
    ) -> None:
        now = time.perf_counter()
        if self.progress is None or (not force and now - self.last < 0.1):
            return
        self.last = now
        self.progress(
            Progress(
                summary.files,
                self.files_total,
                summary.rows,
                self.bytes_done + fraction,
                self.bytes_total,
                now - self.started,
                current,
                summary.hits,
            )
        )


@dataclass
class _Matching:
    """A batch being matched."""

    offset: int  #: the file's row the batch starts at
    batch: pa.RecordBatch
    inside: pa.Array | None  #: the rows of the batch in the time range, if not all
    rows: int  #: rows matched
    out_of_range: int  #: rows outside the time range
    without_time: int  #: rows without a time, when a time range is set
    matched: futures.Future[tuple[Any, Any]]  #: the engine's (rows, rule indices)


class _Loop:
    """What the files of one scan add to: the summary and the hits per rule."""

    def __init__(
        self,
        matcher: Any,
        hits: HitBuilder,
        projection: Projection,
        summary: ScanSummary,
        threads: int | None,
        batch_rows: int,
        reporter: _Reporter,
        time_range: TimeRange | None,
        requested: list[str],
        state: Any = None,
    ) -> None:
        self.matcher = matcher
        self.hits = hits
        self.projection = projection
        self.summary = summary
        self.threads = threads
        self.batch_rows = batch_rows
        self.reporter = reporter
        self.tally = HitTally(matcher.rules)
        self.time_range = time_range
        self.unfound = dict.fromkeys(requested)  #: requested columns no batch has had yet
        self.state = state  #: the correlation state every batch feeds, or None
        self.pool = futures.ThreadPoolExecutor(1, thread_name_prefix="sigmarrow-match")
        self.names: list[str] = []  #: the files read, numbered for the correlation state

    def file(self, f: InputFile, out: Output, skip_bad_files: bool) -> None:
        """Scan one file; a file that cannot be read or matched raises a DataError naming
        it, or with ``skip_bad_files`` is reported in the summary (its hits so far kept)."""
        summary = self.summary
        self.reporter.report(summary, f.display, force=True)
        tracker = FileProgress()
        done = 0  # rows of the file whose hits are written
        missing: set[str] | None = None  # the referenced fields no batch of the file has
        self.names.append(f.display)
        # A batch is matched (in the engine, without the GIL) while the hits of the one
        # before are built and written, so that this Python work does not leave the
        # engine's threads idle.
        pending: _Matching | None = None
        try:
            batches = read(f, self.projection, self.batch_rows, self.threads != 1, tracker)
            try:
                for offset, batch in batches:
                    lacks = set(self.matcher.missing_fields(batch.schema))
                    missing = lacks if missing is None else missing & lacks
                    if self.unfound:
                        for name in bind(batch.schema, list(self.unfound)).found:
                            del self.unfound[name]
                    previous, pending = pending, self._start(offset, batch)
                    if previous is not None:
                        try:
                            done += self._finish(f, out, previous, tracker)
                        except BaseException:
                            # The batch after a failed one is waited for, not written.
                            futures.wait([pending.matched])
                            pending = None
                            raise
            finally:
                batches.close()
                # The last batch, or the last one read before the reader failed: its hits
                # are kept like those before it.
                if pending is not None:
                    last, pending = pending, None
                    done += self._finish(f, out, last, tracker)
        except BrokenPipeError:
            raise  # the reader of standard output went away: not this file's fault
        except (DataError, pa.ArrowException, OSError, UnicodeDecodeError) as exc:
            message = reason(exc)
            if not skip_bad_files:
                raise DataError(f"{f.display}: {message}") from None
            summary.skipped_files.append(SkippedFile(f.display, message, done))
        else:
            summary.files += 1
            if missing is None:  # no batch at all (JSON without events): no columns
                missing = set(self.matcher.missing_fields(pa.schema([])))
            for name in missing:
                summary.missing_fields[name] = summary.missing_fields.get(name, 0) + 1
        summary.row_groups_pruned += tracker.row_groups_pruned
        summary.rows_pruned += tracker.rows_pruned
        self.reporter.bytes_done += f.size

    def _start(self, offset: int, batch: pa.RecordBatch) -> _Matching:
        """Start matching the rows of a batch in the time range."""
        inside, matched, out_of_range, without_time = None, batch, 0, 0
        if self.time_range is not None:
            inside, out_of_range, without_time = self.time_range.rows(batch)
            if inside is not None:
                matched = batch.take(inside)
        future = self.pool.submit(self.matcher.match_indices, matched, threads=self.threads)
        return _Matching(offset, batch, inside, matched.num_rows, out_of_range, without_time, future)

    def _finish(self, f: InputFile, out: Output, m: _Matching, tracker: FileProgress) -> int:
        """Write the hits of a batch once matched; its rows."""
        summary = self.summary
        rows, rule_index = m.matched.result()
        if m.inside is not None:
            rows = m.inside.take(rows)  # back to the rows of the batch
        if self.state is not None:
            self.state.add(m.batch, rows, rule_index, event_id(len(self.names) - 1, m.offset))
            rows, rule_index = self.matcher.reported(rows, rule_index)
        if len(rows):
            hits = self.hits.build(f, m.batch, m.offset, rows, rule_index)
            out.write(hits)
            self.tally.add(rule_index, hits)
            self.tally.note_sources(self.hits.timeline_columns(m.batch.schema))
            summary.hits += len(rows)
        summary.rows += m.rows
        # Counted with its rows: a batch started after a failed one is not written.
        summary.rows_out_of_range += m.out_of_range
        summary.rows_without_time += m.without_time
        if tracker.total_rows:
            fraction = f.size * min((m.offset + m.batch.num_rows) / tracker.total_rows, 1.0)
            self.reporter.report(summary, f.display, fraction)
        return m.batch.num_rows
