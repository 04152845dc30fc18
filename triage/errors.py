"""The one error model of the package: an error is either permanent or retryable, never both.

Stages act on the split, not on concrete classes (see `triage.stages.runner`): a `PermanentError` ends the
ticket at once as `failed` with its bounded `reason` (retrying cannot help, so redelivering it would only
delay the same answer until the dead-letter topic); a `RetryableError`, or anything unexpected, is raised
so Pub/Sub redelivers it. Error messages must be safe to log and to store (no secrets, no ticket text).
"""

from __future__ import annotations

from triage.states import FailureReason


class TriageError(Exception):
    """Base of every error triage raises on purpose."""


class PermanentError(TriageError):
    """Retrying cannot help: the ticket ends `failed` with `reason` (or stays in review, where it is)."""

    reason: FailureReason = FailureReason.INVALID_TICKET


class RetryableError(TriageError):
    """A later attempt may succeed; `retry_after` (seconds) is the earliest that makes sense, if known."""

    retry_after: float | None = None
