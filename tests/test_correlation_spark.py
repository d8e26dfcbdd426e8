"""sigmarrow.spark.correlate on a real local Spark: the same alerts as `Matcher.correlate` on
the same rows, for keyed correlations (aliases too), chained ones and no group-by."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
import sigmarrow
import yaml
from correlation_cases import base, corr, ev
from test_correlation_dataset import RULES, security_log
from test_spark import spark  # noqa: F401  (the session fixture)

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j"),
    pytest.mark.filterwarnings("ignore:.*pandas.*:FutureWarning:pyspark"),
]

MIXED = yaml.safe_dump_all([
    base("a", 1), base("b", 2), base("c", 3),
    corr("burst", "event_count", ["a"], group_by=["Host", "User"]),
    corr("seq", "temporal_ordered", ["burst", "b"], "10s", group_by=["Host"], generate=True),
    corr("users", "value_count", ["a", "c"], "6s", group_by=["identity"],
         aliases={"identity": {"a": "Host", "c": "Other"}}, condition={"gte": 2, "field": "User"}),
    corr("anything", "event_count", ["c"], group_by=None, condition={"gte": 3}),
], sort_keys=False)


def mixed_events() -> list[dict[str, Any]]:
    events = []
    for i in range(300):
        host = ["h1", "H1", "h2", "h3"][i % 4]
        events.append(ev(i * 0.7, event_id=1 + i % 3, Host=host, User=["u", "U", "v"][i % 3 if i % 5 else 0],
                         Other=host.upper()))
    return events


def view(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (r["correlation_id"], sorted(dict(r["group"]).items()), r["window_start"].timestamp(),
         r["window_end"].timestamp(), r["metric"], r["anchors"], list(r["evidence"]), r["evidence_count"])
        for r in rows
    )


def single_process(rules: str, table: pa.Table, **options: Any) -> list[tuple[Any, ...]]:
    alerts = sigmarrow.compile(rules).correlate(table, **options).to_pylist()
    for a in alerts:  # as Spark gives them: datetimes to microseconds, rows as the id column
        a["window_start"], a["window_end"] = a["window_start"].to_pydatetime(), a["window_end"].to_pydatetime()
    return view(alerts)


@pytest.mark.parametrize("mode", ["merged", "every"])
def test_spark_gives_the_alerts_of_the_single_process(spark, mode: str) -> None:  # noqa: F811
    import sigmarrow.spark

    events = mixed_events()
    table = pa.Table.from_pylist([{**e, "event_id": i} for i, e in enumerate(events)])
    df = spark.createDataFrame(table.to_pandas()).repartition(3)
    alerts = sigmarrow.spark.correlate(df, MIXED, mode=mode, id_column="event_id", evidence=4)
    got = view([r.asDict(recursive=True) for r in alerts.collect()])
    assert got == single_process(MIXED, table, mode=mode, evidence=4)
    assert {g[0] for g in got} == {"burst", "seq", "users", "anything"}


def test_spark_over_the_security_log(spark) -> None:  # noqa: F811
    import sigmarrow.spark

    events, _ = security_log()
    table = pa.Table.from_pylist(events)
    df = spark.createDataFrame(table.to_pandas()).repartition(4)
    alerts = sigmarrow.spark.correlate(df, RULES, id_column="EventRecordID")
    got = view([r.asDict(recursive=True) for r in alerts.collect()])
    expected = sigmarrow.compile(RULES).correlate(table).to_pylist()
    records = table.column("EventRecordID").to_pylist()
    for a in expected:
        a["evidence"] = [records[r] for r in a["evidence"]]
        a["window_start"], a["window_end"] = a["window_start"].to_pydatetime(), a["window_end"].to_pydatetime()
    assert got == view(expected)
    assert len(got) == 5


def test_spark_needs_correlations_and_a_time(spark) -> None:  # noqa: F811
    import sigmarrow.spark
    from sigmarrow import UsageError

    df = spark.createDataFrame([(1, "h")], "EventID long, Host string")
    with pytest.raises(UsageError, match="no correlation rules"):
        sigmarrow.spark.correlate(df, yaml.safe_dump(base("a")))
    with pytest.raises(UsageError, match="need an event time"):
        sigmarrow.spark.correlate(df, MIXED)
