"""The exceptions sigmarrow raises, and the record of a rule that did not compile."""

from __future__ import annotations

from dataclasses import dataclass


class SigmarrowError(Exception):
    """Base class of every error sigmarrow raises."""


class DataError(SigmarrowError):
    """Data the engine cannot use: an unsupported column type, a corrupt file."""


class ProgramError(SigmarrowError):
    """A compiled program that is malformed or of another version."""


class PipelineError(SigmarrowError):
    """A processing pipeline that cannot be found or loaded."""


@dataclass(frozen=True)
class CompileError:
    """A rule (or rule file) that did not compile, and why."""

    source: str | None
    rule_id: str | None
    title: str | None
    reason: str

    def __str__(self) -> str:
        where = self.source or "<text>"
        rule = f" rule {self.rule_id}" if self.rule_id else ""
        title = f" ({self.title})" if self.title else ""
        return f"{where}:{rule}{title}: {self.reason}"
