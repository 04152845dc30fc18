"""`python -m devstack run`: the whole local stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from devstack.processes import StartupError
from devstack.stack import Ports, Stack, StackOptions


def run(partitions: int) -> int:
    ports = Ports.from_env()
    options = StackOptions(partitions=partitions)
    if os.environ.get("TRIAGE_DEVSTACK_DIR"):
        options.workdir = Path(os.environ["TRIAGE_DEVSTACK_DIR"])
    stack = Stack(ports, options)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"starting emulators (Firestore :{ports.firestore}, Pub/Sub :{ports.pubsub}) and functions...",
        flush=True,
    )
    try:
        stack.start()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(
            f"ready: intake {stack.url('intake')}  classify {stack.url('classify')}  "
            f"route {stack.url('route')}  reconcile {stack.url('reconcile')}  "
            f"exporter {stack.url('exporter')}/metrics  "
            f"(logs in {stack.log_dir}; Ctrl-C to stop)",
            flush=True,
        )
        if stack.runs_prometheus:
            print(f"prometheus: {stack.url('prometheus')} (rules and alerts from monitoring/)", flush=True)
        else:
            print("prometheus: not installed (apt-get install prometheus) - skipped", flush=True)
        print(
            f"try:  curl -s -X POST {stack.url('intake')}/tickets -H 'Content-Type: application/json' "
            """-d '{"title":"Email server down","description":"The main email server is not responding.","""
            """"email":"john.doe@company.com","priority":"high"}'""",
            flush=True,
        )
        stop.wait()
    finally:
        print("stopping...", flush=True)
        stack.stop()
        print("stopped", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="start the local stack in the foreground")
    run_parser.add_argument("--partitions", type=int, default=16, help="partition topics per stage")
    args = parser.parse_args()
    return run(args.partitions)


if __name__ == "__main__":
    sys.exit(main())
