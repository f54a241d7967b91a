"""The process-wide pool of loaded local models.

A loaded model is expensive (hundreds of MB, seconds to load), so it lives here
rather than in a provider instance: a provider rebuilt by a config reload with
the same settings asks for the same key and gets the model already in memory.

- Key: the model file's real path plus the settings that shape the load
  (n_ctx, n_gpu_layers, cache types, ...). Different settings, different entry.
- At most `max_loaded` entries at a time (the value the caller asking for a new
  load passes). Room is made by evicting the least recently used entry that
  nobody holds; when every entry is held, the caller waits for one to free up.
- An entry idle for longer than its `idle_ttl` is unloaded: checked on every
  lease and by a daemon thread that sleeps until the next expiry.
- One generation at a time per model: a lease holds the entry's lock, so
  concurrent requests for one model queue instead of corrupting its context.
- An entry with a lease held or waiting (`users > 0`) is never unloaded.

The pool knows nothing of llama.cpp: it is handed a `load` function and an
`unload` function, which keeps it testable and keeps the one import of the
library in the adapter module.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from router import errors

# (real path of the model file, sorted (setting, value) pairs that shape the load)
LoadKey = tuple[str, tuple[tuple[str, Any], ...]]
Loader = Callable[[], tuple[Any, dict[str, Any]]]

_REAPER_MAX_SLEEP = 60.0


@dataclass(eq=False)
class PooledModel:
    """One loaded model and what the pool knows about it."""

    key: LoadKey
    idle_ttl: float
    model: Any = None  # whatever `load` returned (a llama_cpp.Llama)
    info: dict[str, Any] = field(default_factory=dict)  # from `load`: load report, ...
    users: int = 0  # leases held or waiting; > 0 means never unload
    last_used: float = field(default_factory=time.monotonic)
    loaded_at: float = 0.0
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # one generation at a time
    ready: threading.Event = field(default_factory=threading.Event)  # set once loaded or failed

    @property
    def path(self) -> str:
        return self.key[0]

    def describe(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "path": self.path,
            "settings": dict(self.key[1]),
            "loaded": self.ready.is_set() and self.error is None,
            "users": self.users,
            "idle_s": round(now - self.last_used, 3) if self.users == 0 else 0.0,
            "idle_ttl": self.idle_ttl,
            **self.info,
        }


class ModelPool:
    """Loaded models shared by every provider instance in the process."""

    def __init__(self, unload: Callable[[Any], None]) -> None:
        self._unload_model = unload
        self._cond = threading.Condition()  # guards _entries and _reaper
        self._entries: OrderedDict[LoadKey, PooledModel] = OrderedDict()  # oldest use first
        self._reaper: threading.Thread | None = None

    # -- leasing ------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(
        self,
        key: LoadKey,
        load: Loader,
        *,
        max_loaded: int = 1,
        idle_ttl: float = 600.0,
        timeout: float | None = None,
    ) -> Iterator[PooledModel]:
        """Hold the model for one generation, loading it first if needed.

        Raises `errors.Timeout` when `timeout` seconds pass while waiting for room
        in the pool or for the model's current generation to end.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        entry = self._checkout(key, load, max(1, max_loaded), idle_ttl, deadline)
        try:
            wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if not entry.lock.acquire(timeout=wait):
                raise errors.Timeout(
                    f"model {entry.path} stayed busy for {timeout:.1f}s (one generation at a time)"
                )
            try:
                yield entry
            finally:
                entry.lock.release()
        finally:
            self._checkin(entry)

    def _checkout(
        self,
        key: LoadKey,
        load: Loader,
        max_loaded: int,
        idle_ttl: float,
        deadline: float | None,
    ) -> PooledModel:
        victims: list[PooledModel] = []
        mine = False
        entry: PooledModel | None = None
        with self._cond:
            while True:
                victims += self._expired_locked(time.monotonic())
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    break
                if len(self._entries) < max_loaded:
                    entry = PooledModel(key, idle_ttl)
                    self._entries[key] = entry
                    mine = True
                    break
                idle = next((e for e in self._entries.values() if e.users == 0), None)
                if idle is not None:  # least recently used first: OrderedDict order
                    del self._entries[idle.key]
                    victims.append(idle)
                    continue
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(remaining)
            busy = len(self._entries)
            if entry is not None:
                entry.users += 1
                entry.idle_ttl = idle_ttl
        self._unload_all(victims)
        if entry is None:
            raise errors.Timeout(f"all {busy} loaded models are busy (max_loaded={max_loaded})")

        if mine:
            try:
                started = time.monotonic()
                entry.model, entry.info = load()
                entry.loaded_at = time.time()
                entry.info.setdefault("load_s", round(time.monotonic() - started, 3))
            except BaseException as exc:
                entry.error = exc
                with self._cond:
                    if self._entries.get(key) is entry:
                        del self._entries[key]
                    entry.users -= 1
                    self._cond.notify_all()
                entry.ready.set()
                raise
            entry.ready.set()
            self._ensure_reaper()
        else:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not entry.ready.wait(remaining):
                self._checkin(entry)
                raise errors.Timeout(f"model {entry.path} is still loading")
            if entry.error is not None:
                self._checkin(entry)
                raise entry.error
        return entry

    def _checkin(self, entry: PooledModel) -> None:
        with self._cond:
            entry.users -= 1
            entry.last_used = time.monotonic()
            self._cond.notify_all()

    # -- unloading ----------------------------------------------------------------

    def _expired_locked(self, now: float) -> list[PooledModel]:
        expired = [
            e
            for e in self._entries.values()
            if e.users == 0 and e.ready.is_set() and now - e.last_used >= e.idle_ttl
        ]
        for e in expired:
            del self._entries[e.key]
        return expired

    def _unload_all(self, victims: list[PooledModel]) -> None:
        # Outside the pool lock: freeing a model can take a moment.
        for e in victims:
            if e.model is not None:
                with contextlib.suppress(Exception):
                    self._unload_model(e.model)
                e.model = None

    def _ensure_reaper(self) -> None:
        with self._cond:
            if self._reaper is None or not self._reaper.is_alive():
                self._reaper = threading.Thread(
                    target=self._reap_loop, name="router-llama-pool-reaper", daemon=True
                )
                self._reaper.start()

    def _reap_loop(self) -> None:
        while True:
            with self._cond:
                if not self._entries:
                    self._reaper = None
                    return
                now = time.monotonic()
                victims = self._expired_locked(now)
                if not victims:
                    idle = [
                        e.last_used + e.idle_ttl - now
                        for e in self._entries.values()
                        if e.users == 0 and e.ready.is_set()
                    ]
                    sleep = min(idle, default=_REAPER_MAX_SLEEP)
                    # Woken early by every check-in, which may start a new idle period.
                    self._cond.wait(min(max(sleep, 0.01), _REAPER_MAX_SLEEP))
                    continue
            self._unload_all(victims)

    def unload_idle(self, *, force: bool = False) -> int:
        """Unload every entry nobody holds (`force`: whatever its idle time). Returns the count."""
        with self._cond:
            if force:
                victims = [e for e in self._entries.values() if e.users == 0 and e.ready.is_set()]
                for e in victims:
                    del self._entries[e.key]
            else:
                victims = self._expired_locked(time.monotonic())
        self._unload_all(victims)
        return len(victims)

    # -- looking --------------------------------------------------------------------

    def entries(self) -> list[PooledModel]:
        with self._cond:
            return list(self._entries.values())

    def get(self, key: LoadKey) -> PooledModel | None:
        with self._cond:
            return self._entries.get(key)


def _close(model: Any) -> None:
    close = getattr(model, "close", None)
    if callable(close):
        close()


POOL = ModelPool(unload=_close)

# Free idle models before interpreter teardown, while their library still works.
# Busy ones are left alone: a daemon thread may be inside llama.cpp right now.
atexit.register(POOL.unload_idle, force=True)

__all__ = ["POOL", "LoadKey", "ModelPool", "PooledModel"]
