"""The exporter's collector against the Firestore emulator, with known counter values."""

from __future__ import annotations

import os
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from devstack.processes import free_port
from exporter.app import create_app
from exporter.collector import FirestoreCollector, read_state
from triage import metrics as m
from triage.budget import add_spend
from triage.classify.base import Classification, Decider, LLMUsage
from triage.config import load_config
from triage.counters import CounterUpdate
from triage.model import TicketIn, new_ticket_doc
from triage.stages.classify import classification_changes, classification_counters
from triage.states import FailureReason, Stage, Status
from triage.store import TicketStore

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_config(ROOT / "config").triage
GOLDEN = Path(__file__).parent / "golden" / "exporter_metrics.txt"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
SHARDS = 4


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
def seeded(db):
    """Four tickets with known histories: routed after 2 s + 3 s, failed, classified, stuck received."""
    clock = Clock(T0)
    store = TicketStore(db, shards=SHARDS, clock=clock)
    ids = {}
    for name in ("routed", "failed", "classified", "received"):
        ids[name] = f"{name}-{secrets.token_hex(4)}"
        doc = new_ticket_doc(TicketIn(title="t", description="d", email="a@b.co"), ids[name], clock())
        store.create(doc)
    result = Classification(
        "IT",
        "service-desk",
        0.97,
        Decider.LLM,
        "vpn",
        "gemini-3.1-flash-lite",
        (
            LLMUsage(
                "gemini-3.1-flash-lite", 120, 20, 5, 0, cost_usd=0.0001, price_version="v", latency_s=0.8
            ),
        ),
    )
    clock.at = T0 + timedelta(seconds=2)
    for name in ("routed", "failed", "classified"):
        store.transition(
            ids[name],
            Status.CLASSIFIED,
            Stage.CLASSIFY,
            classification_changes(result),
            classification_counters(result),
        )
    clock.at = T0 + timedelta(seconds=5)
    store.transition(
        ids["routed"],
        Status.ROUTED,
        Stage.ROUTE,
        counters=CounterUpdate().inc(m.TICKETS_ROUTED, {"department": "IT", "system": "log"}),
    )
    store.mark_failed(ids["failed"], Stage.ROUTE, FailureReason.DESTINATION_REJECTED, "400 from jira")
    batch = db.batch()
    add_spend(batch, db, 1.25, datetime.now(UTC).date(), SHARDS)
    batch.commit()
    return ids


def collector_for(db, **kwargs) -> FirestoreCollector:
    env = {"TRIAGE_LLM_DAILY_BUDGET_USD": "1.0"}
    return FirestoreCollector(lambda: read_state(db, TAXONOMY, SHARDS, env), **kwargs)


def registry_with(collector: FirestoreCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_collector_publishes_the_stored_counts(db, seeded):
    registry = registry_with(collector_for(db))
    value = registry.get_sample_value
    assert value("triage_tickets_received_total") == 4
    assert value("triage_tickets", {"status": "routed"}) == 1
    assert value("triage_tickets", {"status": "failed"}) == 1
    assert value("triage_tickets", {"status": "classified"}) == 1
    assert value("triage_tickets", {"status": "received"}) == 1
    assert value("triage_tickets", {"status": "needs_review"}) == 0
    assert value("triage_tickets_classified_total", {"department": "IT", "classifier": "llm"}) == 3
    assert value("triage_tickets_routed_total", {"department": "IT", "system": "log"}) == 1
    assert value("triage_tickets_failed_total", {"stage": "route", "reason": "destination_rejected"}) == 1
    assert value("triage_tickets_failed_total", {"stage": "classify", "reason": "dead_letter"}) == 0
    assert value("triage_stage_duration_seconds_count", {"stage": "classify"}) == 3
    assert value("triage_stage_duration_seconds_bucket", {"stage": "classify", "le": "2.5"}) == 3
    assert value("triage_stage_duration_seconds_bucket", {"stage": "route", "le": "2.5"}) == 0
    assert value("triage_stage_duration_seconds_bucket", {"stage": "route", "le": "5.0"}) == 1
    assert value("triage_end_to_end_duration_seconds_sum") == 5
    labels = {"model": "gemini-3.1-flash-lite"}
    assert value("triage_llm_tokens_total", {**labels, "type": "input"}) == 360
    assert value("triage_llm_tokens_total", {**labels, "type": "thinking"}) == 15
    assert value("triage_llm_cost_usd_total", labels) == pytest.approx(0.0003)
    assert value("triage_llm_requests_total", {**labels, "outcome": "ok"}) == 3
    assert value("triage_llm_spend_today_usd") == pytest.approx(1.25)
    assert value("triage_llm_budget_usd") == 1.0
    assert value("triage_llm_budget_exhausted") == 1
    assert value("triage_exporter_up") == 1


def test_tickets_past_their_threshold_are_stuck(db, seeded):
    value = registry_with(collector_for(db)).get_sample_value
    # Seeded two hours ago: older than the 300 s thresholds for received and classified.
    assert value("triage_tickets_stuck", {"status": "received"}) == 1
    assert value("triage_tickets_stuck", {"status": "classified"}) == 1
    assert value("triage_tickets_stuck", {"status": "needs_review"}) == 0


def test_full_output_matches_the_golden_file(db, seeded):
    text = generate_latest(registry_with(collector_for(db))).decode()
    # Values that change from run to run (timings, today's date-dependent spend) are masked.
    text = re.sub(
        r"^(triage_exporter_(scrape_duration_seconds|last_success_timestamp_seconds)) .*$",
        r"\1 X",
        text,
        flags=re.M,
    )
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_concurrent_scrapes_within_the_ttl_share_one_read(db, seeded):
    calls = []
    now = [0.0]

    def read():
        calls.append(1)
        return read_state(db, TAXONOMY, SHARDS, {})

    collector = FirestoreCollector(read, cache_ttl_s=5, clock=lambda: now[0])
    registry = registry_with(collector)
    generate_latest(registry)
    generate_latest(registry)
    assert len(calls) == 1
    now[0] = 6
    generate_latest(registry)
    assert len(calls) == 2


def test_firestore_down_answers_quickly_with_up_zero(monkeypatch):
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")  # nothing listens there
    dead = firestore.Client(project="down")
    client = create_app(collector_for(dead, timeout_s=1.0), token=None).test_client()
    started = time.monotonic()
    response = client.get("/metrics")
    assert response.status_code == 200 and time.monotonic() - started < 3
    body = response.get_data(as_text=True)
    assert "triage_exporter_up 0.0" in body and "triage_exporter_scrape_errors_total 1.0" in body
    assert "triage_tickets_received_total" not in body


def test_metrics_require_the_bearer_token_when_set(db, seeded):
    client = create_app(collector_for(db), token="t0ken").test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_no_label_carries_an_email_or_free_text(db, seeded):
    text = generate_latest(registry_with(collector_for(db))).decode()
    assert "@" not in text
    values = re.findall(r'="([^"]*)"', text)
    assert all(re.fullmatch(r"[A-Za-z0-9_.:+\-/]*", v) for v in values)


def test_parked_tickets_are_deferred_until_their_time_then_count_as_stuck(db, seeded):
    """A delivery parked for a rate-limit window waits on purpose; once due, the usual threshold applies."""
    now = datetime.now(UTC)
    store = TicketStore(db, shards=SHARDS)
    value = registry_with(collector_for(db)).get_sample_value
    before = value("triage_tickets_stuck", {"status": "classified"})
    parked = {}
    for name, not_before in {
        "waiting": now + timedelta(minutes=15),
        "just_due": now - timedelta(seconds=10),
        "long_due": now - timedelta(hours=1),
    }.items():
        parked[name] = f"parked-{name}-{secrets.token_hex(4)}"
        entry = {"status": "classified", "since": T0, "not_before": not_before}
        store._pending_ref(parked[name]).set({"tickets": {parked[name]: entry}}, merge=True)
    value = registry_with(collector_for(db)).get_sample_value
    assert value("triage_tickets_deferred") == 1
    assert value("triage_tickets_stuck", {"status": "classified"}) == before + 1  # only long_due
