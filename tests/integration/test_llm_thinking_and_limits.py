"""Issue 10 through the real google-genai SDK against the Gemini stub: thinking per model family, answers
cut at the output cap, RetryInfo on 429s, and attempt timeouts inside the retry budget."""

from __future__ import annotations

import time

import pytest

from devstack.stubs.gemini import GeminiStub
from tests.integration.llm_support import CONFIG, LLM, PRICES, VPN, Sleeps
from triage import metrics as m
from triage.budget import today
from triage.classify.base import Decider
from triage.classify.engine import Engine
from triage.classify.gemini import GeminiClassifier, LLMFailure, build_client
from triage.classify.local import LocalClassifier
from triage.config import ModelFamily, Thinking
from triage.counters import series_key
from triage.pricing import Tokens, cost_usd
from triage.stages.classify import llm_call_counters


@pytest.fixture(scope="module")
def stub():
    with GeminiStub(api_key="k") as server:
        yield server


@pytest.fixture(scope="module")
def local():
    return LocalClassifier.load(CONFIG.triage)


def classifier(stub: GeminiStub, sleep=None, **llm) -> GeminiClassifier:
    stub.reset()
    settings = LLM.model_copy(update=llm)
    client = build_client("k", stub.url, settings.timeout_s)
    return GeminiClassifier(
        client, CONFIG.triage, settings, PRICES, sleep=Sleeps() if sleep is None else sleep
    )


# -- 1. thinking --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        ("gemini-2.5-flash", {"thinking_budget": 0}),
        ("gemini-2.5-pro", {"thinking_budget": 128}),
        ("gemini-3.1-flash-lite", {"thinking_level": "MINIMAL"}),
        ("gemini-3-flash-preview", {"thinking_level": "MINIMAL"}),
        ("gemini-2.5-flash-lite", None),
    ],
)
def test_every_model_family_is_answered_within_the_256_token_cap(stub, model, thinking):
    result = classifier(stub, model=model).classify(VPN)
    assert result.decided_by == Decider.LLM and result.llm_calls[0].outcome == "ok"
    sent = stub.requests[-1].json["generationConfig"]
    assert sent.get("thinkingConfig") == thinking and sent["maxOutputTokens"] == 256


@pytest.mark.parametrize(
    ("model", "temperature"), [("gemini-2.5-flash", 0.0), ("gemini-3.1-flash-lite", None)]
)
def test_gemini_3_keeps_its_default_temperature(stub, model, temperature):
    classifier(stub, model=model).classify(VPN)
    assert stub.requests[-1].json["generationConfig"].get("temperature") == temperature


def test_an_answer_cut_at_the_cap_is_truncated_not_invalid_and_still_counted_and_priced(stub, local):
    # Level low thinks 100 tokens in the stub: more than a 60-token cap, so no answer text at all.
    low = ModelFamily(prefix="gemini-3", thinking=Thinking(level="low"))
    gemini = classifier(stub, max_output_tokens=60, families=(low,))
    result = Engine(local, mode="llm", llm=gemini).classify(VPN)
    [call] = result.llm_calls
    assert result.decided_by == Decider.FALLBACK and call.outcome == "truncated"
    assert call.thinking_tokens == 60 and call.output_tokens == 0 and call.input_tokens > 0
    price = PRICES.price(LLM.model, today())
    assert call.cost_usd == pytest.approx(cost_usd(price, Tokens(call.input_tokens, 0, 60)))
    counted = llm_call_counters(call)._fields
    assert counted[m.LLM_REQUESTS.storage_key] == {
        series_key(m.LLM_REQUESTS, {"model": LLM.model, "outcome": "truncated"}): 1
    }
    assert (
        counted[m.LLM_TOKENS.storage_key][series_key(m.LLM_TOKENS, {"model": LLM.model, "type": "thinking"})]
        == 60
    )


# -- 3. RetryInfo -------------------------------------------------------------------------------------


def test_a_429_is_retried_no_sooner_than_its_retry_info_delay(stub):
    sleeps = Sleeps()
    gemini = classifier(stub, sleep=sleeps)
    stub.rate_limit_next(1, retry_after="5.5s")
    result = gemini.classify(VPN)
    assert result.llm_calls[0].attempts == 2 and sleeps[0] >= 5.5


def test_a_retry_info_delay_beyond_the_budget_falls_back_at_once(stub, local):
    sleeps = Sleeps()
    gemini = classifier(stub, sleep=sleeps)
    stub.rate_limit_next(1, retry_after="58s")  # more than the 45 s budget
    result = Engine(local, mode="llm", llm=gemini).classify(VPN)
    assert result.decided_by == Decider.FALLBACK and result.llm_calls[0].outcome == "rate_limited"
    assert sleeps == [] and len(stub.requests) == 1  # no attempt burnt on a wait we will not make


def test_real_waits_follow_retry_info(stub):
    gemini = classifier(stub, sleep=time.sleep)
    stub.rate_limit_next(2, retry_after=0.3)
    gemini.classify(VPN)
    first, second, third = stub.requests
    assert (first.status, second.status, third.status) == (429, 429, 200)
    assert second.received_at - first.received_at >= 0.3 and third.received_at - second.received_at >= 0.3


# -- 9. attempt timeouts inside the budget -----------------------------------------------------------


def test_an_attempt_never_outlives_the_retry_budget(stub, local):
    gemini = classifier(stub, sleep=time.sleep, timeout_s=20, retry_budget_s=1.0)
    stub.timeout_next(1, seconds=4)
    started = time.monotonic()
    with pytest.raises(LLMFailure) as failure:
        gemini.classify(VPN)
    assert time.monotonic() - started < 2.5
    assert failure.value.usage.outcome == "timeout" and failure.value.usage.attempts == 1


def test_each_attempt_asks_for_no_more_time_than_is_left(stub):
    gemini = classifier(stub, sleep=time.sleep, timeout_s=20, retry_budget_s=3.0)
    stub.rate_limit_next(1, retry_after=1.2)
    gemini.classify(VPN)
    # google-genai sends the attempt timeout, rounded up to whole seconds, as X-Server-Timeout.
    assert [r.headers["x-server-timeout"] for r in stub.requests] == ["3", "2"]
