"""Runtime settings read from the environment, once per process.

Everything an operator sets per deployment (project, topic names, secrets) comes from here; everything
describing the business (departments, routing, prices) comes from the YAML in `config/` (see `config.py`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DEFAULT_PROJECT = "demo-triage"
CLASSIFY_TOPIC = "triage-classify"
ROUTE_TOPIC = "triage-route"
DEAD_LETTER_SUFFIX = "-dlq"


def _default_config_dir() -> Path:
    # In the repo and inside a function zip alike, config/ sits next to the triage package.
    return Path(__file__).resolve().parent.parent / "config"


@dataclass(frozen=True)
class Settings:
    project: str = DEFAULT_PROJECT
    classify_topic: str = CLASSIFY_TOPIC
    route_topic: str = ROUTE_TOPIC
    push_partitions: int = 1
    counter_shards: int = 16
    config_dir: Path = field(default_factory=_default_config_dir)
    webhook_secret: str | None = None
    publish_timeout_s: float = 10.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            project=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCP_PROJECT") or DEFAULT_PROJECT,
            classify_topic=env.get("TRIAGE_CLASSIFY_TOPIC", CLASSIFY_TOPIC),
            route_topic=env.get("TRIAGE_ROUTE_TOPIC", ROUTE_TOPIC),
            push_partitions=max(1, int(env.get("TRIAGE_PUSH_PARTITIONS", "1"))),
            counter_shards=max(1, int(env.get("TRIAGE_COUNTER_SHARDS", "16"))),
            config_dir=Path(env["TRIAGE_CONFIG_DIR"])
            if env.get("TRIAGE_CONFIG_DIR")
            else _default_config_dir(),
            webhook_secret=env.get("TRIAGE_WEBHOOK_SECRET") or None,
            publish_timeout_s=float(env.get("TRIAGE_PUBLISH_TIMEOUT_S", "10")),
            log_level=env.get("TRIAGE_LOG_LEVEL", "INFO").upper(),
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()


def dead_letter_topic(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX
