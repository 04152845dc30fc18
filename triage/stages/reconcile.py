"""The reconciler: hands parked tickets back to route once their not-before time has passed.

Route parks a delivery (keeping the ticket's state) when a destination asks for a wait longer than Pub/Sub's
redelivery backoff, e.g. Jira's hourly quota or a Freshservice `Retry-After` of many minutes. Nothing
redelivers such a ticket by itself, so this runs on a schedule (Cloud Scheduler in the cloud, a ticker in
`make run`) and republishes every due one. It reads only the fixed pending-index documents (no query), and
is idempotent: a ticket published twice is claimed once by route, and a ticket that moved on meanwhile is
skipped there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from triage.runtime import Runtime
from triage.states import Status
from triage.store import read_pending_items

log = logging.getLogger("triage.reconcile")

# The states whose work belongs to route; a parked ticket in any other state is not route's to hand on.
ROUTE_PENDING = frozenset({Status.CLASSIFIED.value, Status.NEEDS_REVIEW.value})


@dataclass(frozen=True)
class Sweep:
    due: int  # parked tickets whose time has come, handed back to route
    waiting: int  # parked tickets still waiting


def release_due(rt: Runtime, now: datetime | None = None) -> Sweep:
    """Republishes every parked ticket whose not-before time is past. Returns what it saw."""
    now = now or rt.store.clock()
    due, waiting = [], 0
    for ticket_id, entry in read_pending_items(rt.store.db, rt.settings.counter_shards):
        not_before = entry.get("not_before")
        if not_before is None or entry.get("status") not in ROUTE_PENDING:
            continue
        if not_before <= now:
            due.append(ticket_id)
        else:
            waiting += 1
    for ticket_id in due:
        rt.queue.publish(rt.settings.route_topic, ticket_id, None, reconciled="deferred")
    if due:
        log.info("handed %d parked tickets back to route", len(due))
    return Sweep(due=len(due), waiting=waiting)
