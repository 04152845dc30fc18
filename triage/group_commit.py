"""Group commit: concurrent requests in one process share a Firestore commit.

Whatever arrives while a commit is in flight goes into the next one, so a lone request waits for
nothing and a busy instance sends one RPC for many tickets (measured on the emulator: 20 creations in
one commit cost 0.3 ms of client CPU and 0.5 ms of emulator CPU each, against 1.1 ms and 3-4 ms alone).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    def __init__(
        self, commit_many: Callable[[list[T]], list[R | Exception]], max_group: int = 100, committers: int = 2
    ) -> None:
        self._commit_many = commit_many
        self._max_group = max_group
        self._committers = committers
        self._queue: queue.SimpleQueue[tuple[T, Future]] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(self, item: T) -> R:
        """Blocks until the item's group is committed; raises the item's own error."""
        self._start()
        future: Future = Future()
        self._queue.put((item, future))
        return future.result()

    def _start(self) -> None:
        # Threads start on first use: after gunicorn forked, inside a request (so with CPU allocated).
        with self._lock:
            if not self._started:
                for n in range(self._committers):
                    threading.Thread(target=self._run, name=f"group-commit-{n}", daemon=True).start()
                self._started = True

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self._max_group:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(group)

    def _commit(self, group: list[tuple[T, Future]]) -> None:
        """Settles every future of the group, whatever happens: this thread must never die on an error."""
        try:
            results = self._commit_many([item for item, _ in group])
            if len(results) != len(group):
                raise RuntimeError(f"commit_many returned {len(results)} results for {len(group)} items")
        except Exception as exc:  # the whole group failed the same way (e.g. Firestore unavailable)
            results = [exc] * len(group)
        for (_, future), result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
