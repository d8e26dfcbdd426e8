"""Typed stubs of the Rust extension (rust/sigmarrow-py)."""

from typing import Self, final

import pyarrow as pa

__all__ = ["Engine", "__version__", "casefold", "check_triggers"]
__version__: str

@final
class Engine:
    """A compiled matcher built from a program's JSON text; raises `ProgramError` for a
    malformed program."""

    def __new__(cls, program_json: str, *, prefilter: bool = True, memo: bool = True) -> Self: ...
    def rule_errors(self) -> list[tuple[int, str]]:
        """(rule index, reason) of each rule the engine cannot run: it never matches."""
    def rule_plan(self, rule: int) -> tuple[list[list[int]], list[int] | None, list[int]]:
        """(sets of atoms each of which must hit for the rule to be evaluated, the set chosen
        as its witness, atoms tested only where every set hit); IndexError for no such rule."""
    def match_batches(
        self, batches: list[pa.RecordBatch], keyword_columns: list[str], threads: int
    ) -> tuple[pa.Int64Array, pa.UInt32Array]: ...

def casefold(text: str) -> str: ...
def check_triggers(atom_json: str) -> list[str] | None: ...
