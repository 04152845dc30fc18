"""Operator commands against a deployment (or `make run`'s emulators), with the functions' own settings.

    python -m triage show TICKET_ID          the ticket's state, history, last error, claim and parking
    python -m triage requeue TICKET_ID...    hand tickets to the stage that owns their state now
    python -m triage reconcile [--dry-run]   one reconciler run (what Cloud Scheduler triggers every minute)

Project and emulators come from the environment as for the functions (GOOGLE_CLOUD_PROJECT,
FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, TRIAGE_PUSH_PARTITIONS). Every command is safe to repeat:
stages ignore tickets that moved on, and route searches the destination before creating when in doubt.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from triage.runtime import Runtime, runtime
from triage.stages import reconcile

SHOWN = ("status", "priority", "classification", "destination", "failure", "review", "last_error")
SHOWN_DELIVERY = ("delivery_claim", "delivery_deferred")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def show(rt: Runtime, ticket_id: str) -> int:
    """Everything an operator needs about one ticket; no requester email or ticket text."""
    ticket = rt.store.get(ticket_id)
    if ticket is None:
        print(f"no ticket {ticket_id}", file=sys.stderr)
        return 1
    view = {"ticket_id": ticket_id, **{k: ticket.get(k) for k in (*SHOWN, *SHOWN_DELIVERY) if k in ticket}}
    view["history"] = ticket.get("history", [])
    view["next_stage"] = (stage := reconcile.owner_of(ticket)) and stage.value
    print(json.dumps(_plain(view), indent=2, sort_keys=True))
    return 0


def requeue(rt: Runtime, ticket_ids: Sequence[str]) -> int:
    failures = 0
    for done, ticket_id in enumerate(ticket_ids, 1):
        stage = reconcile.requeue(rt, ticket_id)
        failures += stage is None
        outcome = f"-> {stage.value}" if stage else "not requeued (missing, final or waiting for review)"
        print(f"[{done}/{len(ticket_ids)}] {ticket_id} {outcome}", file=sys.stderr)
    return 1 if failures else 0


def run_reconcile(rt: Runtime, dry_run: bool) -> int:
    sweep = reconcile.release_due(rt, dry_run=dry_run)
    verb = "would hand on" if dry_run else "handed on"
    print(
        f"{verb} {len(sweep.handed_on)} tickets: {sweep.due} parked and due, {sweep.stale} stale; "
        f"{sweep.waiting} parked and waiting",
        file=sys.stderr,
    )
    for ticket_id in sweep.handed_on:
        print(ticket_id)
    return 0


def main(argv: Sequence[str] | None = None, rt: Runtime | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triage", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="one ticket's state").add_argument("ticket_id")
    commands.add_parser("requeue", help="hand tickets on again").add_argument("ticket_ids", nargs="+")
    sweep = commands.add_parser("reconcile", help="one reconciler run")
    sweep.add_argument("--dry-run", action="store_true", help="list what would be handed on, change nothing")
    args = parser.parse_args(argv)
    rt = rt or runtime()
    if args.command == "show":
        return show(rt, args.ticket_id)
    if args.command == "requeue":
        return requeue(rt, args.ticket_ids)
    return run_reconcile(rt, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
