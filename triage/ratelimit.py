"""Per-sender admission control at intake: a token bucket per sender, in the instance's memory.

A flood from one sender (a looping n8n workflow, a script gone wrong) must not exhaust the LLM budget, the
Firestore quota or intake's threads for everyone else. Each instance keeps its own buckets, so the limit a
sender sees is `rate x instances` at most: Terraform's max_instances bounds that. Refusals are counted in
aggregate (one counter write per `flush_every_s` at most), so counting a flood costs no write per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class SenderLimiter:
    rate_per_s: float
    burst: int
    max_senders: int = 10_000  # least recently seen senders are forgotten beyond this (memory bound)
    clock: Callable[[], float] = time.monotonic
    _buckets: OrderedDict[str, _Bucket] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, sender: str) -> float | None:
        """None if admitted; else the seconds until the sender may try again (for Retry-After)."""
        if self.rate_per_s <= 0:
            return None
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop(sender, None) or _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s)
            bucket.at = now
            self._buckets[sender] = bucket
            if len(self._buckets) > self.max_senders:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / self.rate_per_s


@dataclass
class RefusalTally:
    """Counts refusals in memory and hands the sum to `flush` at most once per `flush_every_s`."""

    flush: Callable[[int], None]
    flush_every_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _pending: int = 0
    _flushed_at: float = -math.inf
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self) -> None:
        with self._lock:
            self._pending += 1
            if self.clock() - self._flushed_at < self.flush_every_s:
                return
            count, self._pending, self._flushed_at = self._pending, 0, self.clock()
        try:
            self.flush(count)
        except Exception:  # a count is never worth failing the answer for; keep it for the next flush
            with self._lock:
                self._pending += count


def retry_after_header(wait_s: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait_s)))}
