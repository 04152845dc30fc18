"""A posted ticket travels intake → classify → route through the real emulator push subscriptions."""

from __future__ import annotations

import os
import time

import pytest
import requests

from devstack.processes import port_open
from tests.e2e.conftest import get_ticket, logged_outcomes, post_ticket
from tests.helpers import SEED, counter, eventually
from triage.clients import publisher_client
from triage.queue import Queue

pytestmark = [pytest.mark.emulators, pytest.mark.e2e]


def test_seed_ticket_reaches_routed_within_five_seconds(stack):
    started = time.monotonic()
    ticket_id = post_ticket(stack, SEED)
    view = eventually(lambda: (v := get_ticket(stack, ticket_id))["status"] == "routed" and v, timeout_s=5)
    assert time.monotonic() - started < 5
    assert [h["status"] for h in view["history"]] == ["received", "classified", "routed"]
    assert view["department"] == "IT" and view["destination"]["system"] == "log"


def test_many_tickets_all_reach_a_final_state(stack, db):
    ids = [
        post_ticket(stack, {**SEED, "title": f"Laptop {i} does not boot", "priority": "low"})
        for i in range(40)
    ]
    eventually(
        lambda: all(get_ticket(stack, i)["status"] == "routed" for i in ids), timeout_s=30, interval_s=0.5
    )


def test_poison_message_is_dead_lettered_and_the_ticket_failed_with_a_reason(stack, db):
    before = counter(db, "triage_tickets_failed", "stage=route|reason=dead_letter")
    ticket_id = post_ticket(stack, {**SEED, "priority": "critical"})
    view = eventually(
        lambda: (v := get_ticket(stack, ticket_id))["status"] == "failed" and v, timeout_s=60, interval_s=0.5
    )
    assert view["failure"]["stage"] == "route" and view["failure"]["reason"] == "dead_letter"
    assert (
        "5 deliveries" in view["failure"]["detail"] and "TransientDeliveryError" in view["failure"]["detail"]
    )
    assert logged_outcomes(stack, "route", ticket_id)[-1] == "dead_lettered"
    assert counter(db, "triage_tickets_failed", "stage=route|reason=dead_letter") == before + 1


def test_redelivered_messages_change_nothing(stack, db):
    ticket_id = post_ticket(stack, SEED)
    eventually(lambda: get_ticket(stack, ticket_id)["status"] == "routed", timeout_s=5)
    before_doc = db.collection("tickets").document(ticket_id).get()
    before_routed = counter(db, "triage_tickets_routed", "department=IT|system=log")
    queue = Queue(publisher_client(), stack.options.project, partitions=stack.options.partitions)
    queue.publish("triage-classify", ticket_id)
    queue.publish("triage-route", ticket_id)
    eventually(lambda: "skipped_routed" in logged_outcomes(stack, "classify", ticket_id), timeout_s=10)
    eventually(lambda: logged_outcomes(stack, "route", ticket_id).count("skipped_routed") == 1, timeout_s=10)
    after_doc = db.collection("tickets").document(ticket_id).get()
    assert after_doc.update_time == before_doc.update_time
    assert counter(db, "triage_tickets_routed", "department=IT|system=log") == before_routed


def test_exporter_serves_the_pipeline_counters(stack):
    text = requests.get(f"{stack.url('exporter')}/metrics", timeout=10).text
    assert "triage_tickets_received_total" in text
    assert 'triage_tickets{status="routed"}' in text
    assert "triage_exporter_up 1.0" in text


def test_stop_leaves_no_process_and_no_port_behind(stack):
    pids = [child.process.pid for child in stack.children]
    ports = [stack.ports.intake, stack.ports.classify, stack.ports.route, stack.ports.exporter]
    stack.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any(port_open(p) for p in ports)
