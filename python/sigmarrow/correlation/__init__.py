"""Correlation rules over data at rest: exact, documented windows (docs/semantics.md,
"Correlations").

`model` reads correlation rules from pySigma and links them into the program; `state` holds
the base hits a run gathers, batch by batch, beside the immutable matcher; `sweep` sorts them
and computes the alerts. `Matcher.correlate` and `Matcher.correlation_state` are the API.
"""

from sigmarrow.correlation.model import CorrelationInfo, FilterInfo, quiet_rules
from sigmarrow.correlation.state import DEFAULT_MAX_HITS, MODES, CorrelationState
from sigmarrow.correlation.sweep import ALERTS_SCHEMA, DROPPED_KEY

__all__ = [
    "ALERTS_SCHEMA",
    "DEFAULT_MAX_HITS",
    "DROPPED_KEY",
    "MODES",
    "CorrelationInfo",
    "CorrelationState",
    "FilterInfo",
    "quiet_rules",
]
