"""The processing pipelines of installed pySigma plugins, by name, each its own.

pySigma 1.5's `@Pipeline` decorator (`sigma/pipelines/base.py`) is a singleton: every decorated
pipeline function shares one instance, whose `func` is the last function decorated. With the
sysmon and OCSF plugins both installed, `ocsf` and `sysmon` then name the same pipeline (the one
imported last): silent wrong field names. We give each decorated function its own instance and
re-run the plugin modules that were imported before we could, so every name yields its own
pipeline whatever the import order.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from typing import Any

from sigma.pipelines.base import Pipeline


def _separate_decorated_pipelines() -> None:
    if getattr(Pipeline, "_sigmarrow_separate", False):
        return
    shared_new = Pipeline.__new__

    def __new__(cls: type[Pipeline], *args: Any, **kwargs: Any) -> Pipeline:
        if cls is Pipeline and args and callable(args[0]):  # `@Pipeline` on a function
            return object.__new__(cls)
        return shared_new(cls, *args, **kwargs)

    Pipeline.__new__ = __new__  # type: ignore[method-assign]
    Pipeline._sigmarrow_separate = True  # type: ignore[attr-defined]
    # Modules that decorated before the fix hold the shared instance: run them again,
    # submodules before the packages that re-export their functions.
    stale = [
        name
        for name, module in list(sys.modules.items())
        if name.startswith("sigma.pipelines.") and module is not None
        and any(type(v) is Pipeline for v in vars(module).values())
    ]
    for name in sorted(stale, key=lambda n: -n.count(".")):
        importlib.reload(sys.modules[name])


@cache
def installed_pipelines() -> dict[str, Any]:
    """Pipeline name -> a callable returning a fresh ProcessingPipeline."""
    _separate_decorated_pipelines()
    from sigma.plugins import InstalledSigmaPlugins

    return dict(InstalledSigmaPlugins.autodiscover().pipelines)
