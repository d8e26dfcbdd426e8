"""What the benches share: the rule corpus, timing, and the record of the machine and the
command. The benches are scripts (``python benches/<name>.py``), so ``benches/`` is on
``sys.path`` and they import this module as ``_common``."""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benches" / "results"
EXAMPLE_RULES = REPO / "examples" / "rules"
RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting")

# --------------------------------------------------------------------------------------
# The rule corpus
# --------------------------------------------------------------------------------------


def find_sigma_dir(given: str | os.PathLike[str] | None = None) -> Path | None:
    """A SigmaHQ checkout: the given path, ``$SIGMARROW_SIGMA_DIR``, or ``shared/sigma``
    beside the repository; None when none of these has the rule folders."""
    candidates = [Path(given)] if given else []
    if os.environ.get("SIGMARROW_SIGMA_DIR"):
        candidates.append(Path(os.environ["SIGMARROW_SIGMA_DIR"]))
    candidates.append(REPO.parent / "shared" / "sigma")
    for path in candidates:
        if (path / "rules").is_dir():
            return path.resolve()
    return None


_LOGSOURCE = re.compile(r"^logsource:[ \t]*\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.MULTILINE)
_LOGSOURCE_FLOW = re.compile(r"^logsource:[ \t]*\{([^}]*)\}", re.MULTILINE)
_FLOW_KEY = re.compile(r"(category|product|service)\s*:\s*['\"]?([\w-]+)")
_KEY = re.compile(r"^[ \t]+(category|product|service):[ \t]*['\"]?([\w-]+)['\"]?", re.MULTILINE)


def logsource_of(text: str) -> dict[str, str]:
    """category/product/service of a rule file's top-level ``logsource:`` block (without a
    YAML parse: 30x faster over the corpus, and rules keep this block flat)."""
    found = _LOGSOURCE.search(text if text.endswith("\n") else text + "\n")
    if found:
        return {k: v for k, v in _KEY.findall(found.group(1))}
    flow = _LOGSOURCE_FLOW.search(text)  # logsource: {category: x, product: y}
    if flow:
        return {k: v for k, v in _FLOW_KEY.findall(flow.group(1))}
    return {}


def process_creation_files(sigma_dir: Path, folders: Sequence[str] = RULE_FOLDERS) -> list[Path]:
    """Rule files whose logsource is category process_creation, product windows."""
    files = []
    for folder in folders:
        for path in sorted((sigma_dir / folder).rglob("*")):
            if path.suffix not in (".yml", ".yaml") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if "process_creation" not in text:
                continue
            ls = logsource_of(text)
            if ls.get("category") == "process_creation" and ls.get("product") == "windows":
                files.append(path)
    return files


def compile_with_rules(sources: Any) -> tuple[Any, list[Any]]:
    """(Matcher, the pySigma rules in the matcher's rule order): the reference evaluator
    needs the parsed rules, the engine the program. Parses once (``sigmarrow.compile``
    would parse again)."""
    import sigmarrow
    from sigmarrow.compiler import compile_rules

    loaded = sigmarrow.load_rules(sources)
    matcher = sigmarrow.Matcher(compile_rules(loaded.rules, list(loaded.errors)))
    by_id: dict[str, Any] = {}
    for rule in loaded.rules:
        by_id.setdefault(str(rule.id) if rule.id else (rule.title or ""), rule)
    return matcher, [by_id[r.id] for r in matcher.rules]


# --------------------------------------------------------------------------------------
# Timing and the record
# --------------------------------------------------------------------------------------


def best_of(runs: int, fn, clock=time.perf_counter, setup=None):
    """(best seconds, all seconds, last result) of `runs` calls of `fn`, timed by `clock`
    (``time.process_time`` for CPU time, which a shared machine skews less). With `setup`,
    each run is ``fn(setup())`` and only `fn` is timed: ``setup=matcher.with_options`` gives
    each run a fresh engine, whose memos start empty as on data seen once (a second run over
    the same table finds its values remembered: 15-32% faster on the process_creation bench)."""
    times, result = [], None
    for _ in range(runs):
        args = () if setup is None else (setup(),)
        start = clock()
        result = fn(*args)
        times.append(clock() - start)
    return min(times), times, result


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """The cores this process may run on (what `nproc` says)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict:
    """The machine a result was measured on, for the results file."""
    mem = None
    try:
        mem = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "memory_gib": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        # Other work on the machine skews every number: keep it beside them.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """`python benches/<script> ARGS` as run from the repository (`argv` None: this
    process's arguments)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"benches/{script}", *map(shlex.quote, args)])


def git_commit() -> str:
    """The commit of the checkout, with ``-dirty`` when the engine or package has
    uncommitted changes; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "rust", "python"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")
