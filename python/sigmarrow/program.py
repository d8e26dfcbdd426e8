"""The compiled program: the plain, versioned, serializable structure every part shares.

The Python compiler writes it, the Rust engine reads it (`rust/sigmarrow-core/src/program.rs`
validates it again), `explain` and `profile` walk it, `save`/`pickle`/Spark ship it. It is JSON:

```
{"format": "sigmarrow.program", "version": 1,
 "fields": ["Image", ...],            # FieldId = index; the column each atom reads
 "atoms":  [Atom, ...],               # deduplicated across all rules; AtomId = index
 "rules":  [Rule, ...],               # RuleIndex = index; hits name rules by their id
 "errors": [{"source", "rule_id", "title", "reason"}, ...],
 "has_keywords": bool,                # some atom has field null (a keyword)
 "skipped": [{"source", "rule_id", "title", "reason"}, ...],  # optional: not applicable
 "correlations": [Correlation, ...],  # optional: correlation rules, children before parents
 "filters": [FilterRecord, ...]}      # optional: the Sigma filters applied, and to what
```

`VERSION` is bumped whenever a reader of the previous version would misread a program of this
one: a new atom op, a new required key, a changed meaning. New optional rule metadata (which the
engine ignores) does not bump it. The engine refuses other versions with a `ProgramError`.
`correlations` and `filters` are optional keys the engine ignores: the engine matches rules,
and correlations are computed in Python from its hits (`sigmarrow.correlation`). A sigmarrow
older than them reads such a program as its base rules alone (and reports their hits).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal, NotRequired, TypedDict, cast

import orjson

from sigmarrow.errors import ProgramError

FORMAT = "sigmarrow.program"
VERSION = 1

Anchor = Literal["exact", "prefix", "suffix", "contains"]
Compare = Literal["eq", "gt", "gte", "lt", "lte"]
TimePart = Literal["minute", "hour", "day", "week", "month", "year"]


class StrAtom(TypedDict):
    op: Literal["str"]
    field: int | None  # None: a keyword, searched in the keyword columns
    anchor: Anchor
    value: str
    cased: bool


class GlobAtom(TypedDict):
    op: Literal["glob"]
    field: int | None
    parts: list[dict[str, str] | Literal["many", "one"]]  # {"lit": text}, `*`, `?`
    cased: bool


class RegexAtom(TypedDict):
    op: Literal["re"]
    field: int | None
    pattern: str
    flags: str  # a subset of "ims", sorted


class CidrAtom(TypedDict):
    op: Literal["cidr"]
    field: int
    network: str


class NumAtom(TypedDict):
    op: Literal["num"]
    field: int
    cmp: Compare
    value: int | float


class BoolAtom(TypedDict):
    op: Literal["bool"]
    field: int
    value: bool


class PresenceAtom(TypedDict):
    op: Literal["null", "exists"]
    field: int


class FieldRefAtom(TypedDict):
    op: Literal["fieldref"]
    field: int
    other: int
    anchor: Anchor


class TimeAtom(TypedDict):
    op: Literal["time"]
    field: int
    part: TimePart
    cmp: Compare
    value: int


Atom = (
    StrAtom | GlobAtom | RegexAtom | CidrAtom | NumAtom | BoolAtom | PresenceAtom | FieldRefAtom | TimeAtom
)

# Expressions: {"and": [Expr...]}, {"or": [...]}, {"not": Expr}, {"atom": AtomId}, {"const": bool}.
# TypedDicts cannot say "exactly one of these keys", so an Expr is a plain dict; build them
# with the functions below, which also keep them flat.
Expr = dict[str, Any]


class Rule(TypedDict):
    id: str
    title: str
    level: str | None
    status: str | None
    tags: list[str]
    logsource: dict[str, str]  # category / product / service, as the rule states them
    source: str | None  # the rule file
    author: str | None
    description: str | None
    fields: list[int]  # every field the condition reads
    condition: Expr
    name: NotRequired[str | None]  # the rule's `name` (correlations reference it)


class ErrorRecord(TypedDict):
    source: str | None
    rule_id: str | None
    title: str | None
    reason: str


CorrelationType = Literal[
    "event_count", "value_count", "value_sum", "value_avg", "value_median", "value_percentile",
    "temporal", "temporal_ordered",
]
ConditionOp = Literal["gt", "gte", "lt", "lte", "eq", "neq"]


class CorrelationInput(TypedDict):
    """One referenced rule of a correlation: a compiled rule or an earlier correlation."""

    reference: str  # as the correlation names it (an id or a name)
    rule: NotRequired[int]  # RuleIndex
    correlation: NotRequired[int]  # index into `correlations` (chaining)
    fields: dict[str, str]  # group-by or value field -> this input's field (`aliases`)


class Correlation(TypedDict):
    id: str
    title: str
    name: str | None
    level: str | None
    source: str | None
    type: CorrelationType
    inputs: list[CorrelationInput]
    generate: bool
    timespan: int  # seconds, as pySigma reads it (`1M` is 2,629,746 s)
    group_by: list[str]
    condition: dict[ConditionOp, float]  # ANDed (a range has two operators)
    field: str | None  # the value field of the value_* types
    percentile: float | None  # value_percentile's rank, 0-100


class FilterRecord(TypedDict):
    """A Sigma filter and what it did: the rules it names (`["any"]` for any rule of its log
    source), the rules whose condition it was ANDed onto, and warnings (a rule it names that is
    not loaded, or whose log source it does not cover)."""

    id: str | None
    name: str | None
    title: str
    source: str | None
    rules: list[str]
    touched: list[str]  # rule ids (titles where a rule has none)
    warnings: list[str]


class ProgramData(TypedDict):
    format: str
    version: int
    fields: list[str]
    atoms: list[Atom]
    rules: list[Rule]
    errors: list[ErrorRecord]
    has_keywords: bool
    skipped: NotRequired[list[ErrorRecord]]  # rules left out as not applicable, and why
    correlations: NotRequired[list[Correlation]]
    filters: NotRequired[list[FilterRecord]]
    #: The names the pipeline's field mappings give each field (where a scan finds the time,
    #: host, channel of events: ASIM's `DvcHostname` for `Computer`).
    mapped_fields: NotRequired[dict[str, list[str]]]


# --- expression builders: every Expr the compiler and the tools make goes through these ---


def atom_ref(atom: int) -> Expr:
    return {"atom": atom}


def const(value: bool) -> Expr:
    return {"const": value}


def all_of(children: Sequence[Expr]) -> Expr:
    """AND, flattened: nested ANDs are lifted, so legal rules never nest deep."""
    return _joined("and", children)


def any_of(children: Sequence[Expr]) -> Expr:
    """OR, flattened."""
    return _joined("or", children)


def negate(expr: Expr) -> Expr:
    """NOT; `not not x` is `x`."""
    return expr.get("not", {"not": expr})


def _joined(op: str, children: Sequence[Expr]) -> Expr:
    flat: list[Expr] = []
    for child in children:
        flat.extend(child.get(op, [child]))
    return flat[0] if len(flat) == 1 else {op: flat}


def depth(expr: Expr) -> int:
    """How deep an expression nests (an atom is 1), without recursion (hostile input)."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children(node))
    return deepest


def children(expr: Expr) -> list[Expr]:
    if "not" in expr:
        return [expr["not"]]
    return list(expr.get("and") or expr.get("or") or [])


# --- walkers: what explain and profile read off a program ---


def atom_ids(expr: Expr, positive_only: bool = False) -> list[int]:
    """The atoms an expression reads, in order of appearance (with `positive_only`, those not
    under a `not`)."""
    out: list[int] = []
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    while stack:
        node, negated = stack.pop()
        if "atom" in node:
            if not (positive_only and negated):
                out.append(node["atom"])
        elif "not" in node:
            stack.append((node["not"], not negated))
        else:
            stack.extend((child, negated) for child in reversed(children(node)))
    return out


def remap_atoms(expr: Expr, ids: dict[int, int]) -> Expr:
    """The expression with atom ids renumbered through `ids`."""
    if "atom" in expr:
        return atom_ref(ids[expr["atom"]])
    if "not" in expr:
        return {"not": remap_atoms(expr["not"], ids)}
    for op in ("and", "or"):
        if op in expr:
            return {op: [remap_atoms(c, ids) for c in expr[op]]}
    return dict(expr)


def atom_fields(atom: Atom) -> list[int]:
    """The fields an atom reads (a field reference reads two)."""
    fields = [atom["field"]] if atom["field"] is not None else []
    if atom["op"] == "fieldref":
        fields.append(cast(FieldRefAtom, atom)["other"])
    return fields


def rule_record(rule_id: str, condition: Expr, fields: Sequence[int] = (), **meta: Any) -> Rule:
    """A rule entry with every metadata key present (None or empty where not given)."""
    rule: dict[str, Any] = {
        "id": rule_id, "title": rule_id, "level": None, "status": None, "tags": [], "logsource": {},
        "source": None, "author": None, "description": None, "name": None,
    }
    rule.update(meta)
    rule["fields"] = sorted(fields)
    rule["condition"] = condition
    return cast(Rule, rule)


class Program:
    """A compiled program: fields, deduplicated atoms, rules with their conditions."""

    def __init__(self, data: ProgramData | dict[str, Any]) -> None:
        if not isinstance(data, dict):
            raise ProgramError("not a compiled program: expected a JSON object")
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ProgramError(
                f"expected a {FORMAT} of version {VERSION}, "
                f"got {data.get('format')!r} version {data.get('version')!r}"
            )
        self.data = cast(ProgramData, data)

    @property
    def fields(self) -> list[str]:
        return self.data["fields"]

    @property
    def atoms(self) -> list[Atom]:
        return self.data["atoms"]

    @property
    def rules(self) -> list[Rule]:
        return self.data["rules"]

    @property
    def errors(self) -> list[ErrorRecord]:
        return self.data["errors"]

    @property
    def correlations(self) -> list[Correlation]:
        return self.data.get("correlations", [])

    @property
    def filters(self) -> list[FilterRecord]:
        return self.data.get("filters", [])

    @property
    def mapped_fields(self) -> dict[str, list[str]]:
        return self.data.get("mapped_fields", {})

    def to_json(self) -> bytes:
        return orjson.dumps(self.data)

    @classmethod
    def from_json(cls, text: bytes | str) -> Program:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise ProgramError(f"not a compiled program: {e}") from None
        return cls(data)

    @classmethod
    def build(
        cls,
        fields: list[str],
        atoms: list[Atom],
        rules: list[Rule],
        errors: Sequence[ErrorRecord] = (),
        skipped: Sequence[ErrorRecord] = (),
        correlations: Sequence[Correlation] = (),
        filters: Sequence[FilterRecord] = (),
    ) -> Program:
        """A program of this version from its parts (`has_keywords` derived from the atoms)."""
        data: ProgramData = {
            "format": FORMAT,
            "version": VERSION,
            "fields": fields,
            "atoms": atoms,
            "rules": rules,
            "errors": list(errors),
            "has_keywords": any(a["field"] is None for a in atoms),
            "skipped": list(skipped),
        }
        if correlations:
            data["correlations"] = list(correlations)
        if filters:
            data["filters"] = list(filters)
        return cls(data)

    def subprogram(self, rules: Sequence[Rule]) -> Program:
        """A program of `rules` (rules of this program, possibly with new conditions) holding
        only the atoms and fields they use, renumbered in order of first use."""
        atom_map: dict[int, int] = {}
        for rule in rules:
            for a in atom_ids(rule["condition"]):
                atom_map.setdefault(a, len(atom_map))
        field_map: dict[int, int] = {}
        atoms: list[Atom] = []
        for old in atom_map:
            atom = cast(dict[str, Any], dict(self.atoms[old]))
            for key in ("field", "other"):
                if atom.get(key) is not None:
                    atom[key] = field_map.setdefault(atom[key], len(field_map))
            atoms.append(cast(Atom, atom))
        new_rules = []
        for rule in rules:
            condition = remap_atoms(rule["condition"], atom_map)
            used = {f for a in set(atom_ids(condition)) for f in atom_fields(atoms[a])}
            new_rules.append(cast(Rule, {**rule, "condition": condition, "fields": sorted(used)}))
        fields = [""] * len(field_map)
        for old, new in field_map.items():
            fields[new] = self.fields[old]
        return Program.build(fields, atoms, new_rules)

    def iter_rule_atoms(self, rule: Rule) -> Iterator[tuple[int, Atom]]:
        """(atom id, atom) of each distinct atom a rule reads."""
        for a in dict.fromkeys(atom_ids(rule["condition"])):
            yield a, self.atoms[a]


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
        return atom_ref(self._atom_ids[key])

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

    def program(
        self,
        rules: list[Rule],
        errors: Sequence[ErrorRecord],
        skipped: Sequence[ErrorRecord] = (),
        correlations: Sequence[Correlation] = (),
        filters: Sequence[FilterRecord] = (),
    ) -> Program:
        return Program.build(self.fields, self.atoms, rules, errors, skipped, correlations, filters)
