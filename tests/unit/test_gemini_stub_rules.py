"""The Gemini stub models, by default, the API rules issue 10 is about, each with its source in the docstring.

Every call goes through the real google-genai SDK, so what is checked is what a client would see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from google import genai
from google.genai import errors, types

from devstack.stubs import gemini as stub_module
from devstack.stubs.gemini import GeminiStub

TICKET = "My laptop login fails since this morning"
CAP = 256  # what classify sends


@pytest.fixture(scope="module")
def stub() -> Iterator[GeminiStub]:
    with GeminiStub() as server:
        yield server


@pytest.fixture
def client(stub: GeminiStub) -> genai.Client:
    stub.reset()
    return genai.Client(api_key="k", http_options=types.HttpOptions(base_url=stub.url))


def generate(client: genai.Client, model: str, **config) -> types.GenerateContentResponse:
    config.setdefault("max_output_tokens", CAP)
    return client.models.generate_content(
        model=model,
        contents=TICKET,
        config=types.GenerateContentConfig(response_mime_type="application/json", **config),
    )


def test_every_modelled_rule_names_its_source_in_the_docstring():
    doc = stub_module.__doc__ or ""
    for source in (
        "https://ai.google.dev/gemini-api/docs/thinking",
        "https://ai.google.dev/gemini-api/docs/rate-limits",
        "https://github.com/googleapis/python-genai/issues/1875",
        "https://github.com/googleapis/python-genai/pull/2114",
    ):
        assert source in doc


@pytest.mark.parametrize(
    "model", ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3.1-flash-lite", "gemini-3-flash-preview"]
)
def test_a_model_that_thinks_by_default_spends_a_small_cap_on_thoughts(client, model):
    response = generate(client, model)
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.text is None  # no part at all: the answer never started
    assert response.usage_metadata.thoughts_token_count == CAP


def test_flash_lite_2_5_does_not_think_by_default(client):
    response = generate(client, "gemini-2.5-flash-lite")
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert json.loads(response.text)["department"] and response.usage_metadata.thoughts_token_count is None


@pytest.mark.parametrize(
    ("model", "thinking", "thoughts"),
    [
        ("gemini-2.5-flash", types.ThinkingConfig(thinking_budget=0), None),
        ("gemini-2.5-flash", types.ThinkingConfig(thinking_budget=64), 64),
        ("gemini-2.5-pro", types.ThinkingConfig(thinking_budget=128), 128),
        ("gemini-3.1-flash-lite", types.ThinkingConfig(thinking_level=types.ThinkingLevel.MINIMAL), None),
        ("gemini-3.1-flash-lite", types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW), 100),
        ("gemini-3-flash-preview", types.ThinkingConfig(thinking_budget=0), None),  # backwards compatible
    ],
)
def test_thinking_config_turns_thinking_down_and_the_answer_fits(client, model, thinking, thoughts):
    response = generate(client, model, thinking_config=thinking)
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert json.loads(response.text)["confidence"] > 0
    assert response.usage_metadata.thoughts_token_count == thoughts


def test_thoughts_that_leave_a_little_room_cut_the_answer_mid_text(client):
    response = generate(client, "gemini-2.5-flash", max_output_tokens=405)
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata.thoughts_token_count == 400
    with pytest.raises(ValueError):
        json.loads(response.text)


@pytest.mark.parametrize(
    ("model", "thinking", "message"),
    [
        ("gemini-2.5-flash", {"thinking_level": "MINIMAL"}, "not supported"),
        ("gemini-3.1-flash-lite", {"thinking_level": "LOW", "thinking_budget": 0}, "mutually exclusive"),
        ("gemini-2.5-pro", {"thinking_budget": 0}, "only works in thinking mode"),
    ],
)
def test_thinking_settings_the_api_rejects_are_400_invalid_argument(client, model, thinking, message):
    with pytest.raises(errors.ClientError) as info:
        generate(client, model, thinking_config=types.ThinkingConfig(**thinking))
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert message in info.value.message


def retry_info(body: dict) -> str:
    [detail] = [d for d in body["error"]["details"] if d["@type"] == stub_module.RETRY_INFO]
    return detail["retryDelay"]


def test_injected_429_carries_retry_info_in_the_body_and_no_retry_after_header(stub):
    stub.reset()
    stub.rate_limit_next(1, retry_after=0.3)
    url = f"{stub.url}/v1/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": TICKET}]}]}
    reply = requests.post(url, json=body, headers={"x-goog-api-key": "k"})
    assert reply.status_code == 429 and "retry-after" not in {k.lower() for k in reply.headers}
    error = reply.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED" and retry_info(reply.json()) == "0.3s"
    assert {d["@type"].rsplit(".", 1)[-1] for d in error["details"]} == {"QuotaFailure", "Help", "RetryInfo"}
    assert [(req.status, delay) for req, delay in stub.retry_delays] == [(429, 0.3)]
    assert requests.post(url, json=body, headers={"x-goog-api-key": "k"}).status_code == 200


def test_the_sdk_keeps_the_retry_info_in_api_error_details(client, stub):
    stub.rate_limit_next(1, retry_after="58s")
    with pytest.raises(errors.ClientError) as info:
        generate(client, "gemini-2.5-flash-lite")
    assert info.value.code == 429 and retry_info(info.value.details) == "58s"


def test_per_minute_quota_answers_with_the_wait_left_in_whole_seconds():
    with GeminiStub(rpm=2) as stub:
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=stub.url))
        generate(client, "gemini-2.5-flash-lite")
        generate(client, "gemini-2.5-flash-lite")
        generate(client, "gemini-3.1-flash-lite", thinking_config=types.ThinkingConfig(thinking_budget=0))
        with pytest.raises(errors.ClientError) as info:
            generate(client, "gemini-2.5-flash-lite")
        # The window opened a moment ago, so ~59.9 s are left: truncated to "59s", as the real API does;
        # the exact wait is only in the message.
        assert retry_info(info.value.details) in {"58s", "59s"}
        assert "Please retry in 59." in info.value.message or "Please retry in 58." in info.value.message
