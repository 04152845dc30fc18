"""Intake latency/throughput at concurrency 1, 8, 32, and end-to-end tickets/s to `routed`.

make bench            (or: .venv/bin/python -m bench pipeline)
"""

from __future__ import annotations

import time

from google.cloud import firestore

from bench.common import bench_stack, cpu_per_ticket_ms, cpu_seconds, print_table, wait_for, write_result
from bench.load import run_load
from triage.counters import read_totals

TICKET = {
    "title": "Email server down",
    "description": "The main email server is not responding since this morning; Outlook shows disconnected.",
    "email": "john.doe@company.com",
    "priority": "high",
    "metadata": {"location": "Building A"},
}
LEVELS = ((1, 300), (8, 2000), (32, 4000))
E2E_TICKETS = 3000
WORKERS = {"intake": 1, "classify": 1, "route": 1}


def routed(db) -> float:
    totals = read_totals(db)
    tickets = totals.get("triage_tickets", {})
    return (
        tickets.get("status=routed", 0)
        + tickets.get("status=needs_review", 0)
        + tickets.get("status=failed", 0)
    )


def intake_alone() -> list[dict]:
    """intake with nothing consuming the queue: what the HTTP function itself sustains."""
    stack = bench_stack(consumers=False, exporter=False, prometheus=False, workers={**WORKERS, "intake": 2})
    stack.start()
    try:
        url = f"{stack.url('intake')}/tickets"
        run_load(url, lambda i: {**TICKET, "title": f"warm-up {i}"}, 8, 300)
        return [run_load(url, lambda i: {**TICKET, "title": f"#{i}"}, c, n).summary() for c, n in LEVELS]
    finally:
        stack.stop()


def run() -> dict:
    alone = intake_alone()
    stack = bench_stack()
    stack.start()
    try:
        db = firestore.Client(project=stack.options.project)
        url = f"{stack.url('intake')}/tickets"
        intake_rows = []
        for concurrency, total in LEVELS:
            result = run_load(
                url, lambda i: {**TICKET, "title": f"Email server down #{i}"}, concurrency, total
            )
            intake_rows.append(result.summary())
        wait_for(lambda: routed(db) >= sum(t for _, t in LEVELS), timeout_s=300)

        already = routed(db)
        cpu_before, process_before = cpu_seconds(stack), time.process_time()
        started = time.monotonic()
        load = run_load(url, lambda i: {**TICKET, "title": f"Printer jam #{i}"}, 32, E2E_TICKETS)
        done = wait_for(lambda: routed(db) >= already + E2E_TICKETS, timeout_s=600, interval_s=0.1)
        cpu = cpu_per_ticket_ms(cpu_before, cpu_seconds(stack), E2E_TICKETS)
        cpu["load generator + poller"] = round((time.process_time() - process_before) / E2E_TICKETS * 1000, 3)
        e2e = {
            "tickets": E2E_TICKETS,
            "seconds": round(done - started, 2),
            "tickets_per_s": round(E2E_TICKETS / (done - started), 1),
            "intake_phase_per_s": round(load.throughput, 1),
            "errors": load.errors,
        }
        cpu_rows = [{"process": name, "cpu_ms_per_ticket": ms} for name, ms in cpu.items()]
    finally:
        stack.stop()
    print_table("intake alone (nothing consumes the queue; 2 gunicorn workers)", alone)
    print_table("intake while classify and route drain the queue (the whole local stack)", intake_rows)
    print_table("end to end (posted at concurrency 32 → routed)", [e2e])
    print_table("CPU per ticket during the end-to-end run (2 cores = 2000 ms of CPU per second)", cpu_rows)
    figures = {
        "intake_alone": alone,
        "intake_with_pipeline": intake_rows,
        "end_to_end": e2e,
        "cpu_ms_per_ticket": cpu,
        "partitions": stack.options.partitions,
        "workers": stack.options.workers,
        "threads": stack.options.threads,
    }
    write_result("pipeline", "make bench  # .venv/bin/python -m bench pipeline", figures)
    return figures
