"""Outputs: one small interface per format, and the one place that makes a file appear whole.

A format is a :class:`Format` in :data:`FORMATS`: its name, the file suffixes that choose it,
a line for ``--help``, whether it needs the hit schema's event column types before the
first hit (``typed``) and ``open(sink, schema)``, which returns a :class:`Writer`: it takes
batches of hits and is closed once. Every format streams: nothing is spooled or written
twice, so memory follows the batches, not the hits. Adding one is a :func:`register` call.

:class:`Output` is what the scan writes to: an :class:`AtomicFile` (written under a temporary
name beside the target and renamed into place at the end, so a failed or interrupted scan
leaves the target as it was), or standard output for ``-``; with ``sort="time"`` the hits
pass through :class:`sigmarrow.scan.timesort.TimeSorted` first. :class:`AtomicFile` is the
one temp-file-and-rename of the command line; other outputs (a compiled program, the
summary, the report) use it too.

Temporaries are named ``.<name>.<pid>.<random>.tmp`` beside their target and locked
(``flock``) while their process writes them; whoever makes a temporary of a target first
removes the stale ones of that target: unlocked, and of a process that is not running
(:func:`remove_stale`).
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import errno
import fcntl
import os
import re
import secrets
import select
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol, Self

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import sigmarrow
from sigmarrow.errors import SigmarrowError
from sigmarrow.scan.hits import EVENT_COLUMNS_KEY, HIT_COLUMNS
from sigmarrow.scan.timesort import TimeSorted

__all__ = [
    "FORMATS",
    "STDOUT_FORMAT",
    "AtomicFile",
    "Format",
    "Output",
    "TempFolder",
    "Writer",
    "check_output",
    "output_format",
    "register",
    "remove_stale",
    "write_file",
]

#: Rows of hits per Parquet row group: one per batch of hits would make many tiny groups.
ROW_GROUP_ROWS = 1 << 16
#: ... unless they hold more bytes than this first (hits with many wide event columns).
ROW_GROUP_BYTES = 64 << 20
#: Hits encoded at a time for JSON Lines: a batch of hits (its events times the rules they
#: hit) can be many times the events, and its lines larger still.
JSON_ROWS = 16_384
#: How long a scan to a pipe waits at the end for its reader to leave: a reader that quits
#: before the end of the data (``| head -2``) did not read every hit.
READER_GRACE_SECONDS = 0.1


class Writer(Protocol):
    """Writes batches of hits, all in the schema it was opened with, then is closed."""

    def write(self, batch: pa.RecordBatch) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]  #: lower case, with the dot; the first is the one help shows
    help: str  #: what the format is, for ``--help``
    open: Callable[[Any, pa.Schema], Writer]  #: (a binary sink, the hit schema) -> Writer
    typed: bool  #: needs the event columns and their types before the first hit


#: Output formats by name, in the order help lists them.
FORMATS: dict[str, Format] = {}
#: The format of ``-`` (standard output).
STDOUT_FORMAT = "jsonl"


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def output_format(output: str) -> Format:
    """The format of an output path, by its suffix (``-`` is JSON Lines on stdout)."""
    if output == "-":
        return FORMATS[STDOUT_FORMAT]
    lower = output.lower()
    for fmt in FORMATS.values():
        if lower.endswith(fmt.suffixes):
            return fmt
    names = [fmt.suffixes[0] for fmt in FORMATS.values()]
    raise SigmarrowError(
        f"cannot tell the output format of {output}: name it {', '.join(names[:-1])} or "
        f"{names[-1]}, or use - for {FORMATS[STDOUT_FORMAT].help} on standard output"
    )


class _ParquetWriter:
    def __init__(self, sink: Any, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(sink, schema, compression="zstd")
        self._pending: list[pa.RecordBatch] = []
        self._rows = self._bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._rows += batch.num_rows
        self._bytes += batch.nbytes
        if self._rows >= ROW_GROUP_ROWS or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending))
            self._pending, self._rows, self._bytes = [], 0, 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


class _JsonLinesWriter:
    """One JSON object per hit, encoded by the engine (:func:`sigmarrow.json_lines`,
    docs/scan.md tells how each type is written). With the event columns of the rule
    (schema metadata), an event column is left out of a hit where it is null: it is
    another rule's, or the event lacks it."""

    def __init__(self, sink: Any, schema: pa.Schema) -> None:
        self._sink = sink
        per_rule = (schema.metadata or {}).get(EVENT_COLUMNS_KEY) == b"rule"
        self._keep_nulls = list(HIT_COLUMNS) if per_rule else None

    def encode(self, batch: pa.RecordBatch) -> pa.Array:
        """The lines of these hits (large binary, each ending in a newline)."""
        return sigmarrow.json_lines(batch, self._keep_nulls)

    def write_lines(self, lines: pa.Array) -> None:
        """Write lines of :meth:`encode` (large binary): their bytes, straight from the data
        buffer, between the first line's offset and the last one's end."""
        _, offsets, data = lines.buffers()
        ends = memoryview(offsets).cast("q")  # int64: large binary
        self._sink.write(data[ends[lines.offset] : ends[lines.offset + len(lines)]])

    def write(self, batch: pa.RecordBatch) -> None:
        for start in range(0, batch.num_rows, JSON_ROWS):
            self.write_lines(self.encode(batch.slice(start, JSON_ROWS)))

    def close(self) -> None:
        self._sink.flush()


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


class _CsvWriter:
    """RFC 4180 CSV: a header row, then one row per hit; fields quoted where they must be,
    lines ending in CRLF. What CSV cannot hold is written as text: lists joined with
    :data:`CSV_LIST_SEPARATOR`, nested values as JSON, binary as hex; null is empty."""

    def __init__(self, sink: Any, schema: pa.Schema) -> None:
        self._schema = pa.schema([pa.field(f.name, _csv_type(f.type)) for f in schema])
        options = pacsv.WriteOptions(eol="\r\n")
        self._writer = pacsv.CSVWriter(sink, self._schema, write_options=options)

    def write(self, batch: pa.RecordBatch) -> None:
        arrays = [
            column if column.type == field.type else _csv_text(column)
            for column, field in zip(batch.columns, self._schema, strict=True)
        ]
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


#: What joins the items of a list in one CSV field (``tags``: ``attack.t1059,attack.execution``).
CSV_LIST_SEPARATOR = ","


def _csv_type(t: pa.DataType) -> pa.DataType:
    nested = pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)
    return pa.string() if nested else t


def _csv_text(values: pa.Array) -> pa.Array:
    t = values.type
    listed = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if listed and not pa.types.is_nested(t.value_type):
        return pc.binary_join(values.cast(pa.list_(pa.string())), CSV_LIST_SEPARATOR)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.array([None if v is None else v.hex() for v in values.to_pylist()], pa.string())
    return pa.array(
        [None if v is None else _json(v) for v in values.to_pylist()],
        pa.string(),
    )


register(Format("parquet", (".parquet", ".parq", ".pq"), "Parquet (zstd)", _ParquetWriter, True))
register(Format("jsonl", (".jsonl", ".ndjson"), "JSON Lines", _JsonLinesWriter, False))
register(
    Format("arrow", (".arrow", ".feather", ".ipc"), "Arrow IPC file", pa.ipc.new_file, True)
)
register(Format("csv", (".csv",), "CSV (RFC 4180; lists joined with ',')", _CsvWriter, True))


def output_folder(output: str) -> str:
    """The folder an output file goes to; raises when the file cannot be written there."""
    target = os.path.abspath(output)
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise SigmarrowError(f"cannot write output {output}: it is a folder")
    if not os.path.isdir(folder):
        raise SigmarrowError(f"cannot write output {output}: folder {folder} does not exist")
    with contextlib.suppress(FileNotFoundError):
        # A rename replaces a file whatever its mode, and root may write anything: a file
        # its owner made read-only is one not to replace.
        mode = os.stat(target).st_mode
        if not mode & 0o222 or not os.access(target, os.W_OK):
            raise SigmarrowError(
                f"cannot write output {output}: it is read-only (mode {stat.S_IMODE(mode):04o}); "
                "make it writable or remove it"
            )
    return folder


def check_output(output: str) -> None:
    """Raise when ``output`` cannot be written: fail before the scan, not after it."""
    with _errors(output), tempfile.TemporaryFile(dir=output_folder(output)):
        pass


@contextlib.contextmanager
def _errors(output: str) -> Iterator[None]:
    """Failures to write as one message naming the output (a closed stdout stays itself:
    the command line ends quietly on it)."""
    try:
        yield
    except OSError as exc:
        if output == "-" and isinstance(exc, BrokenPipeError):
            raise
        raise SigmarrowError(f"cannot write output {output}: {exc.strerror or exc}") from None


class _Whole(abc.ABC):
    """A context manager that commits when the block ends and discards when it raises or is
    interrupted."""

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def discard(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


#: The temporaries of this process not yet renamed or removed. Each is entered before it
#: is made, so whenever a signal strikes, what is left here is removed at exit.
_LIVE: set[str] = set()


def _new_temporary(target: str, folder: bool = False) -> tuple[str, int]:
    """A new temporary file (or folder) beside ``target``: its path and a descriptor that
    holds its lock."""
    where = os.path.dirname(os.path.abspath(target))
    while True:
        path = os.path.join(
            where, f".{os.path.basename(target)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        )
        _LIVE.add(path)
        try:
            if folder:
                os.mkdir(path, 0o700)
                return path, _lock(os.open(path, os.O_RDONLY))
            return path, _lock(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            _LIVE.discard(path)


def _drop_temporary(path: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    _LIVE.discard(path)


@atexit.register
def _drop_leftovers() -> None:
    for path in list(_LIVE):
        _drop_temporary(path)


def _lock(fd: int) -> int:
    """``fd``, holding the lock of its file: the mark of a live writer. Raises
    BlockingIOError when another holds it; a file system without locks leaves it unlocked
    (the process id in the name still protects it on this machine)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    except OSError:
        pass
    return fd


def remove_stale(target: str) -> None:
    """Remove the temporaries of ``target`` that a dead process left (killed outright, or a
    machine that went down): unlocked, and of a process that is not running. A temporary of
    another machine's live scan (a shared folder) keeps its lock."""
    folder = os.path.dirname(os.path.abspath(target))
    prefix = f".{os.path.basename(target)}."
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            name = re.fullmatch(r"(\d+)\.[0-9a-f]{8}\.tmp", entry.name.removeprefix(prefix))
            if not entry.name.startswith(prefix) or name is None or _running(int(name[1])):
                continue
            try:
                os.close(_lock(os.open(entry.path, os.O_RDONLY)))  # fails while it is held
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.remove(entry.path)
            except OSError:
                continue


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


class _Temporary:
    """A temporary file (or folder) beside ``target``, locked while this process has it;
    stale temporaries of the same target are removed first."""

    def __init__(self, target: str, folder: bool = False) -> None:
        remove_stale(target)
        self.path, fd = _new_temporary(target, folder)
        self._lock: int | None = fd

    def release(self, remove: bool) -> None:
        """Remove it (or, renamed into place, forget it) and give up its lock."""
        if remove:
            _drop_temporary(self.path)
        _LIVE.discard(self.path)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


class AtomicFile(_Whole):
    """A file that appears at ``target`` whole or not at all: written at :attr:`path`, a
    temporary name in the same folder (locked while it is written), renamed into place by
    :meth:`commit` (with the permissions a new file gets) and removed by :meth:`discard`."""

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = os.fspath(target)
        self._temporary = _Temporary(self.target)
        self.path = self._temporary.path
        self._done = False

    def commit(self) -> None:
        _make_readable(self.path)
        os.replace(self.path, self.target)
        self._done = True
        self._temporary.release(remove=False)

    def discard(self) -> None:
        self._temporary.release(remove=not self._done)
        self._done = True


def write_file(output: str, data: bytes) -> None:
    """Write ``data`` to ``output`` whole (an :class:`AtomicFile`), or raise one error
    naming it."""
    with _errors(output), AtomicFile(output) as f, open(f.path, "wb") as sink:
        sink.write(data)


class TempFolder(_Temporary):
    """A temporary folder beside ``target`` (a spool), named and locked as temporary files
    are, removed by :meth:`remove`."""

    def __init__(self, target: str) -> None:
        super().__init__(target, folder=True)

    def remove(self) -> None:
        self.release(remove=True)


#: The spool of a time-sorted standard output: in the temporary folder, under this name.
STDOUT_SPOOL = "sigmarrow-stdout"


class Output(_Whole):
    """Where a scan's hits go: ``output`` in its format, opened with the hit schema: an
    :class:`AtomicFile`, or standard output for ``-``. With ``sort="time"``, in event-time
    order, through a spool folder beside the output (for ``-``: in the temporary folder).
    """

    def __init__(
        self,
        output: str,
        schema: pa.Schema,
        stdout: IO[bytes] | None = None,
        sort: str | None = None,
    ) -> None:
        self.output = output
        self.format = output_format(output)
        self._file: AtomicFile | None = None
        self._sink: Any = None
        self._sorter: TimeSorted | None = None
        self._stdout: Any = None
        with _errors(output):
            try:
                if output == "-":
                    sink: Any = stdout if stdout is not None else sys.stdout.buffer
                    self._stdout = sink
                else:
                    output_folder(output)
                    self._file = AtomicFile(output)
                    sink = self._sink = pa.OSFile(self._file.path, "wb")
                self._writer = self.format.open(sink, schema)
                if sort == "time":
                    self._sorter = self._sorter_of(output, self._writer)
                elif sort is not None:
                    raise SigmarrowError(f"cannot sort hits by {sort!r}: only by time")
            except BaseException:
                self.discard()
                raise

    def _sorter_of(self, output: str, writer: Any) -> TimeSorted:
        target = os.path.join(tempfile.gettempdir(), STDOUT_SPOOL) if output == "-" else output
        if self.format.typed:
            return TimeSorted(lambda: TempFolder(target), writer.write)
        # Hits without one schema (JSON Lines) are spooled as their lines.
        return TimeSorted(
            lambda: TempFolder(target),
            lambda lines: writer.write_lines(lines.column("line")),
            lambda hits: pa.record_batch([writer.encode(hits)], ["line"]),
        )

    def write(self, batch: pa.RecordBatch) -> None:
        with _errors(self.output):
            (self._sorter or self._writer).write(batch)

    def commit(self) -> None:
        """Finish the output: close it and, for a file, rename it into place."""
        with _errors(self.output):
            if self._sorter is not None:
                self._sorter.close()
            self._writer.close()
            if self._file is not None:
                self._sink.close()
                self._file.commit()
            else:
                _check_reader(self._stdout)

    def discard(self) -> None:
        """Remove what was written (and the spool); the output is left as it was."""
        if self._sorter is not None:
            self._sorter.discard()
        if self._file is None:
            return  # standard output: nothing to take back
        for part in (getattr(self, "_writer", None), self._sink):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self._file.discard()


def _check_reader(stdout: Any) -> None:
    """Raise BrokenPipeError when standard output is a pipe whose reader left before the end
    (it did not read every hit, though every write succeeded)."""
    try:
        fd = stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
    except (AttributeError, OSError, ValueError):  # not a file (io.UnsupportedOperation)
        return
    poll = select.poll()
    poll.register(fd, 0)  # only POLLERR: every reader of the pipe has closed it
    if poll.poll(READER_GRACE_SECONDS * 1000):
        raise BrokenPipeError(errno.EPIPE, "the reader of standard output left before the end")


def _make_readable(path: str) -> None:
    # mkstemp creates the file readable by its owner only; give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~umask)
