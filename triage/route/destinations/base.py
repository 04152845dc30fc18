"""The destination interface: what the route stage hands an adapter and what it gets back.

Adapters see only ``OutboundTicket`` (no raw ticket document), return a ``Delivery`` and signal failure with
exactly two kinds of error: permanent (retrying cannot help; park the ticket) and transient (retry, honouring
``retry_after``). Error messages are built from redacted text only, so they are safe to log and to store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

PRIORITIES = ("low", "medium", "high", "critical")

# Our ticket id ends up in Jira labels, Freshservice tags and JQL / filter query strings. Restricting its
# alphabet keeps those queries injection-free without per-destination escaping rules.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


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


class DeliveryError(Exception):
    """Base of delivery failures. The message never contains secrets (it is built from redacted text)."""

    def __init__(self, message: str, *, system: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.system = system
        self.status = status


class PermanentDeliveryError(DeliveryError):
    """4xx other than 408/429 (or an unusable configuration / ticket): retrying cannot help."""

    def __init__(
        self, message: str, *, system: str | None = None, status: int | None = None, detail: str = ""
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.detail = detail  # the destination's own error text, redacted


class TransientDeliveryError(DeliveryError):
    """Connection error, timeout, 408, 429 or 5xx: retry, waiting at least ``retry_after`` seconds."""

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, system=system, status=status)
        self.retry_after = retry_after


class DestinationConfigError(ValueError):
    """A destination cannot be built from settings/env (missing secret, bad URL, unknown system)."""


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
    if not _SAFE_ID.match(ticket.ticket_id):
        raise PermanentDeliveryError(
            "ticket id is not usable as an external label", system=system, detail="unsafe ticket id"
        )
    return ticket.ticket_id


def triage_label(ticket_id: str) -> str:
    """The per-ticket label/tag every queryable destination carries, used by find_existing."""
    return f"triage-{ticket_id}"


def format_confidence(confidence: float | None) -> str:
    return "n/a" if confidence is None else f"{confidence:.2f}"
