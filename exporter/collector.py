"""Turns triage's Firestore state into Prometheus metrics.

Example output::

    # HELP triage_tickets_received_total Tickets accepted by intake.
    # TYPE triage_tickets_received_total counter
    triage_tickets_received_total 42.0
    # HELP triage_tickets Tickets currently in each state (maintained counter).
    # TYPE triage_tickets gauge
    triage_tickets{status="routed"} 40.0
    triage_exporter_up 1.0

One scrape reads the counter shards (a fixed number of documents) and runs one capped count() per
non-final state for stuck tickets, so its cost does not grow with the number of tickets stored. Results are
cached for `cache_ttl_s` so several Prometheus replicas don't multiply Firestore reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud.firestore import FieldFilter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from triage import metrics as m
from triage.budget import spent_on
from triage.config import TriageConfig, effective_classifier_config
from triage.counters import INF, le_key, parse_series_key, read_totals, series_key
from triage.metrics import Family, Kind
from triage.states import FailureReason, Stage, Status, is_final
from triage.store import TICKETS

log = logging.getLogger("triage.exporter")
STUCK_COUNT_CAP = 10_000


@dataclass
class Reading:
    totals: dict[str, Any]
    stuck: dict[str, int]
    extra: dict[str, float] = field(default_factory=dict)  # single-value gauges, by family name


def read_state(
    db: Any, taxonomy: TriageConfig, shards: int, env: Mapping[str, str], now: datetime | None = None
) -> Reading:
    now = now or datetime.now(UTC)
    stuck = {}
    for status, seconds in taxonomy.thresholds.stuck_after_seconds.items():
        if is_final(status):
            continue
        query = (
            db.collection(TICKETS)
            .where(filter=FieldFilter("status", "==", status))
            .where(filter=FieldFilter("updated_at", "<", now - timedelta(seconds=seconds)))
            .limit(STUCK_COUNT_CAP)
            .count()
        )
        stuck[status] = int(query.get(timeout=10)[0][0].value)
    spent = spent_on(db, now.date(), shards)
    cap = effective_classifier_config(taxonomy.classifier, env).llm.daily_budget_usd
    budget = {
        m.LLM_SPEND_TODAY.name: spent,
        m.LLM_BUDGET.name: cap,
        m.LLM_BUDGET_EXHAUSTED.name: float(spent >= cap),
    }
    return Reading(read_totals(db), stuck, budget)


class FirestoreCollector:
    def __init__(
        self,
        read: Callable[[], Reading],
        cache_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = cache_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Reading] | None = None
        self.up = 0
        self.errors = 0
        self.last_duration_s = 0.0
        self.last_success = 0.0

    def reading(self) -> Reading | None:
        with self._lock:  # concurrent scrapes share one Firestore read
            now = self._clock()
            if self._cached and now - self._cached[0] < self._ttl:
                return self._cached[1]
            started = time.perf_counter()
            try:
                reading = self._read()
            except Exception as exc:
                self.up, self.errors = 0, self.errors + 1
                self._cached = None
                log.error("reading Firestore failed: %s", type(exc).__name__)
                return None
            finally:
                self.last_duration_s = time.perf_counter() - started
            self.up, self.last_success = 1, time.time()
            self._cached = (now, reading)
            return reading

    def collect(self) -> Iterator[Metric]:
        reading = self.reading()
        if reading is not None:
            for family in m.STORED_FAMILIES:
                yield from _family(family, reading.totals.get(family.storage_key, {}))
            stuck = GaugeMetricFamily(m.TICKETS_STUCK.name, m.TICKETS_STUCK.help, labels=["status"])
            for status, count in sorted(reading.stuck.items()):
                stuck.add_metric([status], count)
            yield stuck
            for name, value in reading.extra.items():
                family = EXTRA_GAUGES[name]
                yield GaugeMetricFamily(family.name, family.help, value=value)
        yield from self._self_metrics()

    def _self_metrics(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(m.EXPORTER_UP.name, m.EXPORTER_UP.help, value=self.up)
        yield GaugeMetricFamily(
            m.EXPORTER_SCRAPE_DURATION.name, m.EXPORTER_SCRAPE_DURATION.help, value=self.last_duration_s
        )
        yield CounterMetricFamily(
            m.EXPORTER_SCRAPE_ERRORS.name.removesuffix("_total"),
            m.EXPORTER_SCRAPE_ERRORS.help,
            value=self.errors,
        )
        yield GaugeMetricFamily(
            m.EXPORTER_LAST_SUCCESS.name, m.EXPORTER_LAST_SUCCESS.help, value=self.last_success
        )


EXTRA_GAUGES: dict[str, Family] = {
    f.name: f for f in (m.LLM_SPEND_TODAY, m.LLM_BUDGET, m.LLM_BUDGET_EXHAUSTED)
}


# Series that always exist, at 0 until they happen, so dashboards and alerts (increase(), ratios) never
# miss the first event of a series that did not exist before.
_FAILING_STAGES = (Stage.INTAKE, Stage.CLASSIFY, Stage.ROUTE)
ZERO_FILLED: dict[str, list[tuple[str, ...]]] = {
    m.TICKETS_BY_STATUS.name: [(s.value,) for s in Status],
    m.TICKETS_FAILED.name: [(st.value, r.value) for st in _FAILING_STAGES for r in FailureReason],
    m.DEAD_LETTERS.name: [(st.value,) for st in (Stage.CLASSIFY, Stage.ROUTE)],
}


def _family(family: Family, series: dict[str, Any]) -> Iterator[Metric]:
    labels = list(family.labels)
    if family.kind is Kind.HISTOGRAM:
        metric = HistogramMetricFamily(family.name, family.help, labels=labels)
        for key, hist in sorted(series.items()):
            metric.add_metric(_label_values(family, key), _cumulative(family, hist), hist.get("sum", 0.0))
    elif family.kind is Kind.COUNTER:
        metric = CounterMetricFamily(family.name.removesuffix("_total"), family.help, labels=labels)
        for key, value in sorted(series.items()):
            metric.add_metric(_label_values(family, key), value)
    else:
        metric = GaugeMetricFamily(family.name, family.help, labels=labels)
        for key, value in sorted(series.items()):
            metric.add_metric(_label_values(family, key), value)
    for labels in ZERO_FILLED.get(family.name, ()):
        if series_key(family, dict(zip(family.labels, labels, strict=True))) not in series:
            metric.add_metric(list(labels), 0)
    yield metric


def _label_values(family: Family, key: str) -> list[str]:
    parsed = parse_series_key(key)
    return [parsed.get(name, "") for name in family.labels]


def _cumulative(family: Family, hist: dict[str, Any]) -> list[tuple[str, float]]:
    counts = hist.get("b", {})
    running, buckets = 0.0, []
    for le in family.buckets:
        running += counts.get(le_key(le), 0)
        buckets.append((le_key(le), running))
    buckets.append((INF, running + counts.get(INF, 0)))
    return buckets
