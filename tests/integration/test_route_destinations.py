"""The route function delivering to Jira, Freshservice and Slack stubs: formats, faults, exactly-once."""

from __future__ import annotations

import base64
import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from functions_framework import create_app

from devstack.stubs.freshservice import FreshserviceStub
from devstack.stubs.jira import JiraStub
from devstack.stubs.slack import SlackStub
from tests.helpers import SEED, counter
from triage import runtime as runtime_module
from triage.model import TicketIn, new_ticket_doc
from triage.states import Stage, Status
from triage.store import TicketStore, utcnow

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
JIRA_TOKEN, FS_KEY = "jira-secret-token", "fs-secret-key"
SYSTEM_OF = {"IT": "jira", "HR": "freshservice", "Facilities": "slack"}


@pytest.fixture(scope="module")
def stubs():
    with (
        JiraStub(api_token=JIRA_TOKEN, email="bot@example.com") as jira,
        FreshserviceStub(api_key=FS_KEY) as fs,
        SlackStub() as slack,
    ):
        yield {"jira": jira, "freshservice": fs, "slack": slack}


@pytest.fixture(autouse=True)
def clean_stubs(stubs):
    for stub in stubs.values():
        stub.reset()


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory, stubs) -> Path:
    target = tmp_path_factory.mktemp("config")
    (target / "triage.yaml").write_text((ROOT / "config/triage.yaml").read_text())
    routing = yaml.safe_load((ROOT / "config/routing.yaml").read_text())
    routing["destinations"].update(
        {
            "it-jira": {
                "system": "jira",
                "base_url": stubs["jira"].url,
                "project_key": "OPS",
                "issue_type": "Task",
                # The stubs' default search lag is 1 s: a tight bound keeps the recovery waits short here.
                "search_lag_seconds": 1.5,
            },
            "hr-freshservice": {
                "system": "freshservice",
                "base_url": stubs["freshservice"].url,
                "group_id": 42,
                "search_lag_seconds": 1.5,
            },
            "facilities-slack": {"system": "slack", "webhook_url_env": "SLACK_FACILITIES_WEBHOOK"},
            "review-slack": {"system": "slack", "webhook_url_env": "SLACK_REVIEW_WEBHOOK_URL"},
        }
    )
    chosen = {"IT": "it-jira", "HR": "hr-freshservice", "Facilities": "facilities-slack"}
    for route in routing["routes"]:
        route["destination"] = chosen.get(route["department"], route["destination"])
    routing["review"] = {"destination": "review-slack"}
    (target / "routing.yaml").write_text(yaml.safe_dump(routing))
    return target


@pytest.fixture(scope="module")
def apps(project, pubsub_admin, config_dir, stubs):
    publisher, _ = pubsub_admin
    for topic in ("triage-classify", "triage-route"):
        publisher.create_topic(name=publisher.topic_path(project, topic))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "GOOGLE_CLOUD_PROJECT": project,
            "TRIAGE_CONFIG_DIR": str(config_dir),
            "TRIAGE_WEBHOOK_SECRET": "review-secret",
            "JIRA_EMAIL": "bot@example.com",
            "JIRA_API_TOKEN": JIRA_TOKEN,
            "FRESHSERVICE_API_KEY": FS_KEY,
            "SLACK_FACILITIES_WEBHOOK": stubs["slack"].webhook_url,
            "SLACK_REVIEW_WEBHOOK_URL": stubs["slack"].webhook_url,
        }.items():
            mp.setenv(key, value)
        mp.delenv("TRIAGE_PUSH_PARTITIONS", raising=False)
        runtime_module.reset()
        yield {
            "route": create_app(
                target="route", source=str(ROOT / "functions/route/main.py"), signature_type="cloudevent"
            ),
            "intake": create_app(
                target="intake", source=str(ROOT / "functions/intake/main.py"), signature_type="http"
            ),
        }
    runtime_module.reset()


@pytest.fixture
def store(db) -> TicketStore:
    return TicketStore(db, shards=4)


def classified(store: TicketStore, department: str, confidence: float = 0.93, **fields) -> str:
    ticket_id = secrets.token_hex(16)
    store.create(new_ticket_doc(TicketIn.model_validate({**SEED, **fields}), ticket_id, utcnow()))
    team = {"IT": "infrastructure", "HR": "payroll-benefits", "Facilities": "maintenance"}.get(department)
    classification = {"department": department, "team": team, "confidence": confidence, "classifier": "local"}
    store.transition(ticket_id, Status.CLASSIFIED, Stage.CLASSIFY, changes={"classification": classification})
    return ticket_id


def push(app, ticket_id: str) -> int:
    data = base64.b64encode(json.dumps({"ticket_id": ticket_id}).encode()).decode()
    message = {
        "data": data,
        "attributes": {"ticket_id": ticket_id},
        "messageId": secrets.token_hex(4),
        "publishTime": "2026-11-29T10:00:00Z",
    }
    return (
        app.test_client()
        .post("/projects/p/topics/triage-route", json={"message": message, "subscription": "s"})
        .status_code
    )


def deliver_like_pubsub(app, ticket_id: str, give_up_after_s: float = 120.0) -> int:
    """Redeliver until acknowledged, backing off as a push subscription does (here 0.2 s doubling to 5 s)."""
    deadline, backoff = time.monotonic() + give_up_after_s, 0.2
    while (status := push(app, ticket_id)) >= 300 and time.monotonic() < deadline:
        time.sleep(backoff)
        backoff = min(5.0, backoff * 2)
    return status


def external_count(stubs, system: str) -> int:
    stub = stubs[system]
    return len(
        {"jira": lambda: stub.issues, "freshservice": lambda: stub.tickets, "slack": lambda: stub.messages}[
            system
        ]()
    )


# -- formats -----------------------------------------------------------------------------------------


def test_jira_issue_is_created_with_the_v3_shape(store, apps, stubs):
    ticket_id = classified(store, "IT", priority="critical")
    assert push(apps["route"], ticket_id) < 300
    [create] = [r for r in stubs["jira"].requests if r.method == "POST"]
    assert create.path == "/rest/api/3/issue"
    assert create.basic_auth() == ("bot@example.com", JIRA_TOKEN)
    fields = create.json["fields"]
    assert fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == SEED["title"] and fields["priority"] == {"name": "Highest"}
    assert f"triage-{ticket_id}" in fields["labels"]
    assert fields["description"]["type"] == "doc" and ticket_id in json.dumps(fields["description"])
    ticket = store.get(ticket_id)
    assert ticket["status"] == "routed"
    assert ticket["destination"]["system"] == "jira" and ticket["destination"]["ref"] in stubs["jira"].issues


def test_freshservice_ticket_is_created_with_numbers_for_priority_and_status(store, apps, stubs, db):
    ticket_id = classified(store, "HR", priority="low")
    before = counter(db, "triage_tickets_routed", "department=HR|system=freshservice")
    assert push(apps["route"], ticket_id) < 300
    [create] = [r for r in stubs["freshservice"].requests if r.method == "POST"]
    assert create.path == "/api/v2/tickets"
    assert create.basic_auth() == (FS_KEY, "X")
    body = create.json
    assert (body["priority"], body["status"], body["group_id"]) == (1, 2, 42)
    assert body["email"] == SEED["email"] and body["subject"] == SEED["title"]
    assert f"triage-{ticket_id}" in body["tags"]
    assert store.get(ticket_id)["destination"]["ref"] == str(next(iter(stubs["freshservice"].tickets)))
    assert counter(db, "triage_tickets_routed", "department=HR|system=freshservice") == before + 1


def test_slack_gets_block_kit_without_the_requester_email(store, apps, stubs):
    ticket_id = classified(store, "Facilities")
    assert push(apps["route"], ticket_id) < 300
    [(_, message)] = stubs["slack"].messages
    assert message["blocks"] and message["text"]
    assert SEED["email"] not in json.dumps(message)
    assert store.get(ticket_id)["destination"] == {
        "name": "facilities-slack",
        "system": "slack",
        "ref": f"slack:{ticket_id}",
        "url": None,
    }


# -- faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("department", ["IT", "HR", "Facilities"])
def test_permanent_error_fails_the_ticket_with_the_destination_message(store, apps, stubs, department):
    system = SYSTEM_OF[department]
    stubs[system].fail_next(1, status=400)
    ticket_id = classified(store, department)
    assert push(apps["route"], ticket_id) < 300  # acknowledged: a retry cannot help
    ticket = store.get(ticket_id)
    assert ticket["status"] == "failed" and ticket["failure"]["reason"] == "destination_rejected"
    assert "400" in ticket["failure"]["detail"]
    assert JIRA_TOKEN not in ticket["failure"]["detail"] and FS_KEY not in ticket["failure"]["detail"]
    assert external_count(stubs, system) == 0


@pytest.mark.parametrize("department", ["IT", "HR", "Facilities"])
def test_transient_errors_are_retried_within_the_invocation(store, apps, stubs, department):
    system = SYSTEM_OF[department]
    stubs[system].fail_next(1, status=503)
    ticket_id = classified(store, department)
    assert push(apps["route"], ticket_id) < 300
    assert store.get(ticket_id)["status"] == "routed"
    assert external_count(stubs, system) == 1


@pytest.mark.parametrize("department", ["IT", "HR"])
def test_rate_limit_then_outage_leaves_retry_to_pubsub_and_creates_once(store, apps, stubs, department):
    system = SYSTEM_OF[department]
    stubs[system].rate_limit_next(1, retry_after=1)
    stubs[system].fail_next(20, status=500)
    ticket_id = classified(store, department)
    assert push(apps["route"], ticket_id) == 500  # bounded in-invocation retries used up
    ticket = store.get(ticket_id)
    assert ticket["status"] == "classified" and ticket["last_error"]["stage"] == "route"
    assert ticket["delivery_claim"]["state"] == "released"
    stubs[system].reset()
    assert push(apps["route"], ticket_id) < 300
    assert store.get(ticket_id)["status"] == "routed" and external_count(stubs, system) == 1


@pytest.mark.parametrize("department", ["IT", "HR"])
def test_crash_after_create_finds_the_existing_ticket_instead_of_creating_another(
    store, apps, stubs, department
):
    system = SYSTEM_OF[department]
    stubs[system].crash_after_create_next(1)
    ticket_id = classified(store, department)
    assert push(apps["route"], ticket_id) < 300
    assert store.get(ticket_id)["status"] == "routed"
    assert external_count(stubs, system) == 1


@pytest.mark.parametrize("department", ["IT", "HR", "Facilities"])
def test_duplicate_delivery_creates_one_external_ticket(store, apps, stubs, department):
    ticket_id = classified(store, department)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: deliver_like_pubsub(apps["route"], ticket_id), range(2)))
    assert push(apps["route"], ticket_id) < 300
    assert store.get(ticket_id)["status"] == "routed"
    assert external_count(stubs, SYSTEM_OF[department]) == 1


# -- review ------------------------------------------------------------------------------------------


def review(apps, ticket_id: str, body: dict) -> tuple[int, dict]:
    response = (
        apps["intake"]
        .test_client()
        .post(f"/tickets/{ticket_id}/review", json=body, headers={"Authorization": "Bearer review-secret"})
    )
    return response.status_code, response.get_json()


def test_low_confidence_ticket_is_posted_for_review_then_routed_as_the_reviewer_decides(
    store, apps, stubs, db
):
    ticket_id = classified(store, "Facilities", confidence=0.2)
    assert push(apps["route"], ticket_id) < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "needs_review" and ticket["review"]["reason"] == "low_confidence"
    [(_, note)] = stubs["slack"].messages
    assert ticket_id in json.dumps(note)
    before = counter(db, "triage_review_corrections", "from_department=Facilities|to_department=IT")
    status, body = review(
        apps, ticket_id, {"department": "IT", "reviewer": "ops-lead", "note": "it is a laptop"}
    )
    assert status == 202 and body["review"] == {"department": "IT", "team": "service-desk"}
    assert review(apps, ticket_id, {"department": "IT"})[0] == 202  # a retried request is harmless
    assert push(apps["route"], ticket_id) < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "routed" and ticket["destination"]["system"] == "jira"
    assert [h["status"] for h in ticket["history"]] == ["received", "classified", "needs_review", "routed"]
    assert (
        counter(db, "triage_review_corrections", "from_department=Facilities|to_department=IT") == before + 1
    )


def test_review_errors_are_clear(store, apps):
    assert review(apps, "nosuchticket", {"department": "IT"})[0] == 404
    routed_elsewhere = classified(store, "IT")
    assert review(apps, routed_elsewhere, {"department": "HR"})[0] == 409
    pending = classified(store, "HR", confidence=0.1)
    push(apps["route"], pending)
    status, body = review(apps, pending, {"department": "Sales"})
    assert status == 422 and body["detail"][0]["field"] == "department"
    status, body = review(apps, pending, {"department": "HR", "team": "infrastructure"})
    assert status == 422 and body["detail"][0]["field"] == "team"
    assert review(apps, pending, {"department": "HR"})[0] == 202
    assert review(apps, pending, {"department": "Legal"})[0] == 409
    unauthenticated = (
        apps["intake"].test_client().post(f"/tickets/{pending}/review", json={"department": "HR"})
    )
    assert unauthenticated.status_code == 401
    assert review(apps, pending, {"reject": True, "department": "HR"})[0] == 422


def test_reviewer_can_reject_a_ticket(store, apps, db):
    pending = classified(store, "General", confidence=0.1)
    push(apps["route"], pending)
    before = counter(db, "triage_tickets_failed", "stage=review|reason=review_rejected")
    status, body = review(apps, pending, {"reject": True, "reviewer": "ops", "note": "spam"})
    assert status == 200 and body["status"] == "failed"
    ticket = store.get(pending)
    assert ticket["failure"] == {
        "stage": "review",
        "reason": "review_rejected",
        "detail": "rejected by ops: spam",
    }
    assert counter(db, "triage_tickets_failed", "stage=review|reason=review_rejected") == before + 1
    assert review(apps, pending, {"reject": True})[0] == 409
