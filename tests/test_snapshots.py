"""Compiled programs as reviewed snapshots (tests/snapshots/*.json): a change to what the
compiler emits shows up as a diff to read in review, not only as a behaviour change.

After an intended change, rewrite them with `SIGMARROW_UPDATE_SNAPSHOTS=1 pytest
tests/test_snapshots.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sigmarrow
from cases import CASES

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"

# A dozen cases, one of each kind of atom and of each way conditions combine.
SNAPSHOT_CASES = [
    "contains-startswith-endswith",
    "glob-star-in-the-middle",
    "escaped-backslash-then-escaped-star",
    "list-with-all-is-and",
    "all-of-pattern-and-not-one-of-filters",
    "not-of-a-group",
    "keywords-with-modifier",
    "windash",
    "base64offset-contains",
    "re-inline-ignorecase",
    "cidr-ipv6",
    "gte-and-lt-together",
    "exists-false",
    "fieldref-contains-startswith-endswith",
    "timestamp-part-with-compare",
    "null-in-a-list",
]


def _program_json(matcher: sigmarrow.Matcher) -> str:
    data = json.loads(matcher.to_bytes())
    for rule in data["rules"]:
        if rule["source"]:  # machine-independent: relative to the checkout
            rule["source"] = Path(rule["source"]).resolve().relative_to(ROOT).as_posix()
    return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def _check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.json"
    if os.environ.get("SIGMARROW_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with SIGMARROW_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed: review, then update it"


def test_examples_rules_program() -> None:
    _check("examples-rules", _program_json(sigmarrow.compile(str(ROOT / "examples" / "rules"))))


@pytest.mark.parametrize("case_id", SNAPSHOT_CASES)
def test_case_program(case_id: str) -> None:
    case = next(c for c in CASES if c.id == case_id)
    _check(f"case-{case_id}", _program_json(sigmarrow.compile(case.rule_yaml)))
