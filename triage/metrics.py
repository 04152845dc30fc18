"""Every metric family triage publishes, defined once.

The functions write these families into Firestore counter shards (`triage.counters`); the exporter reads the
shards and publishes them under the same names. Label values must come from bounded sets (departments,
stages, model names from config), never from ticket text.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Family:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def storage_key(self) -> str:
        """Field name inside a counter shard; counters drop Prometheus' `_total` suffix there."""
        return self.name.removesuffix("_total")


DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LLM_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

TICKETS_RECEIVED = Family("triage_tickets_received_total", Kind.COUNTER, "Tickets accepted by intake.")
TICKETS_CLASSIFIED = Family(
    "triage_tickets_classified_total",
    Kind.COUNTER,
    "Tickets classified, by department and by what decided (llm, local, cache, fallback).",
    ("department", "classifier"),
)
TICKETS_ROUTED = Family(
    "triage_tickets_routed_total",
    Kind.COUNTER,
    "Tickets delivered to a destination system.",
    ("department", "system"),
)
TICKETS_REVIEW = Family(
    "triage_tickets_review_total",
    Kind.COUNTER,
    "Tickets sent to the human review queue, by reason.",
    ("reason",),
)
TICKETS_FAILED = Family(
    "triage_tickets_failed_total",
    Kind.COUNTER,
    "Tickets that ended in failed, by the stage that failed and a bounded reason.",
    ("stage", "reason"),
)
DELIVERIES_DEFERRED = Family(
    "triage_deliveries_deferred_total",
    Kind.COUNTER,
    "Deliveries parked until a destination's window passes (rate_limited) or its search catches up "
    "with an earlier create (search_lag); the reconciler hands them on when due.",
    ("system", "reason"),
)
REVIEW_NOTIFY_FAILED = Family(
    "triage_review_notifications_failed_total",
    Kind.COUNTER,
    "Review notices a destination refused for good (e.g. Slack no_service, channel_is_archived): the "
    "ticket waits in review all the same.",
    ("system",),
)
INTAKE_RATE_LIMITED = Family(
    "triage_intake_rate_limited_total",
    Kind.COUNTER,
    "Intake requests refused with 429 because their sender exceeded its rate (intake.per_sender_per_second).",
)
RECONCILED = Family(
    "triage_reconciler_handed_on_total",
    Kind.COUNTER,
    "Tickets the reconciler handed to a stage again: a parked delivery whose time had come (due), or a "
    "ticket that made no progress for hand_on_after_seconds (stale).",
    ("stage", "reason"),
)
DEAD_LETTERS = Family(
    "triage_dead_letter_messages_total",
    Kind.COUNTER,
    "Messages that reached a stage's dead-letter topic (including for tickets already final).",
    ("stage",),
)
REVIEW_CORRECTIONS = Family(
    "triage_review_corrections_total",
    Kind.COUNTER,
    "Human review decisions, by the department the classifier chose and the one the reviewer set.",
    ("from_department", "to_department"),
)
TICKETS_BY_STATUS = Family(
    "triage_tickets", Kind.GAUGE, "Tickets currently in each state (maintained counter).", ("status",)
)
STAGE_DURATION = Family(
    "triage_stage_duration_seconds",
    Kind.HISTOGRAM,
    "Time from entering the previous state to completing this stage (queueing included).",
    ("stage",),
    DURATION_BUCKETS,
)
END_TO_END_DURATION = Family(
    "triage_end_to_end_duration_seconds",
    Kind.HISTOGRAM,
    "Time from intake to routed.",
    (),
    DURATION_BUCKETS,
)
CONFIDENCE = Family(
    "triage_classification_confidence",
    Kind.HISTOGRAM,
    "Confidence of each classification, by what decided.",
    ("classifier",),
    CONFIDENCE_BUCKETS,
)
LLM_REQUESTS = Family(
    "triage_llm_requests_total",
    Kind.COUNTER,
    "LLM calls by outcome (ok, invalid, truncated, error, timeout, rate_limited).",
    ("model", "outcome"),
)
LLM_TOKENS = Family(
    "triage_llm_tokens_total",
    Kind.COUNTER,
    "LLM tokens by type (input, output, thinking, cached).",
    ("model", "type"),
)
LLM_COST = Family(
    "triage_llm_cost_usd_total", Kind.COUNTER, "LLM spend in USD at write-time prices.", ("model",)
)
LLM_UNPRICED = Family(
    "triage_llm_unpriced_requests_total",
    Kind.COUNTER,
    "LLM calls whose model has no price in the price table: their cost is unknown, not zero.",
    ("model",),
)
LLM_LATENCY = Family(
    "triage_llm_request_duration_seconds",
    Kind.HISTOGRAM,
    "Wall time of one LLM call, retries included.",
    ("model",),
    LLM_LATENCY_BUCKETS,
)

# Families stored in counter shards, in exposition order.
STORED_FAMILIES: tuple[Family, ...] = (
    TICKETS_RECEIVED,
    TICKETS_CLASSIFIED,
    TICKETS_ROUTED,
    TICKETS_REVIEW,
    TICKETS_FAILED,
    DELIVERIES_DEFERRED,
    REVIEW_NOTIFY_FAILED,
    INTAKE_RATE_LIMITED,
    RECONCILED,
    DEAD_LETTERS,
    REVIEW_CORRECTIONS,
    TICKETS_BY_STATUS,
    STAGE_DURATION,
    END_TO_END_DURATION,
    CONFIDENCE,
    LLM_REQUESTS,
    LLM_TOKENS,
    LLM_COST,
    LLM_UNPRICED,
    LLM_LATENCY,
)

# Families the exporter computes at scrape time rather than reading from shards.
TICKETS_STUCK = Family(
    "triage_tickets_stuck",
    Kind.GAUGE,
    "Tickets in a non-final state for longer than the configured threshold (capped count).",
    ("status",),
)
TICKETS_DEFERRED = Family(
    "triage_tickets_deferred",
    Kind.GAUGE,
    "Unfinished tickets whose delivery is parked until a later time (not counted as stuck meanwhile).",
)
LLM_SPEND_TODAY = Family("triage_llm_spend_today_usd", Kind.GAUGE, "LLM spend so far today (UTC).")
LLM_BUDGET = Family("triage_llm_budget_usd", Kind.GAUGE, "Configured daily LLM budget in USD.")
LLM_BUDGET_EXHAUSTED = Family(
    "triage_llm_budget_exhausted",
    Kind.GAUGE,
    "1 while today's LLM budget is used up and classify runs local only.",
)
EXPORTER_UP = Family("triage_exporter_up", Kind.GAUGE, "1 if the last read of Firestore succeeded.")
EXPORTER_SCRAPE_DURATION = Family(
    "triage_exporter_scrape_duration_seconds", Kind.GAUGE, "Time the last Firestore read took."
)
EXPORTER_SCRAPE_ERRORS = Family(
    "triage_exporter_scrape_errors_total", Kind.COUNTER, "Firestore reads that failed."
)
EXPORTER_LAST_SUCCESS = Family(
    "triage_exporter_last_success_timestamp_seconds", Kind.GAUGE, "Unix time of the last successful read."
)

BY_NAME: dict[str, Family] = {f.name: f for f in STORED_FAMILIES}
