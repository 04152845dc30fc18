"""Gemini API stub: ``POST /v1/models/{model}:generateContent`` (and ``/v1beta/...``).

Checks what the real endpoint checks first: an ``x-goog-api-key`` header (403 PERMISSION_DENIED without,
400 INVALID_ARGUMENT "API key not valid" for a wrong key when ``api_key`` is set) and a JSON body with
``contents``. Errors use Google's shape ``{"error": {"code", "message", "status"}}``, which google-genai
turns into ClientError (4xx) / ServerError (5xx) with ``.code``.

The answer text comes from ``responder(request_json) -> str``. The default picks a department (and team)
by keyword rules from the prompt text, restricted to the enum values found in
``generationConfig.responseSchema`` / ``responseJsonSchema`` when present, and answers
``{"department", "team", "confidence", "reason"}`` (or the bare value for ``text/x.enum``).

Token accounting (documented approximation, not Gemini's tokenizer): promptTokenCount = characters of all
prompt text (contents + systemInstruction) // 4; candidatesTokenCount = characters of the answer // 4;
thoughtsTokenCount as below (``thoughts_tokens`` fixes it instead); cachedContentTokenCount is configurable
(both omitted when 0, as the API does); totalTokenCount = prompt + candidates + thoughts.

Rules of the real API modelled by default, with their sources:

* **Thinking spends the output cap first.** gemini-2.5-flash, gemini-2.5-pro and the 3.x models think by
  default; gemini-2.5-flash-lite does not (https://ai.google.dev/gemini-api/docs/thinking). Thought tokens
  count against ``maxOutputTokens``: a model that thinks spends ``default_thoughts`` tokens (dynamic
  thinking, a few hundred) before answering, so with a small cap the answer is cut, ``finishReason:
  MAX_TOKENS``, with no text part at all when the thoughts used the whole cap. ``thinkingConfig`` turns it
  down: ``thinkingBudget`` caps the thoughts (0 = off, -1 = dynamic), ``thinkingLevel`` minimal / low /
  medium / high spends 0 / 1/4 / 1/2 / all of ``default_thoughts``.
* **Invalid thinking settings are a 400 INVALID_ARGUMENT**, as documented: ``thinkingLevel`` on a 2.5
  model ("Gemini 2.5 series models don't support thinkingLevel; use thinkingBudget instead"), both
  ``thinkingLevel`` and ``thinkingBudget`` in one request, and ``thinkingBudget: 0`` on 2.5 Pro, which
  cannot turn thinking off (its budget is 128-32768) (https://ai.google.dev/gemini-api/docs/thinking).
  3.x models still accept ``thinkingBudget`` for backwards compatibility (same page).
* **429 RESOURCE_EXHAUSTED carries its wait in the body only**: ``error.details[]`` holds a
  ``type.googleapis.com/google.rpc.QuotaFailure``, a ``google.rpc.Help`` link and a
  ``type.googleapis.com/google.rpc.RetryInfo`` with ``retryDelay`` (e.g. ``"58s"``); there is no
  Retry-After header (https://ai.google.dev/gemini-api/docs/rate-limits; body as quoted in
  https://github.com/googleapis/python-genai/issues/1875 and
  https://github.com/google/langextract/issues/50). ``rate_limit_next(n, retry_after)`` injects such
  429s with that ``retryDelay``; ``rpm`` (off by default) enforces a requests-per-minute quota per model
  that answers the same way with the wait left in the window, truncated to whole seconds in
  ``retryDelay`` as the real API does ("Please retry in 58.93s" with ``retryDelay: "58s"``,
  https://github.com/googleapis/python-genai/pull/2114).
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from devstack.stubs.base import RecordedRequest, Reply, StubServer

Responder = Callable[[Mapping[str, Any]], str]

_PATH = re.compile(r"^/(v1|v1beta)/models/([A-Za-z0-9._-]+):generateContent$")
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# keyword -> hint; a department/team enum value containing the hint (case-insensitive) is chosen.
DEFAULT_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("invoice", "payment", "refund", "expense", "reimburse", "budget", "billing"), "finance"),
    (("payroll", "salary", "vacation", "leave", "hiring", "onboarding", "benefit"), "hr"),
    (("contract", "legal", "gdpr", "compliance", "lawsuit", "nda"), "legal"),
    (("office", "desk", "chair", "building", "parking", "cleaning", "badge"), "facilities"),
    (("phishing", "malware", "breach", "virus", "suspicious"), "security"),
    (("bug", "deploy", "outage", "api", "production", "crash", "exception", "database"), "engineering"),
    (("password", "login", "vpn", "laptop", "wifi", "printer", "email", "account", "software"), "it"),
)
DEFAULT_DEPARTMENTS = ("IT", "HR", "Finance", "Facilities", "Legal", "Engineering", "Security")

DEFAULT_MAX_OUTPUT_TOKENS = 65536  # the output limit of current Flash models, when a request sets none
THOUGHT_SHARE = {"minimal": 0.0, "low": 0.25, "medium": 0.5, "high": 1.0}
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
RATE_LIMITS_DOC = "https://ai.google.dev/gemini-api/docs/rate-limits"
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_paid_tier_requests"


class InvalidArgument(ValueError):
    """A request the real API answers with 400 INVALID_ARGUMENT."""


def field(message: Mapping[str, Any], name: str) -> Any:
    """A field by its JSON name or its proto name: the API accepts both (``thinkingConfig`` and
    ``thinking_config``), and google-genai sends nested config objects with proto names."""
    if name in message:
        return message[name]
    return message.get(re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower())


def thinks_by_default(model: str) -> bool:
    """2.5 Flash / Pro and every 3.x model think unless told not to; 2.5 Flash-Lite does not."""
    if model.startswith("gemini-2.5-flash-lite"):
        return False
    return model.startswith(("gemini-2.5-flash", "gemini-2.5-pro", "gemini-3"))


def thought_tokens(model: str, config: Mapping[str, Any], default_thoughts: int) -> int:
    """Tokens the model thinks before answering, per its ``thinkingConfig``; raises InvalidArgument for
    the settings the API rejects."""
    thinking = field(config, "thinkingConfig") or {}
    budget, level = field(thinking, "thinkingBudget"), field(thinking, "thinkingLevel")
    if budget is not None and level is not None:
        raise InvalidArgument("thinking_budget and thinking_level are mutually exclusive.")
    if level is not None:
        return _level_thoughts(model, str(level), default_thoughts)
    if budget is not None:
        return _budget_thoughts(model, int(budget), default_thoughts)
    return default_thoughts if thinks_by_default(model) else 0


def _level_thoughts(model: str, level: str, default_thoughts: int) -> int:
    if model.startswith("gemini-2.5"):
        raise InvalidArgument("Thinking level is not supported for this model.")
    share = THOUGHT_SHARE.get(level.lower())
    if share is None:
        raise InvalidArgument(f"Invalid value at 'generation_config.thinking_config.thinking_level': {level}")
    return round(default_thoughts * share)


def _budget_thoughts(model: str, budget: int, default_thoughts: int) -> int:
    if budget == 0 and model.startswith("gemini-2.5-pro"):
        raise InvalidArgument("Budget 0 is invalid. This model only works in thinking mode.")
    return default_thoughts if budget < 0 else min(budget, default_thoughts)


def duration(seconds: float) -> str:
    """A protobuf Duration in its JSON form: "58s", "0.3s"."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def quota_exceeded(model: str, retry_delay: str, exact_wait: float) -> dict[str, Any]:
    """The body of a 429 as the real API words it: the wait only in the RetryInfo detail (and the text)."""
    return {
        "error": {
            "code": 429,
            "message": (
                "You exceeded your current quota, please check your plan and billing details. For more "
                f"information on this error, head to: {RATE_LIMITS_DOC}.\n* Quota exceeded for metric: "
                f"{QUOTA_METRIC}, model: {model}\nPlease retry in {exact_wait:.9f}s."
            ),
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": QUOTA_METRIC,
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                            "quotaDimensions": {"location": "global", "model": model},
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [{"description": "Learn more about Gemini API quotas", "url": RATE_LIMITS_DOC}],
                },
                {"@type": RETRY_INFO, "retryDelay": retry_delay},
            ],
        }
    }


def prompt_text(body: Mapping[str, Any], *, system: bool = True) -> str:
    """All text the model would read: systemInstruction (unless `system=False`) + every content part."""
    chunks: list[str] = []
    instruction = body.get("systemInstruction") or body.get("system_instruction") or {}
    contents = [instruction] if system and isinstance(instruction, dict) else []
    contents += [c for c in body.get("contents") or [] if isinstance(c, dict)]
    for content in contents:
        for part in content.get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                chunks.append(part["text"])
    return "\n".join(chunks)


def _generation_config(body: Mapping[str, Any]) -> Mapping[str, Any]:
    config = body.get("generationConfig") or body.get("generation_config") or {}
    return config if isinstance(config, dict) else {}


def _enum_for(schema: Any, prop: str) -> list[str]:
    """Enum values of property ``prop`` anywhere in a (JSON or OpenAPI-subset) schema, resolving $defs."""
    if not isinstance(schema, dict):
        return []
    defs = {**(schema.get("$defs") or {}), **(schema.get("definitions") or {})}

    def values(node: Any, depth: int = 0) -> list[str]:
        if not isinstance(node, dict) or depth > 8:
            return []
        if isinstance(node.get("enum"), list):
            return [str(v) for v in node["enum"] if v is not None]
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.split("/")[-1] in defs:
            return values(defs[ref.split("/")[-1]], depth + 1)
        out: list[str] = []
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in node.get(key) or []:
                out += values(sub, depth + 1)
        return out

    def find(node: Any, depth: int = 0) -> list[str]:
        if not isinstance(node, dict) or depth > 8:
            return []
        props = node.get("properties")
        if isinstance(props, dict) and prop in props:
            return values(props[prop])
        for sub in [*(props or {}).values(), node.get("items")]:
            found = find(sub, depth + 1)
            if found:
                return found
        return []

    return find(schema)


def _pick(options: Iterable[str], text: str) -> tuple[str | None, str | None]:
    """(option, keyword) for the first rule whose keyword is in ``text`` and whose hint names an option."""
    options = list(options)
    lowered = text.lower()
    for keywords, hint in DEFAULT_RULES:
        for keyword in keywords:
            if re.search(rf"\b{re.escape(keyword)}\b", lowered):
                for option in options:
                    if hint == option.lower() or hint in re.split(r"[^a-z0-9]+", option.lower()):
                        return option, keyword
    return None, None


def keyword_responder(body: Mapping[str, Any]) -> str:
    """Default responder: keyword rules over the user's content (the system instruction describes every
    department, so it would match everything), constrained to the schema's enums."""
    text = prompt_text(body, system=False)
    config = _generation_config(body)
    schema = config.get("responseSchema") or config.get("responseJsonSchema") or {}
    departments = _enum_for(schema, "department") or list(DEFAULT_DEPARTMENTS)
    if config.get("responseMimeType") == "text/x.enum":
        values = schema.get("enum") if isinstance(schema, dict) else None
        options = [str(v) for v in values] if isinstance(values, list) and values else departments
        choice, _ = _pick(options, text)
        return choice or options[0]
    department, keyword = _pick(departments, text)
    teams = _enum_for(schema, "team")
    team, _ = _pick(teams, text) if teams else (None, None)
    if teams and team is None:
        team = teams[0]
    answer = {
        "department": department or departments[0],
        "team": team,
        "confidence": 0.92 if keyword else 0.35,
        "reason": f"matched keyword '{keyword}'" if keyword else "no keyword matched; default department",
    }
    return json.dumps(answer)


class GeminiStub(StubServer):
    name = "gemini"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        api_key: str | None = None,
        responder: Responder = keyword_responder,
        model_version: str = "gemini-stub-001",
        thoughts_tokens: int | None = None,
        cached_tokens: int = 0,
        default_thoughts: int = 400,
        rpm: int | None = None,
    ) -> None:
        super().__init__(host, port, latency)
        self.api_key = api_key
        self.responder = responder
        self.model_version = model_version
        self.thoughts_tokens = thoughts_tokens  # fixed thoughtsTokenCount; None: per model and thinkingConfig
        self.cached_tokens = cached_tokens
        self.default_thoughts = default_thoughts
        self.rpm = rpm
        self._bad_answers: list[str] = []
        self._rate_limits: list[str] = []
        self._windows: dict[str, deque[float]] = {}
        self._retry_delays: list[tuple[RecordedRequest, float]] = []

    # -- answer faults ----------------------------------------------------------------------------

    def out_of_taxonomy_next(self, n: int = 1) -> None:
        """The next ``n`` answers name a department that is not in the taxonomy."""
        with self._lock:
            self._bad_answers += ["taxonomy"] * n

    def malformed_next(self, n: int = 1) -> None:
        """The next ``n`` answers are truncated, unparseable JSON (finishReason MAX_TOKENS)."""
        with self._lock:
            self._bad_answers += ["malformed"] * n

    def rate_limit_next(self, n: int = 1, retry_after: float | str = 1, *, method: str | None = None) -> None:
        """The next ``n`` requests get 429 RESOURCE_EXHAUSTED with ``retryDelay`` = ``retry_after``
        (seconds, or a duration string such as "58s") in a RetryInfo detail, and no Retry-After header.
        ``method`` is accepted for the base signature; every Gemini call is a POST."""
        delay = retry_after if isinstance(retry_after, str) else duration(retry_after)
        with self._lock:
            self._rate_limits += [delay] * n

    @property
    def retry_delays(self) -> list[tuple[RecordedRequest, float]]:
        """Every request answered 429, with the retryDelay it was told (seconds), oldest first."""
        with self._lock:
            return list(self._retry_delays)

    def reset_state(self) -> None:
        self._bad_answers.clear()
        self._rate_limits.clear()
        self._windows.clear()
        self._retry_delays.clear()

    # -- quota ------------------------------------------------------------------------------------

    def _quota_reply(self, req: RecordedRequest, model: str) -> Reply | None:
        """A 429 for an injected rate limit or a full per-minute window; None: the request may proceed."""
        now = time.monotonic()
        with self._lock:
            if self._rate_limits:
                delay = self._rate_limits.pop(0)
                return self._limited(req, model, delay, _seconds(delay))
            if self.rpm is None:
                return None
            window = self._windows.setdefault(model, deque())
            while window and now - window[0] >= 60:
                window.popleft()
            if len(window) < self.rpm:
                window.append(now)
                return None
            wait = 60 - (now - window[0])
            return self._limited(req, model, f"{math.floor(wait)}s", wait)

    def _limited(self, req: RecordedRequest, model: str, delay: str, wait: float) -> Reply:
        req.fault = "rate_limit"
        self._retry_delays.append((req, _seconds(delay)))
        return Reply(429, quota_exceeded(model, delay, wait))

    # -- protocol ---------------------------------------------------------------------------------

    def error_reply(self, status: int, message: str) -> Reply:
        return Reply(
            status, {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
        )

    def handle(self, req: RecordedRequest) -> Reply:
        match = _PATH.match(req.path)
        if req.method != "POST" or not match:
            return self.error_reply(404, f"Method not found or unsupported: {req.method} {req.path}")
        key = req.headers.get("x-goog-api-key") or req.query.get("key")
        if not key:
            return self.error_reply(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if self.api_key is not None and key != self.api_key:
            return self.error_reply(400, "API key not valid. Please pass a valid API key.")
        model = match.group(2)
        limited = self._quota_reply(req, model)
        if limited is not None:
            return limited
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
            return self.error_reply(400, "* GenerateContentRequest.contents: contents is not specified")
        config = _generation_config(body)
        try:
            thoughts = self._thoughts(model, config)
        except InvalidArgument as exc:
            return self.error_reply(400, str(exc))
        text, finish = self._answer(body)
        text, thoughts, finish = _within_cap(text, thoughts, finish, config)
        return Reply(200, self._response(text, finish, thoughts, prompt_text(body), model))

    def _thoughts(self, model: str, config: Mapping[str, Any]) -> int:
        thoughts = thought_tokens(model, config, self.default_thoughts)  # validates even when fixed below
        return thoughts if self.thoughts_tokens is None else self.thoughts_tokens

    def _answer(self, body: Mapping[str, Any]) -> tuple[str, str]:
        with self._lock:
            bad = self._bad_answers.pop(0) if self._bad_answers else None
        text = self.responder(body)
        if bad == "taxonomy":
            answer = _as_dict(text)
            answer.update(department="Astrology", team=None, reason="out-of-taxonomy answer (injected)")
            return json.dumps(answer), "STOP"
        if bad == "malformed":
            return text[: max(1, len(text) // 2)], "MAX_TOKENS"
        return text, "STOP"

    def _response(self, text: str, finish: str, thoughts: int, prompt: str, model: str) -> dict[str, Any]:
        prompt_tokens, answer_tokens = len(prompt) // 4, len(text) // 4
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "totalTokenCount": prompt_tokens + answer_tokens + thoughts,
        }
        if answer_tokens:
            usage["candidatesTokenCount"] = answer_tokens
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = min(self.cached_tokens, prompt_tokens)
        # A candidate cut before its first answer token has no parts at all, as the real API sends it.
        content: dict[str, Any] = {"role": "model", "parts": [{"text": text}]} if text else {"role": "model"}
        return {
            "candidates": [{"content": content, "finishReason": finish, "index": 0}],
            "usageMetadata": usage,
            "modelVersion": self.model_version or model,
            "responseId": uuid.uuid4().hex[:22],
        }


def _within_cap(text: str, thoughts: int, finish: str, config: Mapping[str, Any]) -> tuple[str, int, str]:
    """Thoughts come out of maxOutputTokens first; the answer gets what is left, cut at the cap."""
    cap = int(field(config, "maxOutputTokens") or DEFAULT_MAX_OUTPUT_TOKENS)
    thoughts = min(thoughts, cap)
    room = cap - thoughts
    if len(text) // 4 > room:
        return text[: room * 4], thoughts, "MAX_TOKENS"
    return text, thoughts, finish


def _seconds(delay: str) -> float:
    try:
        return float(delay.strip().removesuffix("s"))
    except ValueError:
        return 0.0


def _as_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
