"""Engine-independent correlation cases: (rules, events, expected alerts).

tests/test_correlation.py runs every case on the fast correlator (`Matcher.correlate`) and on
the brute-force reference (`sigmarrow.reference_correlation`). Events get a `TimeCreated` of
`T0 + seconds` (ISO text with milliseconds, UTC) unless they carry their own time. An expected
alert is (correlation id, group, window end in seconds after T0, metric, evidence rows); the
window start is always the end minus the timespan in `every` mode, so `merged` expectations
give (correlation id, group, window start, window end, metric, anchors, evidence rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import yaml

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

Alert = tuple[str, dict[str, str], float, float, list[int]]
MergedAlert = tuple[str, dict[str, str], float, float, float, int, list[int]]


def base(name: str, event_id: int = 1, **extra: Any) -> dict[str, Any]:
    """A rule named `name` matching `EventID: event_id`."""
    return {
        "title": name,
        "name": name,
        "logsource": {"product": "test"},
        "detection": {"s": {"EventID": event_id}, "condition": "s"},
        **extra,
    }


def corr(name: str, kind: str, rules: list[str], timespan: str = "5s", **spec: Any) -> dict[str, Any]:
    """A correlation named `name`; `group_by` defaults to Host, `condition` to gte 2 (none for
    the temporal types: their default)."""
    body: dict[str, Any] = {"type": kind, "rules": rules, "timespan": timespan}
    group_by = spec.pop("group_by", ["Host"])
    if group_by is not None:
        body["group-by"] = group_by
    if "condition" in spec or not kind.startswith("temporal"):
        body["condition"] = spec.pop("condition", {"gte": 2})
    generate = spec.pop("generate", None)
    if generate is not None:
        body["generate"] = generate
    body.update(spec)
    return {"title": name, "name": name, "correlation": body}


def ev(seconds: float | None, event_id: int = 1, **fields: Any) -> dict[str, Any]:
    """An event at T0 + seconds (milliseconds kept), on host h unless given."""
    event: dict[str, Any] = {"EventID": event_id, "Host": "h"}
    if seconds is not None:
        moment = T0 + dt.timedelta(seconds=seconds)
        event["TimeCreated"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    event.update(fields)
    return event


@dataclass(frozen=True)
class CorrelationCase:
    id: str
    docs: list[dict[str, Any]]
    events: list[dict[str, Any]]
    every: list[Alert]
    merged: list[MergedAlert] | None = None
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    time_field: str | None = None

    @property
    def rules_yaml(self) -> str:
        return yaml.safe_dump_all(self.docs, sort_keys=False)


CASES: list[CorrelationCase] = []


def case(*args: Any, **kwargs: Any) -> CorrelationCase:
    c = CorrelationCase(*args, **kwargs)
    CASES.append(c)
    return c


H = {"Host": "h"}

# =============================================================================== windows

case(
    "bursts-every-qualifying-anchor",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(0), ev(1), ev(20), ev(21)],
    every=[("c", H, 1, 2, [0, 1]), ("c", H, 21, 2, [2, 3])],
    merged=[("c", H, -4, 1, 2, 1, [0, 1]), ("c", H, 16, 21, 2, 1, [2, 3])],
)
case(
    "boundary-exactly-timespan-apart-is-inside",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(0), ev(5)],
    every=[("c", H, 5, 2, [0, 1])],
)
case(
    "boundary-one-millisecond-more-is-outside",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(0), ev(5.001)],
    every=[],
)
case(
    "boundary-fractions-of-seconds",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(0.1), ev(5.1), ev(10.9), ev(16.0)],
    every=[("c", H, 5.1, 2, [0, 1])],
)
case(
    "ties-one-anchor-per-time",
    [base("a"), corr("c", "event_count", ["a"], condition={"gte": 1})],
    [ev(0), ev(0), ev(0)],
    every=[("c", H, 0, 3, [0, 1, 2])],
)
case(
    "sub-millisecond-precision-is-kept",
    [base("a"), corr("c", "event_count", ["a"], timespan="1s")],
    [ev(None, TimeCreated="2024-01-01T00:00:00.0000001Z"), ev(None, TimeCreated="2024-01-01T00:00:01.0000002Z")],
    every=[],
)
case(
    "times-epoch-seconds-date-only-and-offsets",
    [base("a"), corr("c", "event_count", ["a"], timespan="1h", condition={"gte": 3})],
    [
        ev(None, TimeCreated="2024-01-01"),  # midnight UTC
        ev(None, TimeCreated="2024-01-01T02:30:00+02:00"),  # 00:30 UTC
        ev(None, TimeCreated="2024-01-01 00:59:59.5"),  # no offset: UTC
        ev(None, TimeCreated="not a time"),
    ],
    every=[("c", H, 3599.5, 3, [0, 1, 2])],
    dropped={"c": {"no_time": 1, "no_group": 0}},
)
case(
    "times-epoch-numbers",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(None, TimeCreated=1704067200), ev(None, TimeCreated=1704067204.5), ev(None, TimeCreated=None)],
    every=[("c", H, 4.5, 2, [0, 1])],
    dropped={"c": {"no_time": 1, "no_group": 0}},
)
case(
    "time-field-chosen",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(0, When="2024-01-01T00:10:00Z"), ev(100, When="2024-01-01T00:10:03Z")],
    every=[("c", H, 603, 2, [0, 1])],
    time_field="When",
)

# =============================================================================== groups

case(
    "missing-group-key-is-dropped-and-counted",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(0, Host=None), ev(1, Host=None), ev(2), ev(3)],
    every=[("c", H, 3, 2, [2, 3])],
    dropped={"c": {"no_time": 0, "no_group": 2}},
)
case(
    "group-field-absent-from-the-data",
    [base("a"), corr("c", "event_count", ["a"], group_by=["Nowhere"])],
    [ev(0), ev(1)],
    every=[],
    dropped={"c": {"no_time": 0, "no_group": 2}},
)
case(
    "no-group-by-is-one-group",
    [base("a"), corr("c", "event_count", ["a"], group_by=None)],
    [ev(0, Host="x"), ev(1, Host="y")],
    every=[("c", {}, 1, 2, [0, 1])],
)
case(
    "group-keys-compare-case-insensitively-output-as-first-seen",
    [base("a"), corr("c", "event_count", ["a"])],
    [ev(1, Host="host"), ev(0, Host="HOST"), ev(2, Host="Host")],
    every=[("c", {"Host": "HOST"}, 1, 2, [1, 0]), ("c", {"Host": "HOST"}, 2, 3, [1, 0, 2])],
)
case(
    "group-keys-fold-fully",
    [base("a"), corr("c", "event_count", ["a"], group_by=["User"])],
    [ev(0, User="STRASSE"), ev(1, User="straße")],
    every=[("c", {"User": "STRASSE"}, 1, 2, [0, 1])],
)
case(
    "several-group-by-fields",
    [base("a"), corr("c", "event_count", ["a"], group_by=["Host", "User"])],
    [ev(0, User="u"), ev(1, User="v"), ev(2, User="U")],
    every=[("c", {"Host": "h", "User": "u"}, 2, 2, [0, 2])],
)
case(
    "numbers-as-group-keys-are-text",
    [base("a"), corr("c", "event_count", ["a"], group_by=["Port"])],
    [ev(0, Port=445), ev(1, Port="445")],
    every=[("c", {"Port": "445"}, 1, 2, [0, 1])],
)
case(
    "aliases-map-group-fields-per-rule",
    [
        base("a"),
        base("b", 2),
        base("c3", 3),
        corr(
            "seq", "temporal_ordered", ["a", "b", "c3"], group_by=["identity"],
            aliases={"identity": {"a": "User", "b": "OtherUser", "c3": "User"}},
        ),
    ],
    [ev(0, User="u"), ev(1, 3, User="u"), ev(2, 2, OtherUser="U", User="x"), ev(3, 3, User="u")],
    every=[("seq", {"identity": "u"}, 3, 3, [0, 1, 2, 3])],
)

# =============================================================================== metrics

case(
    "one-event-matching-two-rules-counts-once",
    [base("a"), base("a2", 1), corr("c", "event_count", ["a", "a2"])],
    [ev(0)],
    every=[],
)
case(
    "one-event-matching-two-rules-is-both-for-temporal",
    [base("a"), base("a2", 1), corr("c", "temporal", ["a", "a2"])],
    [ev(0)],
    every=[("c", H, 0, 2, [0])],
)
case(
    "value-count-case-insensitive-and-as-text",
    [base("a"), corr("c", "value_count", ["a"], condition={"gte": 1, "field": "User"})],
    [ev(0, User="Alice"), ev(0, User="ALICE"), ev(1, User=10), ev(1, User="10"), ev(2, User=""), ev(2)],
    every=[("c", H, 0, 1, [0, 1]), ("c", H, 1, 2, [0, 1, 2, 3]), ("c", H, 2, 3, [0, 1, 2, 3, 4, 5])],
)
case(
    "value-count-sliding-window",
    [base("a"), corr("c", "value_count", ["a"], timespan="2s", condition={"gte": 3, "field": "User"})],
    [ev(0, User="x"), ev(1, User="y"), ev(2, User="x"), ev(3, User="z"), ev(4, User="y"), ev(9, User="w")],
    every=[("c", H, 3, 3, [1, 2, 3]), ("c", H, 4, 3, [2, 3, 4])],
)
for kind, metric in [("value_sum", 112), ("value_avg", 112 / 3), ("value_median", 10),
                     ("value_percentile", 10), ("value_count", 4)]:
    case(
        f"numeric-coercion-{kind}",
        [base("a"), corr("c", kind, ["a"], condition={"gte": 0, "field": "Bytes", "percentile": 50})],
        [ev(0, Bytes=v) for v in ["2", "10", "100", None, "junk"]],
        every=[("c", H, 0, metric, [0, 1, 2, 3, 4])],
    )
case(
    "non-numbers-anchor-but-have-no-metric",
    [base("a"), corr("c", "value_sum", ["a"], condition={"gte": 0, "field": "Bytes"})],
    [ev(0, Bytes="junk"), ev(1, Bytes=" 1"), ev(2, Bytes="1e999"), ev(3, Bytes=True), ev(4, Bytes=3)],
    every=[("c", H, 4, 3, [0, 1, 2, 3, 4])],
)
case(
    "value-sum-one-event-through-two-rules-once",
    [base("a"), base("a2"), corr("c", "value_sum", ["a", "a2"], condition={"gte": 0, "field": "Bytes"})],
    [ev(0, Bytes=5), ev(1, Bytes=7)],
    every=[("c", H, 0, 5, [0]), ("c", H, 1, 12, [0, 1])],
)
for p, expected in [(0, 10), (25, 12.5), (50, 15), (95, 19.5), (100, 20)]:
    case(
        f"percentile-even-sample-{p}",
        [base("a"), corr("c", "value_percentile", ["a"], condition={"gte": 0, "field": "Bytes", "percentile": p})],
        [ev(0, Bytes=20), ev(0, Bytes=10)],
        every=[("c", H, 0, expected, [0, 1])],
    )
case(
    "percentile-odd-sample",
    [base("a"), corr("c", "value_percentile", ["a"], condition={"gte": 0, "field": "Bytes", "percentile": 25})],
    [ev(0, Bytes=v) for v in [100, 3, 1, 4, 2]],
    every=[("c", H, 0, 2, [0, 1, 2, 3, 4])],
)
case(
    "median-sliding",
    [base("a"), corr("c", "value_median", ["a"], timespan="2s", condition={"gte": 0, "field": "Bytes"})],
    [ev(0, Bytes=1), ev(1, Bytes=9), ev(2, Bytes=5), ev(3, Bytes=7), ev(10, Bytes="x")],
    every=[("c", H, 0, 1, [0]), ("c", H, 1, 5, [0, 1]), ("c", H, 2, 5, [0, 1, 2]), ("c", H, 3, 7, [1, 2, 3])],
)
case(
    "temporal-default-needs-all-rules",
    [base("a"), base("b", 2), corr("c", "temporal", ["a", "b"])],
    [ev(0), ev(3, 2), ev(20, 2)],
    every=[("c", H, 3, 2, [0, 1])],
)
case(
    "temporal-ordered-ties-are-not-ordered",
    [base("a"), base("b", 2), corr("c", "temporal_ordered", ["a", "b"])],
    [ev(0), ev(0, 2), ev(10, 2), ev(11)],
    every=[],
)
case(
    "temporal-ordered-partial-threshold-any-subsequence",
    [base("a"), base("b", 2), base("c3", 3), corr("c", "temporal_ordered", ["a", "b", "c3"], condition={"gte": 2})],
    [ev(0, 3), ev(1), ev(2, 2)],
    every=[("c", H, 2, 2, [0, 1, 2])],
)

# =============================================================================== conditions

case(
    "lt-condition-every-anchor-below",
    [base("a"), corr("c", "event_count", ["a"], condition={"lt": 2})],
    [ev(0), ev(1), ev(10)],
    every=[("c", H, 0, 1, [0]), ("c", H, 10, 1, [2])],
    merged=[("c", H, -5, 0, 1, 1, [0]), ("c", H, 5, 10, 1, 1, [2])],
)
case(
    "lte-merged-peak-is-smallest",
    [base("a"), corr("c", "event_count", ["a"], condition={"lte": 2})],
    [ev(0), ev(1), ev(3)],
    every=[("c", H, 0, 1, [0]), ("c", H, 1, 2, [0, 1])],
    merged=[("c", H, -5, 1, 1, 2, [0, 1])],
)
case(
    "range-two-operators",
    [base("a"), corr("c", "event_count", ["a"], condition={"gte": 2, "lte": 3})],
    [ev(0), ev(1), ev(2), ev(3)],
    every=[("c", H, 1, 2, [0, 1]), ("c", H, 2, 3, [0, 1, 2])],
)
case(
    "eq-and-neq",
    [base("a"), corr("c", "event_count", ["a"], condition={"neq": 2})],
    [ev(0), ev(1), ev(2)],
    every=[("c", H, 0, 1, [0]), ("c", H, 2, 3, [0, 1, 2])],
)
case(
    "fractional-count-is-not-truncated",
    [base("a"), corr("c", "event_count", ["a"], condition={"gt": 2.5})],
    [ev(0), ev(1), ev(2)],
    every=[("c", H, 2, 3, [0, 1, 2])],
)

# =============================================================================== merged

case(
    "merged-joins-touching-windows-whatever-lies-between",
    [base("a"), corr("c", "value_sum", ["a"], condition={"gte": 10, "field": "Bytes"})],
    [ev(0, Bytes=10), ev(3, Bytes=-20), ev(5, Bytes=30), ev(11, Bytes=10)],
    every=[("c", H, 0, 10, [0]), ("c", H, 5, 20, [0, 1, 2]), ("c", H, 11, 10, [3])],
    merged=[("c", H, -5, 5, 20, 2, [0, 1, 2]), ("c", H, 6, 11, 10, 1, [3])],
)
case(
    "merged-a-gap-breaks-the-run",
    [base("a"), corr("c", "event_count", ["a"], condition={"gte": 3})],
    [ev(0), ev(1), ev(2), ev(7), ev(8), ev(9)],
    every=[("c", H, 2, 3, [0, 1, 2]), ("c", H, 9, 3, [3, 4, 5])],
    merged=[("c", H, -3, 2, 3, 1, [0, 1, 2]), ("c", H, 4, 9, 3, 1, [3, 4, 5])],
)
case(
    "merged-separate-groups",
    [base("a"), corr("c", "event_count", ["a"], group_by=["User"])],
    [ev(0, User="x"), ev(0, User="y"), ev(1, User="x"), ev(1, User="y")],
    every=[("c", {"User": "x"}, 1, 2, [0, 2]), ("c", {"User": "y"}, 1, 2, [1, 3])],
    merged=[("c", {"User": "x"}, -4, 1, 2, 1, [0, 2]), ("c", {"User": "y"}, -4, 1, 2, 1, [1, 3])],
)

# =============================================================================== chaining

case(
    "chained-burst-then-success",
    [base("a"), base("success", 2), corr("burst", "event_count", ["a"]),
     corr("c", "temporal_ordered", ["burst", "success"])],
    [ev(0), ev(1), ev(2, 2)],
    every=[("c", H, 2, 2, [0, 1, 2])],
)
case(
    "chained-child-group-values-and-regroup-absent",
    [base("a"), corr("burst", "event_count", ["a"], group_by=["Host", "User"]),
     corr("c", "event_count", ["burst"], group_by=["User"], condition={"gte": 1}),
     corr("c2", "event_count", ["burst"], group_by=["Other"], condition={"gte": 1})],
    [ev(0, User="u"), ev(1, User="U")],
    every=[("c", {"User": "u"}, 1, 1, [0, 1])],
    dropped={"burst": {"no_time": 0, "no_group": 0}, "c": {"no_time": 0, "no_group": 0},
             "c2": {"no_time": 0, "no_group": 1}},
)
case(
    "chained-evidence-is-the-union-of-base-events",
    [base("a"), corr("burst", "event_count", ["a"]), corr("c", "event_count", ["burst"])],
    [ev(0), ev(1), ev(2)],
    every=[("c", H, 2, 2, [0, 1, 2])],
)
case(
    "chain-of-chains",
    [base("a"), base("b", 2), corr("burst", "event_count", ["a"]),
     corr("mid", "temporal", ["burst", "b"], timespan="10s"),
     corr("top", "event_count", ["mid"], timespan="10s", condition={"gte": 1})],
    [ev(0), ev(1), ev(4, 2)],
    every=[("top", H, 4, 1, [0, 1, 2])],
)
case(
    "generate-reports-the-child-too",
    [base("a"), corr("burst", "event_count", ["a"]),
     corr("c", "event_count", ["burst"], condition={"gte": 1}, generate=True)],
    [ev(0), ev(1)],
    every=[("burst", H, 1, 2, [0, 1]), ("c", H, 1, 1, [0, 1])],
)
case(
    "chained-value-from-child-group",
    [base("a"), corr("burst", "event_count", ["a"], group_by=["Host", "User"]),
     corr("c", "value_count", ["burst"], timespan="10s", condition={"gte": 2, "field": "User"})],
    [ev(0, User="u"), ev(1, User="u"), ev(2, User="v"), ev(3, User="v")],
    every=[("c", H, 3, 2, [0, 1, 2, 3])],
)
