"""A small closed-loop HTTP load generator: N workers, each with its own keep-alive connection."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def summary(self) -> dict:
        return {
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "throughput_per_s": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p95_ms": round(self.percentile(95), 2),
            "p99_ms": round(self.percentile(99), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else None,
        }


def run_load(
    url: str,
    body_for: Callable[[int], dict],
    concurrency: int,
    total: int,
    headers: dict[str, str] | None = None,
    expect: tuple[int, ...] = (202,),
    on_response: Callable[[int, bytes], None] | None = None,
) -> LoadResult:
    """Sends `total` POSTs from `concurrency` workers; each worker waits for its answer before the next."""
    parts = urlsplit(url)
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = 0
    base_headers = {"Content-Type": "application/json", **(headers or {})}

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine: list[float] = []
        failed = 0
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            payload = json.dumps(body_for(i)).encode()
            started = time.perf_counter()
            try:
                conn.request("POST", parts.path or "/", body=payload, headers=base_headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            mine.append((time.perf_counter() - started) * 1000)
            if response.status not in expect:
                failed += 1
            elif on_response:
                on_response(i, data)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(concurrency, total, errors, time.perf_counter() - started, latencies)
