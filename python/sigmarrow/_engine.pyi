"""Typed stubs of the Rust extension (rust/sigmarrow-py)."""

import pyarrow as pa

__version__: str

class Engine:
    """A compiled matcher built from a program's JSON text."""

    def __init__(self, program_json: str, *, prefilter: bool = True, memo: bool = True) -> None: ...
    def match_batches(
        self, batches: list[pa.RecordBatch], keyword_columns: list[str], threads: int
    ) -> tuple[pa.Int64Array, pa.UInt32Array]: ...
    def rule_plan(self, rule: int) -> tuple[list[list[int]], list[int] | None, list[int]]:
        """(sets of atoms each of which must hit for the rule to be evaluated, the set chosen
        as its witness, atoms tested only where every set hit)."""

def regex_error(pattern: str, flags: str) -> str | None: ...
def casefold(text: str) -> str: ...
def check_triggers(atom_json: str) -> list[str] | None: ...
