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
thoughtsTokenCount and cachedContentTokenCount are configurable (omitted when 0, as the API does);
totalTokenCount = prompt + candidates + thoughts.
"""

from __future__ import annotations

import json
import re
import uuid
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
        thoughts_tokens: int = 0,
        cached_tokens: int = 0,
    ) -> None:
        super().__init__(host, port, latency)
        self.api_key = api_key
        self.responder = responder
        self.model_version = model_version
        self.thoughts_tokens = thoughts_tokens
        self.cached_tokens = cached_tokens
        self._bad_answers: list[str] = []

    # -- answer faults ----------------------------------------------------------------------------

    def out_of_taxonomy_next(self, n: int = 1) -> None:
        """The next ``n`` answers name a department that is not in the taxonomy."""
        with self._lock:
            self._bad_answers += ["taxonomy"] * n

    def malformed_next(self, n: int = 1) -> None:
        """The next ``n`` answers are truncated, unparseable JSON (finishReason MAX_TOKENS)."""
        with self._lock:
            self._bad_answers += ["malformed"] * n

    def reset_state(self) -> None:
        self._bad_answers.clear()

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
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
            return self.error_reply(400, "* GenerateContentRequest.contents: contents is not specified")
        with self._lock:
            bad = self._bad_answers.pop(0) if self._bad_answers else None
        text = self.responder(body)
        finish = "STOP"
        if bad == "taxonomy":
            answer = _as_dict(text)
            answer.update(department="Astrology", team=None, reason="out-of-taxonomy answer (injected)")
            text = json.dumps(answer)
        elif bad == "malformed":
            text, finish = text[: max(1, len(text) // 2)], "MAX_TOKENS"
        return Reply(200, self._response(text, finish, prompt_text(body), match.group(2)))

    def _response(self, text: str, finish: str, prompt: str, model: str) -> dict[str, Any]:
        prompt_tokens, answer_tokens = len(prompt) // 4, len(text) // 4
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": answer_tokens,
            "totalTokenCount": prompt_tokens + answer_tokens + self.thoughts_tokens,
        }
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = min(self.cached_tokens, prompt_tokens)
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": finish,
                    "index": 0,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": self.model_version or model,
            "responseId": uuid.uuid4().hex[:22],
        }


def _as_dict(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
