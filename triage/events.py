"""Pub/Sub messages as they reach a stage function (push body → CloudEvent via functions-framework)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

DEAD_LETTER_COUNT_ATTR = "CloudPubSubDeadLetterSourceDeliveryCount"


class BadMessage(ValueError):
    """A message no retry can fix: acknowledge it and log why."""


@dataclass(frozen=True)
class TicketMessage:
    ticket_id: str
    message_id: str
    attributes: dict[str, str]

    @property
    def trace(self) -> str | None:
        return self.attributes.get("trace")

    @property
    def is_dead_letter(self) -> bool:
        return DEAD_LETTER_COUNT_ATTR in self.attributes

    @property
    def delivery_count(self) -> int | None:
        value = self.attributes.get(DEAD_LETTER_COUNT_ATTR)
        return int(value) if value and value.isdigit() else None


def parse(data: Any) -> TicketMessage:
    """Extracts the ticket id from a CloudEvent's `data` ({"message": {...}, ...})."""
    message = (data or {}).get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        raise BadMessage("event has no Pub/Sub message")
    attributes = {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}
    ticket_id = attributes.get("ticket_id") or _ticket_id_from_data(message.get("data"))
    if not ticket_id or not isinstance(ticket_id, str) or len(ticket_id) > 128 or "/" in ticket_id:
        raise BadMessage("message names no valid ticket_id")
    return TicketMessage(
        ticket_id, str(message.get("messageId") or message.get("message_id") or ""), attributes
    )


def _ticket_id_from_data(raw: Any) -> Any:
    if not raw:
        return None
    try:
        payload = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise BadMessage("message data is not base64 JSON") from exc
    return payload.get("ticket_id") if isinstance(payload, dict) else None
