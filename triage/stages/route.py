"""The route stage: deliver a classified ticket to its department's system exactly once, or park it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from triage import metrics as m
from triage.config import ConfigError, DestinationConfig, RoutingConfig
from triage.counters import CounterUpdate
from triage.errors import PermanentError
from triage.events import TicketMessage
from triage.route.claims import TicketMovedOn, claim_delivery, record_create, release_claim
from triage.route.destinations.base import (
    Delivery,
    Destination,
    OutboundTicket,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from triage.route.destinations.deliver import SearchNotSettled, deliver
from triage.runtime import Runtime
from triage.states import FailureReason, Stage, Status

log = logging.getLogger("triage.route")

DELIVERIES = "deliveries"
# Longer than one invocation's bounded retries (the delivery budget is 20 s, calls clamped to it), so a held
# claim older than this belongs to an invocation that died (or stalled: its create, if any, is then searched
# for after the lag bound before anything is created again). Short enough that a redelivery or the
# reconciler (thresholds.hand_on_after_seconds) takes over soon after a crash.
CLAIM_TTL = timedelta(seconds=45)
DEFAULT_CALL_WINDOW = timedelta(seconds=30)
# A wait this long is not slept through (the instance would idle, billed) nor left to Pub/Sub's backoff
# (delivery attempts would burn and the ticket be dead-lettered before a long window ends): the ticket is
# parked until then (`_defer`) and the reconciler hands it on.
DEFER_AFTER_S = 10.0

DestinationFactory = Callable[[str, DestinationConfig], Destination]
ROUTABLE = frozenset({Status.CLASSIFIED, Status.NEEDS_REVIEW})


def route_ticket(
    message: TicketMessage,
    snap: Any,
    rt: Runtime,
    destinations: DestinationFactory,
    routing: RoutingConfig | None = None,
) -> str:
    """Raises PermanentError (the runner fails the ticket) or RetryableError (Pub/Sub retries)."""
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
    name, config = _destination_for(routing, department, team, ticket.get("priority", "medium"))
    destination = destinations(name, config)
    outbound = outbound_ticket(ticket, department, team)
    try:
        delivery = _deliver(rt, destination, outbound, snap)
    except TicketMovedOn as moved:
        return f"skipped_{moved.status}"
    except TransientDeliveryError as exc:
        if exc.retry_after is not None and exc.retry_after >= DEFER_AFTER_S:
            return _defer(rt, message.ticket_id, name, destination.system, exc)
        raise
    # The log destination wrote nothing before this point, so the ticket read at the start is still current;
    # an external one wrote a claim, so the transition reads the ticket again.
    current = snap if delivery.system == "log" else None
    return _mark_routed(rt, message.ticket_id, name, delivery, department, current)


class NoRoute(PermanentError):
    reason = FailureReason.CONFIGURATION_ERROR


def _destination_for(
    routing: RoutingConfig, department: str, team: str | None, priority: str
) -> tuple[str, DestinationConfig]:
    try:
        return routing.destination_for(department, team, priority)
    except ConfigError as exc:
        raise NoRoute(str(exc)) from exc


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
    ticket_id = outbound.ticket_id
    recovery = claim_delivery(rt.store, ticket_id, snap, CLAIM_TTL, ROUTABLE, _call_window(destination))

    def before_create(n: int) -> None:
        if n > 1:  # the claim recorded the first create's start
            record_create(rt.store, ticket_id)

    try:
        return deliver(
            destination,
            outbound,
            recovery=recovery,
            before_create=before_create,
            max_server_wait_s=DEFER_AFTER_S,
        )
    except TransientDeliveryError as exc:
        release_claim(rt.store, ticket_id, exc.unsure_until)
        raise
    except PermanentDeliveryError:
        release_claim(rt.store, ticket_id, None)
        raise


def _call_window(destination: Destination) -> timedelta:
    """How long after it started a create of a delivery that died may still land: one call's timeout."""
    http = getattr(destination, "http", None)
    if http is None:
        return DEFAULT_CALL_WINDOW
    return timedelta(seconds=http.connect_timeout + http.read_timeout)


def _defer(rt: Runtime, ticket_id: str, name: str, system: str, exc: TransientDeliveryError) -> str:
    """The destination asks for a wait longer than Pub/Sub's backoff: park the ticket instead of burning
    delivery attempts (and dead-lettering it) before the window ends; the reconciler hands it on."""
    reason = "search_lag" if isinstance(exc, SearchNotSettled) else "rate_limited"
    # Up to 10 % later, so tickets parked by the same window don't all come back in the same second.
    wait_s = float(exc.retry_after or 0.0) * (1 + 0.1 * rt.store.rng.random())
    until = rt.store.clock() + timedelta(seconds=wait_s)
    deferred = rt.store.defer(
        ticket_id,
        until,
        {
            "delivery_deferred": {
                "until": until,
                "reason": reason,
                "destination": name,
                "system": system,
                "detail": str(exc)[:300],
            }
        },
        CounterUpdate().inc(m.DELIVERIES_DEFERRED, {"system": system, "reason": reason}),
    )
    if deferred:
        log.info("delivery deferred for %.0fs", wait_s, extra={"fields": {"reason": reason}})
    return f"deferred_{reason}" if deferred else "skipped_final"


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
            "delivery_deferred": None,
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
    review: dict[str, Any] = {"reason": "low_confidence", "notified": name, "requested_at": rt.store.clock()}
    counters = CounterUpdate().inc(m.TICKETS_REVIEW, {"reason": "low_confidence"})
    if reviewer.system != "log":
        try:
            deliver(reviewer, outbound)  # transient errors raise: Pub/Sub retries; a duplicate is harmless
        except PermanentDeliveryError as exc:
            # The ticket needs a human either way: it waits in review, with the reason the notice failed.
            log.error(
                "review notice refused for good: %s", exc, extra={"fields": {"system": reviewer.system}}
            )
            review.update(notified=None, notify_error=str(exc)[:300])
            counters.inc(m.REVIEW_NOTIFY_FAILED, {"system": reviewer.system})
    transition = rt.store.transition(
        message.ticket_id,
        Status.NEEDS_REVIEW,
        Stage.ROUTE,
        changes={"review": review},
        counters=counters,
        note="low_confidence",
        snapshot=snap,
    )
    return "needs_review" if transition.applied else f"skipped_{transition.status.value}"
