"""Per-sender admission control: a flood from one sender is refused with 429 + Retry-After, counted, and
another sender's tickets still pass."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from functions_framework import create_app

from tests.helpers import SEED, counter, eventually
from triage import runtime as runtime_module
from triage.ratelimit import RefusalTally, SenderLimiter

pytestmark = pytest.mark.emulators
ROOT = Path(__file__).resolve().parents[2]
RATE = 2  # per second per sender; burst from config/triage.yaml (50)


@pytest.fixture(scope="module")
def client(project, pubsub_admin):
    publisher, _ = pubsub_admin
    publisher.create_topic(name=publisher.topic_path(project, "triage-classify"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_CLOUD_PROJECT", project)
        mp.setenv("TRIAGE_INTAKE_RATE_PER_S", str(RATE))
        mp.delenv("TRIAGE_WEBHOOK_SECRET", raising=False)
        mp.delenv("TRIAGE_PUSH_PARTITIONS", raising=False)
        runtime_module.reset()
        app = create_app(
            target="intake", source=str(ROOT / "functions/intake/main.py"), signature_type="http"
        )
        yield app.test_client()
    runtime_module.reset()


def post(client, sender: str):
    return client.post("/tickets", json=SEED, headers={"X-Forwarded-For": f"203.0.113.9, {sender}"})


def test_a_flooding_sender_gets_429_with_retry_after_while_another_still_passes(client, db):
    burst = runtime_module.runtime().config.triage.intake.burst
    answers = [post(client, "198.51.100.1") for _ in range(burst + 20)]
    codes = [a.status_code for a in answers]
    assert codes[:burst] == [202] * burst
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) >= 15
    body = refused[0].get_json()
    assert body["error"] == "rate_limited" and body["detail"]
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert post(client, "198.51.100.2").status_code == 202  # another sender is unaffected
    eventually(lambda: counter(db, "triage_intake_rate_limited") >= 1, timeout_s=5)
    time.sleep(1.0 / RATE + 0.1)  # one token back
    assert post(client, "198.51.100.1").status_code == 202


def test_a_forged_first_hop_does_not_make_a_new_sender(client):
    """Only the hop the platform appends counts: varying the client-supplied part changes nothing."""
    burst = runtime_module.runtime().config.triage.intake.burst
    codes = [
        client.post(
            "/tickets", json=SEED, headers={"X-Forwarded-For": f"10.0.0.{i}, 198.51.100.3"}
        ).status_code
        for i in range(burst + 5)
    ]
    assert codes.count(429) >= 5


def test_limiter_refills_at_its_rate_and_forgets_old_senders() -> None:
    now = [0.0]
    limiter = SenderLimiter(rate_per_s=2, burst=2, max_senders=2, clock=lambda: now[0])
    assert limiter.admit("a") is None and limiter.admit("a") is None
    assert limiter.admit("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.admit("a") is None
    limiter.admit("b")
    limiter.admit("c")  # "a" is the least recently seen: forgotten, so it starts with a full bucket
    assert limiter.admit("a") is None and limiter.admit("a") is None
    assert SenderLimiter(rate_per_s=0, burst=1).admit("x") is None  # 0: no limit


def test_refusals_are_flushed_in_aggregate() -> None:
    now, flushed = [0.0], []
    tally = RefusalTally(flushed.append, flush_every_s=1.0, clock=lambda: now[0])
    for _ in range(5):
        tally.add()
    now[0] = 1.5
    tally.add()
    assert flushed == [1, 5]
