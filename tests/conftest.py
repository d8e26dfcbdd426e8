"""Shared test helpers: events as Arrow tables, and the engines the semantics cases run on.

`engine` is a fixture parametrized over "reference" (sigmarrow.reference, pure Python),
"engine" (sigmarrow.compile + the Rust extension) and "engine-no-shortcuts" (the same with
`prefilter=False, memo=False`, which must never change a result). All take the same arguments
and return (row, rule_id) pairs, so one assertion covers the three. The engine side is skipped, with the
reason, while the extension cannot be imported.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Protocol

import pyarrow as pa
import pytest
from sigma.collection import SigmaCollection

# The compile cache of the tests' own scans lives and dies with the session, whatever the
# developer's $XDG_CACHE_HOME holds.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="sigmarrow-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)


def events_to_table(
    events: Sequence[Mapping[str, Any]], types: Mapping[str, pa.DataType] | None = None
) -> pa.Table:
    """One row per event, one column per key (first appearance order).

    `types` pins a column's Arrow type; other columns are inferred by pyarrow. A column named
    in `types` that no event has is added with nulls only (present in the schema, absent in
    every row).
    """
    types = dict(types or {})
    names = list(dict.fromkeys([*(key for event in events for key in event), *types]))
    if not names:
        raise ValueError("a case needs at least one column (a table without columns has no rows)")
    return pa.table(
        {name: pa.array([event.get(name) for event in events], type=types.get(name)) for name in names}
    )


class Engine(Protocol):
    def __call__(
        self,
        rule_yaml: str,
        events: Sequence[Mapping[str, Any]],
        keyword_columns: Sequence[str] | None = None,
        types: Mapping[str, pa.DataType] | None = None,
    ) -> list[tuple[int, str]]: ...


def run_reference(
    rule_yaml: str,
    events: Sequence[Mapping[str, Any]],
    keyword_columns: Sequence[str] | None = None,
    types: Mapping[str, pa.DataType] | None = None,
) -> list[tuple[int, str]]:
    """The reference sees the Python values; `types` only matters to Arrow."""
    from sigmarrow import reference

    return reference.match(SigmaCollection.from_yaml(rule_yaml), events, keyword_columns)


def load_engine() -> tuple[ModuleType | None, str]:
    """(sigmarrow, "") when the compiled engine is usable, else (None, why not)."""
    try:
        import sigmarrow
        import sigmarrow._engine
    except ImportError as exc:
        return None, f"sigmarrow engine not importable yet: {exc}"
    if not callable(getattr(sigmarrow, "compile", None)):
        return None, "sigmarrow.compile does not exist yet"
    return sigmarrow, ""


def run_engine(
    rule_yaml: str,
    events: Sequence[Mapping[str, Any]],
    keyword_columns: Sequence[str] | None = None,
    types: Mapping[str, pa.DataType] | None = None,
    shortcuts: bool = True,
) -> list[tuple[int, str]]:
    sigmarrow, reason = load_engine()
    if sigmarrow is None:
        pytest.skip(reason)
    matcher = sigmarrow.compile(rule_yaml)
    assert not matcher.errors, f"the engine refused the rule: {matcher.errors}"
    if not shortcuts:
        matcher = matcher.with_options(prefilter=False, memo=False)
    hits = matcher.match(events_to_table(events, types), keyword_columns=keyword_columns)
    return list(zip(hits.column("row").to_pylist(), hits.column("rule_id").to_pylist()))


def run_engine_without_shortcuts(
    rule_yaml: str,
    events: Sequence[Mapping[str, Any]],
    keyword_columns: Sequence[str] | None = None,
    types: Mapping[str, pa.DataType] | None = None,
) -> list[tuple[int, str]]:
    return run_engine(rule_yaml, events, keyword_columns, types, shortcuts=False)


ENGINES: dict[str, Callable[..., list[tuple[int, str]]]] = {
    "reference": run_reference,
    "engine": run_engine,
    "engine-no-shortcuts": run_engine_without_shortcuts,
}


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> Engine:
    """Runs a rule over events on one engine: (rule_yaml, events, keyword_columns, types)."""
    if request.param != "reference":
        sigmarrow, reason = load_engine()
        if sigmarrow is None:
            pytest.skip(reason)
    return ENGINES[request.param]  # type: ignore[return-value]
