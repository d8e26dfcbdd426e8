"""Readers: each yields the record batches of one file, in file order, with the row of the
file each starts at, reading only the columns the scan needs (and, with a time range, only
the Parquet row groups that may hold it; Parquet text that the file dictionary-encodes
throughout as dictionaries, :mod:`.encodings`); :func:`read` adds the file's partition
columns and reads one batch ahead in a thread while the engine matches the previous one."""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import queue
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sigmarrow.columns import bind, is_string
from sigmarrow.errors import DataError
from sigmarrow.scan.encodings import dictionary_columns
from sigmarrow.scan.inputs import InputFile, reason
from sigmarrow.scan.timerange import TimeRange

__all__ = ["MAX_JSON_BYTES", "FileProgress", "Projection", "json_text", "read", "schema_of"]

#: The longest JSON line, or JSON value of a document, read as one event (docs/limits.md).
MAX_JSON_BYTES = 16 << 20
#: JSON batches end after this much text as well as after ``batch_rows`` events.
_JSON_BATCH_BYTES = 64 << 20
_CHUNK = 1 << 20


class Projection:
    """What of a file to read: the top-level columns the names (rule fields, requested
    columns) and the time field resolve to, every string column when a rule has keywords
    (they search all of them), or every column (``--columns '*'``); with a time range, only
    the Parquet row groups that may hold it."""

    def __init__(
        self,
        names: Iterable[str],
        *,
        keywords: bool,
        everything: bool,
        time_range: TimeRange | None = None,
    ) -> None:
        self.names = list(dict.fromkeys(names))
        self.keywords = keywords
        self.everything = everything
        self.time_range = time_range
        self.times = time_range.fields if time_range else ()  #: where times may be read

    def columns(self, schema: pa.Schema) -> list[str]:
        if self.everything:
            return list(schema.names)
        time_field = self.time_range.column(schema) if self.time_range else None
        wanted = set(bind(schema, [*self.names, time_field] if time_field else self.names).columns)
        if self.keywords:
            wanted.update(f.name for f in schema if is_string(f.type))
        return [n for n in schema.names if n in wanted]

    def wants(self, column: str) -> bool:
        """Whether a string column of that name (a partition key) is read."""
        return self.everything or self.keywords or column in self.names or column in self.times

    def keys(self) -> set[str] | None:
        """Top-level keys that may matter for schemaless input (None: all of them)."""
        if self.everything or self.keywords:
            return None
        keys: set[str] = set()
        for name in [*self.names, *self.times]:
            parts = name.split(".")
            keys.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
        return keys


class FileProgress:
    """What a reader knows of its file: its size in rows (for the progress display), and
    the row groups it skipped unread (for the summary)."""

    def __init__(self) -> None:
        self.total_rows: int | None = None
        self.row_groups_pruned = 0
        self.rows_pruned = 0


#: (the file's row the batch starts at, the batch)
Chunk = tuple[int, pa.RecordBatch]
Reader = Callable[[InputFile, Projection, int, bool, FileProgress], Iterator[Chunk]]


def read(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Generator[Chunk, None, None]:
    """The batches of one file (each with its first row in the file), with its partition
    columns, read one batch ahead. A file without events yields one empty batch of its
    schema, so that the columns it has are known."""
    batches = _READERS[f.kind](f, projection, batch_rows, use_threads, tracker)
    partition = [(key, value) for key, value in f.partition if projection.wants(key)]
    return _prefetch(_with_partition(batches, partition) if partition else batches)


def _with_partition(
    batches: Iterator[Chunk], partition: list[tuple[str, str | None]]
) -> Iterator[Chunk]:
    """Partition values as columns of each batch (a column of the file itself wins)."""
    for start, batch in batches:
        for key, value in partition:
            if batch.schema.get_field_index(key) < 0:
                column = (
                    pa.nulls(batch.num_rows, pa.string())
                    if value is None
                    else pa.repeat(pa.scalar(value, pa.string()), batch.num_rows)
                )
                batch = batch.append_column(key, column)
        yield start, batch


def _read_parquet(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Iterator[Chunk]:
    with f.filesystem.open_input_file(f.path) as handle:
        try:
            pf = pq.ParquetFile(handle)
            schema = pf.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable Parquet file: {reason(exc)}") from None
        meta = pf.metadata
        tracker.total_rows = meta.num_rows
        columns = projection.columns(schema)
        # Text the file stores as dictionaries is read as dictionaries (docs/scan.md).
        projected = set(columns)
        text = [f.name for f in schema if f.name in projected and _text(f)]
        dictionaries = dictionary_columns(handle, text)
        if dictionaries:
            pf = pq.ParquetFile(handle, metadata=meta, read_dictionary=dictionaries)
        window = projection.time_range
        keep = window.row_groups(meta, schema) if window else [True] * meta.num_row_groups
        first, read_any = 0, False  # the row the row group starts at
        # One row group at a time: a batch never spans two, so a bad row group costs only
        # its own rows, and a skipped one is never read.
        for index, wanted in enumerate(keep):
            rows = meta.row_group(index).num_rows
            if wanted:
                start = first
                try:
                    for batch in pf.iter_batches(
                        batch_size=batch_rows,
                        row_groups=[index],
                        columns=columns,
                        use_threads=use_threads,
                    ):
                        yield start, batch
                        start += batch.num_rows
                        read_any = True
                except (pa.ArrowException, OSError) as exc:
                    raise DataError(
                        f"corrupt Parquet data in row group {index}: {reason(exc)}"
                    ) from None
            else:
                tracker.row_groups_pruned += 1
                tracker.rows_pruned += rows
            first += rows
        if not read_any:
            yield 0, _no_rows(schema, columns)


def _text(field: pa.Field) -> bool:
    """Whether a column holds text that is not a dictionary already."""
    return is_string(field.type) and not pa.types.is_dictionary(field.type)


def _no_rows(schema: pa.Schema, columns: list[str]) -> pa.RecordBatch:
    """An empty batch of these columns of ``schema``."""
    return pa.RecordBatch.from_pylist([], schema=pa.schema([schema.field(c) for c in columns]))


def _open_ipc(handle: Any) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """An Arrow IPC file or stream: its schema and its batches."""
    try:
        reader = pa.ipc.open_file(handle)
        return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
    except (pa.ArrowInvalid, OSError):
        handle.seek(0)
        try:
            stream = pa.ipc.open_stream(handle)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable Arrow IPC file: {reason(exc)}") from None
        return stream.schema, iter(stream)


def _open_ipc_file(f: InputFile) -> Any:
    local = isinstance(f.filesystem, pafs.LocalFileSystem)
    return pa.memory_map(f.path) if local else f.filesystem.open_input_file(f.path)


def _read_ipc(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Iterator[Chunk]:
    with _open_ipc_file(f) as handle:
        schema, batches = _open_ipc(handle)
        columns = projection.columns(schema)
        start = 0
        try:
            for batch in batches:
                batch = batch.select(columns)
                for offset in range(0, batch.num_rows, batch_rows):
                    yield start + offset, batch.slice(offset, batch_rows)
                start += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"corrupt Arrow IPC data: {reason(exc)}") from None
        if not start:
            yield 0, _no_rows(schema, columns)


def _ipc_schema(f: InputFile) -> pa.Schema:
    with _open_ipc_file(f) as handle:
        return _open_ipc(handle)[0]


def _parquet_schema(f: InputFile) -> pa.Schema:
    with f.filesystem.open_input_file(f.path) as handle:
        return pq.read_schema(handle)


def _jsonl_column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Mixed JSON types in one column (a number here, a string there): keep the text.
        return pa.array([json_text(v) for v in values], type=pa.string())


def json_text(value: Any) -> str | None:
    """A JSON value as text: strings as they are, numbers and booleans as JSON writes them,
    objects and arrays as JSON."""
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


def _read_json(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Iterator[Chunk]:
    keep = projection.keys()
    compression = "detect" if f.path.lower().endswith((".gz", ".zst", ".bz2")) else None
    with f.filesystem.open_input_stream(f.path, compression=compression) as raw:
        stream = io.BufferedReader(raw, buffer_size=_CHUNK)
        rows: list[dict[str, Any]] = []
        start, size = 0, 0
        for line, value, length in _json_values(stream, documents=f.kind == "json"):
            if not isinstance(value, dict):
                raise DataError(f"line {line} is not a JSON object")
            rows.append(value)
            size += length
            if len(rows) >= batch_rows or size >= _JSON_BATCH_BYTES:
                yield start, _jsonl_batch(rows, keep)
                start += len(rows)
                rows, size = [], 0
        if rows:
            yield start, _jsonl_batch(rows, keep)


def _json_values(stream: io.BufferedReader, documents: bool) -> Iterator[tuple[int, Any, int]]:
    """(line, value, size) of each JSON value of a stream: one per line (JSON Lines), or,
    with ``documents``, from the first line that is not a value on its own (a pretty-printed
    object, an array) on, concatenated values or one array of them."""
    lineno = 0
    while True:
        # A bounded read: one huge line must not take the memory of the whole line.
        line = stream.readline(MAX_JSON_BYTES + 1)
        if not line:
            return
        lineno += 1
        if lineno == 1:
            line = line.removeprefix(codecs.BOM_UTF8)  # as Windows tools write UTF-8
        if len(line.rstrip(b"\r\n")) > MAX_JSON_BYTES:
            raise DataError(f"line {lineno} is longer than {_MAX_JSON} (the limit for one event)")
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if not documents:
                raise DataError(f"line {lineno} is not valid JSON: {exc}") from None
            value = exc
        if documents and (isinstance(value, Exception) or line.lstrip().startswith(b"[")):
            yield from _documents(_JsonText(stream, line, lineno))
            return
        yield lineno, value, len(line)


_MAX_JSON = f"{MAX_JSON_BYTES >> 20} MiB"
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class _JsonText:
    """JSON text read from a stream as it is needed, decoded, with the line it is at."""

    def __init__(self, stream: io.BufferedReader, start: bytes, line: int) -> None:
        self.stream = stream
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = self.utf8.decode(start)
        self.pos = 0
        self.line = line
        self.ended = False

    def more(self, size: int = _CHUNK) -> bool:
        """Read on (dropping what was consumed); False at the end of the stream."""
        data = b"" if self.ended else self.stream.read(size)
        if not data:
            self.ended = True
            self.utf8.decode(b"", final=True)  # raises for a UTF-8 sequence cut at the end
            return False
        self.text = self.text[self.pos :] + self.utf8.decode(data)
        self.pos = 0
        return True

    def advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def peek(self) -> str:
        """The next character that is not white space ('' at the end)."""
        while True:
            self.advance(_SPACE.match(self.text, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def value(self) -> tuple[Any, int]:
        """The JSON value here, and its size."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
                break
            except json.JSONDecodeError as exc:
                pending = len(self.text) - self.pos
                if pending > MAX_JSON_BYTES:
                    raise self._too_large() from None
                # Perhaps only cut short: read on (doubling, so that a long value is parsed
                # a few times, not once per chunk); at the end, say what is wrong.
                if not self.more(max(_CHUNK, pending)):
                    raise self._invalid(exc) from None
        size = end - self.pos
        if size > MAX_JSON_BYTES:
            raise self._too_large()
        self.advance(end)
        return value, size

    def _invalid(self, exc: json.JSONDecodeError) -> DataError:
        line = self.line + self.text.count("\n", self.pos, exc.pos)
        column = exc.pos - self.text.rfind("\n", 0, exc.pos)
        where = f"line {line} column {column}"
        if line == self.line:
            return DataError(f"{where} is not valid JSON: {exc.msg}")
        return DataError(f"the JSON value at line {self.line} is not valid: {exc.msg} at {where}")

    def _too_large(self) -> DataError:
        return DataError(
            f"the JSON value at line {self.line} is larger than {_MAX_JSON} (the limit for one event)"
        )


def _documents(text: _JsonText) -> Iterator[tuple[int, Any, int]]:
    """(line, value, size) of concatenated JSON values, or of the elements of one array."""
    array = text.peek() == "["
    if array:
        text.advance(text.pos + 1)
    first = True
    while True:
        char = text.peek()
        if array and char == "]":
            text.advance(text.pos + 1)
            if text.peek():
                raise DataError(f"line {text.line}: data after the array")
            return
        if array and not first:
            if char != ",":
                problem = "the array is not closed" if not char else "expected ',' or ']'"
                raise DataError(f"line {text.line} is not valid JSON: {problem}")
            text.advance(text.pos + 1)
            char = text.peek()
        if not char:
            if array:
                raise DataError(f"line {text.line} is not valid JSON: the array is not closed")
            return
        line = text.line
        value, size = text.value()
        yield line, value, size
        first = False


def _read_evtx(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Iterator[Chunk]:
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
    except DataError as exc:  # it names the file by its path; the scan names it as shown
        raise DataError(str(exc).removeprefix(f"{f.path}: ")) from None
    tracker.total_rows = table.num_rows
    columns = projection.columns(table.schema)
    table = table.select(columns)
    start = 0
    for batch in table.to_batches(max_chunksize=batch_rows):
        yield start, batch
        start += batch.num_rows
    if not start:
        yield 0, _no_rows(table.schema, columns)


_READERS: dict[str, Reader] = {
    "parquet": _read_parquet,
    "ipc": _read_ipc,
    "jsonl": _read_json,
    "json": _read_json,
    "evtx": _read_evtx,
}
# The formats that have a schema to read before their events (the others: see schema_of).
_SCHEMAS: dict[str, Callable[[InputFile], pa.Schema]] = {
    "parquet": _parquet_schema,
    "ipc": _ipc_schema,
}


def schema_of(f: InputFile) -> pa.Schema | None:
    """The schema of a file's events (partition columns included) before reading them, or
    None for a format that has none to read first (JSON, EVTX). A file whose schema
    cannot be read has an empty one: reading it will say what is wrong."""
    read_schema = _SCHEMAS.get(f.kind)
    if read_schema is None:
        return None
    try:
        schema = read_schema(f)
    except (DataError, pa.ArrowException, OSError):
        schema = pa.schema([])
    for key, _ in f.partition:
        if schema.get_field_index(key) < 0:
            schema = schema.append(pa.field(key, pa.string()))
    return schema


def _prefetch(iterator: Iterator[Chunk], depth: int = 1) -> Generator[Chunk, None, None]:
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
