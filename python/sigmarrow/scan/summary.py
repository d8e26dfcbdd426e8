"""What a scan reports: the summary at the end and the progress while it runs.

:class:`HitTally` adds up the hits batch by batch (per rule, per host, per rule over time);
:class:`ScanSummary` holds the result and renders it: ``format()`` for people (capped lists),
``to_dict()`` for programs (everything: ``scan --summary FILE.json``), and
:mod:`sigmarrow.scan.report` as an HTML page.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.errors import RuleError

__all__ = [
    "LEVELS",
    "CorrelationAlerts",
    "HitTally",
    "Progress",
    "RuleHits",
    "ScanSummary",
    "SkippedFile",
]

#: Sigma's levels, lowest first.
LEVELS = ("informational", "low", "medium", "high", "critical")
#: The widths (milliseconds) hits over time are counted in: the finest that keeps at most
#: :data:`MAX_TIME_BUCKETS` (rule, bucket) pairs. Each divides the next, so counts move up.
_S, _DAY = 1000, 86_400_000
BUCKET_MS = (1, 10, 100, _S, 10 * _S, 60 * _S, 600 * _S, 3600 * _S, 6 * 3600 * _S, _DAY,
             7 * _DAY, 28 * _DAY, 364 * _DAY)
MAX_TIME_BUCKETS = 20_000
#: What the capped lists of the text summary point to.
SEE_ALL = "--summary FILE.json lists them all"


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
    rules_without_hits: list[RuleHits] = field(default_factory=list)
    #: hits per value of the hits' ``host`` column (hits without one are not counted)
    hits_per_host: dict[str, int] = field(default_factory=dict)
    hits_without_time: int = 0  #: hits whose event has no usable time
    #: the event columns each timeline column came from: timestamp -> [UtcTime], ...
    timeline_sources: dict[str, list[str]] = field(default_factory=dict)
    time_bucket_ms: int = 0  #: the width of the buckets of hits_over_time
    #: rule index -> {bucket start (milliseconds since the epoch, UTC): hits}
    hits_over_time: dict[int, dict[int, int]] = field(default_factory=dict)
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
    # The inputs: what a time range skipped unread or left out, requested columns not found.
    time_range: str = ""  #: the range (--since/--until) and its time field; "" for none
    files_pruned: int = 0  #: files never opened: their date partitions miss the range
    row_groups_pruned: int = 0  #: Parquet row groups never read: their statistics miss it
    rows_pruned: int = 0  #: the rows of those row groups
    rows_out_of_range: int = 0  #: rows read and left out: their time is outside the range
    rows_without_time: int = 0  #: rows read and left out: they have no usable time
    columns_not_found: list[str] = field(default_factory=list)  #: requested, in no input
    #: the Sigma filters applied (sigmarrow.correlation.FilterInfo: touched rules, warnings)
    filters: list[Any] = field(default_factory=list)
    alerts: list[CorrelationAlerts] = field(default_factory=list)  #: per correlation rule
    alerts_output: str = ""  #: where the alerts went ("" without correlation rules)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def hits_per_level(self) -> dict[str, int]:
        """Hits per rule level, highest first (``none``: rules without a level)."""
        counts: Counter[str] = Counter()
        for h in self.hits_per_rule:
            counts[h.level or "none"] += h.count
        order = {level: -i for i, level in enumerate(LEVELS)}
        return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], 1)))

    @property
    def errors_by_file(self) -> dict[str, list[RuleError]]:
        """The compile errors grouped by their rule file, in the order they came."""
        files: dict[str, list[RuleError]] = {}
        for e in self.compile_errors:
            files.setdefault(e.source or "<text>", []).append(e)
        return files

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
            "rules_without_hits": [vars(h) for h in self.rules_without_hits],
            "hits_per_level": self.hits_per_level,
            "hits_per_host": dict(sorted(self.hits_per_host.items(), key=lambda kv: -kv[1])),
            "hits_without_time": self.hits_without_time,
            "timeline_sources": self.timeline_sources,
            "hits_over_time": {
                "bucket_ms": self.time_bucket_ms,
                "rules": [
                    {"index": h.index, "id": h.id, "buckets": sorted(buckets.items())}
                    for h in self.hits_per_rule
                    if (buckets := self.hits_over_time.get(h.index))
                ],
            },
            "compile_error_files": len(self.errors_by_file),
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
        """The summary as text; lists longer than ``limit`` are cut (and say so)."""
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
            lines += _more(len(self.hits_per_rule), limit, "rules")
            levels = ", ".join(f"{level} {_n(n)}" for level, n in self.hits_per_level.items())
            lines.append(f"hits per level: {levels}")
        if self.hits_per_host:
            top = sorted(self.hits_per_host.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{host} {_n(n)}" for host, n in top[:limit])
            more = f" and {len(top) - limit} more ({SEE_ALL})" if len(top) > limit else ""
            lines.append(f"hits per host ({_n(len(top))} host{_s(len(top))}): {shown}{more}")
        if self.hits_without_time:
            tried = ", ".join(self.timeline_sources.get("timestamp", [])) or "none found"
            lines.append(
                f"hits without an event time: {_n(self.hits_without_time)} of {_n(self.hits)} "
                f"(time columns: {tried}; --time-field names one)"
            )
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
                lines.append(
                    f"  ... and {len(reasons) - limit} more reasons ({_n(rest)} rules; {SEE_ALL})"
                )
        if self.compile_errors:
            files = self.errors_by_file
            rules = len({(e.source, e.rule_id) for e in self.compile_errors})
            n = len(self.compile_errors)
            lines.append(
                f"rules that could not compile ({_n(rules)}): {_n(n)} error{_s(n)} in "
                f"{_n(len(files))} file{_s(len(files))}, by file:"
            )
            for errors in list(files.values())[:limit]:
                also = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                lines.append(f"  {errors[0]}{also}")
            lines += _more(len(files), limit, "files")
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
        if self.time_range:
            lines.append(
                f"time range {self.time_range}: skipped unread {_n(self.files_pruned)} "
                f"file{_s(self.files_pruned)} (partitions), {_n(self.row_groups_pruned)} row "
                f"group{_s(self.row_groups_pruned)} ({_n(self.rows_pruned)} rows); left out "
                f"{_n(self.rows_out_of_range)} row{_s(self.rows_out_of_range)} out of the range"
                f", {_n(self.rows_without_time)} row{_s(self.rows_without_time)} without a "
                "usable time"
            )
        if self.columns_not_found:
            lines.append(
                "requested columns no input has (null in every hit): "
                + ", ".join(self.columns_not_found)
            )
        if self.ignored_files:
            lines.append(
                f"ignored {self.ignored_files} file{_s(self.ignored_files)} in input "
                "folders that are not data files"
            )
        if self.skipped_files:
            lines.append(
                f"skipped {len(self.skipped_files)} bad file{_s(len(self.skipped_files))}:"
            )
            for s in self.skipped_files[:limit]:
                after = f" (after {_n(s.rows_read)} rows)" if s.rows_read else ""
                lines.append(f"  {s.path}: {s.reason}{after}")
            lines += _more(len(self.skipped_files), limit, "files")
        return "\n".join(lines)


def _more(total: int, limit: int, what: str) -> list[str]:
    return [f"  ... and {_n(total - limit)} more {what} ({SEE_ALL})"] if total > limit else []


class HitTally:
    """Adds up the hits of a scan, batch by batch: per rule, per host, and per rule over
    time (in buckets that widen, see :data:`BUCKET_MS`, so memory stays small)."""

    def __init__(self, rules: Sequence[Any]) -> None:
        self.rules = rules
        self.per_rule = np.zeros(len(rules), np.int64)
        self.hosts: Counter[str] = Counter()
        self.without_time = 0
        self.level = 0  #: index into BUCKET_MS
        #: (rule, bucket start in ms) -> hits, as a (2, n) array of distinct pairs and counts
        self.buckets = np.zeros((2, 0), np.int64)
        self.counts = np.zeros(0, np.int64)
        self.sources: dict[str, list[str]] = {}

    def add(self, rule_index: pa.Array, hits: pa.RecordBatch) -> None:
        rules = rule_index.to_numpy(zero_copy_only=False).astype(np.int64)
        np.add.at(self.per_rule, rules, 1)
        hosts = pc.value_counts(hits.column("host").drop_null())
        names, counts = hosts.field("values").to_pylist(), hosts.field("counts").to_pylist()
        self.hosts.update(dict(zip(names, counts, strict=True)))
        times = hits.column("timestamp")
        usable = times.is_valid().to_numpy(zero_copy_only=False)
        self.without_time += int(len(usable) - usable.sum())
        micros = pc.fill_null(times.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        pairs = np.stack([rules[usable], micros[usable] // 1000])
        self._tally(np.concatenate([self.buckets, pairs], axis=1),
                    np.concatenate([self.counts, np.ones(pairs.shape[1], np.int64)]))
        while self.counts.size > MAX_TIME_BUCKETS and self.level + 1 < len(BUCKET_MS):
            self.level += 1
            self._tally(self.buckets, self.counts)

    def _tally(self, pairs: np.ndarray, counts: np.ndarray) -> None:
        """Keeps the counts of `pairs` (rule, ms) summed per rule and bucket of today's width."""
        width = BUCKET_MS[self.level]
        rules, starts = pairs[0], pairs[1] // width * width
        order = np.lexsort((starts, rules))
        rules, starts, counts = rules[order], starts[order], counts[order]
        first = np.ones(len(order), bool)  # of a run of equal pairs
        first[1:] = (rules[1:] != rules[:-1]) | (starts[1:] != starts[:-1])
        at = np.flatnonzero(first)
        self.buckets = np.stack([rules[at], starts[at]])
        self.counts = np.add.reduceat(counts, at) if at.size else counts[:0]

    def note_sources(self, columns: dict[str, str | None]) -> None:
        """Record which event columns the timeline columns of a file came from."""
        for hit, name in columns.items():
            if name is not None and name not in self.sources.setdefault(hit, []):
                self.sources[hit].append(name)

    def finish(self, summary: ScanSummary) -> None:
        """Put the totals into ``summary``."""
        hits = [
            RuleHits(i, r.id, r.title, r.level, int(count))
            for i, (r, count) in enumerate(zip(self.rules, self.per_rule, strict=True))
        ]
        matched = (h for h in hits if h.count)
        summary.hits_per_rule = sorted(matched, key=lambda h: (-h.count, h.index))
        summary.rules_without_hits = [h for h in hits if not h.count]
        summary.hits_per_host = dict(self.hosts)
        summary.hits_without_time = self.without_time
        summary.timeline_sources = {k: v for k, v in self.sources.items() if v}
        summary.time_bucket_ms = BUCKET_MS[self.level]
        over_time: dict[int, dict[int, int]] = {}
        for rule, start, count in zip(*self.buckets.tolist(), self.counts.tolist(), strict=True):
            over_time.setdefault(rule, {})[start] = count
        summary.hits_over_time = over_time


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


