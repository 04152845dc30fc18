"""Shared fixtures: real emulators, once per session, on free ports; a fresh project id per test module."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.emulators import Emulators
from devstack.processes import free_port

ROOT = Path(__file__).resolve().parent.parent


def _emulators_available() -> bool:
    return shutil.which("gcloud") is not None and shutil.which("java") is not None


@pytest.fixture(scope="session", autouse=True)
def _one_sender_is_not_a_flood() -> Iterator[None]:
    """Every test client and local stack sends from 127.0.0.1: intake's per-sender limit would throttle
    the suite itself. Tests of the limit set their own rate (tests/integration/test_intake_limits.py)."""
    saved = os.environ.get("TRIAGE_INTAKE_RATE_PER_S")
    os.environ["TRIAGE_INTAKE_RATE_PER_S"] = "0"
    yield
    if saved is None:
        os.environ.pop("TRIAGE_INTAKE_RATE_PER_S", None)
    else:
        os.environ["TRIAGE_INTAKE_RATE_PER_S"] = saved


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    if not _emulators_available():
        if os.environ.get("CI"):
            pytest.fail("gcloud emulators or Java missing in CI: emulator tests must not be skipped")
        pytest.skip("gcloud emulators or Java not installed (see README: prerequisites)")
    log_dir = Path(tempfile.mkdtemp(prefix="triage-emulators-"))
    emu = Emulators("demo-triage-tests", free_port(), free_port(), log_dir)
    emu.start(timeout_s=90)
    saved = {k: os.environ.get(k) for k in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")}
    os.environ["FIRESTORE_EMULATOR_HOST"] = emu.env["FIRESTORE_EMULATOR_HOST"]
    os.environ["PUBSUB_EMULATOR_HOST"] = emu.env["PUBSUB_EMULATOR_HOST"]
    try:
        yield emu
    finally:
        emu.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def project(emulators: Emulators) -> str:
    """A project id of the module's own: Firestore data and Pub/Sub topics never leak between modules."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def db(project: str):
    from google.cloud import firestore

    return firestore.Client(project=project)


@pytest.fixture(scope="module")
def pubsub_admin(project: str):
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped config/ for tests that change it."""
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target, ignore=shutil.ignore_patterns("training"))
    return target
