"""Deliver one ticket to one destination, at most once where the destination can be queried.

A create can succeed remotely and still fail for us (read timeout, dropped connection, crash before we
recorded the delivery). So every retry, and the first attempt when the caller is not sure an earlier
invocation did nothing, asks ``find_existing`` before creating again. Destinations that cannot be queried
(Slack, generic webhook) may deliver twice in that window; the webhook sends an Idempotency-Key for that.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from triage.route.destinations.base import Delivery, Destination, OutboundTicket
from triage.route.destinations.http import RetryPolicy, call_with_retries


def deliver(
    destination: Destination,
    ticket: OutboundTicket,
    *,
    check_existing_first: bool = False,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Create the ticket at ``destination`` with bounded retries; reuse an earlier delivery if found.

    ``check_existing_first``: set when this ticket may have been attempted before (a Pub/Sub redelivery,
    or a delivery record left in "pending"); a clean first attempt skips the lookup to save a call.
    Raises PermanentDeliveryError, or the last TransientDeliveryError once attempts/budget are used up.
    """
    attempts = 0

    def attempt() -> Delivery:
        nonlocal attempts
        attempts += 1
        if check_existing_first or attempts > 1:
            existing = destination.find_existing(ticket)
            if existing is not None:
                return existing
        return destination.create(ticket)

    return call_with_retries(attempt, policy=policy, sleep=sleep, clock=clock)
