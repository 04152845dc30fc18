"""The reconciler: hands unfinished tickets on again when nothing else will.

Two kinds of ticket need it. A *parked* ticket: route keeps its state but parks the delivery when a
destination asks for a wait longer than Pub/Sub's backoff (Jira's hourly quota, a Freshservice
`Retry-After` of many minutes), and nothing redelivers it by itself. A *stale* ticket: it sat in `received`
or `classified` for `hand_on_after_seconds` without progress, because its message was lost (intake died
between its write and its publish, a push the platform could not deliver and dropped, a process killed
mid-call). Both are republished to the stage that owns them.

It runs on a schedule (Cloud Scheduler in the cloud, a ticker in `make run`), reads only the fixed
pending-index documents (no query, no scan of tickets), and is idempotent: stages ignore tickets that moved
on, route claims a ticket before calling out and searches the destination first when an earlier attempt
may have created something. A ticket is handed on at most once per `hand_on_after_seconds`, so a slow stage
gets a duplicate message at most that often.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from triage import metrics as m
from triage.counters import CounterUpdate
from triage.runtime import Runtime
from triage.states import Stage, Status
from triage.store import read_pending_items

log = logging.getLogger("triage.reconcile")

# The stage that moves a ticket on from each state. needs_review waits for a person (the review endpoint
# republishes a decided ticket itself); a parked needs_review ticket was reviewed, so route owns it.
OWNER = {Status.RECEIVED.value: Stage.CLASSIFY, Status.CLASSIFIED.value: Stage.ROUTE}
PARKED_OWNER = {**OWNER, Status.NEEDS_REVIEW.value: Stage.ROUTE}
_BATCH = 400  # Firestore allows 500 writes per commit; the counter shard write needs one more


@dataclass
class Sweep:
    due: int = 0  # parked tickets whose time had come
    stale: int = 0  # tickets that made no progress for hand_on_after_seconds
    waiting: int = 0  # parked tickets still waiting
    handed_on: list[str] = field(default_factory=list)
    # Entries without a state: a hand-on mark that landed just after the ticket finished (see below).
    orphans: list[str] = field(default_factory=list)


def release_due(rt: Runtime, now: datetime | None = None, dry_run: bool = False) -> Sweep:
    """One reconciler run: republishes every parked ticket that is due and every stale one.

    `dry_run`: only report (`handed_on` then lists what a run would hand on); nothing is written or sent.
    """
    now = now or rt.store.clock()
    every = timedelta(seconds=rt.config.triage.thresholds.hand_on_after_seconds)
    sweep = Sweep()
    work = list(_to_hand_on(rt, now, every, sweep))
    if dry_run:
        sweep.handed_on = [ticket_id for ticket_id, _, _ in work]
        return sweep
    # Marked before publishing: a stage that finishes the ticket at once then deletes the entry after us.
    for start in range(0, len(work), _BATCH):
        chunk = work[start : start + _BATCH]
        counters = CounterUpdate()
        for _, stage, reason in chunk:
            counters.inc(m.RECONCILED, {"stage": stage, "reason": reason})
        rt.store.mark_handed_on([ticket_id for ticket_id, _, _ in chunk], now, counters)
    for ticket_id, stage, reason in work:
        rt.queue.publish(_topic(rt, stage), ticket_id, None, reconciled=reason)
        sweep.handed_on.append(ticket_id)
    if sweep.orphans:
        rt.store.forget_pending(sweep.orphans)
    if sweep.handed_on:
        log.info("handed %d tickets on (%d due, %d stale)", len(sweep.handed_on), sweep.due, sweep.stale)
    return sweep


def _to_hand_on(
    rt: Runtime, now: datetime, every: timedelta, sweep: Sweep
) -> Iterator[tuple[str, Stage, str]]:
    for ticket_id, entry in read_pending_items(rt.store.db, rt.settings.counter_shards):
        status, not_before, last = entry.get("status"), entry.get("not_before"), entry.get("handed_on_at")
        if status is None:
            sweep.orphans.append(ticket_id)
            continue
        if last is not None and now - last < every:
            continue  # handed on recently: give the stage time to act on it
        if not_before is not None:
            if not_before > now or status not in PARKED_OWNER:
                sweep.waiting += not_before > now
                continue
            sweep.due += 1
            yield ticket_id, PARKED_OWNER[status], "due"
        elif status in OWNER and now - entry["since"] >= every:
            sweep.stale += 1
            yield ticket_id, OWNER[status], "stale"


def owner_of(ticket: dict) -> Stage | None:
    """The stage that moves this ticket on next, or None (final, or waiting for a reviewer)."""
    status = ticket.get("status")
    if status == Status.NEEDS_REVIEW.value:
        return Stage.ROUTE if (ticket.get("review") or {}).get("decision") else None
    return OWNER.get(status)


def requeue(rt: Runtime, ticket_id: str) -> Stage | None:
    """Hands one ticket to the stage that owns it now (an operator's manual reconcile)."""
    ticket = rt.store.get(ticket_id)
    stage = owner_of(ticket) if ticket else None
    if stage is not None:
        rt.queue.publish(_topic(rt, stage), ticket_id, None, reconciled="manual")
    return stage


def _topic(rt: Runtime, stage: Stage) -> str:
    return rt.settings.classify_topic if stage is Stage.CLASSIFY else rt.settings.route_topic
