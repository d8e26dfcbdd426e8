"""Where rule files are, without pySigma: the cache keys a compile by them before anything
decides to compile, and the CLI tells rule paths from data paths by them."""

from __future__ import annotations

import os
from pathlib import Path

RULE_SUFFIXES = (".yml", ".yaml")


def rule_files(path: Path) -> list[Path]:
    """The rule files of a file or folder (recursive), in a stable order."""
    if not path.is_dir():
        return [path]
    found = [
        Path(folder, name)
        for folder, _, names in os.walk(path)
        for name in names
        if name.endswith(RULE_SUFFIXES)
    ]
    return sorted(p for p in found if p.is_file())
