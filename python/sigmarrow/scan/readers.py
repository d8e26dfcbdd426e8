"""Readers: each yields the record batches of one file, in file order, reading only the
columns the scan needs; :func:`read` adds the file's partition columns and reads one batch
ahead in a thread while the engine matches the previous one."""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sigmarrow.columns import bind, is_string
from sigmarrow.errors import DataError
from sigmarrow.scan.inputs import InputFile, reason

__all__ = ["FileProgress", "Projection", "json_text", "read", "schema_of"]


class Projection:
    """Which top-level columns of a file to read: those the names (rule fields, requested
    columns) resolve to, every string column when a rule has keywords (they search all of
    them), or every column (``--columns '*'``)."""

    def __init__(self, names: Iterable[str], *, keywords: bool, everything: bool) -> None:
        self.names = list(dict.fromkeys(names))
        self.keywords = keywords
        self.everything = everything

    def columns(self, schema: pa.Schema) -> list[str]:
        if self.everything:
            return list(schema.names)
        wanted = set(bind(schema, self.names).columns)
        if self.keywords:
            wanted.update(f.name for f in schema if is_string(f.type))
        return [n for n in schema.names if n in wanted]

    def wants(self, column: str) -> bool:
        """Whether a string column of that name (a partition key) is read."""
        return self.everything or self.keywords or column in self.names

    def keys(self) -> set[str] | None:
        """Top-level keys that may matter for schemaless input (None: all of them)."""
        if self.everything or self.keywords:
            return None
        keys: set[str] = set()
        for name in self.names:
            parts = name.split(".")
            keys.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
        return keys


class FileProgress:
    """What a reader knows of its file's size in rows, for the progress display."""

    def __init__(self) -> None:
        self.total_rows: int | None = None


Reader = Callable[[InputFile, Projection, int, bool, FileProgress], Iterator[pa.RecordBatch]]


def read(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Generator[pa.RecordBatch, None, None]:
    """The batches of one file, with its partition columns, read one batch ahead."""
    batches = _READERS[f.kind](f, projection, batch_rows, use_threads, tracker)
    partition = [(key, value) for key, value in f.partition if projection.wants(key)]
    return _prefetch(_with_partition(batches, partition) if partition else batches)


def _with_partition(
    batches: Iterator[pa.RecordBatch], partition: list[tuple[str, str | None]]
) -> Iterator[pa.RecordBatch]:
    """Partition values as columns of each batch (a column of the file itself wins)."""
    for batch in batches:
        for key, value in partition:
            if batch.schema.get_field_index(key) < 0:
                column = (
                    pa.nulls(batch.num_rows, pa.string())
                    if value is None
                    else pa.repeat(pa.scalar(value, pa.string()), batch.num_rows)
                )
                batch = batch.append_column(key, column)
        yield batch


def _read_parquet(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Iterator[pa.RecordBatch]:
    with f.filesystem.open_input_file(f.path) as handle:
        try:
            pf = pq.ParquetFile(handle)
            schema = pf.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"not a readable Parquet file: {reason(exc)}") from None
        tracker.total_rows = pf.metadata.num_rows
        try:
            yield from pf.iter_batches(
                batch_size=batch_rows, columns=projection.columns(schema), use_threads=use_threads
            )
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"corrupt Parquet data: {reason(exc)}") from None


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
) -> Iterator[pa.RecordBatch]:
    with _open_ipc_file(f) as handle:
        schema, batches = _open_ipc(handle)
        columns = projection.columns(schema)
        try:
            for batch in batches:
                batch = batch.select(columns)
                for start in range(0, max(batch.num_rows, 1), batch_rows):
                    yield batch.slice(start, batch_rows)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"corrupt Arrow IPC data: {reason(exc)}") from None


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


def _read_jsonl(
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
) -> Iterator[pa.RecordBatch]:
    keep = projection.keys()
    compression = "detect" if f.path.lower().endswith((".gz", ".zst", ".bz2")) else None
    with f.filesystem.open_input_stream(f.path, compression=compression) as raw:
        stream = io.BufferedReader(raw, buffer_size=1 << 20)
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
    f: InputFile, projection: Projection, batch_rows: int, use_threads: bool, tracker: FileProgress
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
    tracker.total_rows = table.num_rows
    table = table.select(projection.columns(table.schema))
    yield from table.to_batches(max_chunksize=batch_rows) or [_empty_batch(0)]


_READERS: dict[str, Reader] = {
    "parquet": _read_parquet,
    "ipc": _read_ipc,
    "jsonl": _read_jsonl,
    "evtx": _read_evtx,
}
# The formats that have a schema to read before their events (the others: see schema_of).
_SCHEMAS: dict[str, Callable[[InputFile], pa.Schema]] = {
    "parquet": _parquet_schema,
    "ipc": _ipc_schema,
}


def schema_of(f: InputFile) -> pa.Schema | None:
    """The schema of a file's events (partition columns included) before reading them, or
    None for a format that has none to read first (JSON Lines, EVTX). A file whose schema
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


def _prefetch(
    iterator: Iterator[pa.RecordBatch], depth: int = 1
) -> Generator[pa.RecordBatch, None, None]:
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
