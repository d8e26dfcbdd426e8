"""The compiled program: the plain, versioned, serializable structure between the Python
compiler and the Rust engine (`rust/sigmarrow-core/src/program.rs` reads it).

```
{"format": "sigmarrow.program", "version": 1,
 "fields": ["Image", ...],            # FieldId = index; the column each atom reads
 "atoms":  [Atom, ...],               # deduplicated across all rules; AtomId = index
 "rules":  [{"id", "title", "level", "status", "tags", "logsource", "source", "author",
             "description", "fields": [FieldId...], "condition": Expr}, ...],
 "errors": [{"source", "rule_id", "title", "reason"}, ...],
 "has_keywords": bool}
```
Atoms (`field` is null for keyword atoms, which search the keyword columns):
- `{"op": "str", "field", "anchor": "exact|prefix|suffix|contains", "value", "cased"}`
- `{"op": "glob", "field", "parts": [{"lit": "..."} | "many" | "one", ...], "cased"}`
- `{"op": "re", "field", "pattern", "flags": "ims" subset}`
- `{"op": "cidr", "field", "network"}`
- `{"op": "num", "field", "cmp": "eq|gt|gte|lt|lte", "value": number}`
- `{"op": "bool", "field", "value"}`, `{"op": "null", "field"}`, `{"op": "exists", "field"}`
- `{"op": "fieldref", "field", "other", "anchor"}`
- `{"op": "time", "field", "part": "minute|hour|day|week|month|year", "cmp", "value"}`
Expressions: `{"and": [Expr...]}`, `{"or": [...]}`, `{"not": Expr}`, `{"atom": AtomId}`,
`{"const": bool}`.
"""

from __future__ import annotations

from typing import Any

import orjson

from sigmarrow.errors import ProgramError

FORMAT = "sigmarrow.program"
VERSION = 1

Atom = dict[str, Any]
Expr = dict[str, Any]


class Program:
    """A compiled program: fields, deduplicated atoms, rules with their conditions."""

    def __init__(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ProgramError(
                f"expected a {FORMAT} of version {VERSION}, "
                f"got {data.get('format')!r} version {data.get('version')!r}"
            )
        self.data = data

    @property
    def fields(self) -> list[str]:
        return self.data["fields"]

    @property
    def atoms(self) -> list[Atom]:
        return self.data["atoms"]

    @property
    def rules(self) -> list[dict[str, Any]]:
        return self.data["rules"]

    def to_json(self) -> bytes:
        return orjson.dumps(self.data)

    @classmethod
    def from_json(cls, text: bytes | str) -> Program:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise ProgramError(f"not a compiled program: {e}") from None
        if not isinstance(data, dict):
            raise ProgramError("not a compiled program: expected a JSON object")
        return cls(data)


class ProgramBuilder:
    """Collects fields and atoms, deduplicating both, while rules are compiled."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self._field_ids: dict[str, int] = {}
        self.atoms: list[Atom] = []
        self._atom_ids: dict[bytes, int] = {}
        self._atom_keys: list[bytes] = []

    def field(self, name: str) -> int:
        if name not in self._field_ids:
            self._field_ids[name] = len(self.fields)
            self.fields.append(name)
        return self._field_ids[name]

    def atom(self, atom: Atom) -> Expr:
        key = orjson.dumps(atom, option=orjson.OPT_SORT_KEYS)
        if key not in self._atom_ids:
            self._atom_ids[key] = len(self.atoms)
            self._atom_keys.append(key)
            self.atoms.append(atom)
        return {"atom": self._atom_ids[key]}

    def mark(self) -> tuple[int, int]:
        """Where the builder stands, for `rollback`."""
        return len(self.fields), len(self.atoms)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Forgets the fields and atoms added since `mark`: those of a rule that failed to
        compile, which no other rule uses (atoms and fields are only ever appended)."""
        fields, atoms = mark
        for name in self.fields[fields:]:
            del self._field_ids[name]
        for key in self._atom_keys[atoms:]:
            del self._atom_ids[key]
        del self.fields[fields:], self.atoms[atoms:], self._atom_keys[atoms:]
