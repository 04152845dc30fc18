"""The destination interface: what the route stage hands an adapter and what it gets back.

Adapters see only ``OutboundTicket`` (no raw ticket document), return a ``Delivery`` and signal failure with
exactly two kinds of error: permanent (retrying cannot help; park the ticket) and transient (retry, honouring
``retry_after``). Error messages are built from redacted text only, so they are safe to log and to store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from triage.errors import PermanentError, RetryableError, TriageError
from triage.states import FailureReason

PRIORITIES = ("low", "medium", "high", "critical")
REASON_MAX = 2_000

# Our ticket id ends up in Jira labels, Freshservice tags and JQL / filter query strings. Restricting its
# alphabet keeps those queries injection-free without per-destination escaping rules.
# Used with fullmatch: "$" would also accept one trailing newline, which would end up inside a JQL string.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class OutboundTicket:
    """Everything a destination may know about a ticket; nothing else reaches adapters."""

    ticket_id: str
    title: str
    description: str
    email: str
    priority: str  # low|medium|high|critical
    department: str
    team: str | None
    confidence: float | None
    reason: str | None


@dataclass(frozen=True)
class Delivery:
    system: str  # jira|freshservice|slack|webhook|log
    ref: str  # external key/id, e.g. "OPS-12", "4711", "slack:<ticket_id>"
    url: str | None = None


class DeliveryError(TriageError):
    """Base of delivery failures. The message never contains secrets (it is built from redacted text)."""

    def __init__(self, message: str, *, system: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.system = system
        self.status = status


class PermanentDeliveryError(DeliveryError, PermanentError):
    """4xx other than 408/429 (or an unusable ticket): retrying cannot help. Nothing was created."""

    reason = FailureReason.DESTINATION_REJECTED

    def __init__(
        self, message: str, *, system: str | None = None, status: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.detail = detail  # the destination's own error text, redacted


class TransientDeliveryError(DeliveryError, RetryableError):
    """Connection error, timeout, 408, 429 or 5xx: retry, waiting at least ``retry_after`` seconds.

    ``may_have_applied``: the request may have taken effect although we saw no success (a read timeout, a
    dropped connection, a 5xx, an unreadable 2xx), so a create must not simply be repeated. ``grace_s``: how
    long after the failure the server may still apply it (a read timeout leaves the request running).
    """

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        may_have_applied: bool = True,
        grace_s: float = 0.0,
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.retry_after = retry_after
        self.may_have_applied = may_have_applied
        self.grace_s = grace_s
        # Set by deliver(): the latest moment an earlier create may have landed, for the next delivery.
        self.unsure_until: datetime | None = None


class DestinationConfigError(PermanentError, ValueError):
    """A destination cannot be built from settings/env (missing secret, bad URL, unknown system)."""

    reason = FailureReason.CONFIGURATION_ERROR


@runtime_checkable
class Destination(Protocol):
    system: str

    def find_existing(self, ticket: OutboundTicket) -> Delivery | None:
        """The delivery made earlier for this ticket id, where the API can be queried; None otherwise."""
        ...

    def create(self, ticket: OutboundTicket) -> Delivery:
        """Create the external ticket/message. Raises Permanent/TransientDeliveryError."""
        ...


def require_safe_id(ticket: OutboundTicket, system: str) -> str:
    """The ticket id, if it is safe to embed in labels, tags and search queries."""
    if not _SAFE_ID.fullmatch(ticket.ticket_id):
        raise PermanentDeliveryError(
            "ticket id is not usable as an external label", system=system, detail="unsafe ticket id"
        )
    return ticket.ticket_id


def triage_label(ticket_id: str) -> str:
    """The per-ticket label/tag every queryable destination carries, used by find_existing."""
    return f"triage-{ticket_id}"


def ticket_facts(ticket: OutboundTicket) -> list[str]:
    """The triage facts every human-facing destination shows under the requester's text, one per line."""
    team = f" / {ticket.team}" if ticket.team else ""
    facts = [
        f"Triage ID: {ticket.ticket_id}",
        f"Department: {ticket.department}{team}",
        f"Confidence: {format_confidence(ticket.confidence)}",
    ]
    if ticket.reason:
        # One line: a reason of many newlines would otherwise blow a document up with line breaks.
        facts.append(f"Reason: {' '.join(ticket.reason.split())[:REASON_MAX]}")
    return facts


def format_confidence(confidence: float | None) -> str:
    return "n/a" if confidence is None else f"{confidence:.2f}"
