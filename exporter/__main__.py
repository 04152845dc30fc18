"""`python -m exporter --port 9464`: serve the exporter with gunicorn, as in production."""

from __future__ import annotations

import argparse
import os

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, options: dict) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from exporter.app import build

        return build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on all interfaces
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("EXPORTER_PORT", os.environ.get("PORT", "9464")))
    )
    args = parser.parse_args()
    _Server(
        {"bind": f"{args.host}:{args.port}", "workers": 1, "threads": 8, "timeout": 30, "loglevel": "warning"}
    ).run()


if __name__ == "__main__":
    main()
