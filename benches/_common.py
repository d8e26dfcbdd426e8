"""What the scan and Spark benches share: timing and the machine record."""

from __future__ import annotations

import os
import platform
import time

from sigmarrow.bench import cpu_model


def best_of(runs: int, fn):
    """(best seconds, all seconds, last result) of `runs` calls of `fn`."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), times, result


def machine() -> dict:
    """The machine a result was measured on, for the results file."""
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "memory_gib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        # Other work on the machine skews every number: keep it beside them.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
