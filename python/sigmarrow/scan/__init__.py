"""Scanning datasets with a compiled matcher: inputs -> batches -> hits -> output -> summary.

This is the library behind ``sigmarrow scan`` (the command line lives in
:mod:`sigmarrow.cli`)::

    import sigmarrow
    from sigmarrow.scan import scan

    m = sigmarrow.compile("rules/", pipeline="windows")
    summary = scan(m, ["lake/process_creation/"], "hits.parquet")
    print(summary.format())

How it works, and why:

* **Inputs** are expanded into files first (folders recursively, globs, object-store URIs
  through ``pyarrow.fs``), so that every file is read on its own: hits can name their file
  and row, a bad file can be skipped, and files of one dataset may differ in schema (a
  column that a file lacks is absent there) or in physical type (plain or dictionary-encoded
  strings). Hive partition folders (``date=2024-01-01/``) become string columns of their
  files, as ``pyarrow.dataset`` would make them.
* **Only the columns the rules reference** are read (``Matcher.fields`` that the file has,
  struct columns for dotted paths, the ``--columns`` ones, and every string column when a
  rule has keywords, since keywords search all string columns).
* **Batches are streamed**, one file at a time, with one batch read ahead while the engine
  matches the previous one; memory depends on the batch (and Parquet row group) size, not
  on the size of the dataset.
* **Output** is written under a temporary name in the output's folder and renamed at the
  end, so a failed scan leaves no partial file. Columnar outputs (Parquet, Arrow IPC) are
  spooled first: their schema is the union of what every file contributed, which is only
  known at the end.
"""

from __future__ import annotations

import contextlib
import glob as globlib
import io
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sigmarrow.errors import DataError, SigmarrowError

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "HIT_COLUMNS",
    "InputFile",
    "Progress",
    "RuleHits",
    "ScanSummary",
    "SkippedFile",
    "describe_compile_error",
    "discover_inputs",
    "output_kind",
    "scan",
]

#: Rows per batch handed to the engine. Parquet batches never span row groups, so a
#: batch can be smaller.
DEFAULT_BATCH_ROWS = 65_536

#: The columns every hit has, before the event columns.
HIT_COLUMNS = ("source_file", "source_row", "rule_id", "rule_title", "level", "tags")

_HIT_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_row", pa.int64(), nullable=False),
        pa.field("rule_id", pa.string()),
        pa.field("rule_title", pa.string()),
        pa.field("level", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
    ]
)

_EXTENSIONS = {
    ".parquet": "parquet",
    ".parq": "parquet",
    ".pq": "parquet",
    ".arrow": "ipc",
    ".arrows": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".evtx": "evtx",
}
_GLOB_CHARS = frozenset("*?[")


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputFile:
    """One file to scan."""

    display: str  #: the name hits and messages use: as the user wrote it, or inside a folder
    filesystem: pafs.FileSystem = field(repr=False, compare=False)
    path: str  #: the path on ``filesystem``
    kind: str  #: ``parquet``, ``ipc``, ``jsonl`` or ``evtx``
    size: int
    #: hive partition values from the folders above the file (``key=value``); None = null
    partition: tuple[tuple[str, str | None], ...] = ()


def _kind_from_name(name: str) -> str | None:
    lower = name.lower()
    for suffix in (".gz", ".zst", ".bz2"):  # compressed JSON Lines: pyarrow decompresses
        if lower.endswith((".jsonl" + suffix, ".ndjson" + suffix)):
            return "jsonl"
    return _EXTENSIONS.get(os.path.splitext(lower)[1])


def _sniff(fs: pafs.FileSystem, path: str) -> str | None:
    """The format of a file without a known extension, from its first bytes."""
    try:
        with fs.open_input_stream(path) as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        return "ipc"
    if head.startswith(b"ElfFile"):
        return "evtx"
    if head.lstrip()[:1] == b"{":
        return "jsonl"
    return None


def _is_hidden(relative: str) -> bool:
    # Like pyarrow.dataset: files and folders starting with "." or "_" are metadata
    # (_SUCCESS, _delta_log/, .part-0.parquet.crc), not data.
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _partition(relative_dir: str) -> tuple[tuple[str, str | None], ...]:
    keys = []
    for part in relative_dir.split("/"):
        key, sep, value = part.partition("=")
        if sep and key:
            value = urllib.parse.unquote(value)
            keys.append((key, None if value == "__HIVE_DEFAULT_PARTITION__" else value))
    return tuple(keys)


def _resolve_fs(spec: str) -> tuple[pafs.FileSystem, str, bool]:
    """The filesystem and path of an input, and whether it is a URI."""
    if "://" in spec and not os.path.exists(spec):
        try:
            fs, path = pafs.FileSystem.from_uri(spec)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
            raise SigmarrowError(f"cannot open input {spec}: {_reason(exc)}") from None
        return fs, path, True
    return pafs.LocalFileSystem(), os.path.abspath(spec), False


def _files_under(
    fs: pafs.FileSystem, base: str, shown: str, uri: bool
) -> tuple[list[InputFile], int]:
    """Data files in a folder (recursive), and how many other files were ignored."""
    selector = pafs.FileSelector(base, recursive=True)
    try:
        infos = fs.get_file_info(selector)
    except OSError as exc:
        raise SigmarrowError(f"cannot list input folder {shown}: {_reason(exc)}") from None
    files, ignored = [], 0
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(base) :].lstrip("/")
        if _is_hidden(relative):
            continue
        kind = _kind_from_name(info.base_name) or _sniff(fs, info.path)
        if kind is None:
            ignored += 1
            continue
        display = shown.rstrip("/") + "/" + relative if uri else os.path.join(shown, relative)
        files.append(
            InputFile(
                display, fs, info.path, kind, info.size or 0, _partition(os.path.dirname(relative))
            )
        )
    return files, ignored


def discover_inputs(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[InputFile], int]:
    """Expand input paths, folders, globs and URIs into the files to scan.

    Returns the files (in the order given, each folder sorted by path) and the number of
    files inside folders that were ignored because they are not data files. Raises
    :class:`sigmarrow.SigmarrowError` for an input that does not exist, a folder or glob
    without data files, or a file whose format cannot be told.
    """
    files: list[InputFile] = []
    ignored = 0
    seen: set[tuple[str, str]] = set()
    for raw in inputs:
        spec = os.fspath(raw)
        found: list[InputFile] = []
        fs, path, uri = _resolve_fs(spec)
        try:
            info = fs.get_file_info(path)
        except OSError as exc:
            raise SigmarrowError(f"cannot open input {spec}: {_reason(exc)}") from None
        if info.type == pafs.FileType.File:
            kind = _kind_from_name(info.base_name) or _sniff(fs, path)
            if kind is None:
                raise SigmarrowError(
                    f"cannot tell the format of input {spec}: name it .parquet, .arrow, "
                    ".jsonl or .evtx"
                )
            found.append(InputFile(spec, fs, path, kind, info.size or 0))
        elif info.type == pafs.FileType.Directory:
            found, n = _files_under(fs, path, spec, uri)
            ignored += n
            if not found:
                raise SigmarrowError(
                    f"input folder {spec} holds no data files (.parquet, .arrow, .jsonl, .evtx)"
                )
        elif not uri and _GLOB_CHARS & set(spec):
            matches = sorted(globlib.glob(spec, recursive=True))
            if not matches:
                raise SigmarrowError(f"input not found: no file matches {spec}")
            # Hive keys count from the folder where the pattern starts.
            static = spec[: min(spec.index(c) for c in _GLOB_CHARS if c in spec)]
            base = os.path.abspath(os.path.dirname(static) or ".")
            for match in matches:
                if os.path.isdir(match):
                    more, n = _files_under(fs, os.path.abspath(match), match, False)
                    found += more
                    ignored += n
                    continue
                kind = _kind_from_name(match) or _sniff(fs, os.path.abspath(match))
                if kind is None:
                    ignored += 1
                    continue
                relative = os.path.relpath(os.path.abspath(match), base).replace(os.sep, "/")
                found.append(
                    InputFile(
                        match,
                        fs,
                        os.path.abspath(match),
                        kind,
                        os.path.getsize(match),
                        _partition(os.path.dirname(relative)),
                    )
                )
            if not found:
                raise SigmarrowError(f"input {spec} matches no data files")
        else:
            raise SigmarrowError(f"input not found: {spec}")
        for f in found:
            if (f.kind, f.path) not in seen:  # the same file named twice is scanned once
                seen.add((f.kind, f.path))
                files.append(f)
    return files, ignored


# --------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _struct_path(schema: pa.Schema, name: str) -> list[str] | None:
    """``name`` as [column, child, ...]: a top-level column, or a dotted path into structs."""
    if schema.get_field_index(name) >= 0:
        return [name]
    parts = name.split(".")
    for k in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:k])
        if schema.get_field_index(head) < 0:
            continue
        t, path = schema.field(head).type, [head]
        for part in parts[k:]:
            if not pa.types.is_struct(t) or t.get_field_index(part) < 0:
                break
            t = t.field(part).type
            path.append(part)
        else:
            return path
    return None


def _column(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    path = _struct_path(batch.schema, name)
    if path is None:
        return None
    array = batch.column(path[0])
    for part in path[1:]:
        array = pc.struct_field(array, part)
    return array


class _Projection:
    """Which top-level columns of a file to read."""

    def __init__(self, fields: Iterable[str], extra: Sequence[str] | None, keywords: bool):
        self.fields = list(dict.fromkeys(fields))
        self.extra = list(extra or ())
        self.all_columns = "*" in self.extra
        self.keywords = keywords

    def columns(self, schema: pa.Schema) -> list[str]:
        if self.all_columns:
            return list(schema.names)
        wanted: set[str] = set()
        for name in self.fields + self.extra:
            path = _struct_path(schema, name)
            if path is not None:
                wanted.add(path[0])
            elif "." in name:
                # A dotted name whose full path the file lacks: read the struct it starts in
                # anyway, so that the engine, not this projection, decides what it resolves
                # to (e.g. a pipeline's "process.executable.caseless").
                parts = name.split(".")
                for k in range(len(parts) - 1, 0, -1):
                    head = ".".join(parts[:k])
                    if schema.get_field_index(head) >= 0:
                        if pa.types.is_struct(schema.field(head).type):
                            wanted.add(head)
                        break
        if self.keywords:
            wanted.update(f.name for f in schema if _is_text(f.type))
        return [n for n in schema.names if n in wanted]

    def top_level_names(self) -> set[str] | None:
        """Top-level keys that may matter for schemaless input (None: all of them)."""
        if self.all_columns or self.keywords:
            return None
        names: set[str] = set()
        for name in self.fields + self.extra:
            parts = name.split(".")
            names.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
        return names


# --------------------------------------------------------------------------------------
# Readers: each yields record batches of one file, in file order
# --------------------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    """The message of an exception as one readable line."""
    lines = []
    for line in (str(exc).strip() or type(exc).__name__).splitlines():
        line = line.strip()
        # pyarrow appends C++ source locations on debug builds; users do not need them.
        if line and not line.startswith(("/", "arrow/")):
            lines.append(line)
    text = "; ".join(lines) or type(exc).__name__
    # Corrupt data can put control bytes into a message: show them escaped.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _read_parquet(
    f: InputFile, proj: _Projection, batch_rows: int, use_threads: bool, tracker: _FileProgress
) -> Iterator[pa.RecordBatch]:
    with f.filesystem.open_input_file(f.path) as handle:
        try:
            pf = pq.ParquetFile(handle)
            schema = pf.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable Parquet file: {_reason(exc)}") from None
        tracker.set_total_rows(pf.metadata.num_rows)
        columns = proj.columns(_with_partition(schema, f))
        file_columns = [c for c in columns if schema.get_field_index(c) >= 0]
        try:
            yield from pf.iter_batches(
                batch_size=batch_rows, columns=file_columns, use_threads=use_threads
            )
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"corrupt Parquet data: {_reason(exc)}") from None


def _read_ipc(
    f: InputFile, proj: _Projection, batch_rows: int, use_threads: bool, tracker: _FileProgress
) -> Iterator[pa.RecordBatch]:
    local = isinstance(f.filesystem, pafs.LocalFileSystem)
    with pa.memory_map(f.path) if local else f.filesystem.open_input_file(f.path) as handle:
        batches: Iterator[pa.RecordBatch]
        try:
            reader = pa.ipc.open_file(handle)
            schema = reader.schema
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        except (pa.ArrowInvalid, OSError):
            handle.seek(0)
            try:
                stream = pa.ipc.open_stream(handle)
            except (pa.ArrowException, OSError) as exc:
                raise DataError(f"not a readable Arrow IPC file: {_reason(exc)}") from None
            schema = stream.schema
            batches = iter(stream)
        columns = [
            c for c in proj.columns(_with_partition(schema, f)) if schema.get_field_index(c) >= 0
        ]
        try:
            for batch in batches:
                batch = batch.select(columns)
                for start in range(0, max(batch.num_rows, 1), batch_rows):
                    yield batch.slice(start, batch_rows)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"corrupt Arrow IPC data: {_reason(exc)}") from None


def _jsonl_column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Mixed JSON types in one column (a number here, a string there): keep the text.
        return pa.array([_json_text(v) for v in values], type=pa.string())


def _json_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _jsonl_batch(rows: list[dict[str, Any]], keep: set[str] | None) -> pa.RecordBatch:
    names: dict[str, None] = {}
    for row in rows:
        for key in row:
            if keep is None or key in keep:
                names[key] = None
    if not names:
        return _empty_batch(len(rows))
    arrays = [_jsonl_column([row.get(name) for row in rows]) for name in names]
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _empty_batch(rows: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_struct_array(pa.array([{}] * rows, type=pa.struct([])))


def _read_jsonl(
    f: InputFile, proj: _Projection, batch_rows: int, use_threads: bool, tracker: _FileProgress
) -> Iterator[pa.RecordBatch]:
    keep = proj.top_level_names()
    compression = "detect" if f.path.lower().endswith((".gz", ".zst", ".bz2")) else None
    with f.filesystem.open_input_stream(f.path, compression=compression) as raw:
        stream = io.BufferedReader(raw, buffer_size=1 << 20)  # type: ignore[arg-type]
        rows: list[dict[str, Any]] = []
        for lineno, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise DataError(f"line {lineno} is not valid JSON: {exc}") from None
            if not isinstance(row, dict):
                raise DataError(f"line {lineno} is not a JSON object")
            rows.append(row)
            if len(rows) >= batch_rows:
                yield _jsonl_batch(rows, keep)
                rows = []
        if rows:
            yield _jsonl_batch(rows, keep)


def _read_evtx(
    f: InputFile, proj: _Projection, batch_rows: int, use_threads: bool, tracker: _FileProgress
) -> Iterator[pa.RecordBatch]:
    try:
        from sigmarrow.evtx import read_evtx
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise DataError(f"cannot read .evtx files: {exc}") from None
    try:
        if isinstance(f.filesystem, pafs.LocalFileSystem):
            table = read_evtx(f.path)
        else:
            with f.filesystem.open_input_file(f.path) as handle:
                table = read_evtx(io.BytesIO(handle.read()))
    except ImportError as exc:
        raise DataError(str(exc)) from None
    tracker.set_total_rows(table.num_rows)
    columns = proj.columns(_with_partition(table.schema, f))
    table = table.select([c for c in columns if table.schema.get_field_index(c) >= 0])
    yield from table.to_batches(max_chunksize=batch_rows) or [_empty_batch(0)]


_READERS = {"parquet": _read_parquet, "ipc": _read_ipc, "jsonl": _read_jsonl, "evtx": _read_evtx}


def _with_partition(schema: pa.Schema, f: InputFile) -> pa.Schema:
    for key, _ in f.partition:
        if schema.get_field_index(key) < 0:
            schema = schema.append(pa.field(key, pa.string()))
    return schema


def _add_partition(batch: pa.RecordBatch, f: InputFile, proj: _Projection) -> pa.RecordBatch:
    """Partition values as columns of the batch (a column of the file itself wins)."""
    if not f.partition:
        return batch
    wanted = set(proj.columns(_with_partition(batch.schema, f)))
    for key, value in f.partition:
        if key in wanted and batch.schema.get_field_index(key) < 0:
            column = (
                pa.nulls(batch.num_rows, pa.string())
                if value is None
                else pa.repeat(pa.scalar(value, pa.string()), batch.num_rows)
            )
            batch = batch.append_column(key, column)
    return batch


def _prefetch(iterator: Iterator[pa.RecordBatch], depth: int = 1) -> Iterator[pa.RecordBatch]:
    """Read the next batch in a thread while the caller works on the current one.

    Exceptions of the reader are raised in the caller, at the position they occurred.
    """
    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for batch in iterator:
                if not put(("batch", batch)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(("error", exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    thread = threading.Thread(target=work, name="sigmarrow-read", daemon=True)
    thread.start()
    try:
        while True:
            tag, value = items.get()
            if tag == "batch":
                yield value
            elif tag == "end":
                return
            else:
                raise value
    finally:
        stop.set()
        thread.join()


# --------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------


@dataclass
class Progress:
    """What a progress display needs; passed to the ``progress`` callback of :func:`scan`."""

    files_done: int
    files_total: int
    rows: int
    bytes_done: float  #: bytes of the finished files, plus the read fraction of the current one
    bytes_total: int
    seconds: float
    current: str | None
    hits: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.bytes_done <= 0 or self.bytes_total <= 0 or self.seconds <= 0:
            return None
        return max(self.seconds * (self.bytes_total - self.bytes_done) / self.bytes_done, 0.0)


class _FileProgress:
    def __init__(self) -> None:
        self.total_rows: int | None = None

    def set_total_rows(self, rows: int) -> None:
        self.total_rows = rows


# --------------------------------------------------------------------------------------
# Hits
# --------------------------------------------------------------------------------------


class _HitBuilder:
    """Turns the engine's (row, rule index) pairs into output rows."""

    def __init__(self, matcher: Any, columns: Sequence[str] | None):
        self.rules = list(matcher.rules)
        self.rule_ids = pa.array([r.id for r in self.rules], pa.string())
        self.titles = pa.array([r.title for r in self.rules], pa.string())
        self.levels = pa.array([r.level for r in self.rules], pa.string())
        self.tags = pa.array([list(r.tags or ()) for r in self.rules], pa.list_(pa.string()))
        all_fields = list(matcher.fields)
        self.per_rule = columns is None
        if columns is None:
            # Default: the columns of the rule that matched (others are null for that hit).
            self.columns = all_fields
            rule_fields = [set(getattr(r, "fields", all_fields)) for r in self.rules]
            self.used = {
                c: pa.array([c in fields for fields in rule_fields], pa.bool_())
                for c in self.columns
            }
            self.rule_columns = [[c for c in self.columns if c in fields] for fields in rule_fields]
        else:
            self.columns = list(dict.fromkeys(columns))
            self.used = {}
            self.rule_columns = [self.columns] * len(self.rules)
        # An event column named like a hit column is written as "event.<name>".
        self.out_names = {c: (f"event.{c}" if c in HIT_COLUMNS else c) for c in self.columns}
        self.seen_types: dict[str, pa.DataType] = {}

    def expand_all(self, batch: pa.RecordBatch) -> None:
        """With ``--columns '*'``: the columns are those of the data."""
        for name in batch.schema.names:
            if name not in self.out_names:
                self.columns.append(name)
                self.out_names[name] = f"event.{name}" if name in HIT_COLUMNS else name
        self.rule_columns = [self.columns] * len(self.rules)

    def build(
        self, f: InputFile, batch: pa.RecordBatch, offset: int, rows: pa.Array, rule_index: pa.Array
    ) -> pa.RecordBatch:
        n = len(rows)
        arrays: list[pa.Array] = [
            pa.repeat(pa.scalar(f.display, pa.string()), n),
            pc.add(rows.cast(pa.int64()), offset),
            self.rule_ids.take(rule_index),
            self.titles.take(rule_index),
            self.levels.take(rule_index),
            self.tags.take(rule_index),
        ]
        names = list(HIT_COLUMNS)
        for c in self.columns:
            column = _column(batch, c)
            if column is None:
                values = pa.nulls(n)
            else:
                values = _plain(column.take(rows))
                if values.type != pa.null():
                    self.seen_types.setdefault(c, values.type)
                if self.per_rule:
                    values = pc.if_else(
                        self.used[c].take(rule_index), values, pa.nulls(n, values.type)
                    )
            arrays.append(values)
            names.append(self.out_names[c])
        arrays.append(rule_index.cast(pa.uint32()))
        names.append("__rule_index")
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def note_types(self, batch: pa.RecordBatch) -> None:
        for c in self.columns:
            if c not in self.seen_types:
                column = _column(batch, c)
                if column is not None and column.type != pa.null():
                    self.seen_types[c] = _plain_type(column.type)


def _plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    return t


def _plain(array: pa.Array) -> pa.Array:
    """Output values: dictionaries decoded, string flavours as plain strings."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    target = _plain_type(array.type)
    return array if target == array.type else array.cast(target)


# --------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------


def output_kind(output: str) -> str:
    """``jsonl``, ``parquet`` or ``arrow`` for an output path (``-`` is JSON Lines on stdout)."""
    if output == "-":
        return "jsonl"
    lower = output.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith((".parquet", ".parq", ".pq")):
        return "parquet"
    if lower.endswith((".arrow", ".feather", ".ipc")):
        return "arrow"
    raise SigmarrowError(
        f"cannot tell the output format of {output}: name it .parquet, .jsonl or .arrow, "
        "or use - for JSON Lines on standard output"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)



def output_folder(output: str) -> str:
    """The folder an output file goes to; raises when the file cannot be written there."""
    target = os.path.abspath(output)
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise SigmarrowError(f"cannot write output {output}: it is a folder")
    if not os.path.isdir(folder):
        raise SigmarrowError(f"cannot write output {output}: folder {folder} does not exist")
    return folder

class _Output:
    """Where hits go: a temporary file renamed into place at the end, or stdout."""

    def __init__(self, output: str, hits: _HitBuilder, stdout: IO[bytes] | None = None):
        self.output = output
        self.kind = output_kind(output)
        self.hits = hits
        self.tmp: str | None = None
        self.spool_dir: str | None = None
        self.spools: dict[pa.Schema, tuple[str, pa.ipc.RecordBatchStreamWriter, Any]] = {}
        self.stream: IO[bytes] | None = None
        if output == "-":
            self.stream = stdout if stdout is not None else sys.stdout.buffer
            return
        target = os.path.abspath(output)
        folder = output_folder(output)
        try:
            fd, self.tmp = tempfile.mkstemp(
                dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
            )
            os.close(fd)
            if self.kind == "jsonl":
                self.stream = open(self.tmp, "wb")  # noqa: SIM115 - closed in finish/abort
            else:
                self.spool_dir = tempfile.mkdtemp(
                    dir=folder, prefix=f".{os.path.basename(target)}.spool-"
                )
        except OSError as exc:
            self.abort()
            raise SigmarrowError(f"cannot write output {output}: {exc.strerror or exc}") from None

    def write(self, batch: pa.RecordBatch) -> None:
        try:
            if self.kind == "jsonl":
                self._write_jsonl(batch)
            else:
                self._spool(batch)
        except OSError as exc:
            if self.output == "-" and isinstance(exc, BrokenPipeError):
                raise
            raise SigmarrowError(
                f"cannot write output {self.output}: {exc.strerror or exc}"
            ) from None

    def _write_jsonl(self, batch: pa.RecordBatch) -> None:
        assert self.stream is not None
        rule_index = batch.column(batch.num_columns - 1).to_pylist()
        rows = batch.drop_columns(["__rule_index"]).to_pylist()
        out_names = self.hits.out_names
        rule_columns = [[out_names[c] for c in cols] for cols in self.hits.rule_columns]
        head = HIT_COLUMNS
        lines = []
        for row, index in zip(rows, rule_index, strict=True):
            record = {k: row[k] for k in head}
            for name in rule_columns[index]:
                record[name] = row.get(name)
            lines.append(
                orjson.dumps(record, default=_json_default, option=orjson.OPT_APPEND_NEWLINE)
            )
        self.stream.write(b"".join(lines))

    def _spool(self, batch: pa.RecordBatch) -> None:
        assert self.spool_dir is not None
        batch = batch.drop_columns(["__rule_index"])
        entry = self.spools.get(batch.schema)
        if entry is None:
            path = os.path.join(self.spool_dir, f"{len(self.spools)}.arrows")
            sink = pa.OSFile(path, "wb")
            entry = (path, pa.ipc.new_stream(sink, batch.schema), sink)
            self.spools[batch.schema] = entry
        entry[1].write_batch(batch)

    def _final_schema(self) -> pa.Schema:
        types: dict[str, list[pa.DataType]] = {}
        for schema in self.spools:
            for f in schema:
                if f.name not in HIT_COLUMNS and f.type != pa.null():
                    types.setdefault(f.name, []).append(f.type)
        fields = list(_HIT_SCHEMA)
        for c in self.hits.columns:
            name = self.hits.out_names[c]
            candidates = list(dict.fromkeys(types.get(name, [])))
            if not candidates and c in self.hits.seen_types:
                candidates = [self.hits.seen_types[c]]
            if not candidates and self.hits.per_rule:
                # A referenced column no input has: a large rule set references hundreds
                # of fields of other log sources; do not make a null column of each.
                continue
            fields.append(pa.field(name, _unify(candidates)))
        return pa.schema(fields)

    def finish(self) -> None:
        """Write the final file and rename it into place."""
        if self.output == "-":
            assert self.stream is not None
            self.stream.flush()
            return
        assert self.tmp is not None
        if self.kind == "jsonl":
            assert self.stream is not None
            self.stream.close()
        else:
            for _, writer, sink in self.spools.values():
                writer.close()
                sink.close()
            schema = self._final_schema()
            if self.kind == "parquet":
                writer: Any = pq.ParquetWriter(self.tmp, schema, compression="zstd")
            else:
                writer = pa.ipc.new_file(self.tmp, schema)
            with writer:
                for path, _, _ in self.spools.values():
                    with pa.memory_map(path) as source:
                        for batch in pa.ipc.open_stream(source):
                            writer.write_batch(_conform(batch, schema))
        _make_readable(self.tmp)
        os.replace(self.tmp, self.output)
        self.tmp = None
        self._remove_spool()

    def abort(self) -> None:
        """Remove every temporary file; the output is left as it was."""
        if self.stream is not None and self.output != "-":
            with contextlib.suppress(OSError):
                self.stream.close()
        for _, writer, sink in self.spools.values():
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(Exception):
                sink.close()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(self.tmp)
            self.tmp = None
        self._remove_spool()

    def _remove_spool(self) -> None:
        if self.spool_dir is not None:
            shutil.rmtree(self.spool_dir, ignore_errors=True)
            self.spool_dir = None


def _make_readable(path: str) -> None:
    # mkstemp creates the file readable by its owner only; give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~umask)


def _unify(types: list[pa.DataType]) -> pa.DataType:
    if not types:
        return pa.string()
    if len(types) == 1:
        return types[0]
    try:
        schema = pa.unify_schemas(
            [pa.schema([pa.field("x", t)]) for t in types], promote_options="permissive"
        )
        return schema.field("x").type
    except (pa.ArrowException, TypeError):
        return pa.string()  # e.g. a number in one file and a string in another


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for f in schema:
        index = batch.schema.get_field_index(f.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, f.type))
            continue
        array = batch.column(index)
        if array.type != f.type:
            try:
                array = array.cast(f.type)
            except (pa.ArrowException, TypeError):
                array = pa.array([_json_text(v) for v in array.to_pylist()], type=pa.string())
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------


@dataclass
class RuleHits:
    index: int
    id: str | None
    title: str
    level: str | None
    count: int


@dataclass
class SkippedFile:
    path: str
    reason: str
    rows_read: int  #: rows scanned (and their hits kept) before the problem showed


@dataclass
class ScanSummary:
    """What a scan did; ``format()`` renders it for people, ``to_dict()`` for programs."""

    output: str
    files: int = 0
    rows: int = 0
    seconds: float = 0.0
    hits: int = 0
    rules: int = 0
    hits_per_rule: list[RuleHits] = field(default_factory=list)
    compile_errors: list[Any] = field(default_factory=list)
    #: referenced fields (columns) missing from the data: field -> files that lack it
    missing_fields: dict[str, int] = field(default_factory=dict)
    skipped_files: list[SkippedFile] = field(default_factory=list)
    ignored_files: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "files": self.files,
            "rows": self.rows,
            "seconds": self.seconds,
            "rows_per_second": self.rows_per_second,
            "hits": self.hits,
            "rules": self.rules,
            "hits_per_rule": [vars(h) for h in self.hits_per_rule],
            "compile_errors": [
                {k: getattr(e, k, None) for k in ("source", "rule_id", "title", "reason")}
                for e in self.compile_errors
            ],
            "missing_fields": dict(self.missing_fields),
            "skipped_files": [vars(s) for s in self.skipped_files],
            "ignored_files": self.ignored_files,
        }

    def format(self, limit: int = 20) -> str:
        where = "standard output" if self.output == "-" else self.output
        lines = [
            (
                f"scanned {_n(self.files)} file{_s(self.files)}, {_n(self.rows)} "
                f"row{_s(self.rows)} in {self.seconds:.2f} s "
                f"({_n(round(self.rows_per_second))} rows/s) with {_n(self.rules)} "
                f"rule{_s(self.rules)}: {_n(self.hits)} hit{_s(self.hits)} written to {where}"
            )
        ]
        if self.hits_per_rule:
            lines.append(
                f"hits per rule ({len(self.hits_per_rule)} of {_n(self.rules)} rules matched):"
            )
            width = max(len(_n(h.count)) for h in self.hits_per_rule)
            for h in self.hits_per_rule[:limit]:
                lines.append(
                    f"  {_n(h.count):>{width}}  {h.level or '-':<13} {h.title}  ({h.id or 'no id'})"
                )
            if len(self.hits_per_rule) > limit:
                lines.append(f"  ... and {len(self.hits_per_rule) - limit} more rules")
        if self.compile_errors:
            lines.append(f"rules that could not compile ({len(self.compile_errors)}):")
            for e in self.compile_errors[:limit]:
                lines.append(f"  {describe_compile_error(e)}")
            if len(self.compile_errors) > limit:
                lines.append(f"  ... and {len(self.compile_errors) - limit} more")
        if self.missing_fields and self.files:
            everywhere = sorted(k for k, v in self.missing_fields.items() if v >= self.files)
            partly = sorted((k, v) for k, v in self.missing_fields.items() if v < self.files)
            if everywhere:
                shown = ", ".join(everywhere[:limit])
                more = f" and {len(everywhere) - limit} more" if len(everywhere) > limit else ""
                lines.append(
                    f"referenced columns missing from the data ({len(everywhere)}): {shown}{more}"
                )
            if partly:
                shown = ", ".join(f"{k} ({v} of {self.files} files)" for k, v in partly[:limit])
                more = f" and {len(partly) - limit} more" if len(partly) > limit else ""
                lines.append(f"referenced columns missing from some files: {shown}{more}")
        if self.ignored_files:
            lines.append(
                f"ignored {self.ignored_files} file{_s(self.ignored_files)} in input "
                "folders that are not data files"
            )
        if self.skipped_files:
            lines.append(
                f"skipped {len(self.skipped_files)} bad file{_s(len(self.skipped_files))}:"
            )
            for s in self.skipped_files:
                after = f" (after {_n(s.rows_read)} rows)" if s.rows_read else ""
                lines.append(f"  {s.path}: {s.reason}{after}")
        return "\n".join(lines)


def describe_compile_error(e: Any) -> str:
    """One line for a ``CompileError``: where, which rule, why."""
    where = getattr(e, "source", None) or "<rule text>"
    rule = getattr(e, "title", None) or getattr(e, "rule_id", None)
    return f"{where}{f' ({rule})' if rule else ''}: {getattr(e, 'reason', e)}"


def _n(value: int) -> str:
    return f"{value:,}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


# --------------------------------------------------------------------------------------
# The scan
# --------------------------------------------------------------------------------------


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
    hits = _HitBuilder(matcher, columns if columns else None)
    expand_all = bool(columns) and "*" in columns
    if expand_all:
        hits.columns = [c for c in hits.columns if c != "*"]
        hits.out_names.pop("*", None)
    proj = _Projection(
        matcher.fields, list(columns or ()), bool(getattr(matcher, "has_keywords", True))
    )
    out = _Output(output, hits, stdout=stdout)
    summary = ScanSummary(
        output=output,
        rules=len(matcher.rules),
        compile_errors=list(getattr(matcher, "errors", [])),
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
            tracker = _FileProgress()
            offset = 0
            missing: set[str] | None = None
            try:
                batches = _prefetch(_READERS[f.kind](f, proj, batch_rows, use_threads, tracker))
                try:
                    for batch in batches:
                        batch = _add_partition(batch, f, proj)
                        if expand_all:
                            hits.expand_all(batch)
                        hits.note_types(batch)
                        file_missing = set(matcher.missing_fields(batch.schema))
                        data = _drop_null_columns(batch)
                        missing = file_missing if missing is None else missing & file_missing
                        rows, rule_index = _match(matcher, data, threads)
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
                message = _reason(exc)
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


def _drop_null_columns(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Columns of type null (all values null, as JSON or an all-null Parquet column can give)
    are absent in every row: leave them out rather than make the engine handle the type."""
    null_columns = [f.name for f in batch.schema if f.type == pa.null()]
    return batch.drop_columns(null_columns) if null_columns else batch


def _match(matcher: Any, batch: pa.RecordBatch, threads: int | None) -> tuple[pa.Array, pa.Array]:
    rows, rule_index = matcher.match_indices(batch, threads=threads)
    return rows, rule_index


def _count(rule_index: pa.Array) -> Iterator[tuple[int, int]]:
    counts = pc.value_counts(rule_index)
    values = counts.field("values").to_pylist()
    numbers = counts.field("counts").to_pylist()
    return zip(values, numbers, strict=True)
