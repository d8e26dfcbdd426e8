"""Correlation rules over data at rest: exact, documented windows (docs/semantics.md,
"Correlations").

`model` reads correlation rules from pySigma and links them into the program; `info` holds
the records `Matcher` lists; `state` holds
the base hits a run gathers, batch by batch, beside the immutable matcher (`spill` keeps them
on disk past its memory bound); `sweep` sorts them and computes the alerts. `Matcher.correlate` and `Matcher.correlation_state` are the API.
Names load on first use: the scan's writers need the alert schema, not pySigma.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sigmarrow._lazy import lazy_getattr

if TYPE_CHECKING:
    from sigmarrow.correlation.info import CorrelationInfo, FilterInfo, quiet_rules
    from sigmarrow.correlation.state import DEFAULT_MAX_MEMORY, MODES, CorrelationState
    from sigmarrow.correlation.sweep import ALERTS_SCHEMA, DROPPED_KEY

_LAZY = {
    "ALERTS_SCHEMA": "sigmarrow.correlation.sweep",
    "DROPPED_KEY": "sigmarrow.correlation.sweep",
    "DEFAULT_MAX_MEMORY": "sigmarrow.correlation.state",
    "MODES": "sigmarrow.correlation.state",
    "CorrelationState": "sigmarrow.correlation.state",
    "CorrelationInfo": "sigmarrow.correlation.info",
    "FilterInfo": "sigmarrow.correlation.info",
    "quiet_rules": "sigmarrow.correlation.info",
}
__all__ = [
    "ALERTS_SCHEMA",
    "DEFAULT_MAX_MEMORY",
    "DROPPED_KEY",
    "MODES",
    "CorrelationInfo",
    "CorrelationState",
    "FilterInfo",
    "quiet_rules",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
