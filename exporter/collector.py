"""Turns triage's Firestore state into Prometheus metrics.

Example output::

    # HELP triage_tickets_received_total Tickets accepted by intake.
    # TYPE triage_tickets_received_total counter
    triage_tickets_received_total 42.0
    # HELP triage_tickets Tickets currently in each state (maintained counter).
    # TYPE triage_tickets gauge
    triage_tickets{status="routed"} 40.0
    triage_exporter_up 1.0

One scrape reads three fixed sets of documents - the counter shards, the unfinished-ticket shards
(`pending`) and today's spend shards - with no query, so its cost does not grow with the number of
tickets stored (only with the number of tickets in flight). Results are
cached for `cache_ttl_s` so several Prometheus replicas don't multiply Firestore reads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from triage import metrics as m
from triage.budget import spent_on
from triage.config import TriageConfig, effective_classifier_config
from triage.counters import INF, le_key, parse_series_key, read_totals, series_key
from triage.metrics import Family, Kind
from triage.states import FAILURES, Stage, Status, is_final
from triage.store import read_pending

log = logging.getLogger("triage.exporter")
READ_TIMEOUT_S = 4.0  # per read, no retries: the next scrape is the retry


@dataclass
class Reading:
    totals: dict[str, Any]
    stuck: dict[str, int]
    extra: dict[str, float] = field(default_factory=dict)  # single-value gauges, by family name


def read_state(
    db: Any, taxonomy: TriageConfig, shards: int, env: Mapping[str, str], now: datetime | None = None
) -> Reading:
    """Three bounded reads, in parallel: counter shards, stuck tickets, today's LLM spend."""
    now = now or datetime.now(UTC)
    with ThreadPoolExecutor(3) as pool:
        totals = pool.submit(read_totals, db, READ_TIMEOUT_S)
        pending = pool.submit(count_pending, db, taxonomy.thresholds.stuck_after_seconds, shards, now)
        spent = pool.submit(spent_on, db, now.date(), shards, READ_TIMEOUT_S)
    cap = effective_classifier_config(taxonomy.classifier, env).llm.daily_budget_usd
    gauges = {
        m.LLM_SPEND_TODAY.name: spent.result(),
        m.LLM_BUDGET.name: cap,
        m.LLM_BUDGET_EXHAUSTED.name: float(spent.result() >= cap),
        m.TICKETS_DEFERRED.name: float(pending.result().deferred),
    }
    return Reading(totals.result(), pending.result().stuck, gauges)


@dataclass
class Pending:
    stuck: dict[str, int]
    deferred: int


def count_pending(db: Any, thresholds: Mapping[str, int], shards: int, now: datetime) -> Pending:
    """Unfinished tickets in each non-final state for longer than its threshold, and parked ones.

    A parked ticket (delivery deferred until a destination's window passes) waits on purpose: it counts
    as deferred until its time, and as stuck only once that time is past by the threshold.
    """
    limits = {status: timedelta(seconds=s) for status, s in thresholds.items() if not is_final(status)}
    stuck, deferred = dict.fromkeys(limits, 0), 0
    for entry in read_pending(db, shards, READ_TIMEOUT_S):
        if "status" not in entry:
            continue  # a stray reconciler mark of a finished ticket; the reconciler removes it
        not_before = entry.get("not_before")
        if not_before is not None and not_before > now:
            deferred += 1
            continue
        limit = limits.get(entry.get("status"))
        waiting_since = max(entry["since"], not_before) if not_before is not None else entry["since"]
        if limit is not None and now - waiting_since > limit:
            stuck[entry["status"]] += 1
    return Pending(stuck, deferred)


class FirestoreCollector:
    def __init__(
        self,
        read: Callable[[], Reading],
        cache_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = 5.0,
    ) -> None:
        self._read = read
        self._timeout = timeout_s
        # A read that outlives its scrape keeps running here; the scrape answers without it.
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="firestore-read")
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
                reading = self._reader.submit(self._read).result(timeout=self._timeout)
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
    f.name: f for f in (m.LLM_SPEND_TODAY, m.LLM_BUDGET, m.LLM_BUDGET_EXHAUSTED, m.TICKETS_DEFERRED)
}


# Series that always exist, at 0 until they happen, so dashboards and alerts (increase(), ratios) never
# miss the first event of a series that did not exist before.
ZERO_FILLED: dict[str, list[tuple[str, ...]]] = {
    m.TICKETS_BY_STATUS.name: [(s.value,) for s in Status],
    m.TICKETS_FAILED.name: [
        (stage.value, reason.value) for stage, reasons in FAILURES.items() for reason in reasons
    ],
    m.DEAD_LETTERS.name: [(st.value,) for st in (Stage.CLASSIFY, Stage.ROUTE)],
    m.RECONCILED.name: [("classify", "stale"), ("route", "stale"), ("route", "due")],
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
        buckets.append((floatToGoString(le), running))  # exposed as Prometheus clients do: "5.0"
    buckets.append((INF, running + counts.get(INF, 0)))
    return buckets
