"""A destination's long rate-limit window, end to end: route parks the ticket, the stack's scheduler calls
the reconcile function, which hands it back to route through the real push subscription once due."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
import yaml

from devstack.processes import port_open
from devstack.stack import ROOT, Stack
from devstack.stubs.webhook import WebhookStub
from devstack.topology import PushPolicy
from tests.e2e.conftest import get_ticket, logged_outcomes, post_ticket, stack_on
from tests.helpers import SEED, counter, eventually

pytestmark = [pytest.mark.emulators, pytest.mark.e2e]
WINDOW_S = 12  # longer than the push backoff, so route parks the ticket instead of retrying
HAND_ON_AFTER_S = 4


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookStub]:
    with WebhookStub(secret="outbound") as stub:
        yield stub


@pytest.fixture(scope="module")
def stack(emulators, project, tmp_path_factory, hook) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    config_dir = workdir / "config"
    config_dir.mkdir()
    triage = yaml.safe_load((ROOT / "config/triage.yaml").read_text())
    triage["thresholds"].update(review_confidence=0.0, hand_on_after_seconds=HAND_ON_AFTER_S)
    (config_dir / "triage.yaml").write_text(yaml.safe_dump(triage))
    routing = yaml.safe_load((ROOT / "config/routing.yaml").read_text())
    routing["destinations"]["hook"] = {"system": "webhook", "url": f"{hook.url}/hook"}
    routing["routes"] = [{"department": r["department"], "destination": "hook"} for r in routing["routes"]]
    (config_dir / "routing.yaml").write_text(yaml.safe_dump(routing))
    stack = stack_on(
        emulators,
        project,
        workdir,
        env={"TRIAGE_CONFIG_DIR": str(config_dir), "TRIAGE_OUTBOUND_WEBHOOK_SECRET": "outbound"},
        partitions=2,
        policy=PushPolicy(max_delivery_attempts=5, min_backoff_s=1, max_backoff_s=2, ack_deadline_s=30),
        prometheus=False,
        reconcile_every_s=1.0,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_a_rate_limited_ticket_is_parked_then_routed_when_the_window_passes(stack, hook):
    hook.rate_limit_next(1, retry_after=WINDOW_S)
    ticket_id = post_ticket(stack, {**SEED, "title": "Laptop will not boot", "priority": "low"})
    parked = eventually(
        lambda: (v := get_ticket(stack, ticket_id)).get("delivery_deferred") and v, timeout_s=15
    )
    assert parked["status"] == "classified" and parked["delivery_deferred"]["reason"] == "rate_limited"
    assert logged_outcomes(stack, "route", ticket_id) == ["deferred_rate_limited"]  # acked, not retried
    metrics = requests.get(f"{stack.url('exporter')}/metrics", timeout=10).text
    assert 'triage_deliveries_deferred_total{reason="rate_limited",system="webhook"} 1.0' in metrics
    view = eventually(
        lambda: (v := get_ticket(stack, ticket_id))["status"] == "routed" and v,
        timeout_s=WINDOW_S * 1.1 + 20,
        interval_s=0.5,
    )
    assert view["destination"]["system"] == "webhook" and "delivery_deferred" not in view
    assert len(hook.deliveries) == 1
    assert stack.scheduler is not None and stack.scheduler.runs >= WINDOW_S // 2


def test_tickets_stranded_by_a_killed_route_are_handed_on_by_the_reconciler(stack, hook, db):
    """The emulator drops a push it cannot connect to: without the reconciler these stayed classified."""
    route = next(child for child in stack.children if child.name == "route")
    before = counter(db, "triage_reconciler_handed_on", "stage=route|reason=stale")
    delivered = len(hook.deliveries)
    route.kill()
    ids = [post_ticket(stack, {**SEED, "title": f"Printer {i} jams", "priority": "low"}) for i in range(8)]
    eventually(lambda: all(get_ticket(stack, t)["status"] == "classified" for t in ids), timeout_s=20)
    time.sleep(HAND_ON_AFTER_S)  # pushes to the dead function fail meanwhile
    route.start().wait_until(lambda: port_open(stack.ports.route), 30)
    eventually(
        lambda: all(get_ticket(stack, t)["status"] == "routed" for t in ids), timeout_s=60, interval_s=0.5
    )
    assert len(hook.deliveries) == delivered + len(ids)  # each exactly once
    assert counter(db, "triage_reconciler_handed_on", "stage=route|reason=stale") >= before + 1
