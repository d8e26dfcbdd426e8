"""Hostile input to the engine (issue 14): data and programs from outside, and a forked
process. Each case that once crashed or hung the interpreter runs in a child process, so
that a regression fails the test instead of taking the test run down."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import sigmarrow

# The child imports the sigmarrow this test run imported.
PYTHONPATH = os.pathsep.join([str(Path(sigmarrow.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])

RULE = r"""
title: Whoami
id: 11111111-0000-0000-0000-000000000001
logsource: {category: process_creation, product: windows}
detection:
  sel:
    Image|endswith: '\whoami.exe'
  condition: sel
"""


def run_python(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter with this sigmarrow; RULE is defined there."""
    script = f"RULE = {RULE!r}\n" + textwrap.dedent(code)
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    return subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=timeout, env=env
    )


def test_a_forked_child_matches_with_the_thread_count_its_parent_used():
    # The parent's thread pool is cached; in the child its threads do not exist.
    result = run_python(
        """
        import os, signal, sys, time
        import pyarrow as pa
        import sigmarrow

        m = sigmarrow.compile(RULE)
        data = pa.table({"Image": [r"C:\\Windows\\whoami.exe", r"C:\\x\\cmd.exe"] * 10_000})
        expected = m.match(data, threads=2).num_rows
        pid = os.fork()
        if pid == 0:
            os._exit(0 if m.match(data, threads=2).num_rows == expected else 3)
        for _ in range(300):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                sys.exit(os.waitstatus_to_exitcode(status))
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sys.exit("the forked child hung")
        """
    )
    assert result.returncode == 0, result.stderr
