"""Bounded retries shared by every outbound call (destinations, Gemini).

Full-jitter exponential backoff, never shorter than the server's Retry-After, bounded by attempts AND a
total time budget: a sleep that would end past the budget is never started; the last error is re-raised
and the caller's own retry layer (Pub/Sub redelivery) takes over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    total_budget: float = 20.0  # seconds, across attempts and sleeps
    backoff_initial: float = 0.5
    backoff_max: float = 8.0


def call_with_retries(
    fn: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None] = lambda exc: getattr(exc, "retry_after", None),
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    what: str = "call",
) -> T:
    """Calls `fn` until it succeeds, raises a non-retryable error, or attempts/budget run out.

    `sleep` and `clock` are injectable so tests can check waits without waiting.
    """
    policy = policy or RetryPolicy()
    started = clock()
    jitter = tenacity.wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return max(jitter(state), float((exc and retry_after(exc)) or 0.0))

    def stop(state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= policy.max_attempts:
            return True
        # tenacity computes the wait before asking stop: never start a sleep that ends past the budget.
        return (clock() - started) + state.upcoming_sleep > policy.total_budget

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s attempt %d failed, retrying in %.2fs: %s",
            what,
            state.attempt_number,
            state.upcoming_sleep,
            exc,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(retryable),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)
