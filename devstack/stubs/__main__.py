"""Run one stub in the foreground: ``python -m devstack.stubs jira --port 8201 [--latency 0.8]``."""

from __future__ import annotations

import argparse

from devstack.stubs import STUBS
from devstack.stubs.base import run_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.stubs", description=__doc__)
    parser.add_argument("stub", choices=sorted(STUBS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args(argv)
    run_forever(STUBS[args.stub](args.host, args.port, latency=args.latency))


if __name__ == "__main__":
    main()
