"""Slack incoming-webhook stub: ``POST /services/<team>/<bot>/<secret>``.

Answers like Slack: ``200 ok`` (text) on success; ``400 invalid_payload`` when the body is not a JSON object
(``application/json``, or form-encoded ``payload=<json>``); ``400 no_text`` when there is neither ``text``
nor ``blocks``; ``400 invalid_blocks`` when Block Kit limits are broken (header must be plain_text <= 150
chars, section text <= 3000, <= 10 fields of <= 2000, context <= 10 elements, <= 50 blocks);
``404 no_service`` for any other path or a hook not in ``hooks`` (when given). Messages land in
``.messages`` as ``(path, payload)``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from devstack.stubs.base import RecordedRequest, Reply, StubServer

DEFAULT_HOOK = "/services/T000/B000/XXXX"
_HOOK = re.compile(r"^/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+$")
BLOCK_TYPES = {
    "header",
    "section",
    "context",
    "divider",
    "actions",
    "image",
    "rich_text",
    "input",
    "video",
    "file",
}


def _text_ok(obj: Any, limit: int, *, plain_only: bool = False) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"]:
        return False
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    return obj.get("type") in kinds and len(obj["text"]) <= limit


def blocks_valid(blocks: Any) -> bool:
    """A subset of Block Kit validation: the limits our messages could plausibly break."""
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return False
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            return False
        kind = block["type"]
        if kind == "header" and not _text_ok(block.get("text"), 150, plain_only=True):
            return False
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and fields is None:
                return False
            if text is not None and not _text_ok(text, 3000):
                return False
            if fields is not None and (
                not isinstance(fields, list)
                or not 0 < len(fields) <= 10
                or not all(_text_ok(f, 2000) for f in fields)
            ):
                return False
        if kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 10:
                return False
            if not all(
                _text_ok(e, 3000) or (isinstance(e, dict) and e.get("type") == "image") for e in elements
            ):
                return False
    return True


class SlackStub(StubServer):
    name = "slack"

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0, hooks: set[str] | None = None
    ) -> None:
        super().__init__(host, port, latency)
        self.hooks = hooks  # None: any /services/<a>/<b>/<c> path is a live hook
        self.messages: list[tuple[str, dict[str, Any]]] = []

    @property
    def webhook_url(self) -> str:
        return self.url + (sorted(self.hooks)[0] if self.hooks else DEFAULT_HOOK)

    def reset_state(self) -> None:
        self.messages.clear()

    def error_reply(self, status: int, message: str) -> Reply:
        code = {429: "rate_limited", 404: "no_service", 400: "invalid_payload"}.get(status, "rollup_error")
        return Reply(status, code)

    def handle(self, req: RecordedRequest) -> Reply:
        if (
            req.method != "POST"
            or not _HOOK.match(req.path)
            or (self.hooks is not None and req.path not in self.hooks)
        ):
            return Reply(404, "no_service")
        payload: Any = None
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            raw = parse_qs(req.text).get("payload", [""])[0]
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
        else:
            payload = req.json
        if not isinstance(payload, dict):
            return Reply(400, "invalid_payload")
        has_text = isinstance(payload.get("text"), str) and payload["text"].strip()
        if not has_text and not payload.get("blocks") and not payload.get("attachments"):
            return Reply(400, "no_text")
        if "blocks" in payload and not blocks_valid(payload["blocks"]):
            return Reply(400, "invalid_blocks")
        with self._lock:
            self.messages.append((req.path, payload))
        return Reply(200, "ok", created=True)
