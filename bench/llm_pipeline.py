"""End-to-end throughput when every ticket waits 800 ms for Gemini (the stub answers after a realistic delay).

    .venv/bin/python -m bench llm_pipeline

classify must keep many LLM calls in flight: gunicorn threads in the function, and push concurrency from
the emulator (two pushes per subscription, so `partitions` topics per stage).
"""

from __future__ import annotations

import time

from google.cloud import firestore

from bench.common import bench_stack, print_table, wait_for, write_result
from bench.load import run_load
from bench.pipeline import TICKET, routed
from devstack.stubs.gemini import GeminiStub

LATENCY_S = 0.8
TICKETS = 1000
# Two pushes in flight per emulator subscription: 32 partitions keep up to 64 LLM calls waiting at once.
PARTITIONS = 32


def run() -> dict:
    with GeminiStub(api_key="bench", latency=LATENCY_S) as gemini:
        env = {
            "GEMINI_API_KEY": "bench",
            "GEMINI_BASE_URL": gemini.url,
            "TRIAGE_CLASSIFIER_MODE": "llm",
        }
        stack = bench_stack(
            env=env,
            prometheus=False,
            partitions=PARTITIONS,
            threads={"intake": 16, "classify": 2 * PARTITIONS * 2, "route": 32, "reconcile": 2},
        )
        stack.start()
        try:
            db = firestore.Client(project=stack.options.project)
            started = time.monotonic()
            load = run_load(
                f"{stack.url('intake')}/tickets",
                lambda i: {**TICKET, "title": f"VPN drops every {i} minutes"},  # distinct: no cache hits
                16,
                TICKETS,
            )
            done = wait_for(lambda: routed(db) >= TICKETS, timeout_s=600, interval_s=0.2)
            llm_calls = len(gemini.requests)
        finally:
            stack.stop()
    figures = {
        "llm_latency_s": LATENCY_S,
        "tickets": TICKETS,
        "llm_calls": llm_calls,
        "seconds": round(done - started, 2),
        "tickets_per_s": round(TICKETS / (done - started), 1),
        "intake_errors": load.errors,
        "partitions": stack.options.partitions,
        "classify_threads": stack.options.threads["classify"],
    }
    print_table("end to end with Gemini answering after 800 ms (mode llm)", [figures])
    write_result("llm_pipeline", "make bench  # .venv/bin/python -m bench llm_pipeline", figures)
    return figures
