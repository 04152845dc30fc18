"""Tickets in Firestore: idempotent creation and atomic, forward-only state transitions.

A transition is one batch commit guarded by the ticket's `update_time` (optimistic concurrency: two RPCs,
no transaction locks), carrying the ticket update, a history entry and every counter increment the change
implies, so counters never disagree with stored state, even after a crash.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud.firestore import DELETE_FIELD, ArrayUnion

from triage import metrics as m
from triage.counters import CounterUpdate
from triage.model import history_entry
from triage.states import FailureReason, Stage, Status, can_transition, is_final

TICKETS = "tickets"
# The unfinished tickets, as map entries in `shards` documents: reading them costs the same whatever the
# number of tickets stored (no query: the emulator's query cost grows with every document ever written).
PENDING = "pending"
IDEMPOTENCY = "idempotency"
IDEMPOTENCY_TTL = timedelta(days=7)
# Another delivery of the same ticket may be committing at the same moment; after this many lost races the
# state has settled and the caller should look again.
MAX_COMMIT_RACES = 5
# A sender (n8n: 300 s by default, many clients 30-60 s) must hear 503 + Retry-After well before it gives up,
# rather than wait for the client library's 60 s default while Firestore stalls.
CREATE_DEADLINE_S = 10.0
# A group commit failing like this says nothing about its entries: retrying each alone would only wait longer.
_UNREACHABLE = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError, TimeoutError)

log = logging.getLogger(__name__)


def pending_shard(ticket_id: str, shards: int) -> int:
    # Deterministic, so that leaving a state deletes the entry that entering it wrote.
    return int.from_bytes(hashlib.blake2b(ticket_id.encode(), digest_size=4).digest(), "big") % shards


def read_pending(db: Any, shards: int, timeout_s: float | None = None) -> Iterator[dict[str, Any]]:
    """Every unfinished ticket: {"status", "since"} and, while its delivery is deferred, "not_before"."""
    for _ticket_id, entry in read_pending_items(db, shards, timeout_s):
        yield entry


def read_pending_items(
    db: Any, shards: int, timeout_s: float | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(ticket id, entry) of every unfinished ticket."""
    refs = [db.collection(PENDING).document(f"{k:03d}") for k in range(shards)]
    options = {"retry": None, "timeout": timeout_s} if timeout_s else {}
    for snap in db.get_all(refs, **options):
        yield from ((snap.to_dict() or {}).get("tickets") or {}).items()


def utcnow() -> datetime:
    return datetime.now(UTC)


class TicketNotFound(LookupError):
    pass


class ReviewConflict(Exception):
    pass


@dataclass(frozen=True)
class Created:
    ticket_id: str
    created: bool  # False: the idempotency key was seen before
    publish_pending: bool  # True: nobody has confirmed publishing this ticket yet
    status: str = Status.RECEIVED.value


@dataclass(frozen=True)
class Transition:
    applied: bool
    ticket: dict[str, Any]

    @property
    def status(self) -> Status:
        return Status(self.ticket["status"])


@dataclass
class TicketStore:
    db: Any
    shards: int = 16
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)

    # -- creation ---------------------------------------------------------------------------------------

    def ref(self, ticket_id: str) -> Any:
        return self.db.collection(TICKETS).document(ticket_id)

    def _idempotency_ref(self, key: str) -> Any:
        return self.db.collection(IDEMPOTENCY).document(hashlib.sha256(key.encode()).hexdigest())

    def create(self, doc: dict[str, Any], idempotency_key: str | None = None) -> Created:
        """Writes a new ticket (and its idempotency record) atomically, counting it as received."""
        batch = self.db.batch()
        self._add_creation(batch, doc, idempotency_key)
        self._received(1).write_to(batch, self.db, self.shards, self.rng)
        try:
            batch.commit(timeout=CREATE_DEADLINE_S)
        except gexc.AlreadyExists:
            if not idempotency_key:
                raise
            return self._existing(idempotency_key)
        return Created(doc["id"], created=True, publish_pending=True)

    def create_many(self, entries: list[tuple[dict[str, Any], str | None]]) -> list[Created | Exception]:
        """One commit for many new tickets (each still all-or-nothing, counted once for all).

        One entry can never fail another: an entry the client cannot encode stays out of the commit with its
        own error, and if the commit fails for any reason but Firestore being unreachable (a repeated
        idempotency key, or a document Firestore refuses), each is created on its own instead.
        """
        if len(entries) == 1:
            return [self._create_or_error(*entries[0])]
        batch = self.db.batch()
        errors = self._stage_creations(batch, entries)
        joined = [entry for n, entry in enumerate(entries) if n not in errors]
        committed = iter(self._commit_group(batch, joined) if joined else [])
        return [errors[n] if n in errors else next(committed) for n in range(len(entries))]

    def _stage_creations(
        self, batch: Any, entries: list[tuple[dict[str, Any], str | None]]
    ) -> dict[int, Exception]:
        """Adds each entry's writes to `batch`; returns the errors of those that could not be encoded."""
        errors: dict[int, Exception] = {}
        for n, (doc, key) in enumerate(entries):
            try:
                self._add_creation(batch, doc, key)
            except Exception as exc:  # e.g. an integer outside int64: raised before any write was added
                errors[n] = exc
        return errors

    def _commit_group(
        self, batch: Any, entries: list[tuple[dict[str, Any], str | None]]
    ) -> list[Created | Exception]:
        self._received(len(entries)).write_to(batch, self.db, self.shards, self.rng)
        try:
            batch.commit(timeout=CREATE_DEADLINE_S)
        except _UNREACHABLE as exc:  # every entry would fail the same way, each after its own wait
            return [exc] * len(entries)
        except Exception:
            return [self._create_or_error(doc, key) for doc, key in entries]
        return [Created(doc["id"], created=True, publish_pending=True) for doc, _ in entries]

    def _create_or_error(self, doc: dict[str, Any], key: str | None) -> Created | Exception:
        try:
            return self.create(doc, key)
        except Exception as exc:
            return exc

    def _add_creation(self, batch: Any, doc: dict[str, Any], idempotency_key: str | None) -> None:
        # First, and encoded before it is added: an unencodable ticket raises with nothing of it in `batch`.
        batch.create(self.ref(doc["id"]), doc)
        self._track_pending(batch, doc["id"], Status.RECEIVED, doc["created_at"])
        if idempotency_key:
            batch.create(
                self._idempotency_ref(idempotency_key),
                {
                    "ticket_id": doc["id"],
                    "published": False,
                    "created_at": doc["created_at"],
                    "expire_at": doc["created_at"] + IDEMPOTENCY_TTL,
                },
            )

    @staticmethod
    def _received(n: int) -> CounterUpdate:
        return (
            CounterUpdate()
            .inc(m.TICKETS_RECEIVED, None, n)
            .inc(m.TICKETS_BY_STATUS, {"status": Status.RECEIVED}, n)
        )

    def _existing(self, idempotency_key: str) -> Created:
        record = self._idempotency_ref(idempotency_key).get().to_dict() or {}
        ticket = self.get(record["ticket_id"]) or {}
        return Created(
            record["ticket_id"],
            created=False,
            publish_pending=not record.get("published", False),
            status=ticket.get("status", Status.RECEIVED.value),
        )

    def mark_published(self, idempotency_key: str) -> None:
        self._idempotency_ref(idempotency_key).update({"published": True})

    # -- reads ------------------------------------------------------------------------------------------

    def snapshot(self, ticket_id: str) -> Any:
        return self.ref(ticket_id).get()

    def ping(self, timeout_s: float = 3.0) -> None:
        """One cheap read with no retries: raises if Firestore does not answer in time."""
        self.ref("_healthz").get(retry=None, timeout=timeout_s)

    def get(self, ticket_id: str) -> dict[str, Any] | None:
        snap = self.snapshot(ticket_id)
        return snap.to_dict() if snap.exists else None

    # -- transitions ------------------------------------------------------------------------------------

    def transition(
        self,
        ticket_id: str,
        target: Status,
        stage: Stage,
        changes: dict[str, Any] | None = None,
        counters: CounterUpdate | None = None,
        note: str | None = None,
        snapshot: Any = None,
        also: Callable[[Any, dict[str, Any]], None] | None = None,
    ) -> Transition:
        """Moves a ticket forward if the state machine allows it; otherwise returns it unchanged.

        `also(batch, ticket)` may add writes that must commit together with the transition.
        """
        snap = snapshot
        for _ in range(MAX_COMMIT_RACES):
            snap = snap if snap is not None else self.snapshot(ticket_id)
            if not snap.exists:
                raise TicketNotFound(ticket_id)
            ticket = snap.to_dict()
            if not can_transition(ticket["status"], target):
                return Transition(False, ticket)
            now = self.clock()
            entry = history_entry(target, stage.value, now, note)
            update = {
                **(changes or {}),
                "status": target.value,
                "updated_at": now,
                "history": ArrayUnion([entry]),
            }
            batch = self.db.batch()
            batch.update(
                self.ref(ticket_id), update, option=self.db.write_option(last_update_time=snap.update_time)
            )
            self._transition_counters(ticket, target, stage, now, counters).write_to(
                batch, self.db, self.shards, self.rng
            )
            self._track_pending(batch, ticket_id, target, now)
            if also:
                also(batch, ticket)
            try:
                batch.commit()
            except gexc.FailedPrecondition:
                snap = None  # another delivery changed the ticket first: look again
                continue
            return Transition(True, {**ticket, **update, "history": [*ticket.get("history", []), entry]})
        raise gexc.Aborted(f"ticket {ticket_id}: too many concurrent updates")

    def _track_pending(self, batch: Any, ticket_id: str, status: Status, since: datetime) -> None:
        """Keeps the unfinished tickets, and only those, in a fixed set of documents (see `read_pending`)."""
        entry = (
            DELETE_FIELD
            if is_final(status)
            # A new state starts undeferred: a merge would otherwise keep the old state's not_before.
            else {
                "status": status.value,
                "since": since,
                "not_before": DELETE_FIELD,
                "handed_on_at": DELETE_FIELD,
            }
        )
        batch.set(self._pending_ref(ticket_id), {"tickets": {ticket_id: entry}}, merge=True)

    def _pending_ref(self, ticket_id: str) -> Any:
        return self.db.collection(PENDING).document(f"{pending_shard(ticket_id, self.shards):03d}")

    @staticmethod
    def _transition_counters(
        ticket: dict[str, Any], target: Status, stage: Stage, now: datetime, extra: CounterUpdate | None
    ) -> CounterUpdate:
        entered = ticket["history"][-1]["at"] if ticket.get("history") else ticket["created_at"]
        counters = (
            CounterUpdate()
            .inc(m.TICKETS_BY_STATUS, {"status": ticket["status"]}, -1)
            .inc(m.TICKETS_BY_STATUS, {"status": target})
        )
        if target is not Status.FAILED:
            counters.observe(m.STAGE_DURATION, {"stage": stage}, max(0.0, (now - entered).total_seconds()))
        if target is Status.ROUTED and ticket["status"] == Status.CLASSIFIED:  # human review time excluded
            counters.observe(
                m.END_TO_END_DURATION, None, max(0.0, (now - ticket["created_at"]).total_seconds())
            )
        return counters.merge(extra) if extra else counters

    def mark_failed(
        self,
        ticket_id: str,
        stage: Stage,
        reason: FailureReason,
        detail: str,
        counters: CounterUpdate | None = None,
        snapshot: Any = None,
    ) -> Transition:
        failed = CounterUpdate().inc(m.TICKETS_FAILED, {"stage": stage, "reason": reason})
        return self.transition(
            ticket_id,
            Status.FAILED,
            stage,
            changes={"failure": {"stage": stage.value, "reason": reason.value, "detail": detail[:1000]}},
            counters=failed.merge(counters) if counters else failed,
            note=reason.value,
            snapshot=snapshot,
        )

    def record_review(self, ticket_id: str, decision: dict[str, Any]) -> bool:
        """Stores a reviewer's decision on a ticket in needs_review, counting the correction once.

        Returns False when the same decision was already recorded (a retried request); raises
        ReviewConflict when the ticket is not in review or was reviewed differently.
        """
        for _ in range(MAX_COMMIT_RACES):
            snap = self.snapshot(ticket_id)
            if not snap.exists:
                raise TicketNotFound(ticket_id)
            ticket = snap.to_dict()
            if ticket["status"] != Status.NEEDS_REVIEW:
                raise ReviewConflict(f"ticket is {ticket['status']}, not needs_review")
            earlier = (ticket.get("review") or {}).get("decision")
            if earlier:
                if (earlier["department"], earlier["team"]) == (decision["department"], decision["team"]):
                    return False
                raise ReviewConflict("ticket was already reviewed with another decision")
            labels = {
                "from_department": (ticket.get("classification") or {}).get("department", "unknown"),
                "to_department": decision["department"],
            }
            batch = self.db.batch()
            batch.update(
                self.ref(ticket_id),
                {"review.decision": {**decision, "at": self.clock()}},
                option=self.db.write_option(last_update_time=snap.update_time),
            )
            CounterUpdate().inc(m.REVIEW_CORRECTIONS, labels).write_to(batch, self.db, self.shards, self.rng)
            try:
                batch.commit()
            except gexc.FailedPrecondition:
                continue
            return True
        raise gexc.Aborted(f"ticket {ticket_id}: too many concurrent updates")

    def defer(
        self,
        ticket_id: str,
        until: datetime,
        changes: dict[str, Any],
        counters: CounterUpdate,
        snapshot: Any = None,
    ) -> bool:
        """Parks an unfinished ticket until `until` without changing its state, applying `changes`: the
        reconciler hands it on again then (`read_pending_items` shows `not_before`). False if it moved on."""
        snap = snapshot
        for _ in range(MAX_COMMIT_RACES):
            snap = snap if snap is not None else self.snapshot(ticket_id)
            ticket = snap.to_dict() or {}
            if not snap.exists or is_final(ticket["status"]):
                return False
            batch = self.db.batch()
            batch.update(
                self.ref(ticket_id),
                changes,
                option=self.db.write_option(last_update_time=snap.update_time),
            )
            batch.set(
                self._pending_ref(ticket_id),
                {"tickets": {ticket_id: {"status": ticket["status"], "not_before": until}}},
                merge=True,
            )
            counters.write_to(batch, self.db, self.shards, self.rng)
            try:
                batch.commit()
            except gexc.FailedPrecondition:
                snap = None
                continue
            return True
        raise gexc.Aborted(f"ticket {ticket_id}: too many concurrent updates")

    def mark_handed_on(self, ticket_ids: list[str], at: datetime, counters: CounterUpdate) -> None:
        """Notes on the pending index when the reconciler last handed these tickets on (one commit)."""
        batch = self.db.batch()
        for ticket_id in ticket_ids:
            entry = {"tickets": {ticket_id: {"handed_on_at": at}}}
            batch.set(self._pending_ref(ticket_id), entry, merge=True)
        counters.write_to(batch, self.db, self.shards, self.rng)
        batch.commit()

    def forget_pending(self, ticket_ids: list[str]) -> None:
        """Drops index entries of finished tickets (a stray mark can outlive its ticket's final write)."""
        batch = self.db.batch()
        for ticket_id in ticket_ids[:500]:
            batch.set(self._pending_ref(ticket_id), {"tickets": {ticket_id: DELETE_FIELD}}, merge=True)
        batch.commit()

    def record_error(self, ticket_id: str, stage: Stage, detail: str) -> None:
        """Best effort: remembers why the last attempt failed, so a dead letter can say why it gave up."""
        try:
            self.ref(ticket_id).update(
                {"last_error": {"stage": stage.value, "detail": detail[:500], "at": self.clock()}}
            )
        except gexc.GoogleAPIError:
            log.warning("could not record the error on the ticket", exc_info=True)

    def count(self, counters: CounterUpdate) -> None:
        """Counter increments that belong to no state change."""
        batch = self.db.batch()
        counters.write_to(batch, self.db, self.shards, self.rng)
        batch.commit()
