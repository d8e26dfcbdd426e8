"""Rule selection: which of the loaded rules a scan runs, by level, status, tag and id.

A rule left out gets a reason, like a rule that does not apply to the data
(`Matcher.skipped`), and the scan's summary counts them: nothing disappears silently.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sigmarrow.errors import UsageError

if TYPE_CHECKING:  # a cached scan builds a selection without loading pySigma
    from sigma.rule import SigmaRuleBase

LEVELS = ("informational", "low", "medium", "high", "critical")
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")
#: Statuses left out unless asked for: SigmaHQ keeps such rules for reference only.
DEFAULT_EXCLUDED_STATUSES = ("deprecated", "unsupported")


def _lower_set(values: Iterable[str] | None) -> tuple[str, ...]:
    """Sorted and deduplicated: the selection's repr is part of the compile cache's key."""
    return tuple(sorted({v.strip().lower() for v in values or () if v.strip()}))


@dataclass(frozen=True)
class RuleSelection:
    """Which rules run. Every criterion given must hold; `None`/empty means no constraint.

    - `min_level`: the lowest level kept (`high` keeps high and critical); a rule without a
      level is kept only when no minimum is set.
    - `statuses`: keep only these statuses; `exclude_statuses`: leave these out
      (default: deprecated and unsupported).
    - `tags`: keep rules with at least one tag matching one of these globs
      (`attack.t1059*`, case-insensitive).
    - `rule_ids`: keep only these ids; `exclude_rules`: leave out these ids or titles.
    """

    min_level: str | None = None
    statuses: tuple[str, ...] = ()
    exclude_statuses: tuple[str, ...] = DEFAULT_EXCLUDED_STATUSES
    tags: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()
    exclude_rules: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        min_level: str | None = None,
        statuses: Iterable[str] | None = None,
        exclude_statuses: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        rule_ids: Iterable[str] | None = None,
        exclude_rules: Iterable[str] | None = None,
    ) -> RuleSelection:
        """A selection from user input, checked (an unknown level or status is an error)."""
        level = min_level.strip().lower() if min_level else None
        if level is not None and level not in LEVELS:
            raise UsageError(f"unknown level {min_level!r}: one of {', '.join(LEVELS)}")
        chosen = _lower_set(statuses)
        excluded = DEFAULT_EXCLUDED_STATUSES if exclude_statuses is None else _lower_set(exclude_statuses)
        for status in (*chosen, *excluded):
            if status not in STATUSES:
                raise UsageError(f"unknown status {status!r}: one of {', '.join(STATUSES)}")
        return cls(
            min_level=level,
            statuses=chosen,
            exclude_statuses=tuple(s for s in excluded if s not in chosen),  # asking wins
            tags=tuple(t.strip().lower() for t in tags or () if t.strip()),
            rule_ids=_lower_set(rule_ids),
            exclude_rules=_lower_set(exclude_rules),
        )

    def reason_left_out(self, rule: SigmaRuleBase) -> str | None:
        """Why the selection leaves `rule` out, or None when it keeps it."""
        rule_id = str(rule.id).lower() if rule.id else ""
        level_of, status_of = getattr(rule, "level", None), getattr(rule, "status", None)
        level = level_of.name.lower() if level_of else None
        status = status_of.name.lower() if status_of else None
        if self.rule_ids and rule_id not in self.rule_ids:
            return "not selected: not one of the --rule-id rules"
        if {rule_id, (rule.title or "").lower()} & set(self.exclude_rules):
            return "not selected: excluded by --exclude-rule"
        if self.min_level and (level is None or LEVELS.index(level) < LEVELS.index(self.min_level)):
            return f"not selected: level {level or 'none'} is below {self.min_level}"
        if self.statuses and status not in self.statuses:
            return f"not selected: status {status or 'none'}"
        if status in self.exclude_statuses:
            return f"not selected: status {status} (left out by default; --status {status} runs it)"
        if self.tags:
            tags = [str(t).lower() for t in getattr(rule, "tags", [])]
            if not any(fnmatch.fnmatchcase(t, g) for t in tags for g in self.tags):
                return f"not selected: no tag matches {', '.join(self.tags)}"
        return None


#: The default: every rule but the deprecated and unsupported ones.
DEFAULT_SELECTION = RuleSelection()
