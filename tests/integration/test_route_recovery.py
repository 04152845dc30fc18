"""Route against stubs that behave as the real services do when it hurts: searches that lag behind creates,
creates that land although the answer is lost, rate-limit windows far longer than Pub/Sub's backoff, and
permanent errors that a redelivery cannot fix."""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from functions_framework import create_app

from devstack.stubs.freshservice import FreshserviceStub
from devstack.stubs.jira import JiraStub
from devstack.stubs.slack import SlackStub
from tests.helpers import SEED, counter, pull_all
from tests.integration.test_route_destinations import deliver_like_pubsub, push
from triage import runtime as runtime_module
from triage.model import TicketIn, new_ticket_doc, public_view
from triage.stages.reconcile import release_due
from triage.states import Stage, Status
from triage.store import TicketStore, read_pending_items, utcnow

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
JIRA_TOKEN, FS_KEY = "jira-secret-token", "fs-secret-key"
SEARCH_LAG_S = 3.0  # the stubs' lag: Jira's and Freshservice's searches are eventually consistent
LAG_BOUND_S = 3.5  # what routing.yaml tells route to assume
SLOW_LAG_BOUND_S = 11.0
TEAM = {
    "IT": "infrastructure",
    "HR": "payroll-benefits",
    "Facilities": "maintenance",
    "Legal": "contracts",
    "Security": "security-operations",
}


@pytest.fixture(scope="module")
def stubs():
    with (
        JiraStub(api_token=JIRA_TOKEN, email="bot@example.com", search_lag=SEARCH_LAG_S) as jira,
        FreshserviceStub(api_key=FS_KEY, search_lag=SEARCH_LAG_S) as fs,
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
    jira = {"system": "jira", "base_url": stubs["jira"].url, "project_key": "OPS"}
    routing["destinations"].update(
        {
            "it-jira": {**jira, "search_lag_seconds": LAG_BOUND_S},
            "hr-freshservice": {
                "system": "freshservice",
                "base_url": stubs["freshservice"].url,
                "search_lag_seconds": LAG_BOUND_S,
            },
            "legal-jira": {**jira, "api_token_env": "TRIAGE_TEST_TOKEN_NEVER_SET"},
            # A lag bound longer than route parks for: the wait for search is handed to the reconciler.
            "security-jira": {**jira, "search_lag_seconds": SLOW_LAG_BOUND_S},
            "review-slack": {"system": "slack", "webhook_url_env": "SLACK_REVIEW_WEBHOOK_URL"},
        }
    )
    chosen = {"IT": "it-jira", "HR": "hr-freshservice", "Legal": "legal-jira", "Security": "security-jira"}
    for route in routing["routes"]:
        route["destination"] = chosen.get(route["department"], route["destination"])
    routing["review"] = {"destination": "review-slack"}
    (target / "routing.yaml").write_text(yaml.safe_dump(routing))
    return target


@pytest.fixture(scope="module")
def apps(project, pubsub_admin, config_dir, stubs):
    publisher, subscriber = pubsub_admin
    topic = publisher.topic_path(project, "triage-route")
    publisher.create_topic(name=topic)
    subscription = subscriber.subscription_path(project, "route-watch")
    subscriber.create_subscription(name=subscription, topic=topic)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "GOOGLE_CLOUD_PROJECT": project,
            "TRIAGE_CONFIG_DIR": str(config_dir),
            "JIRA_EMAIL": "bot@example.com",
            "JIRA_API_TOKEN": JIRA_TOKEN,
            "FRESHSERVICE_API_KEY": FS_KEY,
            "SLACK_REVIEW_WEBHOOK_URL": stubs["slack"].webhook_url,
        }.items():
            mp.setenv(key, value)
        for key in ("TRIAGE_PUSH_PARTITIONS", "TRIAGE_COUNTER_SHARDS"):
            mp.delenv(key, raising=False)
        runtime_module.reset()
        route = create_app(
            target="route", source=str(ROOT / "functions/route/main.py"), signature_type="cloudevent"
        )
        yield {"route": route, "subscriber": subscriber, "subscription": subscription}
    runtime_module.reset()


@pytest.fixture
def store(db) -> TicketStore:
    return TicketStore(db, shards=16)  # the route function's default: the pending index must match


def classified(store: TicketStore, department: str, confidence: float = 0.93, **fields) -> str:
    ticket_id = secrets.token_hex(16)
    store.create(new_ticket_doc(TicketIn.model_validate({**SEED, **fields}), ticket_id, utcnow()))
    classification = {
        "department": department,
        "team": TEAM.get(department),
        "confidence": confidence,
        "classifier": "local",
    }
    store.transition(ticket_id, Status.CLASSIFIED, Stage.CLASSIFY, changes={"classification": classification})
    return ticket_id


def created(stubs, system: str) -> dict:
    return stubs["jira"].issues if system == "jira" else stubs["freshservice"].tickets


def labels_of(stubs, system: str) -> list[str]:
    if system == "jira":
        return [label for issue in stubs["jira"].issues.values() for label in issue["fields"]["labels"]]
    return [tag for ticket in stubs["freshservice"].tickets.values() for tag in ticket["tags"]]


# -- exactly once although search lags ------------------------------------------------------------------


@pytest.mark.parametrize(("department", "system"), [("IT", "jira"), ("HR", "freshservice")])
def test_200_tickets_twice_concurrently_with_lagging_search_failures_and_crashes_make_no_duplicate(
    store, apps, stubs, department, system
):
    stub = stubs[system]
    stub.fail_ratio(0.2, seed=11)
    stub.crash_after_create_next(20)
    ids = [classified(store, department, title=f"Payslip {i} is wrong") for i in range(200)]
    with ThreadPoolExecutor(24) as pool:
        statuses = list(
            pool.map(lambda t: deliver_like_pubsub(apps["route"], t), [t for t in ids for _ in "ab"])
        )
    assert all(s < 300 for s in statuses)
    assert sum(r.fault == "crash" for r in stub.requests) == 20
    tickets = [store.get(t) for t in ids]
    assert [t["status"] for t in tickets] == ["routed"] * 200
    assert len(created(stubs, system)) == 200
    mine = [label for label in labels_of(stubs, system) if label.startswith("triage-") and label != "triage"]
    assert sorted(mine) == sorted(f"triage-{t}" for t in ids)  # each ticket exactly once
    assert {t["destination"]["ref"] for t in tickets} == {str(k) for k in created(stubs, system)}


def test_a_create_lost_in_a_crash_is_found_after_the_lag_not_created_again(store, apps, stubs):
    stubs["jira"].crash_after_create_next(1)
    ticket_id = classified(store, "IT")
    assert push(apps["route"], ticket_id) < 300
    assert store.get(ticket_id)["status"] == "routed" and len(stubs["jira"].issues) == 1
    searches = [r for r in stubs["jira"].requests if "search" in r.path]
    [create] = [r for r in stubs["jira"].requests if r.method == "POST"]
    assert searches and searches[-1].received_at - create.received_at >= LAG_BOUND_S - 0.1


def test_a_lost_create_with_a_long_search_lag_is_parked_then_found_not_created_again(store, apps, stubs):
    stubs["jira"].crash_after_create_next(1)
    ticket_id = classified(store, "Security")
    assert push(apps["route"], ticket_id) < 300  # parked, acknowledged
    ticket = store.get(ticket_id)
    deferred = ticket["delivery_deferred"]
    assert ticket["status"] == "classified" and deferred["reason"] == "search_lag"
    assert ticket["delivery_claim"]["state"] == "released" and ticket["delivery_claim"]["unsure_until"]
    assert len(stubs["jira"].issues) == 1
    time.sleep(max(0.0, (deferred["until"] - utcnow()).total_seconds()) + 0.2)
    assert release_due(runtime_module.runtime()).due >= 1
    assert push(apps["route"], ticket_id) < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "routed" and ticket["destination"]["ref"] in stubs["jira"].issues
    assert len(stubs["jira"].issues) == 1


# -- long rate-limit windows -----------------------------------------------------------------------------


@pytest.mark.parametrize(("department", "system"), [("IT", "jira"), ("HR", "freshservice")])
def test_retry_after_900_parks_the_ticket_and_the_reconciler_routes_it_when_the_window_passes(
    store, apps, stubs, db, department, system
):
    stubs[system].rate_limit_next(1, retry_after=900)
    ticket_id = classified(store, department)
    before = counter(db, "triage_deliveries_deferred", f"system={system}|reason=rate_limited")
    assert push(apps["route"], ticket_id) < 300  # acknowledged: no delivery attempt burnt on waiting
    ticket = store.get(ticket_id)
    deferred = ticket["delivery_deferred"]
    assert ticket["status"] == "classified" and deferred["reason"] == "rate_limited"
    wait = (deferred["until"] - utcnow()).total_seconds()
    assert 850 <= wait <= 990
    assert public_view(ticket)["delivery_deferred"]["reason"] == "rate_limited"
    assert counter(db, "triage_deliveries_deferred", f"system={system}|reason=rate_limited") == before + 1
    assert dict(read_pending_items(db, 16))[ticket_id]["not_before"] == deferred["until"]

    rt = runtime_module.runtime()
    pull_all(apps["subscriber"], apps["subscription"], wait_s=0.5)  # drop what earlier tests published
    early = release_due(rt, now=utcnow() + timedelta(seconds=60))
    assert early.due == 0 and early.waiting >= 1
    assert len(created(stubs, system)) == 0
    # The test shortens time, not the path: the reconciler runs as if the window had passed.
    sweep = release_due(rt, now=deferred["until"] + timedelta(seconds=1))
    assert sweep.due >= 1
    handed_on = [m.attributes["ticket_id"] for m in pull_all(apps["subscriber"], apps["subscription"])]
    assert ticket_id in handed_on
    assert push(apps["route"], ticket_id) < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "routed" and ticket["delivery_deferred"] is None
    assert len(created(stubs, system)) == 1
    assert ticket_id not in dict(read_pending_items(db, 16))


def test_a_short_retry_after_is_retried_not_parked(store, apps, stubs):
    stubs["jira"].rate_limit_next(1, retry_after=1)
    ticket_id = classified(store, "IT")
    assert push(apps["route"], ticket_id) < 300
    assert store.get(ticket_id)["status"] == "routed" and len(stubs["jira"].issues) == 1


# -- permanent errors end at once --------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "body"), [(404, "no_service"), (410, "channel_is_archived")])
def test_a_review_channel_gone_for_good_leaves_the_ticket_in_review_at_once(
    store, apps, stubs, db, status, body
):
    stubs["slack"].fail_next(1, status=status, body=body)
    ticket_id = classified(store, "Facilities", confidence=0.2)
    before = counter(db, "triage_review_notifications_failed", "system=slack")
    assert push(apps["route"], ticket_id) < 300  # not redelivered, not dead-lettered
    ticket = store.get(ticket_id)
    assert ticket["status"] == "needs_review" and body in ticket["review"]["notify_error"]
    assert counter(db, "triage_review_notifications_failed", "system=slack") == before + 1


def test_a_missing_secret_fails_the_ticket_at_once_with_a_configuration_error(store, apps, db):
    ticket_id = classified(store, "Legal")
    before = counter(db, "triage_tickets_failed", "stage=route|reason=configuration_error")
    assert push(apps["route"], ticket_id) < 300
    ticket = store.get(ticket_id)
    assert ticket["status"] == "failed" and ticket["failure"]["reason"] == "configuration_error"
    assert "TRIAGE_TEST_TOKEN_NEVER_SET" in ticket["failure"]["detail"]
    assert counter(db, "triage_tickets_failed", "stage=route|reason=configuration_error") == before + 1
