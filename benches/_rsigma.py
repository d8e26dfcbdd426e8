"""rsigma (timescale/rsigma, a per-event Sigma engine) as a peer in the benches: events as
NDJSON, the binary, and its timing on one core net of loading the rules."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
from _common import best_of

RSIGMA_CANDIDATES = (Path("/work/tools/rsigma/bin/rsigma"),)


def write_ndjson(table: pa.Table, path: Path) -> None:
    """One JSON object per row, without the null columns (rsigma counts a null as present)."""
    rows: list[dict] = [{} for _ in range(table.num_rows)]
    for name, column in zip(table.column_names, table.columns, strict=True):
        column = column.combine_chunks()
        valid = np.flatnonzero(np.asarray(column.is_valid()))
        values = column.take(pa.array(valid)).to_pylist()
        for row, value in zip(valid.tolist(), values, strict=True):
            rows[row][name] = value
    with path.open("wb") as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")


def rsigma_binary() -> str | None:
    for path in RSIGMA_CANDIDATES:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("rsigma")


def time_rsigma(binary: str, rules: Path, pipeline: Path | None, events: Path, empty: Path,
                runs: int) -> dict:
    """rsigma on one core, net of loading the rules: best run on `events` minus best on
    `empty`; and its hits per rule id. `pipeline`: a pySigma pipeline file, or none."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []

    def once(source: Path) -> Counter:
        out = events.with_name(f"rsigma-out-{source.stem}.ndjson")
        piped = ["-p", str(pipeline)] if pipeline else []
        command = [*pin, binary, "engine", "eval", "-r", str(rules), *piped,
                   "-e", f"@{source}", "-o", str(out)]
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()[-500:]}")
        with out.open("rb") as lines:
            return Counter(orjson.loads(line)["rule_id"] for line in lines if line.strip())

    loading, _, _ = best_of(runs, lambda: once(empty))
    total, times, per_rule = best_of(runs, lambda: once(events))
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return {"version": version.stdout.splitlines()[0].strip(), "pinned_to_one_core": bool(pin),
            "loading_seconds": round(loading, 3), "total_seconds": round(total, 3),
            "all_seconds": [round(t, 3) for t in times], "seconds": round(total - loading, 3),
            "hits": sum(per_rule.values()), "per_rule": dict(per_rule)}


def compare_counts(ours: dict[str, int], theirs: dict[str, int]) -> dict[str, dict[str, int]]:
    """The rule ids whose hit counts differ: {id: {"sigmarrow": n, "rsigma": m}}."""
    return {
        rule_id: {"sigmarrow": ours.get(rule_id, 0), "rsigma": theirs.get(rule_id, 0)}
        for rule_id in sorted(ours.keys() | theirs.keys())
        if ours.get(rule_id, 0) != theirs.get(rule_id, 0)
    }
