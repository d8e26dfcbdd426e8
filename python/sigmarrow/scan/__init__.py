"""Scanning datasets with a compiled matcher: inputs -> batches -> hits -> output -> summary.

This is the library behind ``sigmarrow scan`` (the command line lives in
:mod:`sigmarrow.cli`)::

    import sigmarrow
    from sigmarrow.scan import scan

    m = sigmarrow.compile("rules/", pipeline="windows")
    summary = scan(m, ["lake/process_creation/"], "hits.parquet")
    print(summary.format())

How it works, and why (one module each):

* **Inputs** (:mod:`.inputs`) are expanded into files first (folders recursively, globs, object-store URIs
  through ``pyarrow.fs``), so that every file is read on its own: hits can name their file
  and row, a bad file can be skipped, and files of one dataset may differ in schema (a
  column that a file lacks is absent there) or in physical type (plain or dictionary-encoded
  strings). Hive partition folders (``date=2024-01-01/``) become string columns of their
  files, as ``pyarrow.dataset`` would make them.
* **Only the columns the rules reference** are read (:mod:`.readers`) (``Matcher.fields`` that the file has,
  struct columns for dotted paths, the ``--columns`` ones, and every string column when a
  rule has keywords, since keywords search all string columns).
* **Batches are streamed**, one file at a time, with one batch read ahead while the engine
  matches the previous one; memory depends on the batch (and Parquet row group) size, not
  on the size of the dataset.
* **Hits** (:mod:`.hits`) are one row per (event, rule), with the rule's metadata.
* **Output** (:mod:`.writers`) is written under a temporary name in the output's folder and renamed at the
  end, so a failed scan leaves no partial file. Columnar outputs (Parquet, Arrow IPC) are
  spooled first: their schema is the union of what every file contributed, which is only
  known at the end.
* **The summary** (:mod:`.summary`) says what was scanned, what matched and what was not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from sigmarrow.errors import DataError, SigmarrowError
from sigmarrow.scan.hits import HIT_COLUMNS, HitBuilder
from sigmarrow.scan.inputs import InputFile, discover_inputs, reason
from sigmarrow.scan.readers import FileProgress, Projection, read
from sigmarrow.scan.summary import Progress, RuleHits, ScanSummary, SkippedFile
from sigmarrow.scan.writers import Output, output_folder, output_kind

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "HIT_COLUMNS",
    "InputFile",
    "Progress",
    "RuleHits",
    "ScanSummary",
    "SkippedFile",
    "discover_inputs",
    "output_folder",
    "output_kind",
    "scan",
]

#: Rows per batch handed to the engine. Parquet batches never span row groups, so a
#: batch can be smaller.
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
) -> ScanSummary:
    """Match every event of ``inputs`` against ``matcher``; write one row per hit to ``output``.

    ``inputs``: paths, folders, globs or URIs (or files from :func:`discover_inputs`).
    ``output``: a ``.parquet``, ``.jsonl`` or ``.arrow`` path, or ``"-"`` for JSON Lines on
    ``stdout``. ``columns``: event columns to add to every hit (``["*"]``: all of them);
    by default each hit carries the columns its rule references. ``threads`` goes to the
    engine. ``progress`` is called now and then with a :class:`Progress`.

    Raises :class:`sigmarrow.SigmarrowError` for bad inputs or an output that cannot be
    written, and :class:`sigmarrow.DataError` (naming the file) for data that cannot be read
    or matched, unless ``skip_bad_files``: then such files are reported in the summary.
    Nothing is left at ``output`` when it raises.
    """
    if batch_rows < 1:
        raise SigmarrowError("batch_rows must be at least 1")
    started = time.perf_counter()
    if inputs and all(isinstance(i, InputFile) for i in inputs):
        files, ignored = list(inputs), 0  # type: ignore[arg-type]
    else:
        files, ignored = discover_inputs(inputs)  # type: ignore[arg-type]
    output = os.fspath(output)
    if output != "-":
        # Hits written into a scanned folder must not be scanned by the next run.
        target = os.path.abspath(output)
        kept = [
            f
            for f in files
            if not (isinstance(f.filesystem, pafs.LocalFileSystem) and f.path == target)
        ]
        ignored += len(files) - len(kept)
        files = kept
    hits = HitBuilder(matcher, columns if columns else None)
    expand_all = bool(columns) and "*" in columns
    if expand_all:
        hits.columns = [c for c in hits.columns if c != "*"]
        hits.out_names.pop("*", None)
    projection = Projection(
        [*matcher.fields, *(columns or ())],
        keywords=matcher.has_keywords,
        everything=expand_all,
    )
    out = Output(output, hits, stdout=stdout)
    summary = ScanSummary(
        output=output,
        rules=len(matcher.rules),
        compile_errors=list(getattr(matcher, "errors", [])),
        skipped_rules=list(getattr(matcher, "skipped", [])),
        ignored_files=ignored,
    )
    counts = [0] * len(matcher.rules)
    bytes_total = sum(f.size for f in files)
    bytes_done = 0.0
    last_report = 0.0
    use_threads = threads != 1

    def report(current: str | None, fraction: float = 0.0, force: bool = False) -> None:
        nonlocal last_report
        if progress is None:
            return
        now = time.perf_counter()
        if not force and now - last_report < 0.1:
            return
        last_report = now
        progress(
            Progress(
                summary.files,
                len(files),
                summary.rows,
                bytes_done + fraction,
                bytes_total,
                now - started,
                current,
                summary.hits,
            )
        )

    try:
        for f in files:
            report(f.display, force=True)
            tracker = FileProgress()
            offset = 0
            missing: set[str] | None = None
            try:
                batches = read(f, projection, batch_rows, use_threads, tracker)
                try:
                    for batch in batches:
                        if expand_all:
                            hits.expand_all(batch)
                        hits.note_types(batch)
                        file_missing = set(matcher.missing_fields(batch.schema))
                        missing = file_missing if missing is None else missing & file_missing
                        rows, rule_index = matcher.match_indices(batch, threads=threads)
                        if len(rows):
                            out.write(hits.build(f, batch, offset, rows, rule_index))
                            for index, count in _count(rule_index):
                                counts[index] += count
                            summary.hits += len(rows)
                        offset += batch.num_rows
                        summary.rows += batch.num_rows
                        if tracker.total_rows:
                            report(f.display, f.size * min(offset / tracker.total_rows, 1.0))
                finally:
                    batches.close()
            except (DataError, pa.ArrowException, OSError, UnicodeDecodeError) as exc:
                message = reason(exc)
                if not skip_bad_files:
                    raise DataError(f"{f.display}: {message}") from None
                summary.skipped_files.append(SkippedFile(f.display, message, offset))
            else:
                summary.files += 1
                for name in (
                    missing if missing is not None else matcher.missing_fields(pa.schema([]))
                ):
                    summary.missing_fields[name] = summary.missing_fields.get(name, 0) + 1
            bytes_done += f.size
        report(None, force=True)
        try:
            out.finish()
        except OSError as exc:
            raise SigmarrowError(f"cannot write output {output}: {exc.strerror or exc}") from None
    except BaseException:
        out.abort()
        raise
    summary.seconds = time.perf_counter() - started
    summary.hits_per_rule = sorted(
        (
            RuleHits(i, r.id, r.title, r.level, counts[i])
            for i, r in enumerate(matcher.rules)
            if counts[i]
        ),
        key=lambda h: (-h.count, h.index),
    )
    return summary


def _count(rule_index: pa.Array) -> Iterator[tuple[int, int]]:
    counts = pc.value_counts(rule_index)
    values = counts.field("values").to_pylist()
    numbers = counts.field("counts").to_pylist()
    return zip(values, numbers, strict=True)
