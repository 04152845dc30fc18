"""The real local topology: functions-framework processes fed by emulator push subscriptions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from devstack.emulators import Emulators
from devstack.processes import free_port
from devstack.stack import ROOT, Ports, Stack, StackOptions
from devstack.topology import PushPolicy

SECRET = "e2e-webhook-secret"
AUTH = {"Authorization": f"Bearer {SECRET}"}


def e2e_config(target: Path, dead_url: str) -> Path:
    """Shipped config, except: every confident ticket is routed, and critical ones go to a dead webhook."""
    for name in ("triage.yaml", "routing.yaml"):
        (target / name).write_text((ROOT / "config" / name).read_text())
    triage = yaml.safe_load((target / "triage.yaml").read_text())
    triage["thresholds"]["review_confidence"] = 0.0
    (target / "triage.yaml").write_text(yaml.safe_dump(triage))
    routing = yaml.safe_load((target / "routing.yaml").read_text())
    routing["destinations"]["dead-hook"] = {"system": "webhook", "url": dead_url}
    departments = [r["department"] for r in routing["routes"]]
    routing["routes"] = [
        {"department": d, "priority": ["critical"], "destination": "dead-hook"} for d in departments
    ] + routing["routes"]
    (target / "routing.yaml").write_text(yaml.safe_dump(routing))
    return target


def stack_on(emulators: Emulators, project: str, workdir: Path, env: dict[str, str], **options) -> Stack:
    """The local topology on free ports, sharing the test session's emulators; intake requires SECRET."""
    ports = Ports(
        intake=free_port(),
        classify=free_port(),
        route=free_port(),
        reconcile=free_port(),
        exporter=free_port(),
        firestore=emulators.firestore_port,
        pubsub=emulators.pubsub_port,
        prometheus=free_port(),
    )
    settings = StackOptions(
        project=project,
        workdir=workdir,
        env={"TRIAGE_WEBHOOK_SECRET": SECRET, **env},
        threads={"intake": 8, "classify": 8, "route": 8, "reconcile": 2},
        **options,
    )
    return Stack(ports, settings, emulators=emulators)


@pytest.fixture(scope="module")
def stack(emulators, project, tmp_path_factory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    config_dir = workdir / "config"
    config_dir.mkdir()
    e2e_config(config_dir, f"http://127.0.0.1:{free_port()}/hook")  # nothing listens there
    stack = stack_on(
        emulators,
        project,
        workdir,
        env={"TRIAGE_CONFIG_DIR": str(config_dir), "TRIAGE_OUTBOUND_WEBHOOK_SECRET": "outbound"},
        partitions=4,
        policy=PushPolicy(max_delivery_attempts=5, min_backoff_s=1, max_backoff_s=2, ack_deadline_s=30),
        prometheus=False,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def post_ticket(stack: Stack, body: dict, **headers: str) -> str:
    response = requests.post(
        f"{stack.url('intake')}/tickets", json=body, headers={**AUTH, **headers}, timeout=10
    )
    assert response.status_code == 202, response.text
    return response.json()["ticket_id"]


def get_ticket(stack: Stack, ticket_id: str) -> dict:
    return requests.get(f"{stack.url('intake')}/tickets/{ticket_id}", headers=AUTH, timeout=10).json()


def logged_outcomes(stack: Stack, function: str, ticket_id: str) -> list[str]:
    """What a function logged as outcomes for a ticket (its structured log is observable behaviour)."""
    outcomes = []
    for line in (stack.log_dir / f"{function}.log").read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("ticket_id") == ticket_id and "outcome" in entry:
            outcomes.append(entry["outcome"])
    return outcomes
