"""Dead letters: a stage gave up on a ticket after the subscription's max delivery attempts."""

from __future__ import annotations

import logging
from typing import Any

from triage import metrics as m
from triage.counters import CounterUpdate
from triage.events import TicketMessage
from triage.runtime import Runtime
from triage.states import FailureReason, Stage, Status

log = logging.getLogger("triage.dead_letter")

# The states a stage's work starts from: only a ticket still there was abandoned by that stage.
_PENDING = {
    Stage.CLASSIFY: {Status.RECEIVED},
    Stage.ROUTE: {Status.CLASSIFIED, Status.NEEDS_REVIEW},
}


def handle(message: TicketMessage, stage: Stage, rt: Runtime, snap: Any) -> str:
    counted = CounterUpdate().inc(m.DEAD_LETTERS, {"stage": stage})
    ticket = snap.to_dict() if snap.exists else None
    if ticket is None or Status(ticket["status"]) not in _PENDING[stage]:
        rt.store.count(counted)
        log.warning("dead letter for a ticket that is missing or has moved on; counted only")
        return "dead_letter_ignored"
    if (ticket.get("delivery_claim") or {}).get("state") == "held":
        # Every delivery met a claim held by a delivery that may have died mid-call: failing now could
        # orphan what it created. The claim expires; the reconciler hands the ticket on after that.
        rt.store.count(counted)
        log.warning("dead letter for a ticket with a held delivery claim; left to the reconciler")
        return "dead_letter_claim_held"
    last_error = (ticket.get("last_error") or {}).get("detail")
    detail = f"{stage.value} gave up after {message.delivery_count or 'the maximum'} deliveries"
    if last_error:
        detail += f"; last error: {last_error}"
    rt.store.mark_failed(message.ticket_id, stage, FailureReason.DEAD_LETTER, detail, counted, snapshot=snap)
    log.error("ticket dead-lettered", extra={"fields": {"reason": FailureReason.DEAD_LETTER.value}})
    return "dead_lettered"
