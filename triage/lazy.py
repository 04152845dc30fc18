"""Process-wide objects built on first use, exactly once even when many threads ask at the same time.

A function instance often receives its first requests all at once (a backlog of pushes): with a plain
functools.cache every thread would build its own client or model concurrently, and all would wait.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_UNSET = object()


class _Once:
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: object = _UNSET
        self._lock = threading.Lock()
        functools.update_wrapper(self, factory)

    def __call__(self) -> T:
        if self._value is _UNSET:
            with self._lock:
                if self._value is _UNSET:
                    self._value = self._factory()
        return self._value  # type: ignore[return-value]

    def cache_clear(self) -> None:
        with self._lock:
            self._value = _UNSET


def once(factory: Callable[[], T]) -> _Once:
    return _Once(factory)
