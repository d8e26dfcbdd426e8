"""Helpers for the tests that use the pinned SigmaHQ snapshot (``../shared/sigma``).

The snapshot is not part of the repository: tests find it through ``SIGMARROW_SIGMA_DIR``
(default: ``shared/sigma`` beside the repository) and are skipped, saying why, without it.
The rules are under the Detection Rule License 1.1: keep rule ids and titles in outputs.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_DIR = Path(__file__).resolve().parents[1]
SIGMA_DIR = Path(
    os.environ.get("SIGMARROW_SIGMA_DIR", REPO_DIR.parent / "shared" / "sigma")
).resolve()
#: The folders whose rules pySigma parses without extra values (no `rules-placeholder/`).
RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting")
REGRESSION_DIR = SIGMA_DIR / "regression_data"

HAVE_SIGMA = all((SIGMA_DIR / folder).is_dir() for folder in RULE_FOLDERS)
requires_sigma = pytest.mark.skipif(
    not HAVE_SIGMA,
    reason=f"SigmaHQ snapshot not found at {SIGMA_DIR} "
    "(set SIGMARROW_SIGMA_DIR to a checkout with rules/ and regression_data/)",
)

# A rule's own id is the top-level `id:` line; `related:` ids are indented.
_ID_LINE = re.compile(r"^id:\s*['\"]?([0-9A-Fa-f-]{36})['\"]?\s*(?:#.*)?$", re.MULTILINE)


def rule_dirs() -> list[Path]:
    return [SIGMA_DIR / folder for folder in RULE_FOLDERS]


@functools.cache
def rule_files() -> tuple[Path, ...]:
    """Every rule file of the three rule folders, as ``sigmarrow.compile`` finds them."""
    files: list[Path] = []
    for folder in rule_dirs():
        files.extend(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    return tuple(sorted(files))


@functools.cache
def rule_index() -> dict[str, Path]:
    """Rule id -> rule file, over the three rule folders (built once per session)."""
    index: dict[str, Path] = {}
    for path in rule_files():
        match = _ID_LINE.search(path.read_text(encoding="utf-8"))
        if match is None:
            continue
        rule_id = match.group(1).lower()
        if rule_id in index:
            raise AssertionError(f"duplicate rule id {rule_id}: {index[rule_id]} and {path}")
        index[rule_id] = path
    return index


@dataclass(frozen=True)
class RegressionCase:
    """One test of SigmaHQ's regression suite: a rule must match its events often enough."""

    test_id: str  # readable pytest id: the folder name (the rule file's stem)
    info: Path  # the info.yml
    rule_id: str
    rule_title: str
    name: str  # the test's name in info.yml
    kind: str  # the test's type in info.yml: "evtx" for all of them so far
    evtx: Path
    match_count: int

    @property
    def rule_path(self) -> Path:
        try:
            return rule_index()[self.rule_id]
        except KeyError:
            raise AssertionError(
                f"{self.info}: rule {self.rule_id} ({self.rule_title}) is in none of "
                f"{', '.join(RULE_FOLDERS)}"
            ) from None


@functools.cache
def regression_cases() -> tuple[RegressionCase, ...]:
    """Every test of every ``regression_data/**/info.yml`` (an info.yml without tests
    contributes none), sorted by its path."""
    if not REGRESSION_DIR.is_dir():
        return ()
    cases: list[RegressionCase] = []
    for info in sorted(REGRESSION_DIR.rglob("info.yml")):
        data = yaml.safe_load(info.read_text(encoding="utf-8")) or {}
        rules = data.get("rule_metadata") or []
        tests = data.get("regression_tests_info") or []
        if not tests:
            continue
        if len(rules) != 1:
            raise AssertionError(f"{info}: expected one rule in rule_metadata, got {len(rules)}")
        rule_id = str(rules[0]["id"]).lower()
        for number, test in enumerate(tests):
            test_id = info.parent.name if len(tests) == 1 else f"{info.parent.name}-{number}"
            cases.append(
                RegressionCase(
                    test_id=test_id,
                    info=info,
                    rule_id=rule_id,
                    rule_title=str(rules[0].get("title", "")),
                    name=str(test.get("name", "")),
                    kind=str(test.get("type", "evtx")),
                    evtx=SIGMA_DIR / test["path"],
                    match_count=int(test.get("match_count", 1)),
                )
            )
    return tuple(cases)
