"""Issue 10 acceptance: with GEMINI_MODEL=gemini-2.5-flash and classifier.mode llm, built as the classify
function builds it, against the Gemini stub's default behaviour (2.5 Flash thinks unless told not to) with
429s that carry short RetryInfo delays: >= 95 % of tickets are decided by the LLM, and no retry comes
before the delay it was told."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from devstack.stubs.gemini import GeminiStub, prompt_text
from triage.classify.base import Decider, TicketText
from triage.classify.engine import build_classifier
from triage.runtime import Runtime
from triage.settings import Settings
from triage.store import TicketStore

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
TICKETS = 120
RATE_LIMIT_EVERY = 10  # one 429 before every tenth ticket
RETRY_DELAY = 0.3


def tickets(n: int) -> list[TicketText]:
    """Distinct texts, so the classification cache never answers in the LLM's place."""
    seen: set[str] = set()
    out: list[TicketText] = []
    with (ROOT / "config" / "training" / "default_tickets.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = " ".join(f"{row['title']} {row['description']}".lower().split())
            if key not in seen:
                seen.add(key)
                out.append(TicketText(row["title"], row["description"], "medium"))
    return out[:n]


@pytest.fixture(scope="module")
def stub():
    with GeminiStub(api_key="acceptance-key") as server:
        yield server


def test_gemini_2_5_flash_decides_95_percent_and_honours_retry_info(stub, db, project):
    env = {
        "GEMINI_API_KEY": "acceptance-key",
        "GEMINI_BASE_URL": stub.url,
        "GEMINI_MODEL": "gemini-2.5-flash",
        "TRIAGE_CLASSIFIER_MODE": "llm",
    }
    rt = Runtime(Settings(project=project, counter_shards=4), store=TicketStore(db, shards=4))
    engine = build_classifier(rt, env)
    deciders = []
    for i, ticket in enumerate(tickets(TICKETS)):
        if i % RATE_LIMIT_EVERY == 0:
            stub.rate_limit_next(1, retry_after=RETRY_DELAY)
        deciders.append(engine.classify(ticket).decided_by)

    share = deciders.count(Decider.LLM) / len(deciders)
    print(f"\n{len(deciders)} tickets, decided by the LLM: {share:.1%}, 429s: {len(stub.retry_delays)}")
    assert len(deciders) == TICKETS and share >= 0.95
    assert stub.requests[0].path == "/v1/models/gemini-2.5-flash:generateContent"
    assert len(stub.retry_delays) == TICKETS // RATE_LIMIT_EVERY
    assert_retries_waited(stub)


def assert_retries_waited(stub: GeminiStub) -> None:
    """Each request answered 429 is followed, for the same ticket, by a retry at least retryDelay later."""
    requests = stub.requests
    for limited, delay in stub.retry_delays:
        text = prompt_text(limited.json, system=False)
        later = requests[requests.index(limited) + 1 :]
        retry = next(r for r in later if prompt_text(r.json, system=False) == text)
        assert retry.received_at - limited.received_at >= delay
        assert retry.status == 200
