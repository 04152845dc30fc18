"""The route stage: deliver a classified ticket to its department's system exactly once, or park it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from triage import metrics as m
from triage.config import DestinationConfig, RoutingConfig
from triage.counters import CounterUpdate
from triage.events import TicketMessage
from triage.route.claims import TicketMovedOn, claim_delivery, release_claim
from triage.route.destinations.base import (
    Delivery,
    Destination,
    OutboundTicket,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from triage.route.destinations.deliver import deliver
from triage.runtime import Runtime
from triage.states import FailureReason, Stage, Status

log = logging.getLogger("triage.route")

DELIVERIES = "deliveries"
# Longer than one invocation's bounded retries (adapters stop within ~20 s), so a held claim older than
# this belongs to an invocation that died.
CLAIM_TTL = timedelta(seconds=90)

DestinationFactory = Callable[[str, DestinationConfig], Destination]
ROUTABLE = frozenset({Status.CLASSIFIED, Status.NEEDS_REVIEW})


def route_ticket(
    message: TicketMessage,
    snap: Any,
    rt: Runtime,
    destinations: DestinationFactory,
    routing: RoutingConfig | None = None,
) -> str:
    routing = routing or rt.config.routing
    ticket = snap.to_dict()
    status = Status(ticket["status"])
    decision = (ticket.get("review") or {}).get("decision")
    if status is Status.NEEDS_REVIEW and not decision:
        return "awaiting_review"
    if status not in ROUTABLE:
        return f"skipped_{status.value}"
    classification = ticket.get("classification") or {}
    if status is Status.CLASSIFIED and _needs_review(classification, rt):
        return send_to_review(message, rt, destinations, routing, ticket, snap)

    department = (decision or classification)["department"]
    team = (decision or classification).get("team")
    name, config = routing.destination_for(department, team, ticket.get("priority", "medium"))
    destination = destinations(name, config)
    outbound = outbound_ticket(ticket, department, team)
    try:
        delivery = _deliver(rt, destination, outbound, snap)
    except TicketMovedOn as moved:
        return f"skipped_{moved.status}"
    except PermanentDeliveryError as exc:
        rt.store.mark_failed(message.ticket_id, Stage.ROUTE, FailureReason.DESTINATION_REJECTED, str(exc))
        return "destination_rejected"
    # The log destination wrote nothing before this point, so the ticket read at the start is still current;
    # an external one wrote a claim, so the transition reads the ticket again.
    current = snap if delivery.system == "log" else None
    return _mark_routed(rt, message.ticket_id, name, delivery, department, current)


def _needs_review(classification: dict[str, Any], rt: Runtime) -> bool:
    confidence = classification.get("confidence")
    return confidence is None or confidence < rt.config.triage.thresholds.review_confidence


def outbound_ticket(ticket: dict[str, Any], department: str, team: str | None) -> OutboundTicket:
    classification = ticket.get("classification") or {}
    return OutboundTicket(
        ticket_id=ticket["id"],
        title=ticket["title"],
        description=ticket["description"],
        email=ticket["email"],
        priority=ticket.get("priority", "medium"),
        department=department,
        team=team,
        confidence=classification.get("confidence"),
        reason=classification.get("reason"),
    )


def _deliver(rt: Runtime, destination: Destination, outbound: OutboundTicket, snap: Any) -> Delivery:
    if destination.system == "log":
        # Recorded in the same batch as the routed transition: exactly once without a claim.
        return destination.create(outbound)
    prior_attempt = claim_delivery(rt.store, outbound.ticket_id, snap, CLAIM_TTL, ROUTABLE)
    try:
        return deliver(destination, outbound, check_existing_first=prior_attempt)
    except (TransientDeliveryError, PermanentDeliveryError):
        release_claim(rt.store, outbound.ticket_id)
        raise


def _mark_routed(
    rt: Runtime, ticket_id: str, name: str, delivery: Delivery, department: str, snapshot: Any = None
) -> str:
    def record_delivery(batch: Any, _ticket: dict[str, Any]) -> None:
        if delivery.system == "log":
            batch.set(
                rt.store.db.collection(DELIVERIES).document(ticket_id),
                {
                    "ticket_id": ticket_id,
                    "destination": name,
                    "department": department,
                    "at": rt.store.clock(),
                },
            )

    transition = rt.store.transition(
        ticket_id,
        Status.ROUTED,
        Stage.ROUTE,
        changes={
            "destination": {
                "name": name,
                "system": delivery.system,
                "ref": delivery.ref,
                "url": delivery.url,
            },
            "delivery_claim": None,
        },
        counters=CounterUpdate().inc(m.TICKETS_ROUTED, {"department": department, "system": delivery.system}),
        also=record_delivery,
        snapshot=snapshot,
    )
    return f"routed_{delivery.system}" if transition.applied else f"skipped_{transition.status.value}"


def send_to_review(
    message: TicketMessage,
    rt: Runtime,
    destinations: DestinationFactory,
    routing: RoutingConfig,
    ticket: dict[str, Any],
    snap: Any,
) -> str:
    """Low confidence: notify the review channel, then park the ticket in needs_review."""
    name = routing.review.destination
    reviewer = destinations(name, routing.destinations[name])
    department = ticket["classification"]["department"]
    outbound = outbound_ticket(ticket, department, ticket["classification"].get("team"))
    if reviewer.system != "log":
        deliver(reviewer, outbound)  # transient errors raise: Pub/Sub retries; a duplicate note is harmless
    transition = rt.store.transition(
        message.ticket_id,
        Status.NEEDS_REVIEW,
        Stage.ROUTE,
        changes={"review": {"reason": "low_confidence", "notified": name, "requested_at": rt.store.clock()}},
        counters=CounterUpdate().inc(m.TICKETS_REVIEW, {"reason": "low_confidence"}),
        note="low_confidence",
        snapshot=snap,
    )
    return "needs_review" if transition.applied else f"skipped_{transition.status.value}"
