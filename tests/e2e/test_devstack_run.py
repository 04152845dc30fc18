"""`make run`'s entry point as a user runs it: ready line, a ticket routed, clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from devstack.processes import free_port, port_open
from devstack.stack import ROOT
from tests.helpers import SEED, eventually

pytestmark = [pytest.mark.emulators, pytest.mark.e2e]


def test_devstack_run_serves_a_ticket_end_to_end_and_stops_everything(emulators, tmp_path):
    ports = {
        name: free_port()
        for name in ("INTAKE_PORT", "CLASSIFY_PORT", "ROUTE_PORT", "EXPORTER_PORT", "PROMETHEUS_PORT")
    }
    emulator_ports = {"FIRESTORE_EMULATOR_HOST": free_port(), "PUBSUB_EMULATOR_HOST": free_port()}
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        **{k: f"127.0.0.1:{v}" for k, v in emulator_ports.items()},
        "TRIAGE_DEVSTACK_DIR": str(tmp_path),
    }
    env.pop("TRIAGE_CONFIG_DIR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        started = time.monotonic()
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "ready" in line:
                break
        assert "ready" in lines[-1], "".join(lines)
        assert time.monotonic() - started < 90
        descendants = psutil.Process(process.pid).children(recursive=True)
        intake = f"http://127.0.0.1:{ports['INTAKE_PORT']}"
        ticket_id = requests.post(f"{intake}/tickets", json=SEED, timeout=10).json()["ticket_id"]
        eventually(
            lambda: requests.get(f"{intake}/tickets/{ticket_id}", timeout=5).json()["status"] == "routed",
            timeout_s=5,
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert not [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not any(port_open(p) for p in [*ports.values(), *emulator_ports.values()])
