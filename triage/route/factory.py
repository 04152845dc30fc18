"""Destinations built once per process from routing config, by name."""

from __future__ import annotations

import os
from collections.abc import Mapping

from triage.config import DestinationConfig
from triage.route.destinations.base import Destination
from triage.route.destinations.registry import build_destination


class DestinationCache:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env
        self._built: dict[tuple[str, str], Destination] = {}

    def __call__(self, name: str, config: DestinationConfig) -> Destination:
        # Keyed by settings too: a routing override may change a destination under the same name.
        key = (name, config.model_dump_json())
        if key not in self._built:
            self._built[key] = build_destination(config.system, config.settings, self.env)
        return self._built[key]
