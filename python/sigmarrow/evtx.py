"""Windows event logs (``.evtx``) as Arrow tables, with the field names Sigma rules use.

Parsing is done by the PyPI package ``evtx`` (Rust, ``pip install sigmarrow[evtx]``); this
module only flattens its JSON rendering of each record into one row:

* ``Event.System`` becomes ``EventID`` (int64), ``Channel``, ``Computer``, ``Level``,
  ``Task``, ``Opcode``, ``Keywords``, ``Version``, ``EventRecordID``, ``TimeCreated`` (the
  ``SystemTime`` attribute) and, for elements that carry attributes,
  ``<Element>_<Attribute>``: ``Provider_Name``, ``Provider_Guid``,
  ``Provider_EventSourceName``, ``Execution_ProcessID``, ``Execution_ThreadID``,
  ``Security_UserID``, ``Correlation_ActivityID``, ``EventID_Qualifiers``, ...
* ``Event.EventData`` (or ``Event.UserData``, whose single wrapper element is unwrapped)
  becomes one column per named value (``Image``, ``CommandLine``, ``TargetFilename``, ...).
  Names lose their spaces (Defender's ``Threat Name`` is ``ThreatName``): SigmaHQ rules never
  have spaces in field names, and its regression suite matches them that way.
  Positional (unnamed) ``<Data>`` values go to one ``Data`` column, joined by a line feed
  when there are several, so ``Data|contains`` rules (PowerShell classic logs) see all of
  them. A value whose name is already taken by a ``System`` column is stored as
  ``EventData_<Name>`` (``UserData_<Name>``) instead: the system fields keep their meaning.

Every column is a nullable string except ``EventID`` (int64). Values are the text of the
event, byte for byte: nothing is trimmed (Sigma values such as ``' -enc '`` depend on
spaces). Typed values are rendered as text: integers in decimal, booleans as
``true``/``false``. A value that the record has but is empty stays ``''``; an element with
no value at all (the ``evtx`` package renders ``null``) and a field that the record does not
have are null.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import pyarrow as pa

from sigmarrow.errors import DataError

try:  # orjson is a dependency of sigmarrow, but the module must not need it to import
    import orjson as _orjson

    _loads: Callable[[str | bytes], Any] = _orjson.loads
except ImportError:  # pragma: no cover - exercised only without orjson
    _loads = json.loads

__all__ = ["flatten_event", "iter_evtx", "read_evtx"]

#: Records per Arrow batch while reading; bounds the memory of the Python row dicts.
_BATCH_ROWS = 65_536

_ATTRS = "#attributes"
_TEXT = "#text"
_EVENT_ID = "EventID"


# --------------------------------------------------------------------------------------
# Flattening one record
# --------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """The event text of a JSON value as the ``evtx`` package renders it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        # An element with attributes and text: {"#attributes": {...}, "#text": ...}.
        return _text(value.get(_TEXT))
    if isinstance(value, list):
        parts = [t for t in (_text(v) for v in value) if t is not None]
        return "\n".join(parts) if parts else None
    return str(value)


def _event_id(value: Any) -> int | None:
    if isinstance(value, Mapping):
        value = value.get(_TEXT)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 10)
    except ValueError:
        return None


def _flatten_system(system: Mapping[str, Any], out: dict[str, Any]) -> None:
    for key, value in system.items():
        if key == _EVENT_ID:
            out[_EVENT_ID] = _event_id(value)
            if isinstance(value, Mapping):
                for attr, attr_value in (value.get(_ATTRS) or {}).items():
                    out[f"{key}_{attr}"] = _text(attr_value)
            continue
        if isinstance(value, Mapping):
            attrs = value.get(_ATTRS) or {}
            for attr, attr_value in attrs.items():
                if key == "TimeCreated" and attr == "SystemTime":
                    out["TimeCreated"] = _text(attr_value)
                else:
                    out[f"{key}_{attr}"] = _text(attr_value)
            if _TEXT in value:
                out[key] = _text(value[_TEXT])
            continue
        if value is None:
            # An empty element (Correlation, Security): no value, no column.
            continue
        out[key] = _text(value)


def _data_name(item: Mapping[str, Any]) -> str | None:
    attrs = item.get(_ATTRS)
    if isinstance(attrs, Mapping):
        name = attrs.get("Name")
        if isinstance(name, str) and name:
            return name
    return None


def _flatten_data(
    data: Mapping[str, Any],
    prefix: str,
    system_keys: set[str],
    out: dict[str, Any],
) -> None:
    """EventData (or the inner element of UserData) into ``out``."""
    positional: list[str | None] = []

    def put(name: str, value: Any) -> None:
        name = name.replace(" ", "")
        if name in system_keys:
            name = f"{prefix}_{name}"
        out[name] = _text(value)

    for key, value in data.items():
        if key == _ATTRS:
            continue  # attributes of the container itself (xmlns, Name)
        if key == "Data":
            # Shapes: "x"; ["x", "y"]; {"#text": [...]}; {"#attributes": {"Name": N},
            # "#text": v}; or a list of those dicts (other renderers, or several <Data>).
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, Mapping):
                    name = _data_name(item)
                    if name is not None:
                        put(name, item.get(_TEXT))
                        continue
                    text = item.get(_TEXT)
                    if isinstance(text, list):
                        positional.extend(_text(t) for t in text)
                    else:
                        positional.append(_text(text))
                else:
                    positional.append(_text(item))
            continue
        if isinstance(value, Mapping) and _TEXT not in value:
            # A nested element (UserData shapes): its children are the fields.
            _flatten_data(value, prefix, system_keys, out)
            continue
        put(key, value)

    present = [p for p in positional if p is not None]
    if present:
        joined = "\n".join(present)
        name = "Data" if "Data" not in system_keys else f"{prefix}_Data"
        out[name] = joined if name not in out else out[name] + "\n" + joined


def flatten_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """One event as a flat ``{column: value}`` dict (see the module docs for the names).

    ``record`` is the parsed JSON of one record as the ``evtx`` package renders it
    (``{"Event": {"System": ..., "EventData": ...}}``); the ``Event`` wrapper may be
    omitted, and an ``evtx`` ``records_json()`` item (with its ``data`` string) is accepted
    too. ``EventID`` is an ``int`` (or ``None``); every other value is a ``str`` or ``None``.
    """
    if "data" in record and isinstance(record["data"], str | bytes):
        record = _loads(record["data"])
    event = record.get("Event", record)
    if not isinstance(event, Mapping):
        raise TypeError(f"not an event record: {type(event).__name__}")
    out: dict[str, Any] = {}
    system = event.get("System")
    if isinstance(system, Mapping):
        _flatten_system(system, out)
    system_keys = set(out)
    for section in ("EventData", "UserData"):
        data = event.get(section)
        if isinstance(data, Mapping):
            _flatten_data(data, section, system_keys, out)
        elif data is not None:
            # A bare value: <EventData>text</EventData>.
            name = "Data" if "Data" not in out else f"{section}_Data"
            out[name] = _text(data)
    return out


# --------------------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------------------


def _describe(path: Any) -> str:
    if isinstance(path, str | os.PathLike):
        return str(os.fspath(path))
    return str(getattr(path, "name", None) or repr(path))


_FILE_HEADER = 4096
_CHUNK = 65536


def _check_not_truncated(source: Any, name: str) -> None:
    """The ``evtx`` package reads a file cut inside a chunk as if it ended before the chunk:
    compare the chunk count of the file header with the size instead."""
    if isinstance(source, str):
        size = os.path.getsize(source)
        with open(source, "rb") as handle:
            header = handle.read(48)
    elif hasattr(source, "seek") and hasattr(source, "tell") and hasattr(source, "read"):
        position = source.tell()
        header = source.read(48)
        size = source.seek(0, os.SEEK_END) - position
        source.seek(position)
    else:
        return
    if len(header) < 48 or header[:8] != b"ElfFile\x00":
        return  # not an event log at all: the parser says so
    chunks = int.from_bytes(header[42:44], "little")
    expected = _FILE_HEADER + chunks * _CHUNK
    if size < expected:
        raise DataError(
            f"{name}: truncated .evtx file: its header announces {chunks} chunks "
            f"({expected} bytes), the file has {size} bytes"
        )


def iter_evtx(path: str | os.PathLike[str] | Any) -> Iterator[dict[str, Any]]:
    """The flattened events of an ``.evtx`` file (or binary file object), in file order.

    Raises ``FileNotFoundError`` for a missing file and :class:`sigmarrow.DataError` for one
    that is not a readable event log.
    """
    try:
        import evtx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading .evtx files needs the 'evtx' package: pip install 'sigmarrow[evtx]'"
        ) from exc

    name = _describe(path)
    source = os.fspath(path) if isinstance(path, str | os.PathLike) else path
    if isinstance(source, str) and os.path.isdir(source):
        raise DataError(f"{name}: is a directory, not an .evtx file")
    try:
        _check_not_truncated(source, name)
        # The parser yields records in file order, whatever its number of threads.
        parser = evtx.PyEvtxParser(source)
        for record in parser.records_json():
            yield flatten_event(_loads(cast(dict[str, Any], record)["data"]))
    except (FileNotFoundError, PermissionError):
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"{name}: not a readable .evtx file: {exc}") from exc


def _batch(rows: list[dict[str, Any]], order: dict[str, None]) -> pa.Table:
    arrays = []
    fields = []
    for column in order:
        values = [row.get(column) for row in rows]
        if column == _EVENT_ID:
            fields.append(pa.field(column, pa.int64()))
            arrays.append(pa.array(values, type=pa.int64()))
        else:
            fields.append(pa.field(column, pa.string()))
            arrays.append(pa.array(values, type=pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def read_evtx(path: str | os.PathLike[str] | Any) -> pa.Table:
    """Read an ``.evtx`` file into a ``pyarrow.Table``: one row per record, in file order.

    Columns are the flattened fields of :func:`flatten_event`: ``EventID`` is ``int64``,
    every other column a nullable ``string``; a record without a column has null there.
    ``path`` may also be a binary file object. Raises ``FileNotFoundError`` for a missing
    file and :class:`sigmarrow.DataError` (naming the file) for one that cannot be parsed.
    """
    order: dict[str, None] = dict.fromkeys(("EventID",))  # always present, even if empty
    tables: list[pa.Table] = []
    rows: list[dict[str, Any]] = []
    for row in iter_evtx(path):
        rows.append(row)
        for column in row:
            if column not in order:
                order[column] = None
        if len(rows) >= _BATCH_ROWS:
            tables.append(_batch(rows, order))
            rows = []
    if rows or not tables:
        tables.append(_batch(rows, order))
    # Later batches may have columns the earlier ones lack (nulls there); keep the order
    # of first appearance.
    final = pa.schema(
        [pa.field(c, pa.int64() if c == _EVENT_ID else pa.string()) for c in order]
    )
    if len(tables) == 1:
        return tables[0]
    aligned = []
    for table in tables:
        columns = [
            table.column(f.name) if f.name in table.column_names
            else pa.nulls(table.num_rows, type=f.type)
            for f in final
        ]
        aligned.append(pa.Table.from_arrays(columns, schema=final))
    return pa.concat_tables(aligned)
