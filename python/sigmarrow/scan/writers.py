"""Outputs: where hits go, written under a temporary name and renamed into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from sigmarrow.errors import SigmarrowError
from sigmarrow.scan.hits import HIT_COLUMNS, HIT_SCHEMA, HitBuilder
from sigmarrow.scan.readers import json_text

__all__ = ["Output", "check_output", "output_folder", "output_kind"]


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


def check_output(output: str) -> None:
    """Raise when ``output`` cannot be written: fail before the scan, not after it."""
    try:
        with tempfile.TemporaryFile(dir=output_folder(output)):
            pass
    except OSError as exc:
        raise SigmarrowError(f"cannot write output {output}: {exc.strerror or exc}") from None


class Output:
    """Where hits go: a temporary file renamed into place at the end, or stdout."""

    def __init__(self, output: str, hits: HitBuilder, stdout: IO[bytes] | None = None):
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
        fields = list(HIT_SCHEMA)
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
                array = pa.array([json_text(v) for v in array.to_pylist()], type=pa.string())
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
