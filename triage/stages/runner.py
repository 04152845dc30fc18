"""What every event-driven stage does around its own logic: parse, log context, retry decisions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from triage.errors import PermanentError
from triage.events import BadMessage, TicketMessage, parse
from triage.logs import log_context
from triage.runtime import Runtime
from triage.stages import dead_letter
from triage.states import Stage

log = logging.getLogger("triage.stage")


def run(data: Any, rt: Runtime, stage: Stage, work: Callable[[TicketMessage, Any], str]) -> str:
    """Runs one delivery. Returning acknowledges it; raising makes Pub/Sub redeliver (then dead-letter).

    Only what a retry can fix may raise: a malformed message is logged and acknowledged, and a
    PermanentError fails the ticket at once with its reason.
    """
    try:
        message = parse(data)
    except BadMessage as exc:
        log.error("dropping malformed message: %s", exc, extra={"fields": {"stage": stage.value}})
        return "malformed"
    with log_context(ticket_id=message.ticket_id, trace=message.trace, stage=stage.value):
        try:
            outcome = _dispatch(message, rt, stage, work)
        except PermanentError as exc:
            # Redelivering cannot change the answer: end the ticket now, with the reason, and acknowledge.
            log.error(
                "permanent error, ticket failed: %s", exc, extra={"fields": {"reason": exc.reason.value}}
            )
            rt.store.mark_failed(message.ticket_id, stage, exc.reason, f"{type(exc).__name__}: {exc}")
            outcome = exc.reason.value
        except Exception as exc:
            log.warning("attempt failed, Pub/Sub will retry: %s", type(exc).__name__, exc_info=True)
            rt.store.record_error(message.ticket_id, stage, f"{type(exc).__name__}: {exc}")
            raise
        log.info("%s: %s", stage.value, outcome, extra={"fields": {"outcome": outcome}})
        return outcome


def _dispatch(
    message: TicketMessage, rt: Runtime, stage: Stage, work: Callable[[TicketMessage, Any], str]
) -> str:
    snap = rt.store.snapshot(message.ticket_id)
    if message.is_dead_letter:
        return dead_letter.handle(message, stage, rt, snap)
    if not snap.exists:
        log.warning("message for an unknown ticket")
        return "unknown_ticket"
    return work(message, snap)
