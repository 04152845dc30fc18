"""`python -m bench [name ...]`: run benchmarks (all by default); results go to bench/results/*.json."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = ("pipeline", "llm_pipeline", "prompt_size", "scrape", "soak")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(BENCHMARKS)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    for name in args.names or BENCHMARKS:
        importlib.import_module(f"bench.{name}").run()


if __name__ == "__main__":
    main()
