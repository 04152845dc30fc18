"""The classify stage: decide department and team, record how, hand the ticket to route."""

from __future__ import annotations

import logging
from typing import Any

from triage import metrics as m
from triage.budget import add_spend, today
from triage.classify.base import Classification, Classifier, LLMUsage, TicketText
from triage.counters import CounterUpdate
from triage.events import TicketMessage
from triage.runtime import Runtime
from triage.states import FailureReason, Stage, Status

log = logging.getLogger("triage.classify")


def classify_ticket(message: TicketMessage, snap: Any, rt: Runtime, classifier: Classifier) -> str:
    ticket = snap.to_dict()
    status = Status(ticket["status"])
    if status is Status.CLASSIFIED:
        # Classified but maybe never handed on (a crash between commit and publish): hand on again;
        # route ignores tickets it has already routed.
        rt.queue.publish(rt.settings.route_topic, message.ticket_id, message.trace)
        return "republished"
    if status is not Status.RECEIVED:
        return f"skipped_{status.value}"
    try:
        text = TicketText(ticket["title"], ticket["description"], ticket.get("priority", "medium"))
    except KeyError as exc:
        rt.store.mark_failed(
            message.ticket_id, Stage.CLASSIFY, FailureReason.INVALID_TICKET, f"missing {exc}"
        )
        return "invalid_ticket"

    result = classifier.classify(text)
    spend = sum(call.cost_usd or 0.0 for call in result.llm_calls)

    def record_spend(batch: Any, _ticket: dict) -> None:
        if spend:
            add_spend(batch, rt.store.db, spend, today(), rt.settings.counter_shards)

    transition = rt.store.transition(
        message.ticket_id,
        Status.CLASSIFIED,
        Stage.CLASSIFY,
        changes=classification_changes(result),
        counters=classification_counters(result),
        snapshot=snap,
        also=record_spend,
    )
    if not transition.applied:
        return f"skipped_{transition.status.value}"
    rt.queue.publish(rt.settings.route_topic, message.ticket_id, message.trace)
    return f"classified_{result.decided_by.value}"


def classification_changes(result: Classification) -> dict:
    changes: dict = {"classification": result.as_doc()}
    if result.llm_calls:
        changes["llm"] = [
            {
                "model": call.model,
                "outcome": call.outcome,
                "attempts": call.attempts,
                "tokens": {
                    "input": call.input_tokens,
                    "output": call.output_tokens,
                    "thinking": call.thinking_tokens,
                    "cached": call.cached_tokens,
                },
                "cost_usd": call.cost_usd,
                "price_version": call.price_version,
                "latency_s": round(call.latency_s, 3),
            }
            for call in result.llm_calls
        ]
    return changes


def classification_counters(result: Classification) -> CounterUpdate:
    decided_by = result.decided_by.value
    counters = (
        CounterUpdate()
        .inc(m.TICKETS_CLASSIFIED, {"department": result.department, "classifier": decided_by})
        .observe(m.CONFIDENCE, {"classifier": decided_by}, result.confidence)
    )
    for call in result.llm_calls:
        counters.merge(llm_call_counters(call))
    return counters


def llm_call_counters(call: LLMUsage) -> CounterUpdate:
    model = {"model": call.model}
    counters = (
        CounterUpdate()
        .inc(m.LLM_REQUESTS, {**model, "outcome": call.outcome})
        .observe(m.LLM_LATENCY, model, call.latency_s)
    )
    for kind, tokens in (
        ("input", call.input_tokens),
        ("output", call.output_tokens),
        ("thinking", call.thinking_tokens),
        ("cached", call.cached_tokens),
    ):
        if tokens:
            counters.inc(m.LLM_TOKENS, {**model, "type": kind}, tokens)
    if call.cost_usd is not None:
        counters.inc(m.LLM_COST, model, call.cost_usd)
    elif call.input_tokens or call.output_tokens or call.thinking_tokens:
        # Billed (an answer, cut off or not) but not priced: its cost is unknown, not zero.
        counters.inc(m.LLM_UNPRICED, model)
    return counters
