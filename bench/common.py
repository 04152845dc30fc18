"""What every benchmark shares: a local stack on free ports, result files, machine facts."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.stack import Ports, Stack, StackOptions

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def bench_stack(**options: Any) -> Stack:
    workdir = Path(tempfile.mkdtemp(prefix="triage-bench-"))
    opts = StackOptions(project=f"bench-{uuid.uuid4().hex[:8]}", workdir=workdir, **options)
    # One load generator is one sender: the per-sender limit would measure itself, not the pipeline.
    opts.env.setdefault("TRIAGE_INTAKE_RATE_PER_S", "0")
    return Stack(Ports.free(), opts)


def write_result(name: str, command: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {
        "benchmark": name,
        "command": command,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **figures,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print(f"\n{title}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))
    sys.stdout.flush()


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time used so far by each process of the stack (with its children: the emulators' JVMs)."""
    import psutil

    children = [*stack.children]
    if stack.owns_emulators:
        children += [stack.emulators.firestore, stack.emulators.pubsub]
    usage = {}
    for child in children:
        if child is None or child.process is None:
            continue
        root = psutil.Process(child.process.pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        usage[child.name] = total
    return usage


def cpu_per_ticket_ms(before: dict[str, float], after: dict[str, float], tickets: int) -> dict[str, float]:
    return {name: round((after[name] - before.get(name, 0.0)) / tickets * 1000, 3) for name in after}


def wait_for(check, timeout_s: float, interval_s: float = 0.2) -> float:
    """Polls `check()` until true; returns the monotonic time it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(interval_s)
    raise TimeoutError(f"not done after {timeout_s}s")
