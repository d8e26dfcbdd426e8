"""How fast does sigmarrow correlate base hits, and what do correlations cost a scan?

    python benches/bench_correlation.py [--hits 10000000] [--groups 1000] [--runs 3]

Part 1, the correlator alone on one core: `--hits` events that all match one failed-logon
rule, in `--groups` user groups, over one day in time order except for one shuffled hour
(files sorted across, rarely within). The base hits are matched once; then the gathering
(`CorrelationState.add`: time parsing, field texts) and the sort and sweep (`alerts`) are
timed for an `event_count` (gte 1, 5 minute windows) and a `value_count` over values nearly
all distinct (a one day window, so ~hits/groups distinct values per window). Answers are
checked: in `merged` mode, one alert per group and burst, whose peaks are recomputed here.
Then the same with a memory bound of a quarter of the state: the gathering spills to disk
and the alerts come partition by partition (`spilled_*`; the alerts must be the same).

Part 2, the scan's loss: 100 base rules each with an `event_count` correlation over
`--scan-events` events: `sigmarrow.scan` of them in a Parquet file with and without the
correlations, and `match_indices` alone against `correlate` (matching, gathering and
sweeping), all on one thread.

It writes `results/correlation-YYYY-MM-DD.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import sigmarrow
from _common import machine

RESULTS = Path(__file__).resolve().parent / "results"
DAY_NS = 86400 * 10**9


def best_of(runs: int, fn):
    """(best wall seconds, best CPU seconds of this process, last result) of `runs` calls:
    on a shared machine the CPU time is the steadier of the two."""
    walls, cpus, result = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), result


def failed_logons(hits: int, groups: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, DAY_NS, hits))
    hour = (times >= 10 * 3600 * 10**9) & (times < 11 * 3600 * 10**9)
    times[hour] = rng.permutation(times[hour])  # one file sorted only across its row groups
    start = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()) * 10**9
    return pa.table({
        "EventID": pa.array(np.full(hits, 4625, np.int32)),
        "TimeCreated": pa.array(times + start, pa.timestamp("ns", "UTC")),
        "TargetUserName": pa.array([f"user{g}" for g in rng.integers(0, groups, hits)]).dictionary_encode(),
        "IpAddress": pa.array(rng.integers(0, 10**9, hits).astype(str)),
    })


def rules(kind: str, timespan: str) -> str:
    condition = "{gte: 1}" if kind == "event_count" else "{gte: 1, field: IpAddress}"
    return f"""
title: failed
name: failed
logsource: {{product: windows, service: security}}
detection: {{s: {{EventID: 4625}}, condition: s}}
---
title: {kind}
correlation: {{type: {kind}, rules: [failed], group-by: [TargetUserName], timespan: {timespan},
              condition: {condition}}}
"""


def check(table: pa.Table, kind: str, merged: pa.Table, every: pa.Table) -> None:
    """The answers, recomputed by numpy: with `gte: 1` every anchor (a distinct user and
    time) is an alert; over one day the value_count peaks are each user's distinct values."""
    users = table.column("TargetUserName").combine_chunks().indices.to_numpy().astype(np.int64)
    if kind == "event_count":
        times = table.column("TimeCreated").combine_chunks().cast(pa.int64()).to_numpy()
        assert every.num_rows == np.unique(np.stack([users, times]), axis=1).shape[1]
    else:
        values = table.column("IpAddress").to_numpy(zero_copy_only=False).astype(np.int64)
        assert merged.num_rows == len(np.unique(users))
        assert sum(merged.column("metric").to_pylist()) == len(np.unique(users * 10**9 + values))


def correlator(table: pa.Table, kind: str, runs: int) -> dict:
    timespan = "5m" if kind == "event_count" else "1d"
    m = sigmarrow.compile(rules(kind, timespan))
    rows, rule_ids = m.match_indices(table, threads=1)

    def gather(**bound: int):
        state = m.correlation_state(**bound)
        for start in range(0, table.num_rows, 1 << 20):
            chunk = table.slice(start, 1 << 20)
            inside = (rows.to_numpy() >= start) & (rows.to_numpy() < start + chunk.num_rows)
            state.add(chunk, rows.to_numpy()[inside] - start, rule_ids.to_numpy()[inside])
        return state

    gather_s, gather_cpu, state = best_of(runs, gather)
    sweep_s, sweep_cpu, alerts = best_of(runs, lambda: state.alerts("merged", evidence=10))
    every_s, every_cpu, every = best_of(1, lambda: state.alerts("every", evidence=10))
    hits = state.hits
    check(table, kind, alerts, every)
    bound = state.nbytes // 4
    spilled_gather_s, _, spilled = best_of(1, lambda: gather(max_memory=bound))
    spills, disk = len(spilled.spill.runs), sum(Path(run).stat().st_size for run in spilled.spill.runs)
    spilled_s, spilled_cpu, again = best_of(runs, lambda: spilled.alerts("merged", evidence=10))
    assert again.equals(alerts), "spilled alerts differ"
    spilled.close()
    return {
        "correlation": kind,
        "timespan": timespan,
        "hits": hits,
        "state_bytes": state.nbytes,
        "bytes_per_hit": round(state.nbytes / hits, 1),
        "gather_s": round(gather_s, 3),
        "gather_cpu_s": round(gather_cpu, 3),
        "sweep_merged_s": round(sweep_s, 3),
        "sweep_merged_cpu_s": round(sweep_cpu, 3),
        "sweep_every_s": round(every_s, 3),
        "sweep_every_cpu_s": round(every_cpu, 3),
        "hits_per_s": round(hits / (gather_s + sweep_s)),
        "hits_per_cpu_s": round(hits / (gather_cpu + sweep_cpu)),
        "merged_alerts": alerts.num_rows,
        "every_alerts": every.num_rows,
        "spilled_bound_bytes": bound,
        "spilled_runs": spills,
        "spilled_disk_bytes_per_hit": round(disk / hits, 1),
        "spilled_gather_s": round(spilled_gather_s, 3),
        "spilled_sweep_merged_s": round(spilled_s, 3),
        "spilled_sweep_merged_cpu_s": round(spilled_cpu, 3),
    }


def scan_loss(events: int, runs: int) -> dict:
    """100 base rules with one `event_count` correlation each (`generate: true`, so the hits
    written are the same): `sigmarrow.scan` of a Parquet file with and without the
    correlations, and `match_indices` alone against `correlate`, all on one thread."""
    import tempfile

    import pyarrow.parquet as pq
    from sigmarrow.scan import scan

    rng = np.random.default_rng(2)
    start = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp()) * 10**9
    table = pa.table({
        "EventID": pa.array(rng.integers(0, 1000, events).astype(np.int32)),
        "TimeCreated": pa.array(np.sort(rng.integers(0, DAY_NS, events)) + start, pa.timestamp("ns", "UTC")),
        "TargetUserName": pa.array([f"user{g}" for g in rng.integers(0, 1000, events)]),
    })
    base = [f"title: r{i}\nname: r{i}\nlogsource: {{product: windows}}\n"
            f"detection: {{s: {{EventID: {i}}}, condition: s}}\n" for i in range(100)]
    correlations = [f"title: c{i}\ncorrelation: {{type: event_count, rules: [r{i}], generate: true, "
                    f"group-by: [TargetUserName], timespan: 1h, condition: {{gte: 3}}}}\n" for i in range(100)]
    plain = sigmarrow.compile("---\n".join(base))
    m = sigmarrow.compile("---\n".join(base + correlations))
    match_s, match_cpu, (rows, _) = best_of(runs, lambda: m.match_indices(table, threads=1))
    correlate_s, correlate_cpu, alerts = best_of(runs, lambda: m.correlate(table, threads=1, evidence=10))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "events.parquet"
        pq.write_table(table, data)
        out = str(Path(tmp) / "hits.parquet")
        scan_s, scan_cpu, _ = best_of(runs, lambda: scan(plain, [data], out, threads=1))
        both_s, both_cpu, summary = best_of(runs, lambda: scan(m, [data], out, threads=1, evidence=10))
    return {
        "events": events,
        "correlations": len(m.correlations),
        "base_hits": len(rows),
        "match_s": round(match_s, 3),
        "match_cpu_s": round(match_cpu, 3),
        "correlate_s": round(correlate_s, 3),
        "correlate_cpu_s": round(correlate_cpu, 3),
        "match_speed_kept": round(match_s / correlate_s, 3),
        "match_speed_kept_cpu": round(match_cpu / correlate_cpu, 3),
        "scan_s": round(scan_s, 3),
        "scan_cpu_s": round(scan_cpu, 3),
        "scan_with_correlations_s": round(both_s, 3),
        "scan_with_correlations_cpu_s": round(both_cpu, 3),
        "scan_speed_kept": round(scan_s / both_s, 3),
        "scan_speed_kept_cpu": round(scan_cpu / both_cpu, 3),
        "alerts": alerts.num_rows,
        "scan_alerts": sum(a.count for a in summary.alerts),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hits", type=int, default=10_000_000)
    p.add_argument("--groups", type=int, default=1000)
    p.add_argument("--scan-events", type=int, default=10_000_000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    pa.set_cpu_count(1)
    table = failed_logons(args.hits, args.groups)
    result = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "groups": args.groups,
        "correlator": [correlator(table, kind, args.runs) for kind in ("event_count", "value_count")],
        "scan": scan_loss(args.scan_events, args.runs),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"correlation-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
