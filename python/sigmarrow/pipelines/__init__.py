"""Processing pipelines that ship with sigmarrow, as pySigma pipeline YAML files.

``builtin_pipeline("windows")`` is the path of ``windows.yml``: the log source routing of
SigmaHQ's own test configuration (``tests/thor.yml``), so that one Windows table holding
Sysmon and Security events feeds each rule only the events of its log source.

The YAML files may use the transformation ``sigmarrow_field_mapping`` (see
:mod:`sigmarrow.pipelines.transformations`); importing this package registers it with
pySigma, so load the files after importing it.
"""

from __future__ import annotations

from pathlib import Path

from sigmarrow.pipelines.transformations import register

__all__ = ["builtin_pipeline", "builtin_pipeline_names", "register"]

_DIR = Path(__file__).resolve().parent

register()


def builtin_pipeline_names() -> list[str]:
    """The names ``builtin_pipeline`` knows, sorted."""
    return sorted(p.stem for p in _DIR.glob("*.yml"))


def builtin_pipeline(name: str) -> Path | None:
    """The YAML file of the built-in pipeline ``name``, or None when there is none."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        return None  # a path or anything else that cannot name a file of this folder
    path = _DIR / f"{name}.yml"
    return path if path.is_file() else None
