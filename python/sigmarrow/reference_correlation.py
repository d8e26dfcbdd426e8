"""The reference correlator: slow, obviously correct, pure Python, brute force.

It reads the correlation documents straight from the YAML (not from pySigma's model nor the
compiled program), takes the base hits from the reference evaluator (`sigmarrow.reference`),
and for every anchor (a distinct group and event time) collects the window's events one by
one, as docs/semantics.md ("Correlations") defines. It shares no code with
`sigmarrow.correlation`; the tests run both over the same cases and random data.

Alerts are dicts: `correlation_id`, `type`, `group` (field -> text), `window_start` and
`window_end` (nanoseconds since the epoch), `metric`, `anchors`, `evidence` (rows, ordered by
time then row); `dropped` gives, per correlation, the events without a usable time or group.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from sigma.collection import SigmaCollection

from sigmarrow import reference

TIME_FIELDS = ("TimeCreated", "@timestamp", "TimeGenerated", "EventTime", "timestamp", "UtcTime")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2629746, "y": 31556952}
BILLION = 10**9
ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(?:Z|z|([+-])(\d{2}):?(\d{2}))?)?"
)
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def timespan_seconds(spec: str) -> int:
    found = re.fullmatch(r"(\d+)([smhdwMy])", spec)
    assert found, f"bad timespan {spec!r}"
    return int(found.group(1)) * UNIT_SECONDS[found.group(2)]


def event_time(value: Any) -> int | None:
    """Nanoseconds since the epoch, or None when the value is no usable time."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * BILLION if abs(value) < 9_000_000_000 else None
    if isinstance(value, float):
        return round(value * 1e9) if math.isfinite(value) and abs(value) < 9e9 else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        since = value - dt.datetime(1970, 1, 1)
        return (since.days * 86400 + since.seconds) * BILLION + since.microseconds * 1000
    if isinstance(value, dt.date):
        return (value - dt.date(1970, 1, 1)).days * 86400 * BILLION
    if not isinstance(value, str):
        return None
    found = ISO.fullmatch(value)
    if not found:
        return None
    y, mo, d, h, mi, s, frac, sign, oh, om = found.groups()
    try:
        moment = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
    except ValueError:
        return None
    if om is not None and int(om) > 59:
        return None
    nanos = int((frac or "")[:9].ljust(9, "0"))
    offset = 0
    if sign:
        offset = (int(oh) * 3600 + int(om) * 60) * (-1 if sign == "-" else 1)
    since = moment - dt.datetime(1970, 1, 1)
    return (since.days * 86400 + since.seconds - offset) * BILLION + nanos


def as_text(value: Any) -> str | None:
    """Text of a value for group keys and value_count (None: absent)."""
    if value is None or isinstance(value, (Mapping, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def as_number(text: str | None) -> float | None:
    if text is None or not JSON_NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def lookup(event: Mapping[str, Any], name: str) -> Any:
    if name in event:
        return event[name]
    head, _, rest = name.partition(".")
    if rest and isinstance(event.get(head), Mapping):
        return lookup(event[head], rest)
    return None


@dataclass
class Item:
    """One input event of a correlation."""

    key: tuple[int, int]  # (kind, number): kind 1 a row, kind 0 a child alert (see `_child_items`)
    time: int
    group: tuple[str, ...]  # folded
    shown: tuple[str, ...]  # as written
    text: str | None  # the value field's text
    ref: int
    evidence: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # (time, row)


def _rule_key(doc: Mapping[str, Any]) -> str:
    if doc.get("id"):
        try:
            return str(uuid.UUID(str(doc["id"])))
        except ValueError:
            return str(doc["id"])
    return str(doc.get("title", ""))


class Reference:
    def __init__(self, rules_yaml: str, events: Sequence[Mapping[str, Any]], time_field: str | None = None):
        docs = [d for d in yaml.safe_load_all(rules_yaml) if isinstance(d, dict)]
        self.events = list(events)
        self.detections = [d for d in docs if "detection" in d]
        self.correlations = [d for d in docs if "correlation" in d]
        by_ref: dict[str, dict[str, Any]] = {}
        for doc in self.detections + self.correlations:
            for name in (doc.get("id"), doc.get("name")):
                if name is not None:
                    by_ref[str(name)] = doc
        self.by_ref = by_ref
        collection = SigmaCollection.from_yaml(yaml.safe_dump_all(self.detections))
        self.hits: dict[str, set[int]] = {}
        for row, rule_id in reference.match(collection, self.events):
            self.hits.setdefault(rule_id, set()).add(row)
        names = [time_field] if time_field else [f for f in TIME_FIELDS if any(f in e for e in events)][:1]
        self.time_field = names[0] if names else None
        self.every: dict[int, list[dict[str, Any]]] = {}
        self.dropped: dict[str, dict[str, int]] = {}

    # --- one correlation ---
    def spec(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        c = doc["correlation"]
        refs = c["rules"] if isinstance(c["rules"], list) else [c["rules"]]
        condition = c.get("condition") or {"gte": len(refs)}
        group_by = c.get("group-by") or []
        return {
            "id": _rule_key(doc),
            "type": c["type"],
            "refs": [str(r) for r in refs],
            "span": timespan_seconds(c["timespan"]) * BILLION,
            "group_by": [group_by] if isinstance(group_by, str) else list(group_by),
            "aliases": c.get("aliases") or {},
            "ops": {k: v for k, v in condition.items() if k in ("gt", "gte", "lt", "lte", "eq", "neq")},
            "field": condition.get("field"),
            "percentile": condition.get("percentile"),
        }

    def _field(self, spec: dict[str, Any], ref: str, target: Mapping[str, Any], name: str) -> str:
        mapping = spec["aliases"].get(name, {})
        for key in (ref, target.get("name"), target.get("id")):
            if key is not None and str(key) in mapping:
                return str(mapping[str(key)])
        return name

    def items(self, doc: Mapping[str, Any]) -> list[Item]:
        spec = self.spec(doc)
        items: list[Item] = []
        no_time: set[Any] = set()
        no_group: set[Any] = set()
        next_child = -1
        for j, ref in enumerate(spec["refs"]):
            target = self.by_ref[ref]
            names = [self._field(spec, ref, target, g) for g in spec["group_by"]]
            value_name = self._field(spec, ref, target, spec["field"]) if spec["field"] else None
            if "correlation" in target:
                child = self.alerts_every(target)
                first = next_child - len(child) + 1
                next_child -= len(child)
                for n, alert in enumerate(child):
                    shown = [alert["group"].get(name) for name in names]
                    if any(s is None for s in shown):
                        no_group.add(("alert", first + n))
                        continue
                    text = alert["group"].get(value_name) if value_name else None
                    items.append(Item((0, first + n), alert["window_end"], tuple(s.casefold() for s in shown),
                                      tuple(shown), text, j, frozenset(alert["evidence_items"])))
                continue
            for row in sorted(self.hits.get(_rule_key(target), ())):
                event = self.events[row]
                time = event_time(lookup(event, self.time_field)) if self.time_field else None
                if time is None:
                    no_time.add(row)
                    continue
                shown = [as_text(lookup(event, name)) for name in names]
                if any(s is None for s in shown):
                    no_group.add(row)
                    continue
                text = as_text(lookup(event, value_name)) if value_name else None
                known = [s for s in shown if s is not None]
                items.append(Item((1, row), time, tuple(s.casefold() for s in known), tuple(known), text, j,
                                  frozenset({(time, row)})))
        self.dropped[spec["id"]] = {"no_time": len(no_time), "no_group": len(no_group)}
        return items

    @staticmethod
    def metric(spec: dict[str, Any], window: list[Item]) -> float | None:
        kind = spec["type"]
        if kind == "event_count":
            return len({i.key for i in window})
        if kind == "value_count":
            return len({i.text.casefold() for i in window if i.text is not None})
        if kind == "temporal":
            return len({i.ref for i in window})
        if kind == "temporal_ordered":
            for length in range(len(spec["refs"]), 0, -1):
                for refs in itertools.combinations(range(len(spec["refs"])), length):
                    last = -math.inf
                    for j in refs:
                        later = [i.time for i in window if i.ref == j and i.time > last]
                        if not later:
                            break
                        last = min(later)
                    else:
                        return length
            return 0
        pairs = {(i.key, as_number(i.text)) for i in window}
        numbers = sorted(n for _, n in pairs if n is not None)
        if not numbers:
            return None
        if kind == "value_sum":
            return math.fsum(numbers)
        if kind == "value_avg":
            return math.fsum(numbers) / len(numbers)
        rank = 50 if kind == "value_median" else spec["percentile"]
        position = rank / 100 * (len(numbers) - 1)
        below, above = math.floor(position), math.ceil(position)
        return numbers[below] + (position - below) * (numbers[above] - numbers[below])

    @staticmethod
    def qualifies(ops: Mapping[str, float], metric: float | None) -> bool:
        if metric is None:
            return False
        checks = {
            "gt": metric > ops.get("gt", 0), "gte": metric >= ops.get("gte", 0),
            "lt": metric < ops.get("lt", 0), "lte": metric <= ops.get("lte", 0),
            "eq": metric == ops.get("eq", 0), "neq": metric != ops.get("neq", 0),
        }
        return all(checks[op] for op in ops)

    def alerts_every(self, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every qualifying anchor, in order of (folded group, time): a child's alert order."""
        if id(doc) in self.every:
            return self.every[id(doc)]
        spec = self.spec(doc)
        items = self.items(doc)
        alerts = []
        for group, time in sorted({(i.group, i.time) for i in items}):
            window = [i for i in items if i.group == group and time - spec["span"] <= i.time <= time]
            metric = self.metric(spec, window)
            if self.qualifies(spec["ops"], metric):
                alerts.append(self._alert(spec, items, group, time, time, metric, 1))
        self.every[id(doc)] = alerts
        return alerts

    def _alert(self, spec: dict[str, Any], items: list[Item], group: tuple[str, ...], first: int, last: int,
               metric: float | None, anchors: int) -> dict[str, Any]:
        members = [i for i in items if i.group == group]
        earliest = min(members, key=lambda i: (i.time, i.key, i.ref))
        inside = [i for i in members if first - spec["span"] <= i.time <= last]
        evidence = sorted(set().union(*(i.evidence for i in inside)))
        return {
            "correlation_id": spec["id"],
            "type": spec["type"],
            "group": dict(zip(spec["group_by"], earliest.shown)),
            "window_start": first - spec["span"],
            "window_end": last,
            "metric": float(metric),  # type: ignore[arg-type]
            "anchors": anchors,
            "evidence": [row for _, row in evidence],
            "evidence_items": evidence,
        }

    def alerts_merged(self, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
        spec = self.spec(doc)
        items = self.items(doc)
        smallest = all(op in ("lt", "lte") for op in spec["ops"])
        merged = []
        for group in sorted({a_group for a_group in (i.group for i in items)}):
            anchors = [a for a in self.alerts_every(doc) if tuple(v.casefold() for v in a["group"].values()) == group]
            runs: list[list[dict[str, Any]]] = []
            for alert in anchors:
                if runs and alert["window_end"] - spec["span"] <= runs[-1][-1]["window_end"]:
                    runs[-1].append(alert)
                else:
                    runs.append([alert])
            for run in runs:
                peak = (min if smallest else max)(a["metric"] for a in run)
                merged.append(self._alert(spec, items, group, run[0]["window_end"], run[-1]["window_end"],
                                          peak, len(run)))
        return merged

    def reported(self) -> list[dict[str, Any]]:
        """Correlations no other references, and those a generating correlation references."""
        out = []
        for doc in self.correlations:
            parents = [p for p in self.correlations if any(self.by_ref.get(r) is doc for r in self.spec(p)["refs"])]
            if not parents or any(p["correlation"].get("generate") is True for p in parents):
                out.append(doc)
        return out


def correlate(
    rules_yaml: str,
    events: Sequence[Mapping[str, Any]],
    time_field: str | None = None,
    mode: str = "merged",
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """(alerts of the reported correlations, dropped events per correlation)."""
    ref = Reference(rules_yaml, events, time_field)
    alerts = []
    for doc in ref.reported():
        alerts += ref.alerts_every(doc) if mode == "every" else ref.alerts_merged(doc)
    for doc in ref.correlations:
        ref.items(doc)
    return [{k: v for k, v in a.items() if k != "evidence_items"} for a in alerts], ref.dropped


def reported_hits(rules_yaml: str, events: Sequence[Mapping[str, Any]]) -> list[tuple[int, str]]:
    """The base hits `match` reports: not of rules only non-generating correlations reference."""
    ref = Reference(rules_yaml, events)
    quiet: set[str] = set()
    loud: set[str] = set()
    for doc in ref.correlations:
        for name in ref.spec(doc)["refs"]:
            target = ref.by_ref[name]
            if "detection" in target:
                (loud if doc["correlation"].get("generate") is True else quiet).add(_rule_key(target))
    return sorted((row, rule) for rule, rows in ref.hits.items() if rule not in quiet - loud for row in rows)
