"""classify and route as functions-framework apps receiving real Pub/Sub push bodies, on the emulators."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from pathlib import Path

import pytest
import yaml
from functions_framework import create_app

from devstack.stubs.webhook import WebhookStub
from tests.helpers import SEED, counter, pull_all
from triage import runtime as runtime_module
from triage.model import TicketIn, new_ticket_doc
from triage.states import Stage
from triage.store import TicketStore, utcnow

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "outbound-test-secret"


@pytest.fixture(scope="module")
def webhook():
    with WebhookStub(secret=WEBHOOK_SECRET) as stub:
        yield stub


@pytest.fixture(scope="module")
def stage_config(tmp_path_factory, webhook) -> Path:
    """Shipped config, plus: critical Legal tickets go to a signed webhook (to exercise an external call)."""
    target = tmp_path_factory.mktemp("config")
    for name in ("triage.yaml", "routing.yaml"):
        (target / name).write_text((ROOT / "config" / name).read_text())
    routing = yaml.safe_load((target / "routing.yaml").read_text())
    routing["destinations"]["legal-hook"] = {"system": "webhook", "url": f"{webhook.url}/hook"}
    routing["routes"].insert(
        0, {"department": "Legal", "priority": ["critical"], "destination": "legal-hook"}
    )
    (target / "routing.yaml").write_text(yaml.safe_dump(routing))
    return target


@pytest.fixture(scope="module")
def route_observer(project, pubsub_admin):
    publisher, subscriber = pubsub_admin
    for topic in ("triage-classify", "triage-route"):
        publisher.create_topic(name=publisher.topic_path(project, topic))
    observer = subscriber.subscription_path(project, "observe-route")
    subscriber.create_subscription(
        request={"name": observer, "topic": publisher.topic_path(project, "triage-route")}
    )
    return lambda: pull_all(subscriber, observer)


@pytest.fixture(scope="module")
def apps(project, stage_config, route_observer):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_CLOUD_PROJECT", project)
        mp.setenv("TRIAGE_CONFIG_DIR", str(stage_config))
        mp.setenv("TRIAGE_OUTBOUND_WEBHOOK_SECRET", WEBHOOK_SECRET)
        mp.delenv("TRIAGE_PUSH_PARTITIONS", raising=False)
        runtime_module.reset()
        clients = {
            name: create_app(
                target=name, source=str(ROOT / f"functions/{name}/main.py"), signature_type="cloudevent"
            ).test_client()
            for name in ("classify", "route")
        }
        yield clients
    runtime_module.reset()


@pytest.fixture
def store(db) -> TicketStore:
    return TicketStore(db, shards=4)


def new_ticket(store: TicketStore, **fields) -> str:
    ticket_id = secrets.token_hex(16)
    store.create(new_ticket_doc(TicketIn.model_validate({**SEED, **fields}), ticket_id, utcnow()))
    return ticket_id


def push(client, topic: str, ticket_id: str | None, attributes: dict | None = None, data: dict | None = None):
    """Posts a push body exactly as Pub/Sub (and the emulator) sends it."""
    payload = data if data is not None else {"ticket_id": ticket_id}
    message = {
        "data": base64.b64encode(json.dumps(payload).encode()).decode(),
        "attributes": {**({"ticket_id": ticket_id} if ticket_id else {}), **(attributes or {})},
        "messageId": secrets.token_hex(4),
        "publishTime": "2026-11-29T10:00:00Z",
    }
    return client.post(
        f"/projects/p/topics/{topic}",
        json={"message": message, "subscription": "projects/p/subscriptions/s"},
    )


def classified(store, apps, route_observer, **fields) -> str:
    ticket_id = new_ticket(store, **fields)
    assert push(apps["classify"], "triage-classify", ticket_id).status_code < 300
    route_observer()
    return ticket_id


def test_classify_stores_decision_counts_it_and_hands_on_to_route(store, db, apps, route_observer):
    ticket_id = new_ticket(store)
    before = counter(db, "triage_tickets", "status=classified")
    response = push(apps["classify"], "triage-classify", ticket_id)
    assert response.status_code < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "classified"
    assert ticket["classification"]["department"] == "IT"
    assert ticket["classification"]["classifier"] == "local"
    assert 0 < ticket["classification"]["confidence"] <= 1
    assert [h["status"] for h in ticket["history"]] == ["received", "classified"]
    assert [m.attributes["ticket_id"] for m in route_observer()] == [ticket_id]
    assert counter(db, "triage_tickets", "status=classified") == before + 1


def test_redelivered_classify_message_for_a_routed_ticket_changes_nothing(store, apps, route_observer):
    ticket_id = classified(store, apps, route_observer)
    assert push(apps["route"], "triage-route", ticket_id).status_code < 300
    before = store.snapshot(ticket_id)
    assert before.to_dict()["status"] == "routed"
    assert push(apps["classify"], "triage-classify", ticket_id).status_code < 300
    assert push(apps["route"], "triage-route", ticket_id).status_code < 300
    after = store.snapshot(ticket_id)
    assert after.update_time == before.update_time
    assert route_observer() == []


def test_concurrent_deliveries_classify_once(store, db, apps, route_observer):
    """One transition and one count; the hand-off to route is at least once (route ignores repeats)."""
    ticket_id = new_ticket(store)
    before = counter(db, "triage_tickets_classified", "department=IT|classifier=local")
    threads = [
        threading.Thread(target=push, args=(apps["classify"], "triage-classify", ticket_id)) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.get(ticket_id)["history"]) == 2
    assert counter(db, "triage_tickets_classified", "department=IT|classifier=local") == before + 1
    handed_on = [m.attributes["ticket_id"] for m in route_observer()]
    assert 1 <= len(handed_on) <= 4 and set(handed_on) == {ticket_id}


def test_route_delivers_to_log_and_records_the_delivery(store, db, apps, route_observer):
    ticket_id = classified(store, apps, route_observer)
    before = counter(db, "triage_tickets_routed", "department=IT|system=log")
    assert push(apps["route"], "triage-route", ticket_id).status_code < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "routed"
    assert ticket["destination"] == {"name": "log", "system": "log", "ref": f"log:{ticket_id}", "url": None}
    assert db.collection("deliveries").document(ticket_id).get().to_dict()["department"] == "IT"
    assert counter(db, "triage_tickets_routed", "department=IT|system=log") == before + 1


def test_low_confidence_goes_to_review_instead_of_routing(store, apps, route_observer):
    ticket_id = classified(store, apps, route_observer, title="hello", description="question")
    store.ref(ticket_id).update({"classification.confidence": 0.1})
    assert push(apps["route"], "triage-route", ticket_id).status_code < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "needs_review" and ticket["review"]["reason"] == "low_confidence"


def test_dead_letter_marks_ticket_failed_with_the_last_error(store, db, apps):
    ticket_id = new_ticket(store)
    store.record_error(ticket_id, Stage.CLASSIFY, "ServiceUnavailable: model down")
    before = counter(db, "triage_tickets_failed", "stage=classify|reason=dead_letter")
    response = push(
        apps["classify"], "triage-classify-dlq", ticket_id, {"CloudPubSubDeadLetterSourceDeliveryCount": "5"}
    )
    assert response.status_code < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "failed"
    assert ticket["failure"]["reason"] == "dead_letter" and ticket["failure"]["stage"] == "classify"
    assert "5 deliveries" in ticket["failure"]["detail"] and "model down" in ticket["failure"]["detail"]
    assert counter(db, "triage_tickets_failed", "stage=classify|reason=dead_letter") == before + 1


def test_dead_letter_for_a_routed_ticket_only_counts(store, db, apps, route_observer):
    ticket_id = classified(store, apps, route_observer)
    push(apps["route"], "triage-route", ticket_id)
    before = counter(db, "triage_dead_letter_messages", "stage=route")
    push(apps["route"], "triage-route-dlq", ticket_id, {"CloudPubSubDeadLetterSourceDeliveryCount": "5"})
    assert store.get(ticket_id)["status"] == "routed"
    assert counter(db, "triage_dead_letter_messages", "stage=route") == before + 1


@pytest.mark.parametrize(
    "data", [{"nothing": "here"}, {"ticket_id": "../../etc"}], ids=["no ticket id", "path-like id"]
)
def test_malformed_messages_are_acknowledged_not_retried(apps, data):
    assert push(apps["classify"], "triage-classify", None, data=data).status_code < 300


def test_message_for_unknown_ticket_is_acknowledged(apps):
    assert push(apps["route"], "triage-route", secrets.token_hex(16)).status_code < 300


def test_route_failure_is_retried_then_permanent_error_fails_the_ticket(store, apps, route_observer, webhook):
    ticket_id = classified(
        store,
        apps,
        route_observer,
        title="NDA review",
        description="Please review the NDA for the new vendor contract",
        priority="critical",
    )
    assert store.get(ticket_id)["classification"]["department"] == "Legal"
    webhook.fail_next(5, status=503)
    assert push(apps["route"], "triage-route", ticket_id).status_code == 500  # transient: Pub/Sub retries
    assert store.get(ticket_id)["last_error"]["stage"] == "route"
    webhook.reset()
    webhook.fail_next(1, status=400, body={"error": "bad request: missing field"})
    assert push(apps["route"], "triage-route", ticket_id).status_code < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "failed" and ticket["failure"]["reason"] == "destination_rejected"
    assert WEBHOOK_SECRET not in ticket["failure"]["detail"]
