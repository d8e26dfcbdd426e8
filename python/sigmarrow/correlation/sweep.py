"""Sort and sweep: the alerts of correlation rules from gathered base hits, vectorized.

Per correlation, its input events are sorted by (group, time). For each event numpy finds the
first event of its window (an anchor at time t has the window [t - timespan, t]); an anchor is
the last event of a run of equal (group, time). Metrics come from prefix sums over the sorted
events (event_count, value_sum, value_avg), from the range of anchors each event counts in
(value_count), from the last position of each input (temporal), from a dynamic programme over
successor searches (temporal_ordered), or from a sliding sorted window (value_median and
value_percentile: the one loop in Python). docs/semantics.md ("Correlations") is the
definition; `sigmarrow.reference_correlation` computes the same by brute force.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sigmarrow.correlation.values import folded_codes, numbers
from sigmarrow.errors import DataError
from sigmarrow.program import ConditionOp, Correlation
from sigmarrow.times import NS

# Groups share one int64 key space (nanoseconds, each group shifted past the previous one by
# more than the timespan) while their total span stays below this; more groups, more spaces.
_KEY_SPACE = 1 << 61
_NONE = np.iinfo(np.int64).max
ALERTS_SCHEMA = pa.schema(
    [
        ("correlation_id", pa.string()),
        ("title", pa.string()),
        ("level", pa.string()),
        ("type", pa.string()),
        ("group", pa.map_(pa.string(), pa.string())),
        ("window_start", pa.timestamp("ns", "UTC")),
        ("window_end", pa.timestamp("ns", "UTC")),
        ("metric", pa.float64()),
        ("anchors", pa.int64()),
        ("evidence", pa.list_(pa.int64())),
        ("evidence_count", pa.int64()),
    ]
)
#: Schema metadata of the alerts: per correlation id, the events it dropped (no usable time,
#: an absent group-by value), as JSON.
DROPPED_KEY = b"sigmarrow.correlation_dropped"

Items = tuple[np.ndarray, np.ndarray, np.ndarray]  # evidence lists: (offsets, rows, times)


@dataclass
class Hits:
    """Gathered base hits: per distinct hit row its stream row and time; per (row, rule) hit
    the index of its row and its rule; per needed field and hit row a reference to its text
    (`refs`, -1 absent). References index the distinct texts of all fields (`text`); each
    has the code of its case fold (`codes`; `folded[code]` is the folded text). Codes are
    shared by all fields, so groups and values compare across fields (`aliases`) without
    touching text again."""

    rows: np.ndarray
    time: np.ndarray
    timed: np.ndarray
    hit_row: np.ndarray
    hit_rule: np.ndarray
    refs: dict[str, np.ndarray]
    text: pa.StringArray
    codes: np.ndarray
    folded: pa.StringArray

    @classmethod
    def of(cls, rows: np.ndarray, time: np.ndarray, timed: np.ndarray, hit_row: np.ndarray,
           hit_rule: np.ndarray, fields: dict[str, list[pa.Array]]) -> Hits:
        """From each field's chunks of text (plain, or dictionary-encoded), hashed once."""
        values, locals_ = [], []
        for chunks in fields.values():
            for chunk in chunks:
                if pa.types.is_dictionary(chunk.type):
                    values.append(chunk.dictionary)
                    local = pc.fill_null(chunk.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
                else:
                    values.append(chunk)
                    local = np.where(chunk.is_valid().to_numpy(zero_copy_only=False), np.arange(len(chunk)), -1)
                locals_.append(local)
        encoded = pc.dictionary_encode(pa.concat_arrays([pa.array([], pa.string()), *values]))
        global_id = pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy(zero_copy_only=False)
        refs, base, k = {}, 0, 0
        for name, chunks in fields.items():
            parts = []
            for _ in chunks:
                local = locals_[k].copy()
                present = local >= 0
                local[present] = global_id[local[present] + base]
                parts.append(local)
                base += len(values[k])
                k += 1
            refs[name] = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        codes, folded = folded_codes(encoded.dictionary)
        return cls(rows, time, timed, hit_row, hit_rule, refs, encoded.dictionary, codes, folded)

    @cached_property
    def by_rule(self) -> dict[int, np.ndarray]:
        """The hit rows of each rule, in row order."""
        order = np.argsort(self.hit_rule, kind="stable")
        rules, starts = np.unique(self.hit_rule[order], return_index=True)
        return {int(r): self.hit_row[o] for r, o in zip(rules, np.split(order, starts[1:]))}

    @cached_property
    def numbers(self) -> np.ndarray:
        """The number of each text (NaN when it is none), for the value_* aggregates."""
        return numbers(self.text)


@dataclass
class Events:
    """One correlation's input events, sorted by (group, time, event). Group and value
    fields are references into `Hits.text` (-1: absent). `items` holds the evidence of each
    event when some input is a correlation (a child alert's evidence is its base events);
    without it an event is its own evidence."""

    gid: np.ndarray  # dense, in the order of the folded group texts
    time: np.ndarray
    eid: np.ndarray  # the stream row, or a negative number for a child's alert
    ref: np.ndarray  # the input it came through
    groups: list[np.ndarray]  # per group-by field: the text reference of each event
    value: np.ndarray | None  # the value field's text reference of each event
    items: Items | None
    dropped: dict[str, int]

    def __len__(self) -> int:
        return len(self.gid)

    def group_starts(self) -> np.ndarray:
        """The position of each group's first event, whose values are output (first seen)."""
        return np.flatnonzero(np.r_[True, self.gid[1:] != self.gid[:-1]])


@dataclass
class Windows:
    """Qualifying windows of one correlation: group, first and last event position (`lo`,
    `hi`), bounds, metric and the number of anchors joined."""

    corr: Correlation
    events: Events
    gid: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    start: np.ndarray
    end: np.ndarray
    metric: np.ndarray
    anchors: np.ndarray


# --------------------------------------------------------------------------- input events


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, s + n) for each (s, n)."""
    ends = np.cumsum(lengths)
    index = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    return index - np.repeat(ends - lengths - starts, lengths)


def _dense(codes: np.ndarray, bound: int) -> tuple[np.ndarray, int]:
    """Codes (>= 0, < bound) renumbered 0.. in the same order, keeping only those used."""
    if bound > 4 * len(codes) + 1024:  # a lookup table would outweigh a sort
        values, dense = np.unique(codes, return_inverse=True)
        return dense.reshape(-1).astype(np.int64), len(values)
    used = np.zeros(bound, bool)
    used[codes] = True
    rank = np.cumsum(used) - 1
    return rank[codes], int(used.sum())


def _by_text(codes: np.ndarray, folded: pa.StringArray) -> tuple[np.ndarray, int]:
    """Codes renumbered 0.. in the order of their folded texts (only the codes used are
    sorted: as many as there are distinct group values)."""
    used = np.zeros(len(folded), bool)
    used[codes] = True
    present = np.flatnonzero(used)
    order = pc.sort_indices(folded.take(pa.array(present, pa.int64()))).to_numpy()
    rank = np.zeros(len(folded), np.int64)
    rank[present[order]] = np.arange(len(present))
    return rank[codes], len(present)


def _group_ids(codes: list[np.ndarray], folded: pa.StringArray) -> tuple[np.ndarray, int]:
    """Dense group numbers in the order of the folded group texts, -1 where a component is
    absent; without group-by, one group."""
    length = len(codes[0]) if codes else 0
    present = np.ones(length, bool)
    for c in codes:
        present &= c >= 0
    combined, count = np.zeros(int(present.sum()), np.int64), 1
    for c in codes:
        ranked, n = _by_text(c[present], folded)
        if count * n >= _KEY_SPACE:
            combined, count = _dense(combined, count)
        combined, count = combined * n + ranked, count * max(n, 1)
    combined, count = _dense(combined, count)
    gid = np.full(length, -1, np.int64)
    gid[present] = combined
    return gid, count


def _field(corr: Correlation, j: int, name: str) -> str:
    """The field `name` (a group-by or value field) stands for in input j (`aliases`)."""
    return corr["inputs"][j]["fields"].get(name, name)


def _base_part(corr: Correlation, j: int, hits: Hits) -> dict:
    idx = hits.by_rule.get(corr["inputs"][j]["rule"], np.zeros(0, np.int64))
    eid, time = hits.rows[idx], hits.time[idx]
    field = corr["field"]
    return {
        "eid": eid,
        "time": time,
        "timed": hits.timed[idx],
        "groups": [hits.refs[_field(corr, j, g)][idx] for g in corr["group_by"]],
        "value": hits.refs[_field(corr, j, field)][idx] if field else None,
        "items": (np.arange(len(idx) + 1, dtype=np.int64), eid, time),
    }


def _child_part(corr: Correlation, j: int, child: Windows, last_eid: int) -> dict:
    """A child's `every` alerts as events at their window end, with the child's group values
    (a field the child does not group by is absent). They are numbered below the rows, in
    the child's order (group, then time), up to `last_eid`."""
    count = len(child.gid)
    firsts = child.events.group_starts()[child.gid]
    by_name = {n: refs[firsts] for n, refs in zip(child.corr["group_by"], child.events.groups)}
    absent = np.full(count, -1, np.int64)
    offsets, rows, times, _ = _evidence(child.events, child.lo, child.hi, None)
    field = corr["field"]
    return {
        "eid": last_eid - count + 1 + np.arange(count, dtype=np.int64),
        "time": child.end,
        "timed": np.ones(count, bool),
        "groups": [by_name.get(_field(corr, j, g), absent) for g in corr["group_by"]],
        "value": by_name.get(_field(corr, j, field), absent) if field else None,
        "items": (offsets, rows, times),
    }


def _code(hits: Hits, refs: np.ndarray) -> np.ndarray:
    return np.where(refs >= 0, hits.codes[np.maximum(refs, 0)], -1) if len(hits.codes) else refs


def _events(corr: Correlation, hits: Hits, done: Sequence[Windows]) -> Events:
    parts, next_eid = [], -1
    for j, inp in enumerate(corr["inputs"]):
        if "rule" in inp:
            part = _base_part(corr, j, hits)
        else:
            part = _child_part(corr, j, done[inp["correlation"]], next_eid)
            next_eid -= len(part["eid"])
        part["ref"] = np.full(len(part["eid"]), j, np.int16)
        parts.append(part)
    cat = np.concatenate
    eid, time, timed = (cat([p[k] for p in parts]) for k in ("eid", "time", "timed"))
    groups = [cat([p["groups"][c] for p in parts]) for c in range(len(corr["group_by"]))]
    if groups:
        gid, count = _group_ids([_code(hits, g) for g in groups], hits.folded)
    else:
        gid, count = np.zeros(len(eid), np.int64), 1
    dropped = {
        "no_time": len(np.unique(eid[~timed])),
        "no_group": len(np.unique(eid[timed & (gid < 0)])),
    }
    keep = np.flatnonzero(timed & (gid >= 0))
    # Sorted by (group, time, event, input): the parts come by input, each by event, so a
    # stable sort by event, then time, then group keeps one event's entries side by side.
    if len(parts) > 1:
        keep = keep[np.argsort(eid[keep], kind="stable")]
    keep = keep[np.argsort(time[keep], kind="stable")]
    by_group = gid[keep]
    if count < 1 << 16:  # Arrow's stable sort counts small integers
        keep = keep[pc.sort_indices(pa.array(by_group)).to_numpy()]
    else:
        keep = keep[np.argsort(by_group, kind="stable")]
    items = None
    if any("correlation" in i for i in corr["inputs"]):
        lengths = cat([np.diff(p["items"][0]) for p in parts])
        starts = np.r_[0, np.cumsum(lengths)][:-1]
        index = _ranges(starts[keep], lengths[keep])
        items = (
            np.r_[0, np.cumsum(lengths[keep])],
            cat([p["items"][1] for p in parts])[index],
            cat([p["items"][2] for p in parts])[index],
        )
    value = cat([p["value"] for p in parts])[keep] if corr["field"] else None
    # Groups of dropped events only are gone: renumber so a group number indexes the groups.
    kept_gid = gid[keep] if len(keep) == len(gid) else _dense(gid[keep], count)[0]
    return Events(kept_gid, time[keep], eid[keep], cat([p["ref"] for p in parts])[keep],
                  [g[keep] for g in groups], value, items, dropped)


# --------------------------------------------------------------------------- windows


def _keys(ev: Events, span: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Times shifted per group into key spaces where groups lie apart by more than `span`:
    (keys, the (start, end) positions of each key space)."""
    n = len(ev)
    starts = ev.group_starts()
    ends = np.r_[starts[1:], n]
    first = ev.time[starts]
    width = ev.time[ends - 1] - first + span + 1
    space = (np.cumsum(width.astype(np.float64)) // _KEY_SPACE).astype(np.int64)
    spaces = np.flatnonzero(np.r_[True, space[1:] != space[:-1]])
    offset = np.cumsum(width) - width
    offset -= np.repeat(offset[spaces], np.diff(np.r_[spaces, len(starts)]))
    counts = ends - starts
    keys = ev.time - np.repeat(first - offset, counts)
    bounds = np.r_[starts[spaces], n]
    return keys, list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _window_starts(keys: np.ndarray, spaces: list[tuple[int, int]], span: int) -> np.ndarray:
    """Per event, the position of the first event of its window."""
    start = np.empty(len(keys), np.int64)
    for b0, b1 in spaces:
        k = keys[b0:b1]
        start[b0:b1] = b0 + np.searchsorted(k, k - span, "left")
    return start


def _prefix(flags: np.ndarray) -> np.ndarray:
    return np.r_[0, np.cumsum(flags)]


def _duplicates(ev: Events, x: np.ndarray, inputs: int) -> np.ndarray:
    """Entries repeating an earlier entry of the same event with the same number (one event
    through two inputs counts once)."""
    dup = np.zeros(len(ev), bool)
    for d in range(1, inputs):
        same = (ev.eid[d:] == ev.eid[:-d]) & ((x[d:] == x[:-d]) | (np.isnan(x[d:]) & np.isnan(x[:-d])))
        dup[d:] |= same & (ev.gid[d:] == ev.gid[:-d])
    return dup


def _value_count(ev: Events, codes: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Distinct values in each event's window [start[i], i]. An entry i counts in the windows
    of the positions a >= i whose start lies in (previous[i], i], previous[i] being the last
    earlier entry of the group with the same value: a contiguous range of positions, as
    starts never decrease."""
    n = len(ev)
    valued = np.flatnonzero(codes >= 0)
    count = int(codes.max()) + 1 if len(valued) else 1
    key = ev.gid[valued] * count + codes[valued]
    order = valued[np.argsort(key, kind="stable")]
    key = ev.gid[order] * count + codes[order]
    previous = np.full(n, -1, np.int64)
    repeat = np.flatnonzero(key[1:] == key[:-1])
    previous[order[repeat + 1]] = order[repeat]
    first = np.maximum(valued, np.searchsorted(start, previous[valued], "right"))
    last = np.searchsorted(start, valued, "right") - 1
    ok = first <= last
    diff = np.bincount(first[ok], minlength=n + 1) - np.bincount(last[ok] + 1, minlength=n + 1)
    return np.cumsum(diff)[:n].astype(np.float64)


def _sums(x: np.ndarray, start: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of the numbers in the windows of positions `at`; exact integers when the
    numbers are integers whose sums fit."""
    numeric = ~np.isnan(x)
    filled = np.where(numeric, x, 0)
    if np.all(filled == np.round(filled)) and np.abs(filled).sum() < 2**53:
        filled = filled.astype(np.int64)
    total, counted = _prefix(filled), _prefix(numeric)
    return (total[at + 1] - total[start[at]]).astype(np.float64), counted[at + 1] - counted[start[at]]


def _percentiles(ev: Events, x: np.ndarray, start: np.ndarray, at: np.ndarray, rank: float) -> np.ndarray:
    """Percentile (linear interpolation between closest ranks) of each window of `at`,
    keeping one sorted window per group as it slides."""
    out = np.full(len(at), np.nan)
    window: list[float] = []
    lo = hi = 0  # the window holds the numbers of positions [lo, hi)
    values = x.tolist()
    for k, (a, s) in enumerate(zip(at.tolist(), start[at].tolist())):
        if s >= hi:  # a new group, or a window past the previous one
            window, lo, hi = [], s, s
        for p in range(hi, a + 1):
            if values[p] == values[p]:  # not NaN
                bisect.insort(window, values[p])
        for p in range(lo, s):
            if values[p] == values[p]:
                del window[bisect.bisect_left(window, values[p])]
        lo, hi = s, a + 1
        if window:
            pos = rank / 100 * (len(window) - 1)
            below = math.floor(pos)
            above = min(below + 1, len(window) - 1)
            out[k] = window[below] + (pos - below) * (window[above] - window[below])
    return out


def _temporal(ev: Events, start: np.ndarray, at: np.ndarray, inputs: int) -> np.ndarray:
    """How many inputs have an event in each window of `at`."""
    present = np.zeros(len(at))
    positions = np.arange(len(ev))
    for j in range(inputs):
        last = np.maximum.accumulate(np.where(ev.ref == j, positions, -1))
        present += last[at] >= start[at]
    return present


def _temporal_ordered(
    ev: Events, keys: np.ndarray, spaces: list[tuple[int, int]], at: np.ndarray, span: int, inputs: int
) -> np.ndarray:
    """The longest chain of events of inputs in their referenced order (a subsequence of
    them) with strictly increasing times inside each window of `at`. best[m] is the least
    key a chain of length m can end at, over the inputs seen so far; an input extends the
    chain of length m - 1 by its first event after best[m - 1]. Key spaces are searched one
    by one (their keys overlap)."""
    length = np.zeros(len(at))
    for b0, b1 in spaces:
        mine = (at >= b0) & (at < b1)
        end = keys[at[mine]]
        best = [end - span - 1] + [np.full(len(end), _NONE)] * inputs
        for j in range(inputs):
            own = keys[b0:b1][ev.ref[b0:b1] == j]  # increasing, as keys are
            if not len(own):
                continue
            for m in range(j + 1, 0, -1):
                i = np.searchsorted(own, best[m - 1], "right")
                found = own[np.minimum(i, len(own) - 1)]
                usable = (best[m - 1] != _NONE) & (i < len(own)) & (found <= end)
                best[m] = np.minimum(best[m], np.where(usable, found, _NONE))
        chain = np.zeros(len(end))
        for m in range(1, inputs + 1):
            chain[best[m] != _NONE] = m
        length[mine] = chain
    return length


def _metric(
    corr: Correlation,
    hits: Hits,
    ev: Events,
    start: np.ndarray,
    at: np.ndarray,
    keys: np.ndarray,
    spaces: list[tuple[int, int]],
) -> np.ndarray:
    """The metric of each anchor in `at` (NaN: none, e.g. no numeric value)."""
    kind, inputs, span = corr["type"], len(corr["inputs"]), corr["timespan"] * NS
    if kind == "event_count":
        firsts = _prefix(np.r_[True, (ev.eid[1:] != ev.eid[:-1]) | (ev.gid[1:] != ev.gid[:-1])])
        return (firsts[at + 1] - firsts[start[at]]).astype(np.float64)
    if kind == "value_count":
        return _value_count(ev, _code(hits, ev.value), start)[at]  # type: ignore[arg-type]
    if kind == "temporal":
        return _temporal(ev, start, at, inputs)
    if kind == "temporal_ordered":
        return _temporal_ordered(ev, keys, spaces, at, span, inputs)
    x = np.full(len(ev), np.nan)  # no number, unless its text is one
    refs = ev.value
    assert refs is not None  # the value_* types have a field
    valued = refs >= 0
    x[valued] = hits.numbers[refs[valued]]
    x[_duplicates(ev, x, inputs)] = np.nan
    if kind in ("value_sum", "value_avg"):
        total, counted = _sums(x, start, at)
        with np.errstate(invalid="ignore", divide="ignore"):
            metric = total if kind == "value_sum" else total / counted
        return np.where(counted > 0, metric, np.nan)
    rank = 50.0 if kind == "value_median" else float(corr["percentile"] or 0)
    return _percentiles(ev, x, start, at, rank)


def _qualifies(condition: dict[ConditionOp, float], metric: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(metric)
    tests = {"gt": np.greater, "gte": np.greater_equal, "lt": np.less, "lte": np.less_equal,
             "eq": np.equal, "neq": np.not_equal}
    for op, bound in condition.items():
        ok &= tests[op](np.nan_to_num(metric), bound)
    return ok


def _windows(corr: Correlation, hits: Hits, ev: Events) -> Windows:
    """The qualifying anchors of a correlation: its `every` alerts."""
    span = corr["timespan"] * NS
    if len(ev):
        keys, spaces = _keys(ev, span)
        start = _window_starts(keys, spaces, span)
        last_of_time = np.r_[(ev.gid[1:] != ev.gid[:-1]) | (ev.time[1:] != ev.time[:-1]), True]
        at = np.flatnonzero(last_of_time)
        metric = _metric(corr, hits, ev, start, at, keys, spaces)
        ok = _qualifies(corr["condition"], metric)
        at, metric = at[ok], metric[ok]
    else:
        start = at = np.zeros(0, np.int64)
        metric = np.zeros(0)
    end = ev.time[at]
    return Windows(corr, ev, ev.gid[at], start[at], at, end - span, end, metric, np.ones(len(at), np.int64))


def _merged(w: Windows, span: int) -> Windows:
    """Per group, one alert per run of qualifying windows that overlap or touch; its metric
    is the largest of its anchors' (the smallest for `lt`/`lte` conditions)."""
    if not len(w.gid):
        return w
    new_run = np.r_[True, (w.gid[1:] != w.gid[:-1]) | (w.end[1:] - span > w.end[:-1])]
    first = np.flatnonzero(new_run)
    last = np.r_[first[1:], len(w.gid)] - 1
    smallest = all(op in ("lt", "lte") for op in w.corr["condition"])
    peak = (np.minimum if smallest else np.maximum).reduceat(w.metric, first)
    return Windows(w.corr, w.events, w.gid[first], w.lo[first], w.hi[last], w.start[first], w.end[last],
                   peak, last - first + 1)


# --------------------------------------------------------------------------- evidence


def _evidence(ev: Events, lo: np.ndarray, hi: np.ndarray, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, rows, times, counts): the distinct events in positions [lo, hi] of each
    window, earliest first (by time, then row), at most `limit` of them, and their count."""
    if ev.items is None:  # each event is its own evidence; duplicates sit side by side
        distinct = np.r_[True, (ev.eid[1:] != ev.eid[:-1]) | (ev.gid[1:] != ev.gid[:-1])]
        positions = np.flatnonzero(distinct)
        before = _prefix(distinct)
        first, counts = before[lo], before[hi + 1] - before[lo]
        taken = counts if limit is None else np.minimum(counts, limit)
        chosen = positions[_ranges(first, taken)]
        return np.r_[0, np.cumsum(taken)], ev.eid[chosen], ev.time[chosen], counts
    offsets, rows, times = ev.items
    lists_rows, lists_times, counts = [], [], []
    for a, b in zip(offsets[lo].tolist(), offsets[hi + 1].tolist()):
        r, first = np.unique(rows[a:b], return_index=True)
        order = np.lexsort((r, times[a:b][first]))
        counts.append(len(r))
        lists_rows.append(r[order][:limit])
        lists_times.append(times[a:b][first][order][:limit])
    taken = np.array([len(r) for r in lists_rows], np.int64)
    cat = np.concatenate
    return (np.r_[0, np.cumsum(taken)], cat(lists_rows) if lists_rows else np.zeros(0, np.int64),
            cat(lists_times) if lists_times else np.zeros(0, np.int64), np.array(counts, np.int64))


# --------------------------------------------------------------------------- alerts


def reported(correlations: Sequence[Correlation]) -> list[bool]:
    """Which correlations' alerts are output: those no correlation references, and those a
    correlation with `generate: true` references."""
    referenced = [False] * len(correlations)
    generated = [False] * len(correlations)
    for corr in correlations:
        for inp in corr["inputs"]:
            if "correlation" in inp:
                referenced[inp["correlation"]] = True
                generated[inp["correlation"]] |= corr["generate"]
    return [not r or g for r, g in zip(referenced, generated)]


def _table(w: Windows, hits: Hits, limit: int | None) -> pa.Table:
    """The alerts of one correlation, in order of window end, then group."""
    order = np.lexsort((w.gid, w.end))
    gid, lo, hi = w.gid[order], w.lo[order], w.hi[order]
    n, corr, names = len(gid), w.corr, w.corr["group_by"]
    offsets, rows, _, counts = _evidence(w.events, lo, hi, limit)
    if offsets[-1] >= 1 << 31:
        raise DataError(
            f"correlation {corr['id']}: its alerts hold {offsets[-1]:,} evidence rows, more than "
            "one list column holds; give evidence= a limit (--evidence)"
        )
    firsts = w.events.group_starts()[gid] if n else np.zeros(0, np.int64)
    # map items alert by alert: the first group field of alert 0, its second, ...
    refs = np.stack([r[firsts] for r in w.events.groups], axis=1).reshape(-1) if names else np.zeros(0, np.int64)
    group = pa.MapArray.from_arrays(
        pa.array(np.arange(n + 1) * len(names), pa.int32()),
        pa.array(names * n, pa.string()),
        hits.text.take(pa.array(refs, pa.int64())),
    )
    constant = {"correlation_id": corr["id"], "title": corr["title"], "level": corr["level"], "type": corr["type"]}
    columns = {k: pa.repeat(pa.scalar(v, pa.string()), n) for k, v in constant.items()}
    columns |= {
        "group": group,
        "window_start": pa.array(w.start[order], pa.int64()).cast(pa.timestamp("ns", "UTC")),
        "window_end": pa.array(w.end[order], pa.int64()).cast(pa.timestamp("ns", "UTC")),
        "metric": pa.array(w.metric[order], pa.float64()),
        "anchors": pa.array(w.anchors[order], pa.int64()),
        "evidence": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(rows, pa.int64())),
        "evidence_count": pa.array(counts, pa.int64()),
    }
    return pa.table(columns, schema=ALERTS_SCHEMA)


def correlation_tables(
    correlations: Sequence[Correlation], hits: Hits, mode: str, limit: int | None
) -> Iterator[tuple[pa.Table | None, dict[str, int]]]:
    """Per correlation, in order: (its alerts in order of window end, then group,
    or None when they are not reported; what it dropped)."""
    done: list[Windows] = []
    for corr, output in zip(correlations, reported(correlations)):
        events = _events(corr, hits, done)
        windows = _windows(corr, hits, events)
        done.append(windows)
        table = None
        if output:
            chosen = _merged(windows, corr["timespan"] * NS) if mode == "merged" else windows
            table = _table(chosen, hits, limit)
        yield table, events.dropped


def assemble(correlations: Sequence[Correlation], tables: Sequence[pa.Table | None],
             dropped: Sequence[dict[str, int]]) -> pa.Table:
    """One table of the reported correlations' alerts, in correlation order; the schema
    metadata says what each correlation dropped (DROPPED_KEY)."""
    kept = [t for t in tables if t is not None]
    table = pa.concat_tables(kept) if kept else ALERTS_SCHEMA.empty_table()
    counts = {corr["id"]: d for corr, d in zip(correlations, dropped)}
    return table.replace_schema_metadata({DROPPED_KEY: orjson.dumps(counts)})


def alerts_table(correlations: Sequence[Correlation], hits: Hits, mode: str, limit: int | None) -> pa.Table:
    """The alerts of the reported correlations, each correlation's in order of window end,
    then group; the schema metadata says what each correlation dropped (DROPPED_KEY)."""
    results = list(correlation_tables(correlations, hits, mode, limit))
    return assemble(correlations, [t for t, _ in results], [d for _, d in results])
