"""The real pipeline scraped by a real Prometheus: every dashboard query has data, every rule evaluates."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from devstack import prometheus
from devstack.stack import Stack
from devstack.stubs.gemini import GeminiStub
from tests.e2e.conftest import AUTH, stack_on
from tests.helpers import SEED, eventually
from tests.monitoring import panel_queries as pq

pytestmark = [pytest.mark.emulators, pytest.mark.e2e]

TICKETS = [
    ("VPN keeps disconnecting", "The VPN client drops every ten minutes since the update."),
    ("Payslip missing overtime", "My November payslip does not include the overtime hours."),
    ("Suspicious email", "I received a phishing email asking for my password, with an attachment."),
    ("Air conditioning broken", "The air conditioning on floor 3 has stopped working."),
    ("NDA review", "Please review the NDA for the new catering vendor before Friday."),
    ("Expense claim", "How do I get my train tickets reimbursed? The expense form rejects them."),
    ("Question", "Where can I find the holiday calendar?"),
]


@pytest.fixture(scope="module")
def monitored(emulators, project, tmp_path_factory) -> Iterator[Stack]:
    if not prometheus.available():
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed in CI (.ci/run installs it)")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("monitored")
    with GeminiStub(api_key="k") as gemini:
        env = {
            "GEMINI_API_KEY": "k",
            "GEMINI_BASE_URL": gemini.url,
            "TRIAGE_CLASSIFIER_MODE": "hybrid",
            "EXPORTER_CACHE_SECONDS": "0.5",
        }
        stack = stack_on(emulators, project, workdir, env, partitions=2, scrape_interval="1s")
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def query(stack: Stack, expr: str) -> list[dict]:
    response = requests.get(f"{stack.url('prometheus')}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    return body["data"]["result"]


@pytest.fixture(scope="module")
def scraped(monitored) -> Stack:
    """Tickets pushed through the pipeline (twice each: the second is answered from the cache or locally)."""
    for _ in range(2):
        for title, description in TICKETS:
            body = {**SEED, "title": title, "description": description}
            response = requests.post(
                f"{monitored.url('intake')}/tickets", json=body, headers=AUTH, timeout=10
            )
            assert response.status_code == 202
    done = 'sum(triage_tickets{status=~"routed|needs_review|failed"})'
    eventually(lambda: (r := query(monitored, done)) and float(r[0]["value"][1]) >= 2 * len(TICKETS), 60, 0.5)
    # rate() over 1m needs several samples after the traffic; the rules need an evaluation on them.
    eventually(lambda: query(monitored, "count_over_time(triage_tickets_received_total[1m]) >= 8"), 60, 0.5)
    return monitored


def test_prometheus_scrapes_the_exporter(scraped):
    [up] = query(scraped, 'up{job="triage-exporter"}')
    assert up["value"][1] == "1"
    assert query(scraped, 'triage_llm_requests_total{outcome="ok"} > 0')


def test_every_dashboard_query_returns_data(scraped):
    empty = [source for source, expr in pq.dashboard_queries() if not query(scraped, expr)]
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_rule_loads_and_every_alert_expression_evaluates(scraped):
    groups = requests.get(f"{scraped.url('prometheus')}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {rule.name for rule in pq.rules()}
    assert not {name: r.get("lastError") for name, r in loaded.items() if r.get("health") == "err"}
    for rule in pq.rules():
        query(scraped, rule.expr)  # parses and evaluates against the live data
