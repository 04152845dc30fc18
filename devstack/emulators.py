"""The gcloud Firestore and Pub/Sub emulators, started on given ports and stopped as process groups."""

from __future__ import annotations

import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import Child, StartupError, port_open

INSTALL_HINT = """\
The local stack needs the gcloud CLI with the Firestore and Pub/Sub emulators, and Java 17+.
  Debian/Ubuntu:  apt-get install google-cloud-cli google-cloud-cli-firestore-emulator \\
                      google-cloud-cli-pubsub-emulator openjdk-17-jre-headless
  gcloud SDK:     gcloud components install beta cloud-firestore-emulator pubsub-emulator
(or use `firebase emulators:start` with the firebase.json in this repository)."""


def check_prerequisites() -> None:
    missing = [tool for tool in ("gcloud", "java") if shutil.which(tool) is None]
    if missing:
        raise StartupError(f"missing: {', '.join(missing)}\n{INSTALL_HINT}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:  # noqa: S310 - loopback URL we built
            return response.status == 200
    except OSError:
        return False


@dataclass
class Emulators:
    project: str
    firestore_port: int
    pubsub_port: int
    log_dir: Path
    firestore: Child | None = None
    pubsub: Child | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{self.firestore_port}",
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.pubsub_port}",
            "GOOGLE_CLOUD_PROJECT": self.project,
        }

    def start(self, timeout_s: float = 60) -> Emulators:
        check_prerequisites()
        for port in (self.firestore_port, self.pubsub_port):
            if port_open(port):
                raise StartupError(f"port {port} is already in use (another stack running?)")
        env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        self.firestore = Child(
            "firestore-emulator",
            ["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{self.firestore_port}"],
            env,
            self.log_dir / "firestore-emulator.log",
        ).start()
        self.pubsub = Child(
            "pubsub-emulator",
            [
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port=127.0.0.1:{self.pubsub_port}",
                f"--project={self.project}",
            ],
            env,
            self.log_dir / "pubsub-emulator.log",
        ).start()
        # Both JVMs boot in parallel; wait on each for a real answer, not just an open port.
        self.firestore.wait_until(lambda: _http_ok(f"http://127.0.0.1:{self.firestore_port}/"), timeout_s)
        self.pubsub.wait_until(lambda: _http_ok(f"http://127.0.0.1:{self.pubsub_port}/"), timeout_s)
        return self

    def stop(self) -> None:
        for child in (self.pubsub, self.firestore):
            if child:
                child.stop()

    def reset_firestore(self) -> None:
        url = (
            f"http://127.0.0.1:{self.firestore_port}/emulator/v1/projects/{self.project}"
            "/databases/(default)/documents"
        )
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass
