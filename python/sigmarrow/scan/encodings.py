"""Which string columns of a Parquet file are dictionary-encoded throughout: those the scan
reads as Arrow dictionaries, so that the engine evaluates each distinct value once per batch.

A writer dictionary-encodes a column chunk until its dictionary grows too large, then falls
back to plain pages for the rest of the chunk (a high-cardinality ``CommandLine``). Only a
column whose every data page, in every row group, is dictionary-encoded is read as a
dictionary: a fallen-back column would make pyarrow hash every plain value into a
dictionary nobody shares.

pyarrow does not expose the pages' encodings (``ColumnMetaData.encoding_stats``), and its
``encodings`` list cannot tell them apart in format 2 files, where the dictionary page
itself is ``PLAIN``: so the footer is read here, with a minimal Thrift compact-protocol
decoder (the footer's format: https://github.com/apache/parquet-format, parquet.thrift).
A column chunk without encoding stats (old writers) counts as dictionary-encoded only when
its ``encodings`` have a dictionary encoding and nothing else that data pages may use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["dictionary_columns"]

# parquet.thrift enums
_PLAIN_DICTIONARY, _RLE_DICTIONARY = 2, 8
_DICTIONARY = {_PLAIN_DICTIONARY, _RLE_DICTIONARY}
_LEVELS = {3, 4}  # RLE, BIT_PACKED: repetition and definition levels, not values
_DATA_PAGE, _DATA_PAGE_V2 = 0, 3
# Field ids: FileMetaData.row_groups, RowGroup.columns, ColumnChunk.meta_data, and of
# ColumnMetaData: encodings, path_in_schema, encoding_stats; PageEncodingStats' three.
_ROW_GROUPS, _COLUMNS, _META_DATA = 4, 1, 3
_ENCODINGS, _PATH, _ENCODING_STATS = 2, 3, 13
_PAGE_TYPE, _PAGE_ENCODING, _PAGE_COUNT = 1, 2, 3
# Thrift compact-protocol types
_TRUE, _FALSE, _I8, _I16, _I32, _I64, _DOUBLE, _BINARY = 1, 2, 3, 4, 5, 6, 7, 8
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12

#: Nesting a footer may have (FileMetaData's own is 6): a deeper one is not Parquet's.
_MAX_DEPTH = 32

_Spec = dict[int, "_Spec"]
_SCALAR: _Spec = {}  # a scalar, a list of scalars, or a struct none of whose fields is wanted
#: What of the footer is decoded; everything else is skipped.
_FOOTER: _Spec = {
    _ROW_GROUPS: {
        _COLUMNS: {
            _META_DATA: {
                _ENCODINGS: _SCALAR,
                _PATH: _SCALAR,
                _ENCODING_STATS: {
                    _PAGE_TYPE: _SCALAR,
                    _PAGE_ENCODING: _SCALAR,
                    _PAGE_COUNT: _SCALAR,
                },
            }
        }
    }
}


def dictionary_columns(handle: Any, names: Sequence[str]) -> list[str]:
    """Those of the top-level columns ``names`` that are dictionary-encoded in every row
    group of the Parquet file open in ``handle`` (a pyarrow random-access file). A footer
    it cannot read (encrypted) gives none: the columns are read as they are stored."""
    if not names:
        return []
    try:
        return _whole_dictionaries(_Decoder(_footer(handle)).struct(_FOOTER), names)
    except (IndexError, ValueError, OSError, TypeError, AttributeError):
        # Unreadable, or a field of another type than Parquet's (a damaged footer).
        return []


def _whole_dictionaries(footer: dict[int, Any], names: Sequence[str]) -> list[str]:
    wanted = set(names)
    row_groups = footer.get(_ROW_GROUPS, [])
    chunks: dict[str, list[dict[int, Any]]] = {}
    for row_group in row_groups:
        for chunk in row_group.get(_COLUMNS, []):
            meta = chunk.get(_META_DATA, {})
            path = [part.decode("utf-8", "replace") for part in meta.get(_PATH, [])]
            if len(path) == 1 and path[0] in wanted:
                chunks.setdefault(path[0], []).append(meta)
    whole = {name for name, metas in chunks.items() if len(metas) == len(row_groups)}
    return [n for n in names if n in whole and all(map(_dictionary_encoded, chunks[n]))]


def _dictionary_encoded(meta: dict[int, Any]) -> bool:
    """Whether every data page of a column chunk is dictionary-encoded."""
    stats = meta.get(_ENCODING_STATS)
    if stats is not None:
        return all(
            s.get(_PAGE_ENCODING) in _DICTIONARY
            for s in stats
            if s.get(_PAGE_TYPE) in (_DATA_PAGE, _DATA_PAGE_V2) and s.get(_PAGE_COUNT, 1) > 0
        )
    encodings = set(meta.get(_ENCODINGS, ()))
    return bool(encodings & _DICTIONARY) and encodings <= _DICTIONARY | _LEVELS


def _footer(handle: Any) -> bytes:
    """The Thrift-encoded FileMetaData at the end of a Parquet file."""
    size = handle.size()
    handle.seek(size - 8)
    tail = handle.read(8)
    if tail[4:] != b"PAR1":  # "PARE": an encrypted footer
        raise ValueError("no plaintext footer")
    length = int.from_bytes(tail[:4], "little")
    handle.seek(size - 8 - length)
    return handle.read(length)


class _Decoder:
    """The Thrift compact protocol, decoding only the fields a spec names: a spec maps a
    struct's field ids to the spec of their values (of a list's elements), ``{}`` for
    scalars; a decoded struct is a dict from field id to value, binary values are bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.depth = 0

    def skip(self, n: int) -> None:
        self.pos += n
        if self.pos > len(self.data):
            raise ValueError("a value past the end")

    def count(self, size: int) -> int:
        """A list's or map's size, which its elements (a byte or more each) must fit."""
        if size > len(self.data) - self.pos:
            raise ValueError(f"{size} elements in {len(self.data) - self.pos} bytes")
        return size

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def struct(self, spec: _Spec) -> dict[int, Any]:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ValueError(f"structs nested deeper than {_MAX_DEPTH}")
        fields: dict[int, Any] = {}
        field_id = 0
        while header := self.byte():
            delta, kind = header >> 4, header & 0x0F
            field_id = field_id + delta if delta else self.zigzag()
            if kind in (_TRUE, _FALSE):  # a bool field is its header alone
                value: Any = kind == _TRUE
            else:
                value = self.value(kind, spec.get(field_id, _SCALAR))
            if field_id in spec:
                fields[field_id] = value
        self.depth -= 1
        return fields

    def value(self, kind: int, spec: _Spec) -> Any:
        """The next value, of type ``kind`` (None for the types never wanted: double, map)."""
        if kind in (_TRUE, _FALSE, _I8):  # a bool inside a list is a byte too
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            self.skip(8)
            return None
        if kind == _BINARY:
            length = self.varint()
            self.skip(length)
            return self.data[self.pos - length : self.pos]
        if kind in (_LIST, _SET):
            header = self.byte()
            size, element = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return [self.value(element, spec) for _ in range(self.count(size))]
        if kind == _MAP:
            size = self.count(self.varint())
            types = self.byte() if size else 0
            for _ in range(size):
                self.value(types >> 4, _SCALAR)
                self.value(types & 0x0F, _SCALAR)
            return None
        if kind == _STRUCT:
            return self.struct(spec)
        raise ValueError(f"unknown Thrift type {kind}")
