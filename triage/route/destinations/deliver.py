"""Deliver one ticket to one destination, exactly once where the destination can be searched.

A create can succeed remotely and still fail for us (read timeout, dropped connection, 5xx, a crash before
we recorded the delivery). So once a create may have landed, the next attempt searches the destination
before creating again. Jira's JQL search and Freshservice's filter are eventually consistent: an issue
created a moment ago may not be found yet. A search therefore only proves "nothing was created" once it is
made `search_lag_s` (per destination) after the moment the earlier create may have landed; until then we
wait, in this invocation if the retry budget allows, else by raising `SearchNotSettled` so a later
delivery searches (the route stage keeps the moment in the delivery claim, so it survives a crash).

Destinations that cannot be searched (Slack, generic webhook) may deliver twice in that window; the webhook
sends an Idempotency-Key for that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from triage.route.destinations.base import Delivery, Destination, OutboundTicket, TransientDeliveryError
from triage.route.destinations.http import RetryPolicy, call_with_retries, remaining_budget

# Time kept free after a wait for the search and the create themselves.
_CALL_MARGIN_S = 1.0


class SearchNotSettled(TransientDeliveryError):
    """An earlier create may still be invisible to search: search (and maybe create) after `retry_after`."""

    def __init__(self, system: str, wait_s: float) -> None:
        super().__init__(
            f"{system}: waiting {wait_s:.1f}s for search to catch up with an earlier create",
            system=system,
            retry_after=wait_s,
            may_have_applied=False,
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


def search_lag(destination: Destination) -> timedelta:
    return timedelta(seconds=float(getattr(destination, "search_lag_s", 0.0) or 0.0))


@dataclass
class Recovery:
    """What earlier attempts may have left at the destination.

    `unsure_until`: the latest moment an earlier create may have landed (None: nothing in doubt).
    `search_first`: an earlier attempt existed, so look before creating even if nothing is in doubt.
    """

    unsure_until: datetime | None = None
    search_first: bool = False


def deliver(
    destination: Destination,
    ticket: OutboundTicket,
    *,
    recovery: Recovery | None = None,
    before_create: Callable[[int], None] = lambda n: None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = utcnow,
    max_server_wait_s: float | None = None,
) -> Delivery:
    """Create the ticket at ``destination`` with bounded retries; reuse an earlier delivery if found.

    ``recovery``: what the caller knows of earlier deliveries of this ticket (a Pub/Sub redelivery, an
    expired claim). ``before_create(n)`` runs before the n-th create of this call, so the caller can record
    the attempt durably first (the claim already covers n == 1). A wait the destination asks for that is
    ``max_server_wait_s`` or longer is not slept through but raised at once.
    Raises PermanentDeliveryError, or the last TransientDeliveryError once attempts/budget are used up,
    with ``.unsure_until`` set to what the next delivery must know.
    """
    state = recovery or Recovery()
    creates = 0

    def attempt() -> Delivery:
        nonlocal creates
        if state.unsure_until is not None:
            _wait_until_searchable(destination, state.unsure_until, sleep, now, max_server_wait_s)
        if state.search_first or state.unsure_until is not None:
            existing = destination.find_existing(ticket)
            if existing is not None:
                return existing
        state.unsure_until, state.search_first = None, False  # a settled search found nothing
        creates += 1
        before_create(creates)
        try:
            return destination.create(ticket)
        except TransientDeliveryError as exc:
            if exc.may_have_applied:
                state.unsure_until = now() + timedelta(seconds=exc.grace_s)
            state.search_first = True
            raise

    try:
        return call_with_retries(
            attempt, policy=policy, sleep=sleep, clock=clock, max_server_wait_s=max_server_wait_s
        )
    except TransientDeliveryError as exc:
        exc.unsure_until = state.unsure_until
        raise


def _wait_until_searchable(
    destination: Destination,
    unsure_until: datetime,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
    max_wait_s: float | None,
) -> None:
    """Sleeps until a search can be trusted, unless that is too long for this invocation to wait."""
    wait = (unsure_until + search_lag(destination) - now()).total_seconds()
    if wait <= 0:
        return
    budget = remaining_budget()
    too_long = max_wait_s is not None and wait >= max_wait_s
    if too_long or (budget is not None and wait + _CALL_MARGIN_S > budget):
        raise SearchNotSettled(destination.system, wait)
    sleep(wait)
