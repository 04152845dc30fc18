"""deliver() against a destination whose search lags behind its creates (as Jira's and Freshservice's do).

The fake destination shares one simulated clock with deliver(): sleeping advances it, so the tests check
the exact waits without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from triage.route.claims import _recovery_from
from triage.route.destinations import OutboundTicket, RetryPolicy, TransientDeliveryError
from triage.route.destinations.base import Delivery
from triage.route.destinations.deliver import Recovery, SearchNotSettled, deliver
from triage.route.destinations.http import parse_reset, retry_after_of

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TICKET = OutboundTicket("T-1", "VPN down", "since today", "a@example.com", "high", "IT", None, 0.9, None)


class SimClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.t += seconds

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.t)


@dataclass
class LaggingDestination:
    """Creates land at once; search sees a create only `lag` seconds later. `faults` fail creates in order:
    "crash" = created but the answer is lost, "refused" = 429 before any work, "ok" = answer normally."""

    clock: SimClock
    lag: float = 3.0
    search_lag_s: float = 3.5
    faults: list[str] = field(default_factory=list)
    created: list[float] = field(default_factory=list)
    searches: list[float] = field(default_factory=list)
    system: str = "jira"

    def find_existing(self, ticket: OutboundTicket) -> Delivery | None:
        self.searches.append(self.clock.t)
        visible = [at for at in self.created if self.clock.t - at >= self.lag]
        return Delivery(self.system, "OPS-1") if visible else None

    def create(self, ticket: OutboundTicket) -> Delivery:
        fault = self.faults.pop(0) if self.faults else "ok"
        if fault == "refused":
            raise TransientDeliveryError("429", system=self.system, status=429, may_have_applied=False)
        self.created.append(self.clock.t)
        if fault == "crash":
            raise TransientDeliveryError("connection dropped", system=self.system)
        return Delivery(self.system, f"OPS-{len(self.created)}")


def run(dest: LaggingDestination, clock: SimClock, recovery: Recovery | None = None, budget: float = 20.0):
    return deliver(
        dest,
        TICKET,
        recovery=recovery,
        policy=RetryPolicy(max_attempts=4, total_budget=budget),
        sleep=clock.sleep,
        clock=clock.monotonic,
        now=clock.now,
    )


def test_crash_after_create_waits_out_the_search_lag_instead_of_creating_again() -> None:
    clock = SimClock()
    dest = LaggingDestination(clock, faults=["crash"])
    assert run(dest, clock).ref == "OPS-1"
    assert len(dest.created) == 1
    # The search that decided came no earlier than the lag bound after the create.
    assert dest.searches and dest.searches[-1] - dest.created[0] >= dest.search_lag_s - 1e-6


def test_without_the_wait_the_same_fault_would_duplicate() -> None:
    """The lag bound is what prevents the duplicate: with a bound below the real lag, two creates."""
    clock = SimClock()
    dest = LaggingDestination(clock, faults=["crash"], search_lag_s=0.0)
    run(dest, clock)
    assert len(dest.created) == 2


def test_a_refused_create_is_not_in_doubt_and_is_retried_without_waiting_for_search() -> None:
    clock = SimClock()
    dest = LaggingDestination(clock, faults=["refused"])
    run(dest, clock)
    assert len(dest.created) == 1
    assert all(w < dest.search_lag_s for w in clock.waits)


def test_a_wait_beyond_the_budget_is_handed_on_with_the_moment_in_doubt() -> None:
    clock = SimClock()
    dest = LaggingDestination(clock, faults=["crash"], search_lag_s=30.0)
    with pytest.raises(SearchNotSettled) as caught:
        run(dest, clock, budget=20.0)
    assert caught.value.unsure_until == T0 and caught.value.retry_after == pytest.approx(30.0, abs=1)
    assert len(dest.created) == 1
    # The next delivery, much later, searches (the create is visible by then) and does not create again.
    clock.t = 40.0
    later = run(dest, clock, recovery=Recovery(unsure_until=caught.value.unsure_until, search_first=True))
    assert later.ref == "OPS-1" and len(dest.created) == 1


def test_a_redelivery_inside_the_lag_window_waits_before_its_first_search() -> None:
    clock = SimClock()
    dest = LaggingDestination(clock)
    dest.created.append(0.0)  # an earlier delivery's create landed at t=0, then its process died
    clock.t = 1.0
    assert run(dest, clock, recovery=Recovery(unsure_until=T0, search_first=True)).ref == "OPS-1"
    assert dest.searches == [3.5] and len(dest.created) == 1


def test_claim_of_a_dead_holder_puts_its_last_create_in_doubt_for_one_call_window() -> None:
    held = {"state": "held", "at": T0, "create_at": T0 + timedelta(seconds=5), "unsure_until": None}
    recovery = _recovery_from(held, timedelta(seconds=13))
    assert recovery.unsure_until == T0 + timedelta(seconds=18) and recovery.search_first
    released = {"state": "released", "at": T0, "create_at": T0, "unsure_until": None}
    assert _recovery_from(released, timedelta(seconds=13)) == Recovery(None, search_first=True)
    assert _recovery_from(None, timedelta(seconds=13)) == Recovery()


def test_rate_limit_reset_header_is_honoured_when_there_is_no_retry_after() -> None:
    now = T0.timestamp()
    assert parse_reset("2026-12-03T12:15:00Z", now=now) == pytest.approx(900)
    assert parse_reset("2026-12-03T12:15:00.000+0000".replace("+0000", "+00:00"), now=now) == 900
    assert parse_reset(str(now + 60), now=now) == pytest.approx(60)
    assert parse_reset("30", now=now) == 30
    assert parse_reset("soon", now=now) is None
    assert retry_after_of({"Retry-After": "5", "X-RateLimit-Reset": "2099-01-01T00:00Z"}) == 5
    assert retry_after_of({"X-RateLimit-Reset": "1970-01-01T00:00Z"}) == 0
