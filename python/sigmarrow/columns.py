"""Where a rule's field lives in Arrow data: the one field -> column resolver.

A field is the top-level column of that name or, when there is none, a dotted path into
struct columns: `process.executable` is the child `executable` of the column `process`.
The longest column name that starts the path is tried first, so a column named
`process.parent` wins over the child `parent` of `process`. Matcher, scan and Spark all
resolve fields here; `bind` does it for a whole schema, and `SchemaMemo` keeps the result
so that batches of one schema are resolved once, not once per batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Binding", "ColumnRef", "SchemaMemo", "bind", "is_string", "resolve"]

T = TypeVar("T")


def is_string(t: pa.DataType) -> bool:
    """Whether values of `t` are text: utf8, large_utf8, utf8_view, or a dictionary of them."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


@dataclass(frozen=True)
class ColumnRef:
    """A field found in a schema: its path (column, child, ...) and the type of its values."""

    path: tuple[str, ...]
    type: pa.DataType

    def array(self, batch: pa.RecordBatch | pa.Table) -> pa.Array | pa.ChunkedArray:
        """The values of this field in `batch` (which has the schema it was resolved in)."""
        array = batch.column(self.path[0])
        for part in self.path[1:]:
            array = pc.struct_field(array, part)
        return array


def resolve(schema: pa.Schema, name: str) -> ColumnRef | None:
    """`name` in `schema`: a top-level column, or a dotted path into struct columns."""
    index = schema.get_field_index(name)
    if index >= 0:
        return ColumnRef((name,), schema.field(index).type)
    parts = name.split(".")
    for k in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:k])
        index = schema.get_field_index(head)
        if index < 0:
            continue
        t = schema.field(index).type
        for part in parts[k:]:
            child = t.get_field_index(part) if pa.types.is_struct(t) else -1
            if child < 0:
                break
            t = t.field(child).type
        else:
            return ColumnRef((head, *parts[k:]), t)
    return None


@dataclass(frozen=True)
class Binding:
    """Names resolved against one schema."""

    found: dict[str, ColumnRef]  #: the names the schema has, in the order asked
    missing: tuple[str, ...]  #: the names it lacks, in the order asked

    @property
    def columns(self) -> list[str]:
        """The top-level columns the names live in, in the order of the names."""
        return list(dict.fromkeys(ref.path[0] for ref in self.found.values()))


def bind(schema: pa.Schema, names: Iterable[str]) -> Binding:
    """Resolve every name (duplicates once) against `schema`."""
    found: dict[str, ColumnRef] = {}
    missing: list[str] = []
    for name in dict.fromkeys(names):
        ref = resolve(schema, name)
        if ref is None:
            missing.append(name)
        else:
            found[name] = ref
    return Binding(found, tuple(missing))


class SchemaMemo(Generic[T]):
    """The values last computed for a few keys (a schema, or a schema and options).

    Batches of one file share a schema, so work that depends only on the schema runs once
    per file; JSON Lines batches may each have their own, hence a few entries. Thread-safe:
    one matcher serves several threads.
    """

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._values: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = make()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value
