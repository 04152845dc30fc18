"""Delivery claims: only one delivery of a ticket talks to an external system at a time.

Pub/Sub delivers at least once and concurrently; a claim is a conditional write on the ticket made
before any call out, so a second delivery waits instead of creating a second external ticket.

The claim also remembers what later deliveries must know to stay exactly-once: when the latest create
started (`create_at`, written before every create) and, once a delivery gave up, until when a create of
its may have landed (`unsure_until`). A claim whose holder died leaves `create_at`: its create may have
landed as late as `create_at` plus one call's timeout.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc

from triage.errors import RetryableError
from triage.route.destinations.deliver import Recovery
from triage.states import Status
from triage.store import MAX_COMMIT_RACES, TicketStore

log = logging.getLogger(__name__)


class ClaimBusy(RetryableError):
    """Another delivery of this ticket is talking to the destination right now: retry later."""


class TicketMovedOn(Exception):
    """While we looked, another delivery finished the ticket: nothing left to do."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def claim_delivery(
    store: TicketStore,
    ticket_id: str,
    snapshot: Any,
    ttl: timedelta,
    pending: frozenset[Status],
    call_window: timedelta,
) -> Recovery:
    """Marks the ticket as being delivered before any call out, so concurrent deliveries don't both create.

    A held claim younger than `ttl` blocks others; an older one belongs to a delivery that died mid-call,
    whose create may have landed up to `call_window` (the destination's call timeout) after it started.
    Returns what earlier deliveries may have left at the destination.
    """
    for _ in range(MAX_COMMIT_RACES):
        snapshot = snapshot if snapshot is not None else store.snapshot(ticket_id)
        ticket = snapshot.to_dict() or {}
        if ticket.get("status") not in pending:
            raise TicketMovedOn(ticket.get("status", "missing"))
        claim = ticket.get("delivery_claim")
        now = store.clock()
        if claim and claim.get("state") == "held" and now - claim["at"] < ttl:
            raise ClaimBusy(ticket_id)
        recovery = _recovery_from(claim, call_window)
        try:
            store.ref(ticket_id).update(
                {
                    "delivery_claim": {
                        "state": "held",
                        "at": now,
                        "create_at": now,  # the first create follows at once
                        "unsure_until": recovery.unsure_until,
                        "attempts": (claim or {}).get("attempts", 0) + 1,
                    }
                },
                option=store.db.write_option(last_update_time=snapshot.update_time),
            )
        except gexc.FailedPrecondition:
            snapshot = None
            continue
        return recovery
    raise ClaimBusy(ticket_id)


def _recovery_from(claim: dict[str, Any] | None, call_window: timedelta) -> Recovery:
    if not claim:
        return Recovery()
    doubts = [claim.get("unsure_until")]
    if claim.get("state") == "held":  # its holder died: its last create may have landed
        doubts.append((claim.get("create_at") or claim["at"]) + call_window)
    known = [d for d in doubts if d is not None]
    return Recovery(unsure_until=max(known) if known else None, search_first=True)


def record_create(store: TicketStore, ticket_id: str) -> None:
    """Before a repeated create: a crash from here on must be recovered from this moment, not the claim's."""
    store.ref(ticket_id).update({"delivery_claim.create_at": store.clock()})


def release_claim(store: TicketStore, ticket_id: str, unsure_until: datetime | None) -> None:
    """After a failed call the next delivery may go at once, knowing until when our create may land."""
    try:
        store.ref(ticket_id).update(
            {"delivery_claim.state": "released", "delivery_claim.unsure_until": unsure_until}
        )
    except gexc.GoogleAPIError:
        log.warning("could not release the delivery claim; it expires by itself", exc_info=True)
