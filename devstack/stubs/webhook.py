"""Generic webhook receiver stub that checks our HMAC signature (triage.signing) and records deliveries.

* 415 unless ``Content-Type: application/json``; 401 ``{"error": "invalid signature"}`` unless
  ``X-Triage-Timestamp`` / ``X-Triage-Signature`` verify against ``secret`` within ``tolerance`` seconds.
* ``Idempotency-Key`` dedupes: a repeated key answers 200 with the first delivery's id and is not recorded
  again. A new delivery answers 201 ``{"id": "wh-<n>"}`` (or 204 without a body if ``respond_with_id`` is
  False).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from devstack.stubs.base import RecordedRequest, Reply, StubServer
from triage import signing


class WebhookStub(StubServer):
    name = "webhook"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        secret: str = "webhook-test-secret",  # noqa: S107 - the stub's fake secret
        tolerance: int = signing.DEFAULT_TOLERANCE_SECONDS,
        respond_with_id: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host, port, latency)
        self.secret, self.tolerance, self.respond_with_id, self.clock = (
            secret,
            tolerance,
            respond_with_id,
            clock,
        )
        self.deliveries: list[dict[str, Any]] = []
        self._by_key: dict[str, str] = {}

    def reset_state(self) -> None:
        self.deliveries.clear()
        self._by_key.clear()

    def handle(self, req: RecordedRequest) -> Reply:
        if req.method != "POST":
            return Reply(405, {"error": "method not allowed"}, headers={"Allow": "POST"})
        if not req.is_json():
            return Reply(415, {"error": "expected application/json"})
        ok = signing.verify(
            self.secret,
            req.body,
            req.headers.get(signing.TIMESTAMP_HEADER.lower()),
            req.headers.get(signing.SIGNATURE_HEADER.lower()),
            now=self.clock(),
            tolerance=self.tolerance,
        )
        if not ok:
            return Reply(401, {"error": "invalid signature"})
        key = req.headers.get("idempotency-key")
        with self._lock:
            if key and key in self._by_key:
                return Reply(200, {"id": self._by_key[key], "duplicate": True})
            delivery_id = f"wh-{len(self.deliveries) + 1}"
            self.deliveries.append(
                {
                    "id": delivery_id,
                    "path": req.path,
                    "idempotency_key": key,
                    "payload": req.json,
                    "headers": dict(req.headers),
                }
            )
            if key:
                self._by_key[key] = delivery_id
        if not self.respond_with_id:
            return Reply(204, None, created=True)
        return Reply(201, {"id": delivery_id}, created=True)
