"""The reconciler on the Firestore emulator: which unfinished tickets it hands on, where, how often."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import SEED, counter
from triage import __main__ as cli
from triage.config import load_config
from triage.counters import CounterUpdate
from triage.events import TicketMessage
from triage.model import TicketIn, new_ticket_doc
from triage.runtime import Runtime
from triage.settings import Settings
from triage.stages import dead_letter
from triage.stages.reconcile import release_due
from triage.states import FailureReason, Stage, Status
from triage.store import TicketStore, read_pending_items, utcnow

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
SHARDS = 4
EVERY = timedelta(seconds=load_config(ROOT / "config").triage.thresholds.hand_on_after_seconds)


@dataclass
class RecordingQueue:
    published: list[tuple[str, str, dict]] = field(default_factory=list)

    def publish(self, topic: str, ticket_id: str, trace: str | None = None, **attributes: str) -> str:
        self.published.append((topic, ticket_id, attributes))
        return "m"

    def to(self, ticket_id: str) -> list[str]:
        return [topic for topic, published_id, _ in self.published if published_id == ticket_id]


@pytest.fixture
def rt(db) -> Runtime:
    settings = Settings(project="unused", counter_shards=SHARDS)
    return Runtime(settings, store=TicketStore(db, shards=SHARDS), queue=RecordingQueue())


def ticket(rt: Runtime, status: Status = Status.RECEIVED) -> str:
    ticket_id = secrets.token_hex(12)
    rt.store.create(new_ticket_doc(TicketIn.model_validate(SEED), ticket_id, utcnow()))
    if status in (Status.CLASSIFIED, Status.NEEDS_REVIEW):
        changes = {"classification": {"department": "IT", "team": "infrastructure", "confidence": 0.9}}
        rt.store.transition(ticket_id, Status.CLASSIFIED, Stage.CLASSIFY, changes=changes)
    if status is Status.NEEDS_REVIEW:
        rt.store.transition(ticket_id, Status.NEEDS_REVIEW, Stage.ROUTE)
    return ticket_id


def test_a_ticket_without_progress_is_handed_to_the_stage_that_owns_its_state(rt, db):
    received, classified = ticket(rt), ticket(rt, Status.CLASSIFIED)
    in_review = ticket(rt, Status.NEEDS_REVIEW)
    before = counter(db, "triage_reconciler_handed_on", "stage=classify|reason=stale")
    assert rt.queue.to(received) == [] and release_due(rt).handed_on == []  # all fresh: nothing to do
    sweep = release_due(rt, now=utcnow() + EVERY + timedelta(seconds=1))
    assert rt.queue.to(received) == ["triage-classify"]
    assert rt.queue.to(classified) == ["triage-route"]
    assert rt.queue.to(in_review) == []  # waits for a person, not for a stage
    assert {received, classified} <= set(sweep.handed_on) and sweep.stale >= 2
    assert counter(db, "triage_reconciler_handed_on", "stage=classify|reason=stale") >= before + 1
    assert rt.queue.published[0][2] == {"reconciled": "stale"}


def test_a_ticket_is_handed_on_at_most_once_per_interval(rt):
    stuck = ticket(rt)
    later = utcnow() + EVERY + timedelta(seconds=1)
    release_due(rt, now=later)
    release_due(rt, now=later + EVERY / 2)
    assert rt.queue.to(stuck) == ["triage-classify"]
    release_due(rt, now=later + EVERY + timedelta(seconds=1))
    assert rt.queue.to(stuck) == ["triage-classify", "triage-classify"]


def test_moving_on_clears_the_mark_so_the_new_state_gets_its_own_interval(rt):
    stuck = ticket(rt)
    release_due(rt, now=utcnow() + EVERY + timedelta(seconds=1))
    rt.store.transition(stuck, Status.CLASSIFIED, Stage.CLASSIFY, changes={"classification": {}})
    entry = dict(read_pending_items(rt.store.db, SHARDS))[stuck]
    assert entry["status"] == "classified" and "handed_on_at" not in entry


def test_parked_tickets_go_back_to_route_only_when_due(rt):
    parked = ticket(rt, Status.CLASSIFIED)
    until = utcnow() + timedelta(minutes=15)
    rt.store.defer(parked, until, {"delivery_deferred": {"until": until}}, CounterUpdate())
    assert release_due(rt, now=until - timedelta(seconds=1)).waiting >= 1
    assert rt.queue.to(parked) == []
    sweep = release_due(rt, now=until + timedelta(seconds=1))
    assert rt.queue.to(parked) == ["triage-route"] and sweep.due >= 1


def test_a_mark_that_outlived_its_ticket_is_removed(rt):
    finished = ticket(rt)
    rt.store.mark_handed_on([finished], utcnow(), CounterUpdate())
    rt.store.mark_failed(finished, Stage.CLASSIFY, FailureReason.INVALID_TICKET, "test")
    rt.store.mark_handed_on([finished], utcnow(), CounterUpdate())  # lands after the final write
    assert "status" not in dict(read_pending_items(rt.store.db, SHARDS))[finished]
    assert finished in release_due(rt).orphans
    assert finished not in dict(read_pending_items(rt.store.db, SHARDS))


def test_a_dead_letter_behind_a_held_claim_leaves_the_ticket_to_the_reconciler(rt):
    """Every redelivery met the claim of a delivery that died mid-call: failing now could orphan what it
    created, so the ticket stays classified and is handed on once the claim has expired."""
    held = ticket(rt, Status.CLASSIFIED)
    rt.store.ref(held).update({"delivery_claim": {"state": "held", "at": utcnow(), "create_at": utcnow()}})
    message = TicketMessage(held, "m-1", {"CloudPubSubDeadLetterSourceDeliveryCount": "5"})
    assert dead_letter.handle(message, Stage.ROUTE, rt, rt.store.snapshot(held)) == "dead_letter_claim_held"
    assert rt.store.get(held)["status"] == "classified"
    release_due(rt, now=utcnow() + EVERY + timedelta(seconds=1))
    assert rt.queue.to(held) == ["triage-route"]


def test_operator_show_prints_state_without_the_requester_or_text(rt, capsys):
    ticket_id = ticket(rt, Status.CLASSIFIED)
    assert cli.main(["show", ticket_id], rt) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "classified" and shown["next_stage"] == "route"
    assert [h["status"] for h in shown["history"]] == ["received", "classified"]
    assert SEED["email"] not in json.dumps(shown) and SEED["description"] not in json.dumps(shown)
    assert cli.main(["show", "no-such-ticket"], rt) == 1


def test_operator_requeue_hands_on_to_the_owning_stage_and_refuses_final_tickets(rt):
    received, classified = ticket(rt), ticket(rt, Status.CLASSIFIED)
    assert cli.main(["requeue", received, classified], rt) == 0
    assert rt.queue.to(received) == ["triage-classify"] and rt.queue.to(classified) == ["triage-route"]
    rt.store.mark_failed(received, Stage.CLASSIFY, FailureReason.INVALID_TICKET, "test")
    assert cli.main(["requeue", received], rt) == 1
    assert rt.queue.to(received) == ["triage-classify"]  # nothing more sent


def test_operator_reconcile_dry_run_changes_nothing(rt, capsys):
    stale = ticket(rt)
    with_time = utcnow() + EVERY + timedelta(seconds=1)
    assert release_due(rt, now=with_time, dry_run=True).handed_on.count(stale) == 1
    assert rt.queue.to(stale) == []
    assert "handed_on_at" not in dict(read_pending_items(rt.store.db, SHARDS))[stale]
    assert cli.main(["reconcile", "--dry-run"], rt) == 0
    assert "would hand on" in capsys.readouterr().err
