"""The whole local stack: emulators, topology, the three functions and the exporter, as real processes.

`make run` and the end-to-end tests and benchmarks all use this, so what is tested is what users run.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from devstack import prometheus
from devstack.emulators import Emulators
from devstack.processes import Child, free_port, port_open
from devstack.scheduler import Scheduler
from devstack.topology import PushPolicy, create_topology
from triage.settings import CLASSIFY_TOPIC, DEFAULT_PROJECT, ROUTE_TOPIC

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = {"intake": "http", "classify": "cloudevent", "route": "cloudevent", "reconcile": "http"}
CONSUMERS = frozenset({"classify", "route", "reconcile"})


@dataclass(frozen=True)
class Ports:
    intake: int = 8080
    classify: int = 8081
    route: int = 8082
    reconcile: int = 8083
    exporter: int = 9464
    firestore: int = 8180
    pubsub: int = 8185
    prometheus: int = 9090

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Ports:
        def port(var: str, default: int) -> int:
            value = env.get(var)
            return int(value.rsplit(":", 1)[-1]) if value else default

        d = cls()
        return cls(
            intake=port("INTAKE_PORT", d.intake),
            classify=port("CLASSIFY_PORT", d.classify),
            route=port("ROUTE_PORT", d.route),
            reconcile=port("RECONCILE_PORT", d.reconcile),
            exporter=port("EXPORTER_PORT", d.exporter),
            firestore=port("FIRESTORE_EMULATOR_HOST", d.firestore),
            pubsub=port("PUBSUB_EMULATOR_HOST", d.pubsub),
            prometheus=port("PROMETHEUS_PORT", d.prometheus),
        )

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in fields(cls)))


@dataclass
class StackOptions:
    project: str = DEFAULT_PROJECT
    partitions: int = 16
    workdir: Path = ROOT / ".devstack"
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the functions
    policy: PushPolicy = field(default_factory=PushPolicy)
    # gunicorn threads per function: classify waits on the LLM, so it needs the most.
    threads: dict[str, int] = field(
        default_factory=lambda: {"intake": 16, "classify": 64, "route": 32, "reconcile": 2}
    )
    workers: dict[str, int] = field(
        default_factory=lambda: {"intake": 1, "classify": 1, "route": 1, "reconcile": 1}
    )
    exporter: bool = True
    consumers: bool = True  # False: topics only, no classify/route (benchmarks measure intake alone)
    prometheus: bool = True  # when the `prometheus` binary is installed
    scrape_interval: str = "15s"
    # What Cloud Scheduler does in the cloud (every minute there): call the reconciler.
    reconcile_every_s: float = 10.0


class Stack:
    def __init__(
        self, ports: Ports, options: StackOptions | None = None, emulators: Emulators | None = None
    ) -> None:
        """With `emulators` given (already running, e.g. shared by a test session), they are left running."""
        self.ports = ports
        self.options = options or StackOptions()
        self.log_dir = self.options.workdir / "logs"
        self.owns_emulators = emulators is None
        self.emulators = emulators or Emulators(
            self.options.project, ports.firestore, ports.pubsub, self.log_dir
        )
        self.children: list[Child] = []
        self.scheduler: Scheduler | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, service)}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.emulators.env,
            "GOOGLE_CLOUD_PROJECT": self.options.project,
            "TRIAGE_PUSH_PARTITIONS": str(self.options.partitions),
            "TRIAGE_CLASSIFY_TOPIC": CLASSIFY_TOPIC,
            "TRIAGE_ROUTE_TOPIC": ROUTE_TOPIC,
            "PYTHONUNBUFFERED": "1",
            **self.options.env,
        }

    def start(self) -> Stack:
        try:
            if self.owns_emulators:
                self.emulators.start()
            self.start_services()
        except BaseException:
            self.stop()
            raise
        return self

    def start_services(self) -> None:
        # Clients in this process (topology, tests, benchmarks) find the emulators through the environment.
        for var in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
            os.environ[var] = self.emulators.env[var]
        create_topology(
            self.options.project,
            {CLASSIFY_TOPIC: self.url("classify"), ROUTE_TOPIC: self.url("route")},
            self.options.partitions,
            self.options.policy,
            push=self.options.consumers,
        )
        for name, signature in FUNCTIONS.items():
            if name in CONSUMERS and not self.options.consumers:
                continue
            self.children.append(self._function(name, signature).start())
        if self.options.exporter:
            self.children.append(self._exporter().start())
        if self.runs_prometheus:
            self.children.append(
                prometheus.prometheus(
                    self.ports.prometheus,
                    self.ports.exporter,
                    self.options.workdir / "prometheus",
                    dict(os.environ),
                    self.options.scrape_interval,
                ).start()
            )
        for child in self.children:
            port = getattr(self.ports, child.name)
            child.wait_until(lambda port=port: port_open(port), 60)
        self.children[0].wait_until(self.intake_healthy, 30)
        if self.runs_prometheus:
            self.children[-1].wait_until(lambda: prometheus.ready(self.ports.prometheus), 60)
        if self.options.consumers:
            self.scheduler = Scheduler(self.url("reconcile"), self.options.reconcile_every_s).start()

    @property
    def runs_prometheus(self) -> bool:
        return self.options.exporter and self.options.prometheus and prometheus.available()

    def _function(self, name: str, signature: str) -> Child:
        argv = [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            name,
            "--source",
            str(ROOT / "functions" / name / "main.py"),
            "--signature-type",
            signature,
            "--host",
            "127.0.0.1",
            "--port",
            str(getattr(self.ports, name)),
        ]
        env = {
            **self.env,
            "THREADS": str(self.options.threads.get(name, 2)),
            "WORKERS": str(self.options.workers.get(name, 1)),
        }
        return Child(name, argv, env, self.log_dir / f"{name}.log", cwd=ROOT)

    def _exporter(self) -> Child:
        argv = [sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(self.ports.exporter)]
        return Child("exporter", argv, self.env, self.log_dir / "exporter.log", cwd=ROOT)

    def intake_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url('intake')}/healthz", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.owns_emulators:
            self.emulators.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
