"""Small helpers shared by integration and end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc

from triage.counters import read_totals

T = TypeVar("T")

SEED = {
    "title": "Email server down",
    "description": "The main email server is not responding.",
    "email": "john.doe@company.com",
    "priority": "high",
    "metadata": {"department": "IT", "location": "Building A"},
}


def eventually(check: Callable[[], T], timeout_s: float = 10.0, interval_s: float = 0.05) -> T:
    """Polls until `check` returns a truthy value (returned) or the deadline passes (AssertionError)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last value: {last!r})")


def stored_state(db: Any) -> dict[str, Any]:
    """Everything a request could have written: tickets, idempotency records, counters."""
    return {
        "tickets": sorted(d.id for d in db.collection("tickets").stream()),
        "idempotency": sorted(d.id for d in db.collection("idempotency").stream()),
        "counters": read_totals(db),
    }


def counter(db: Any, storage_key: str, series: str = "_") -> float:
    return read_totals(db).get(storage_key, {}).get(series, 0)


def pull_all(subscriber: Any, subscription: str, wait_s: float = 1.5) -> list[Any]:
    """Pulls and acks whatever arrives within `wait_s`."""
    received = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            response = subscriber.pull(
                request={"subscription": subscription, "max_messages": 100}, timeout=0.5
            )
        except (gexc.DeadlineExceeded, gexc.RetryError):
            continue
        if response.received_messages:
            received.extend(m.message for m in response.received_messages)
            subscriber.acknowledge(
                request={
                    "subscription": subscription,
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
    return received
