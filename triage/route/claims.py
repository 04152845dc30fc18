"""Delivery claims: only one delivery of a ticket talks to an external system at a time.

Pub/Sub delivers at least once and concurrently; a claim is a conditional write on the ticket made
before any call out, so a second delivery waits instead of creating a second external ticket.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc

from triage.states import Status
from triage.store import MAX_COMMIT_RACES, TicketStore

log = logging.getLogger(__name__)


class ClaimBusy(RuntimeError):
    """Another delivery of this ticket is talking to the destination right now: retry later."""


class TicketMovedOn(Exception):
    """While we looked, another delivery finished the ticket: nothing left to do."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def claim_delivery(
    store: TicketStore, ticket_id: str, snapshot: Any, ttl: timedelta, pending: frozenset[Status]
) -> bool:
    """Marks the ticket as being delivered before any call out, so concurrent deliveries don't both create.

    A held claim younger than `ttl` blocks others; an older one belongs to a delivery that died mid-call.
    Returns True when an earlier attempt existed: it may have created the external ticket already, so the
    destination must be searched before creating.
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
        try:
            store.ref(ticket_id).update(
                {
                    "delivery_claim": {
                        "state": "held",
                        "at": now,
                        "attempts": (claim or {}).get("attempts", 0) + 1,
                    }
                },
                option=store.db.write_option(last_update_time=snapshot.update_time),
            )
        except gexc.FailedPrecondition:
            snapshot = None
            continue
        return claim is not None
    raise ClaimBusy(ticket_id)


def release_claim(store: TicketStore, ticket_id: str) -> None:
    """After a failed call the next attempt may go at once, searching first: the call may have landed."""
    try:
        store.ref(ticket_id).update({"delivery_claim.state": "released"})
    except gexc.GoogleAPIError:
        log.warning("could not release the delivery claim; it expires by itself", exc_info=True)
