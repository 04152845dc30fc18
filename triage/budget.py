"""The daily LLM budget: spend per UTC day in sharded Firestore documents, read with a short cache.

Spend is written in the same batch as the classification that caused it. The guard reads today's total
at most every `refresh_s` per process, so a burst can overshoot the cap by that window's calls.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from google.cloud.firestore import Increment

COLLECTION = "llm_spend"


def _doc_id(day: date, shard: int) -> str:
    return f"{day.isoformat()}-{shard:03d}"


def add_spend(batch: Any, db: Any, usd: float, day: date, shards: int) -> None:
    ref = db.collection(COLLECTION).document(_doc_id(day, random.randrange(shards)))
    batch.set(ref, {"day": day.isoformat(), "usd": Increment(usd)}, merge=True)


def spent_on(db: Any, day: date, shards: int, timeout_s: float | None = None) -> float:
    refs = [db.collection(COLLECTION).document(_doc_id(day, k)) for k in range(shards)]
    options = {"retry": None, "timeout": timeout_s} if timeout_s else {}
    return sum((snap.to_dict() or {}).get("usd", 0.0) for snap in db.get_all(refs, **options) if snap.exists)


def today() -> date:
    return datetime.now(UTC).date()


@dataclass
class DailyBudget:
    db: Any
    cap_usd: float
    shards: int
    refresh_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, date, float] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spent_today(self) -> float:
        with self._lock:
            now, day = self.clock(), today()
            if self._cached and self._cached[1] == day and now - self._cached[0] < self.refresh_s:
                return self._cached[2]
            spent = spent_on(self.db, day, self.shards)
            self._cached = (now, day, spent)
            return spent

    def exhausted(self) -> bool:
        return self.spent_today() >= self.cap_usd
