"""What a scan reports: the summary at the end and the progress while it runs."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sigmarrow.errors import RuleError

__all__ = ["CorrelationAlerts", "Progress", "RuleHits", "ScanSummary", "SkippedFile"]


@dataclass
class RuleHits:
    index: int
    id: str | None
    title: str
    level: str | None
    count: int


@dataclass
class CorrelationAlerts:
    """The alerts of one correlation rule, and the events it could not use."""

    id: str
    title: str
    level: str | None
    count: int
    no_time: int = 0  #: events of its rules without a usable time
    no_group: int = 0  #: events with a group-by value absent

    @classmethod
    def of(cls, correlations: list[Any], alerts: Any) -> list[CorrelationAlerts]:
        """Per correlation rule of a matcher, from its alerts table (and its metadata)."""
        import orjson

        from sigmarrow.correlation import DROPPED_KEY

        ids = alerts.column("correlation_id").to_pylist()
        dropped = orjson.loads((alerts.schema.metadata or {}).get(DROPPED_KEY, b"{}"))
        return [
            cls(c.id, c.title, c.level, ids.count(c.id), **dropped.get(c.id, {}))
            for c in correlations
        ]


@dataclass
class SkippedFile:
    path: str
    reason: str
    rows_read: int  #: rows scanned (and their hits kept) before the problem showed


@dataclass
class ScanSummary:
    """What a scan did; ``format()`` renders it for people, ``to_dict()`` for programs."""

    output: str
    files: int = 0
    rows: int = 0
    seconds: float = 0.0
    hits: int = 0
    rules: int = 0
    hits_per_rule: list[RuleHits] = field(default_factory=list)
    compile_errors: list[RuleError] = field(default_factory=list)
    #: referenced fields (columns) missing from the data: field -> files that lack it
    missing_fields: dict[str, int] = field(default_factory=dict)
    skipped_files: list[SkippedFile] = field(default_factory=list)
    ignored_files: int = 0
    #: rules left out as not applicable to the data's log sources or not routed, and why
    skipped_rules: list[RuleError] = field(default_factory=list)
    logsource: str = ""  #: the log sources the data was taken to hold, and how they were found
    compile_seconds: float = 0.0  #: compiling the rules (or loading them) before the scan
    compile_how: str = ""  #: "compiled", "from the cache", "loaded FILE"
    #: the Sigma filters applied (sigmarrow.correlation.FilterInfo: touched rules, warnings)
    filters: list[Any] = field(default_factory=list)
    alerts: list[CorrelationAlerts] = field(default_factory=list)  #: per correlation rule
    alerts_output: str = ""  #: where the alerts went ("" without correlation rules)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "files": self.files,
            "rows": self.rows,
            "seconds": self.seconds,
            "rows_per_second": self.rows_per_second,
            "hits": self.hits,
            "rules": self.rules,
            "hits_per_rule": [vars(h) for h in self.hits_per_rule],
            "compile_errors": [dataclasses.asdict(e) for e in self.compile_errors],
            "missing_fields": dict(self.missing_fields),
            "skipped_files": [vars(s) for s in self.skipped_files],
            "ignored_files": self.ignored_files,
            "logsource": self.logsource,
            "compile_seconds": self.compile_seconds,
            "compile_how": self.compile_how,
            "skipped_rules": [dataclasses.asdict(e) for e in self.skipped_rules],
            "filters": [dataclasses.asdict(f) for f in self.filters],
            "alerts": [vars(a) for a in self.alerts],
            "alerts_output": self.alerts_output,
        }

    def format(self, limit: int = 20) -> str:
        where = "standard output" if self.output == "-" else self.output
        lines = [
            (
                f"scanned {_n(self.files)} file{_s(self.files)}, {_n(self.rows)} "
                f"row{_s(self.rows)} in {self.seconds:.2f} s "
                f"({_n(round(self.rows_per_second))} rows/s) with {_n(self.rules)} "
                f"rule{_s(self.rules)}: {_n(self.hits)} hit{_s(self.hits)} written to {where}"
            )
        ]
        if self.hits_per_rule:
            lines.append(
                f"hits per rule ({len(self.hits_per_rule)} of {_n(self.rules)} rules matched):"
            )
            width = max(len(_n(h.count)) for h in self.hits_per_rule)
            for h in self.hits_per_rule[:limit]:
                lines.append(
                    f"  {_n(h.count):>{width}}  {h.level or '-':<13} {h.title}  ({h.id or 'no id'})"
                )
            if len(self.hits_per_rule) > limit:
                lines.append(f"  ... and {len(self.hits_per_rule) - limit} more rules")
        if self.alerts_output:
            total = sum(a.count for a in self.alerts)
            where = "standard output" if self.alerts_output == "-" else self.alerts_output
            lines.append(
                f"correlations: {_n(total)} alert{_s(total)} from {len(self.alerts)} correlation "
                f"rule{_s(len(self.alerts))} written to {where}"
            )
            for a in self.alerts[:limit]:
                dropped = [f"{_n(n)} {what}" for n, what in ((a.no_time, "without a usable time"),
                                                             (a.no_group, "without a group value")) if n]
                unused = f"; events dropped: {', '.join(dropped)}" if dropped else ""
                lines.append(f"  {_n(a.count)}  {a.level or '-':<13} {a.title}  ({a.id}){unused}")
        for f in self.filters:
            touched = ", ".join(f.touched[:limit]) + (" ..." if len(f.touched) > limit else "")
            lines.append(
                f"filter {f.title} ({f.id or f.name or 'no id'}): ANDed onto {len(f.touched)} "
                f"rule{_s(len(f.touched))}{': ' + touched if f.touched else ''}"
            )
            lines += [f"  warning: {w}" for w in f.warnings]
        if self.compile_how:
            lines.append(f"rules: {_n(self.rules)} {self.compile_how} in {self.compile_seconds:.2f} s")
        if self.logsource:
            lines.append(f"log sources: {self.logsource}")
        if self.skipped_rules:
            reasons = Counter(e.reason for e in self.skipped_rules)
            lines.append(f"rules left out ({_n(len(self.skipped_rules))}):")
            for reason, count in reasons.most_common(limit):
                lines.append(f"  {reason} ({_n(count)} rule{_s(count)})")
            if len(reasons) > limit:
                rest = sum(c for _, c in reasons.most_common()[limit:])
                lines.append(f"  ... and {len(reasons) - limit} more reasons ({_n(rest)} rules)")
        if self.compile_errors:
            lines.append(f"rules that could not compile ({len(self.compile_errors)}):")
            for e in self.compile_errors[:limit]:
                lines.append(f"  {e}")
            if len(self.compile_errors) > limit:
                lines.append(f"  ... and {len(self.compile_errors) - limit} more")
        if self.missing_fields and self.files:
            everywhere = sorted(k for k, v in self.missing_fields.items() if v >= self.files)
            partly = sorted((k, v) for k, v in self.missing_fields.items() if v < self.files)
            if everywhere:
                shown = ", ".join(everywhere[:limit])
                more = f" and {len(everywhere) - limit} more" if len(everywhere) > limit else ""
                lines.append(
                    f"referenced columns missing from the data ({len(everywhere)}): {shown}{more}"
                )
            if partly:
                shown = ", ".join(f"{k} ({v} of {self.files} files)" for k, v in partly[:limit])
                more = f" and {len(partly) - limit} more" if len(partly) > limit else ""
                lines.append(f"referenced columns missing from some files: {shown}{more}")
        if self.ignored_files:
            lines.append(
                f"ignored {self.ignored_files} file{_s(self.ignored_files)} in input "
                "folders that are not data files"
            )
        if self.skipped_files:
            lines.append(
                f"skipped {len(self.skipped_files)} bad file{_s(len(self.skipped_files))}:"
            )
            for s in self.skipped_files:
                after = f" (after {_n(s.rows_read)} rows)" if s.rows_read else ""
                lines.append(f"  {s.path}: {s.reason}{after}")
        return "\n".join(lines)


def _n(value: int) -> str:
    return f"{value:,}"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


@dataclass
class Progress:
    """What a progress display needs; passed to the ``progress`` callback of :func:`scan`."""

    files_done: int
    files_total: int
    rows: int
    bytes_done: float  #: bytes of the finished files, plus the read fraction of the current one
    bytes_total: int
    seconds: float
    current: str | None
    hits: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.bytes_done <= 0 or self.bytes_total <= 0 or self.seconds <= 0:
            return None
        return max(self.seconds * (self.bytes_total - self.bytes_done) / self.bytes_done, 0.0)


