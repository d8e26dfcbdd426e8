"""Pipelines by name: every installed pySigma pipeline yields its own, whatever the order its
plugin was imported in (pySigma 1.5's `@Pipeline` decorator shares one instance between every
decorated function), and an unknown name says which names exist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sigmarrow

ROOT = Path(__file__).resolve().parents[1]
RULE = ROOT / "examples" / "rules" / "proc_creation_win_cloudflared_portable_execution.yml"
PLUGIN_MODULES = {"sysmon": "sigma.pipelines.sysmon", "ocsf": "sigma.pipelines.ocsf"}
EXPECTED_FIELDS = {
    "sysmon": ["EventID", "Image"],
    "ocsf": ["process.name", "type_uid"],
    "windows-logsources": ["Image"],
    "sentinel_asim": ["TargetProcessName"],
    "ecs_windows": ["process.executable"],
}

_PROGRAM = """
import importlib, json, sys
for module in sys.argv[1:]:
    importlib.import_module(module)  # the plugins, in this order, before sigmarrow
import sigmarrow
rule = open({rule!r}, encoding="utf-8").read()
print(json.dumps({{name: sigmarrow.compile(rule, pipeline=name, unrouted=True).fields
                  for name in {names!r}}}))
"""


@pytest.mark.parametrize("first", ["sysmon", "ocsf"])
def test_each_pipeline_name_gives_its_own_pipeline_in_any_import_order(first: str) -> None:
    modules = [PLUGIN_MODULES[first], *(m for n, m in PLUGIN_MODULES.items() if n != first)]
    program = _PROGRAM.format(rule=str(RULE), names=list(EXPECTED_FIELDS))
    run = subprocess.run(
        [sys.executable, "-c", program, *modules], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == EXPECTED_FIELDS


def test_unknown_pipeline_names_the_known_ones() -> None:
    with pytest.raises(sigmarrow.PipelineError) as error:
        sigmarrow.compile(str(RULE), pipeline="no-such-pipeline")
    message = str(error.value)
    assert "'no-such-pipeline'" in message
    for name in ("windows", "sysmon", "ocsf", "sentinel_asim"):
        assert name in message
    assert ", ," not in message and not message.rstrip().endswith(",")
