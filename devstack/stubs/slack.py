"""Slack incoming-webhook stub: ``POST /services/<team>/<bot>/<secret>``.

Each rule and the documentation it models:

* Answers like Slack: ``200 ok`` (text) on success; ``400 invalid_payload`` when the body is not a JSON
  object (``application/json``, or form-encoded ``payload=<json>``); ``400 no_text`` when there is neither
  ``text`` nor ``blocks``; ``400 invalid_blocks`` when Block Kit limits are broken (header must be
  plain_text <= 150 chars, section text <= 3000, <= 10 fields of <= 2000, context <= 10 elements, <= 50
  blocks). Messages land in ``.messages`` as ``(path, payload)``.
* Permanent errors (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks):
  ``404 no_service`` for any other path or a hook not in ``hooks`` (when given), ``410 channel_is_archived``
  after ``archive(hook)``, ``403 action_prohibited`` after ``prohibit(hook)``.
* Rate limit: "1 per second, short bursts >1 allowed" per webhook (https://api.slack.com/docs/rate-limits);
  over it Slack answers "HTTP 429 Too Many Requests ..., and a Retry-After header containing the number of
  seconds until you can retry" (same page, as quoted in https://github.com/kentaro/takosan/issues/1) with
  the JSON body ``{"retry_after": 1, "ok": false, "error": "rate_limited"}`` (as a webhook answered in
  https://github.com/yassineaboukir/sublert/issues/46). By default every hook is a token bucket of
  ``rate_per_s`` (1) refilled tokens and ``burst`` (10) capacity: Slack publishes no burst size (about 25
  was measured in https://github.com/RamblingCookieMonster/PSSlack/issues/52), the stub stays below it.
  ``rate_limit=False`` turns the limit off.
* ``mrkdwn_controls(payload)`` lists what Slack would render as links or mentions in the mrkdwn text:
  ``<...>`` sequences, plus literal ``@name`` / ``#channel`` when ``link_names`` or ``parse: full`` ask
  Slack to link them (https://github.com/slackhq/slack-api-docs/blob/master/page_formatting.md).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

from devstack.stubs.base import RecordedRequest, Reply, StubServer

DEFAULT_HOOK = "/services/T000/B000/XXXX"
DEFAULT_RATE_PER_S = 1.0
DEFAULT_BURST = 10
_HOOK = re.compile(r"^/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+$")
_CONTROL_SEQUENCE = re.compile(r"<[^<>]*>")
_LINKABLE_NAME = re.compile(r"(?<![\w&])[@#][\w.-]+")
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


def _mrkdwn_texts(payload: dict[str, Any]) -> Iterator[str]:
    """Every string Slack parses as mrkdwn: the top-level text and mrkdwn text objects in blocks."""
    if isinstance(payload.get("text"), str) and payload.get("mrkdwn", True) is not False:
        yield payload["text"]
    for block in payload.get("blocks") or []:
        objects = [block.get("text"), *(block.get("fields") or []), *(block.get("elements") or [])]
        for obj in objects:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn" and isinstance(obj.get("text"), str):
                yield obj["text"]


def mrkdwn_controls(payload: dict[str, Any]) -> list[str]:
    """What Slack would render as a link, a mention or a special command in the payload's mrkdwn text."""
    full = payload.get("parse") == "full"
    link_names = full or payload.get("link_names") in (1, True, "1", "true")
    found: list[str] = []
    for text in _mrkdwn_texts(payload):
        if not full:  # parse=full escapes markup instead of honouring it
            found += _CONTROL_SEQUENCE.findall(text)
        if link_names:
            found += _LINKABLE_NAME.findall(text)
    return found


class SlackStub(StubServer):
    name = "slack"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        hooks: set[str] | None = None,
        rate_limit: bool = True,
        rate_per_s: float = DEFAULT_RATE_PER_S,
        burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(host, port, latency)
        self.hooks = hooks  # None: any /services/<a>/<b>/<c> path is a live hook
        self.rate_limit, self.rate_per_s, self.burst, self.clock = rate_limit, rate_per_s, burst, clock
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.archived: set[str] = set()
        self.prohibited: set[str] = set()
        self._buckets: dict[str, tuple[float, float]] = {}  # hook -> (tokens, when last counted)

    @property
    def webhook_url(self) -> str:
        return self.url + (sorted(self.hooks)[0] if self.hooks else DEFAULT_HOOK)

    def archive(self, hook: str = DEFAULT_HOOK) -> None:
        """The hook's channel is archived: Slack answers 410 channel_is_archived from now on."""
        with self._lock:
            self.archived.add(hook)

    def prohibit(self, hook: str = DEFAULT_HOOK) -> None:
        """The workspace restricts posting there: Slack answers 403 action_prohibited from now on."""
        with self._lock:
            self.prohibited.add(hook)

    def reset_state(self) -> None:
        self.messages.clear()
        self.archived.clear()
        self.prohibited.clear()
        self._buckets.clear()

    def error_reply(self, status: int, message: str) -> Reply:
        if status == 429:
            return Reply(429, {"ok": False, "error": "rate_limited"})
        code = {404: "no_service", 400: "invalid_payload"}.get(status, "rollup_error")
        return Reply(status, code)

    def handle(self, req: RecordedRequest) -> Reply:
        refused = self._refusal(req)
        if refused is not None:
            return refused
        wait = self._take_token(req.path)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            return Reply(
                429,
                {"retry_after": seconds, "ok": False, "error": "rate_limited"},
                headers={"Retry-After": str(seconds)},
            )
        payload = self._payload(req)
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

    def _refusal(self, req: RecordedRequest) -> Reply | None:
        """The permanent answers: no such hook, archived channel, prohibited posting."""
        live = _HOOK.match(req.path) and (self.hooks is None or req.path in self.hooks)
        if req.method != "POST" or not live:
            return Reply(404, "no_service")
        with self._lock:
            if req.path in self.archived:
                return Reply(410, "channel_is_archived")
            if req.path in self.prohibited:
                return Reply(403, "action_prohibited")
        return None

    def _take_token(self, hook: str) -> float | None:
        """Spend one of the hook's tokens; None if there was one, else the seconds until the next."""
        if not self.rate_limit:
            return None
        now = self.clock()
        with self._lock:
            tokens, since = self._buckets.get(hook, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - since) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[hook] = (tokens - 1.0, now)
                return None
            self._buckets[hook] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s

    @staticmethod
    def _payload(req: RecordedRequest) -> Any:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return req.json
        raw = parse_qs(req.text).get("payload", [""])[0]
        try:
            return json.loads(raw)
        except ValueError:
            return None
