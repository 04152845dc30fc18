"""Google clients, created lazily once per process (cold start matters; gunicorn forks before first use)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from triage.settings import settings


@lru_cache(maxsize=1)
def firestore_client() -> Any:
    from google.cloud import firestore

    return firestore.Client(project=settings().project)


@lru_cache(maxsize=1)
def publisher_client() -> Any:
    from google.cloud import pubsub_v1
    from google.cloud.pubsub_v1.types import BatchSettings

    # The default 10 ms batching latency is paid by every request that waits for its publish; intake and
    # classify wait, so publish almost immediately and let concurrency, not batching, give throughput.
    return pubsub_v1.PublisherClient(batch_settings=BatchSettings(max_latency=0.001, max_messages=100))
