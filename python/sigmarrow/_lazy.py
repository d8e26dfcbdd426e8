"""Module attributes loaded on first use (PEP 562): a package's `__init__` names what it
offers without importing the engine or pySigma until something asks for it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(module: str, sources: Mapping[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of `module`: each name of `sources` is imported from the module
    it maps to, then kept in `module`'s namespace (later lookups do not come here)."""
    namespace = sys.modules[module].__dict__

    def __getattr__(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(sources[name]), name)
        namespace[name] = value
        return value

    return __getattr__
