"""Routing rules: config/routing.yaml, optionally overridden by the Firestore document `config/routing`.

The override lets operators re-route without a deploy: `{"yaml": "<the same YAML as routing.yaml>"}`. It is
validated exactly like the file (against the same taxonomy); an invalid override is refused loudly (error
log naming the key) and the last good rules stay in force, so a typo never stops routing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

from triage.config import Config, ConfigError, RoutingConfig

log = logging.getLogger("triage.route.rules")
OVERRIDE_DOC = ("config", "routing")


class RoutingRules:
    def __init__(
        self, db: Any, base: Config, refresh_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.db, self.base, self.refresh_s, self.clock = db, base, refresh_s, clock
        self._current, self._checked_at, self._seen = base.routing, float("-inf"), None
        self._lock = threading.Lock()

    def current(self) -> RoutingConfig:
        with self._lock:
            if self.clock() - self._checked_at >= self.refresh_s:
                self._checked_at = self.clock()
                self._refresh()
            return self._current

    def _refresh(self) -> None:
        try:
            snap = self.db.collection(OVERRIDE_DOC[0]).document(OVERRIDE_DOC[1]).get(timeout=5)
        except Exception:
            log.warning("could not read the routing override; keeping the current rules", exc_info=True)
            return
        text = (snap.to_dict() or {}).get("yaml") if snap.exists else None
        if text == self._seen:
            return
        self._seen = text
        if text is None:
            self._current = self.base.routing
            return
        try:
            self._current = validate_override(self.base, text)
            log.info("routing override from Firestore is in force")
        except ConfigError as exc:
            log.error("routing override refused, keeping the previous rules: %s", exc)


def validate_override(base: Config, text: str) -> RoutingConfig:
    where = "firestore:config/routing"
    try:
        routing = RoutingConfig.model_validate(yaml.safe_load(text))
        return Config(triage=base.triage, routing=routing).routing
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: invalid YAML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{where}: {exc.errors(include_url=False, include_input=False)}") from exc
