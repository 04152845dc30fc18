"""The local stand-in for Cloud Scheduler: POSTs to the reconcile function at a fixed interval."""

from __future__ import annotations

import logging
import threading
import urllib.request

log = logging.getLogger("devstack.scheduler")


class Scheduler:
    def __init__(self, url: str, every_s: float) -> None:
        self.url, self.every_s = url, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reconcile-scheduler", daemon=True)
        self.runs = 0

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()

    def tick(self) -> None:
        request = urllib.request.Request(self.url, data=b"{}", method="POST")  # noqa: S310 - loopback only
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30):  # noqa: S310
                self.runs += 1
        except OSError as exc:  # a missed run is retried at the next tick, as Cloud Scheduler would
            log.warning("reconcile call failed: %s", exc)
