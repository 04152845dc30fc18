"""Slack destination: an incoming webhook message (Block Kit + fallback text).

Success is HTTP 200 with the body ``ok``; errors are short strings (``invalid_payload``, ``no_text``,
``no_service`` 404, ``channel_not_found`` 404, ``action_prohibited`` 403, ``channel_is_archived`` 410,
``rollup_error`` 500). The webhook URL is the credential, so it is redacted from every error. No requester
email reaches Slack. Incoming webhooks cannot be queried, so find_existing always returns None.

Requester text never becomes markup: in mrkdwn text Slack's three control characters ``&``, ``<``, ``>`` are
escaped (https://docs.slack.dev/messaging/formatting-message-text/), so no ``<!channel>``, ``<@U…>`` or
``<url|label>`` can be formed, and the payload never sets ``link_names`` or ``parse: full``, without which
Slack does not turn a literal ``@here`` / ``@channel`` / ``@user`` into a mention
(https://github.com/slackhq/slack-api-docs/blob/master/page_formatting.md, "Parsing modes"). The header is
``plain_text``, which Slack does not parse at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from triage.route.destinations.base import (
    Delivery,
    OutboundTicket,
    PermanentDeliveryError,
    format_confidence,
    require_safe_id,
)
from triage.route.destinations.http import HttpSettings, request, secret_variants

HEADER_MAX = 150  # Block Kit header text limit
FIELD_MAX = 2000  # section field text limit
CONTEXT_MAX = 2000
PRIORITY_EMOJI = {
    "critical": ":rotating_light:",
    "high": ":red_circle:",
    "medium": ":large_orange_circle:",
    "low": ":white_circle:",
}


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters: unescaped ``<`` would let ticket text ping <!channel> or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_detail(response: requests.Response) -> str:
    return response.text.strip()


@dataclass
class SlackDestination:
    webhook_url: str
    http: HttpSettings = field(default_factory=HttpSettings)
    search_lag_s: float = field(default=0.0, init=False)  # nothing to search: webhooks cannot be queried
    system: str = field(default="slack", init=False)

    def __post_init__(self) -> None:
        path = urlsplit(self.webhook_url).path
        self._secrets = secret_variants(self.webhook_url, path if len(path) > 1 else None)

    def build_payload(self, ticket: OutboundTicket) -> dict[str, Any]:
        ticket_id = require_safe_id(ticket, self.system)
        title = " ".join(ticket.title.split()) or f"Ticket {ticket_id}"
        team = f" / {ticket.team}" if ticket.team else ""
        where = escape_mrkdwn(f"{ticket.department}{team}")
        emoji = PRIORITY_EMOJI.get(ticket.priority, "")
        fields = [
            f"*Department / team*\n{where}",
            f"*Priority*\n{emoji} {escape_mrkdwn(ticket.priority)}".rstrip(),
            f"*Confidence*\n{format_confidence(ticket.confidence)}",
            f"*Triage ID*\n`{ticket_id}`",
        ]
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _clip(title, HEADER_MAX), "emoji": True},
            },
            {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(f, FIELD_MAX)} for f in fields]},
        ]
        if ticket.reason:
            blocks.append(
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": _clip(escape_mrkdwn(ticket.reason), CONTEXT_MAX)}
                    ],
                }
            )
        fallback = f"[{ticket.priority}] {title} → {ticket.department}{team} ({ticket_id})"
        return {"text": escape_mrkdwn(fallback), "blocks": blocks}

    def create(self, ticket: OutboundTicket) -> Delivery:
        response = request(
            "POST",
            self.webhook_url,
            system=self.system,
            action="post message",
            settings=self.http,
            secrets=self._secrets,
            detail=slack_detail,
            json=self.build_payload(ticket),
        )
        if response.status_code != 200 or response.text.strip() != "ok":
            raise PermanentDeliveryError(
                f"slack post message: unexpected answer (HTTP {response.status_code})",
                system=self.system,
                status=response.status_code,
                detail=response.text.strip()[:200],
            )
        return Delivery(self.system, f"slack:{ticket.ticket_id}")

    def find_existing(self, ticket: OutboundTicket) -> Delivery | None:
        return None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
