"""The one exception tree sigmarrow raises, and the record of a rule that did not compile.

    SigmarrowError            every error sigmarrow raises (the CLI: one message, exit 2)
    ├── UsageError            bad usage of a command or of the API (a bad option value)
    ├── DataError             data the engine cannot use (a column type, a corrupt file)
    ├── ProgramError          a compiled program that is malformed or of another version
    └── PipelineError         a processing pipeline that cannot be found or loaded

A rule that does not compile is not an exception: the other rules still run. It becomes a
`RuleError` record in `Matcher.errors`, with its file, id, title and reason.
"""

from __future__ import annotations

from dataclasses import dataclass


class SigmarrowError(Exception):
    """Base class of every error sigmarrow raises."""


class UsageError(SigmarrowError):
    """Bad usage or bad input of a command, reported as one message and exit status 2."""


class DataError(SigmarrowError):
    """Data the engine cannot use: an unsupported column type, a corrupt file."""


class ProgramError(SigmarrowError):
    """A compiled program that is malformed or of another version."""


class PipelineError(SigmarrowError):
    """A processing pipeline that cannot be found or loaded."""


@dataclass(frozen=True)
class RuleError:
    """A rule (or rule file) left out of the program, and why: one that did not compile
    (`Matcher.errors`) or one that does not apply to the data (`Matcher.skipped`). A record,
    not an exception."""

    source: str | None
    rule_id: str | None
    title: str | None
    reason: str

    def __str__(self) -> str:
        """One line: where, which rule, why (`file: rule ID (title): reason`)."""
        where = self.source or "<text>"
        rule = f" rule {self.rule_id}" if self.rule_id else ""
        title = f" ({self.title})" if self.title else ""
        return f"{where}:{rule}{title}: {self.reason}"

