"""Threads for tests whose failures are the test's: an exception or a failed assertion in
a worker is re-raised in the test thread, instead of dying silently with the worker."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


class Workers:
    """Start with `start(fn, *args)`; `join()` waits for all, then re-raises the first error.

    Every join is bounded: a worker still running after `timeout` seconds fails the test.
    """

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def start(self, fn: Callable[..., Any], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                with self._lock:
                    self.errors.append(exc)

        t = threading.Thread(target=run, daemon=True)
        self.threads.append(t)
        t.start()
        return t

    def join(self) -> None:
        for t in self.threads:
            t.join(self.timeout)
        stuck = sum(t.is_alive() for t in self.threads)
        if self.errors:
            raise self.errors[0]
        assert stuck == 0, f"{stuck} worker thread(s) still running after {self.timeout}s"


def run_threads(fn: Callable[..., Any], args: Iterable[tuple[Any, ...]]) -> None:
    """Run `fn(*a)` for each `a` in `args`, one thread each; re-raise a worker's error."""
    workers = Workers()
    for a in args:
        workers.start(fn, *a)
    workers.join()
