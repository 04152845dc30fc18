"""The objects a function needs, built once per process on first use; tests may hand in their own."""

from __future__ import annotations

import os

from triage import metrics as m
from triage.clients import firestore_client, publisher_client
from triage.config import Config, cached_config
from triage.counters import CounterUpdate
from triage.group_commit import GroupCommitter
from triage.lazy import once
from triage.queue import Queue
from triage.ratelimit import RefusalTally, SenderLimiter
from triage.settings import Settings, settings
from triage.store import TicketStore


class Runtime:
    def __init__(
        self,
        settings_: Settings | None = None,
        store: TicketStore | None = None,
        queue: Queue | None = None,
        config: Config | None = None,
    ) -> None:
        self.settings = settings_ or settings()
        self._store, self._queue, self._config = store, queue, config
        self._creations: GroupCommitter | None = None
        self._admission: tuple[SenderLimiter, RefusalTally] | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = cached_config(str(self.settings.config_dir))
        return self._config

    @property
    def store(self) -> TicketStore:
        if self._store is None:
            self._store = TicketStore(firestore_client(), shards=self.settings.counter_shards)
        return self._store

    @property
    def creations(self) -> GroupCommitter:
        """Ticket creations of concurrent requests, committed together (intake)."""
        if self._creations is None:
            self._creations = GroupCommitter(lambda entries: self.store.create_many(entries))
        return self._creations

    @property
    def admission(self) -> tuple[SenderLimiter, RefusalTally]:
        """Intake's per-sender limiter and the tally that counts its refusals."""
        if self._admission is None:
            limits = self.config.triage.intake.with_env(os.environ)
            tally = RefusalTally(
                lambda n: self.store.count(CounterUpdate().inc(m.INTAKE_RATE_LIMITED, None, n))
            )
            self._admission = (SenderLimiter(limits.per_sender_per_second, limits.burst), tally)
        return self._admission

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            self._queue = Queue(
                publisher_client(),
                self.settings.project,
                partitions=self.settings.push_partitions,
                timeout_s=self.settings.publish_timeout_s,
            )
        return self._queue


@once
def runtime() -> Runtime:
    return Runtime()


def reset() -> None:
    """Forget every per-process object (tests switch projects and environments between modules)."""
    from triage import clients
    from triage import settings as settings_module

    runtime.cache_clear()
    settings_module.settings.cache_clear()
    clients.firestore_client.cache_clear()
    clients.publisher_client.cache_clear()
    cached_config.cache_clear()
