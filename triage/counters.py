"""Sharded Firestore counters: how the functions count, and how the exporter reads the counts back.

A shard document holds every family: `{family: {series_key: value}}` for counters and gauges,
`{family: {series_key: {"b": {le: n}, "sum": x, "count": n}}}` for histograms (buckets not cumulative).
Each update goes to one random shard with `Increment`, inside the same batch as the state change it counts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.cloud.firestore import Increment

from triage.metrics import BY_NAME, Family, Kind

COLLECTION = "counters"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:/+\-]{1,80}$")
INF = "+Inf"
NO_LABELS = "_"  # Firestore field names can't be empty


def series_key(family: Family, labels: Mapping[str, str] | None) -> str:
    labels = labels or {}
    if set(labels) != set(family.labels):
        raise ValueError(f"{family.name}: labels {sorted(labels)} != {sorted(family.labels)}")
    for name in family.labels:
        if not _LABEL_VALUE.match(str(labels[name])):
            raise ValueError(f"{family.name}: label {name} has an unsafe value")
    return "|".join(f"{name}={labels[name]}" for name in family.labels) or NO_LABELS


def parse_series_key(key: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in key.split("|")) if key != NO_LABELS else {}


def le_key(le: float) -> str:
    return f"{le:g}"


def bucket_for(family: Family, value: float) -> str:
    for le in family.buckets:
        if value <= le:
            return le_key(le)
    return INF


@dataclass
class CounterUpdate:
    """The increments one state change implies. Empty updates write nothing."""

    _fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def inc(
        self, family: Family, labels: Mapping[str, str] | None = None, amount: float = 1
    ) -> CounterUpdate:
        if family.kind is Kind.HISTOGRAM:
            raise TypeError(f"{family.name} is a histogram: use observe()")
        series = self._fields.setdefault(family.storage_key, {})
        key = series_key(family, labels)
        series[key] = series.get(key, 0) + amount
        return self

    def observe(self, family: Family, labels: Mapping[str, str] | None, value: float) -> CounterUpdate:
        if family.kind is not Kind.HISTOGRAM:
            raise TypeError(f"{family.name} is not a histogram")
        series = self._fields.setdefault(family.storage_key, {})
        hist = series.setdefault(series_key(family, labels), {"b": {}, "sum": 0.0, "count": 0})
        bucket = bucket_for(family, value)
        hist["b"][bucket] = hist["b"].get(bucket, 0) + 1
        hist["sum"] += value
        hist["count"] += 1
        return self

    def merge(self, other: CounterUpdate) -> CounterUpdate:
        _sum_into(self._fields, other._fields)
        return self

    def __bool__(self) -> bool:
        return bool(self._fields)

    def as_increments(self) -> dict[str, Any]:
        return _to_increments(self._fields)

    def write_to(self, batch: Any, db: Any, shards: int, rng: random.Random | None = None) -> None:
        if not self._fields:
            return
        shard = (rng or random).randrange(shards)
        batch.set(db.collection(COLLECTION).document(f"{shard:03d}"), self.as_increments(), merge=True)


def _to_increments(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _to_increments(v) if isinstance(v, dict) else Increment(v) for k, v in tree.items()}


def _sum_into(total: dict[str, Any], shard: Mapping[str, Any]) -> None:
    for key, value in shard.items():
        if isinstance(value, Mapping):
            _sum_into(total.setdefault(key, {}), value)
        elif isinstance(value, int | float):
            total[key] = total.get(key, 0) + value


def sum_shards(shards: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Adds shard documents together: {storage_key: {series_key: value | histogram}}."""
    total: dict[str, Any] = {}
    for shard in shards:
        _sum_into(total, shard)
    return total


def read_totals(db: Any, timeout_s: float | None = None) -> dict[str, Any]:
    """Reads every shard (a bounded number of documents, whatever the ticket count) and sums them.

    With `timeout_s`, one attempt and no retries: a monitoring read must fail fast, not queue up.
    """
    options = {"retry": None, "timeout": timeout_s} if timeout_s else {}
    return sum_shards(snap.to_dict() or {} for snap in db.collection(COLLECTION).stream(**options))


def family_for_storage_key(key: str) -> Family | None:
    return BY_NAME.get(key) or BY_NAME.get(key + "_total")
