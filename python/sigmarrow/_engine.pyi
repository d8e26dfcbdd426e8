"""Typed stubs of the Rust extension (rust/sigmarrow-py)."""

from typing import Self, final

import pyarrow as pa

__all__ = ["Engine", "__version__", "casefold", "check_triggers", "json_lines"]
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
def json_lines(
    batch: pa.RecordBatch, skip_nulls_except: list[str] | None = None
) -> pa.LargeBinaryArray:
    """The JSON Lines of ``batch``: one object per row, fields in column order, each line
    ending in a newline (docs/scan.md tells how each type is written). With
    ``skip_nulls_except``, a null is left out unless its column is one of these; raises
    `DataError` naming the column of a value that cannot be written."""
