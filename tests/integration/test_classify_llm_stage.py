"""The classify function with Gemini enabled: tokens, cost and price version stored and counted."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
from functions_framework import create_app

from devstack.stubs.gemini import GeminiStub
from tests.helpers import SEED, counter
from triage import runtime as runtime_module
from triage.budget import spent_on, today
from triage.config import load_config
from triage.model import TicketIn, new_ticket_doc
from triage.store import TicketStore, utcnow

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
MODEL = load_config(ROOT / "config").triage.classifier.llm.model


@pytest.fixture(scope="module")
def stub():
    with GeminiStub(api_key="stage-key", thoughts_tokens=7) as server:
        yield server


@pytest.fixture(scope="module")
def classify(project, pubsub_admin, stub):
    publisher, _ = pubsub_admin
    publisher.create_topic(name=publisher.topic_path(project, "triage-route"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_CLOUD_PROJECT", project)
        mp.setenv("GEMINI_API_KEY", "stage-key")
        mp.setenv("GEMINI_BASE_URL", stub.url)
        mp.setenv("TRIAGE_CLASSIFIER_MODE", "llm")
        mp.setenv("TRIAGE_COUNTER_SHARDS", "4")
        mp.delenv("TRIAGE_PUSH_PARTITIONS", raising=False)
        runtime_module.reset()
        app = create_app(
            target="classify", source=str(ROOT / "functions/classify/main.py"), signature_type="cloudevent"
        )
        yield app.test_client()
    runtime_module.reset()


def push(client, ticket_id: str):
    data = base64.b64encode(json.dumps({"ticket_id": ticket_id}).encode()).decode()
    message = {
        "data": data,
        "attributes": {"ticket_id": ticket_id},
        "messageId": "1",
        "publishTime": "2026-11-29T10:00:00Z",
    }
    return client.post("/projects/p/topics/triage-classify", json={"message": message, "subscription": "s"})


def test_llm_classification_stores_tokens_cost_and_price_version_and_counts_them(classify, db, stub):
    store = TicketStore(db, shards=4)
    ticket_id = secrets.token_hex(16)
    store.create(new_ticket_doc(TicketIn.model_validate(SEED), ticket_id, utcnow()))
    spent_before = spent_on(db, today(), 4)
    model = f"model={MODEL}"
    before = {
        "requests": counter(db, "triage_llm_requests", f"{model}|outcome=ok"),
        "thinking": counter(db, "triage_llm_tokens", f"{model}|type=thinking"),
        "cost": counter(db, "triage_llm_cost_usd", model),
    }
    assert push(classify, ticket_id).status_code < 300
    ticket = store.get(ticket_id)
    assert ticket["classification"]["classifier"] == "llm" and ticket["classification"]["model"] == MODEL
    [call] = ticket["llm"]
    assert call["tokens"]["input"] > 0 and call["tokens"]["thinking"] == 7
    assert call["cost_usd"] > 0 and call["price_version"]
    assert counter(db, "triage_llm_requests", f"{model}|outcome=ok") == before["requests"] + 1
    assert counter(db, "triage_llm_tokens", f"{model}|type=thinking") == before["thinking"] + 7
    assert counter(db, "triage_llm_cost_usd", model) == pytest.approx(before["cost"] + call["cost_usd"])
    assert spent_on(db, today(), 4) == pytest.approx(spent_before + call["cost_usd"])
    assert "john.doe@company.com" not in stub.requests[-1].text


def test_an_answer_cut_at_the_output_cap_is_counted_as_truncated_with_its_tokens_and_cost(classify, db, stub):
    store = TicketStore(db, shards=4)
    ticket_id = secrets.token_hex(16)
    seed = {**SEED, "title": f"Printer jammed on floor {ticket_id[:6]}"}  # a text the cache has not seen
    store.create(new_ticket_doc(TicketIn.model_validate(seed), ticket_id, utcnow()))
    model = f"model={MODEL}"
    before = {
        outcome: counter(db, "triage_llm_requests", f"{model}|outcome={outcome}")
        for outcome in ("truncated", "invalid")
    }
    cost_before = counter(db, "triage_llm_cost_usd", model)
    stub.malformed_next(1)  # half an answer, finishReason MAX_TOKENS
    assert push(classify, ticket_id).status_code < 300
    ticket = store.get(ticket_id)
    assert ticket["classification"]["classifier"] == "fallback"
    [call] = ticket["llm"]
    assert call["outcome"] == "truncated" and call["tokens"]["output"] > 0 and call["cost_usd"] > 0
    assert counter(db, "triage_llm_requests", f"{model}|outcome=truncated") == before["truncated"] + 1
    assert counter(db, "triage_llm_requests", f"{model}|outcome=invalid") == before["invalid"]
    assert counter(db, "triage_llm_cost_usd", model) == pytest.approx(cost_before + call["cost_usd"])
