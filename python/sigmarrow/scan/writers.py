"""Outputs: one small interface per format, and the one place that makes a file appear whole.

A format is a :class:`Format` in :data:`FORMATS`: its name, the file suffixes that choose it,
a line for ``--help``, whether it needs the hit schema's event column types before the
first hit (``typed``) and ``open(sink, schema)``, which returns a :class:`Writer`: it takes
batches of hits and is closed once. Every format streams: nothing is spooled or written
twice, so memory follows the batches, not the hits. Adding one is a :func:`register` call.

:class:`Output` is what the scan writes to: an :class:`AtomicFile` (written under a temporary
name beside the target and renamed into place at the end, so a failed or interrupted scan
leaves the target as it was), or standard output for ``-``. :class:`AtomicFile` is the one
temp-file-and-rename of the command line; other outputs (a compiled program) use it too.
"""

from __future__ import annotations

import abc
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Protocol, Self

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from sigmarrow.errors import SigmarrowError
from sigmarrow.scan.hits import EVENT_COLUMNS_KEY, HIT_COLUMNS

__all__ = [
    "FORMATS",
    "STDOUT_FORMAT",
    "AtomicFile",
    "Format",
    "Output",
    "Writer",
    "check_output",
    "output_format",
    "register",
]

#: Rows of hits per Parquet row group: one per batch of hits would make many tiny groups.
ROW_GROUP_ROWS = 1 << 16
#: ... unless they hold more bytes than this first (hits with many wide event columns).
ROW_GROUP_BYTES = 64 << 20


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
    """One JSON object per hit, written with orjson. With the event columns of the rule
    (schema metadata), an event column is left out of a hit where it is null: it is
    another rule's, or the event lacks it."""

    def __init__(self, sink: Any, schema: pa.Schema) -> None:
        self._sink = sink
        self._per_rule = (schema.metadata or {}).get(EVENT_COLUMNS_KEY) == b"rule"

    def write(self, batch: pa.RecordBatch) -> None:
        rows = batch.to_pylist()
        if self._per_rule:
            rows = [
                {k: v for k, v in row.items() if v is not None or k in HIT_COLUMNS} for row in rows
            ]
        newline = orjson.OPT_APPEND_NEWLINE
        self._sink.write(
            b"".join(orjson.dumps(r, default=_json_default, option=newline) for r in rows)
        )

    def close(self) -> None:
        self._sink.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


register(Format("parquet", (".parquet", ".parq", ".pq"), "Parquet (zstd)", _ParquetWriter, True))
register(Format("jsonl", (".jsonl", ".ndjson"), "JSON Lines", _JsonLinesWriter, False))
register(
    Format("arrow", (".arrow", ".feather", ".ipc"), "Arrow IPC file", pa.ipc.new_file, True)
)


def output_folder(output: str) -> str:
    """The folder an output file goes to; raises when the file cannot be written there."""
    target = os.path.abspath(output)
    folder = os.path.dirname(target)
    if os.path.isdir(target):
        raise SigmarrowError(f"cannot write output {output}: it is a folder")
    if not os.path.isdir(folder):
        raise SigmarrowError(f"cannot write output {output}: folder {folder} does not exist")
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


class AtomicFile(_Whole):
    """A file that appears at ``target`` whole or not at all: written at :attr:`path`, a
    temporary name in the same folder, renamed into place by :meth:`commit` (with the
    permissions a new file gets) and removed by :meth:`discard`."""

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = os.fspath(target)
        fd, self.path = tempfile.mkstemp(
            dir=os.path.dirname(os.path.abspath(self.target)),
            prefix=f".{os.path.basename(self.target)}.",
            suffix=".tmp",
        )
        os.close(fd)
        self._done = False

    def commit(self) -> None:
        _make_readable(self.path)
        os.replace(self.path, self.target)
        self._done = True

    def discard(self) -> None:
        if not self._done:
            with contextlib.suppress(OSError):
                os.remove(self.path)
            self._done = True


class Output(_Whole):
    """Where a scan's hits go: ``output`` in its format, opened with the hit schema: an
    :class:`AtomicFile`, or standard output for ``-``.
    """

    def __init__(self, output: str, schema: pa.Schema, stdout: IO[bytes] | None = None) -> None:
        self.output = output
        self.format = output_format(output)
        self._file: AtomicFile | None = None
        self._sink: Any = None
        with _errors(output):
            try:
                if output == "-":
                    sink: Any = stdout if stdout is not None else sys.stdout.buffer
                else:
                    output_folder(output)
                    self._file = AtomicFile(output)
                    sink = self._sink = pa.OSFile(self._file.path, "wb")
                self._writer = self.format.open(sink, schema)
            except BaseException:
                self.discard()
                raise

    def write(self, batch: pa.RecordBatch) -> None:
        with _errors(self.output):
            self._writer.write(batch)

    def commit(self) -> None:
        """Finish the output: close it and, for a file, rename it into place."""
        with _errors(self.output):
            self._writer.close()
            if self._file is not None:
                self._sink.close()
                self._file.commit()

    def discard(self) -> None:
        """Remove what was written; the output is left as it was."""
        if self._file is None:
            return  # standard output: nothing to take back
        for part in (getattr(self, "_writer", None), self._sink):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self._file.discard()


def _make_readable(path: str) -> None:
    # mkstemp creates the file readable by its owner only; give it the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~umask)
