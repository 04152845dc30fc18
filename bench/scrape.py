"""Exporter scrape latency with 1,000 and 100,000 tickets stored, and counters under contention.

    .venv/bin/python -m bench scrape          (TRIAGE_BENCH_TICKETS=1000,100000 by default)

Tickets are seeded through the store (create → classified → routed, as the pipeline writes them) on the
Firestore emulator, plus a few left unfinished and old enough to count as stuck. Each scrape is a real
`GET /metrics` on the exporter app with its cache off, so every request reads Firestore.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.cloud import firestore

from bench.common import print_table, write_result
from devstack.emulators import Emulators
from devstack.processes import free_port
from exporter.app import create_app
from exporter.collector import FirestoreCollector, read_state
from triage import metrics as m
from triage.config import load_config
from triage.counters import CounterUpdate, read_totals
from triage.model import TicketIn, new_ticket_doc
from triage.states import Stage, Status
from triage.store import TicketStore

ROOT = Path(__file__).resolve().parent.parent
SHARDS = 16
SCRAPES = 60
STUCK = 20
TICKET = TicketIn(
    title="Printer jam", description="The printer on floor 2 jams on every page.", email="a@b.co"
)
CLASSIFICATION = {"department": "IT", "team": "service-desk", "confidence": 0.97, "classifier": "local"}


def seed(store: TicketStore, count: int) -> None:
    routed = CounterUpdate().inc(m.TICKETS_ROUTED, {"department": "IT", "system": "log"})
    classified = CounterUpdate().inc(m.TICKETS_CLASSIFIED, {"department": "IT", "classifier": "local"})

    def one(_: int) -> None:
        ticket_id = secrets.token_hex(16)
        store.create(new_ticket_doc(TICKET, ticket_id, store.clock()))
        store.transition(
            ticket_id, Status.CLASSIFIED, Stage.CLASSIFY, {"classification": CLASSIFICATION}, classified
        )
        store.transition(ticket_id, Status.ROUTED, Stage.ROUTE, counters=routed)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(count)))


def seed_stuck(db: firestore.Client) -> None:
    an_hour_ago = TicketStore(db, shards=SHARDS, clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    for _ in range(STUCK):
        an_hour_ago.create(new_ticket_doc(TICKET, secrets.token_hex(16), an_hour_ago.clock()))


def scrape_latency(db: firestore.Client) -> dict:
    taxonomy = load_config(ROOT / "config").triage
    collector = FirestoreCollector(lambda: read_state(db, taxonomy, SHARDS, {}), cache_ttl_s=0)
    client = create_app(collector, token=None).test_client()
    for _ in range(5):  # warm up: gRPC channels, Flask, imports
        client.get("/metrics")
    timings = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        body = client.get("/metrics").get_data(as_text=True)
        timings.append((time.perf_counter() - started) * 1000)
    assert "triage_exporter_up 1.0" in body and f'triage_tickets_stuck{{status="received"}} {STUCK}.0' in body
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
        "max_ms": round(timings[-1], 1),
    }


def counter_contention(db: firestore.Client, writers: int = 16, increments: int = 500) -> dict:
    store = TicketStore(db, shards=SHARDS)

    def writer(_: int) -> None:
        for _ in range(increments):
            store.count(CounterUpdate().inc(m.DEAD_LETTERS, {"stage": "route"}))

    started = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(writer, range(writers)))
    elapsed = time.perf_counter() - started
    total = read_totals(db).get(m.DEAD_LETTERS.storage_key, {}).get("stage=route", 0)
    return {
        "writers": writers,
        "increments_each": increments,
        "expected": writers * increments,
        "counted": total,
        "lost": writers * increments - total,
        "increments_per_s": round(writers * increments / elapsed),
    }


def run() -> dict:
    sizes = [int(n) for n in os.environ.get("TRIAGE_BENCH_TICKETS", "1000,100000").split(",")]
    emulators = Emulators(
        "bench-scrape", free_port(), free_port(), Path(tempfile.mkdtemp(prefix="triage-bench-"))
    )
    emulators.start()
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulators.env["FIRESTORE_EMULATOR_HOST"]
    rows = []
    try:
        for size in sizes:
            db = firestore.Client(project=f"scrape-{uuid.uuid4().hex[:8]}")
            started = time.perf_counter()
            seed(TicketStore(db, shards=SHARDS), size)
            seed_stuck(db)
            rows.append(
                {
                    "tickets_stored": size + STUCK,
                    "seed_s": round(time.perf_counter() - started),
                    **scrape_latency(db),
                }
            )
        contention = counter_contention(firestore.Client(project=f"contention-{uuid.uuid4().hex[:8]}"))
    finally:
        emulators.stop()
    ratio = round(rows[-1]["p95_ms"] / rows[0]["p95_ms"], 2) if len(rows) > 1 else None
    print_table("exporter GET /metrics, cache off (counter shards + stuck tickets + today's spend)", rows)
    print(f"p95 ratio {rows[-1]['tickets_stored']} / {rows[0]['tickets_stored']} tickets: {ratio}")
    print_table("counter contention: concurrent Increment writes", [contention])
    figures = {"scrapes": rows, "p95_ratio": ratio, "shards": SHARDS, "counter_contention": contention}
    write_result("scrape", "make bench  # .venv/bin/python -m bench scrape", figures)
    return figures
