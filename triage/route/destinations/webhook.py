"""Generic outbound webhook: the OutboundTicket as JSON, HMAC-signed like our intake.

Headers: ``X-Triage-Timestamp``, ``X-Triage-Signature: sha256=<hex>`` (see triage.signing) and
``Idempotency-Key: <ticket id>`` so a receiver can drop the duplicate a retry after a lost answer may cause
(webhooks cannot be queried, so find_existing returns None). The requester email is left out unless
``include_email`` is set. Each attempt is signed afresh, so a delayed retry never carries a stale timestamp.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from triage import signing
from triage.route.destinations.base import Delivery, OutboundTicket, require_safe_id
from triage.route.destinations.http import HttpSettings, request, secret_variants


@dataclass
class WebhookDestination:
    url: str
    secret: str
    include_email: bool = False
    http: HttpSettings = field(default_factory=HttpSettings)
    clock: Callable[[], float] = time.time
    system: str = field(default="webhook", init=False)

    def __post_init__(self) -> None:
        self._secrets = secret_variants(self.secret)

    def build_body(self, ticket: OutboundTicket) -> bytes:
        payload = dataclasses.asdict(ticket)
        if not self.include_email:
            payload.pop("email", None)
        # Sorted, compact and UTF-8: the exact bytes we sign are the bytes we send.
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def create(self, ticket: OutboundTicket) -> Delivery:
        ticket_id = require_safe_id(ticket, self.system)
        body = self.build_body(ticket)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": ticket_id,
            **signing.sign(self.secret, body, int(self.clock())),
        }
        response = request(
            "POST",
            self.url,
            system=self.system,
            action="deliver",
            settings=self.http,
            secrets=self._secrets,
            data=body,
            headers=headers,
        )
        ref: Any = None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            ref = payload.get("id")
        return Delivery(self.system, str(ref) if ref not in (None, "") else ticket_id)

    def find_existing(self, ticket: OutboundTicket) -> Delivery | None:
        return None
