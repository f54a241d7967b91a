"""`RedisLink`: the one connection every Redis store shares, and how it copes when
Redis is away.

Request path calls (`call`) use a client with a short timeout (`timeout_ms`, 50 ms by
default) and no retries, so a dead Redis costs one request at most that long; after a
failure the link is *down* and `call` answers `DOWN` at once, without touching the
network, so stores serve on their local state. A background thread:

- sends queued writes (`submit`): spend, usage rows, latency, breaker failures. They
  leave the request path, and while Redis is down they stay queued (durable ones) to be
  written when it is back, so nothing spent is lost;
- every `sync_ms` reads the fleet's views (breakers, latency, in-flight, budget
  totals) through the stores' `syncers`;
- while down, tries to reconnect with a growing pause and, once back, reloads the
  scripts, sends what was queued meanwhile and re-syncs (the next sync reads the
  fleet's views again).

The `redis` package is imported here only, when a config names a Redis.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from router.config.model import StateSettings
from router.errors import MissingDependency
from router.runtime.state.redis_lua import SCRIPTS
from router.secrets import redact

log = logging.getLogger("router.state")


class _Down:
    def __repr__(self) -> str:
        return "DOWN"


DOWN: Any = _Down()  # what `call` answers when Redis cannot be asked
Syncer = Callable[[Any], None]  # given a redis client, reads what it needs

_BATCH = 200  # queued writes sent per pipeline
_FLUSH_S = 0.01  # queued writes wait at most this long (plus the send) for the thread
_MAX_QUEUE = 200_000  # beyond this, non-durable writes are dropped first


@dataclass(frozen=True, slots=True)
class Op:
    """One queued script call. `durable`: kept while Redis is down (spend); others
    (latency, in-flight) are dropped then, as they are stale by the time it is back."""

    script: str
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    durable: bool = True


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        raise MissingDependency("redis", "redis") from None
    return redis


class RedisLink:
    def __init__(
        self,
        settings: StateSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
        role: str = "shared state",
        fallback: str = "serving on local state",
        decode: bool = True,
        scripts: Mapping[str, str] = SCRIPTS,
    ) -> None:
        """`role` and `fallback` name the user in the outage warnings (the response
        cache: "misses until it is back"); `decode=False` answers bytes (cached values);
        `scripts` are loaded at each (re)connect."""
        if settings.url is None:
            raise ValueError("RedisLink needs settings.state.url")
        redis = _redis_module()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis
        self.role, self._fallback, self._scripts = role, fallback, scripts
        self._secret = settings.url.reveal()
        self.url = settings.display()
        self.prefix = settings.prefix
        self.timeout = settings.timeout_ms / 1000.0
        self.sync_interval = settings.sync_ms / 1000.0
        self._clock = clock
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

        def client(timeout: float) -> Any:
            return redis.Redis.from_url(
                self._secret,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
                decode_responses=decode,
            )

        self.fast = client(self.timeout)  # the request path
        self.slow = client(max(1.0, self.timeout * 10))  # the background thread
        self._sha: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[Op] = deque()
        self._flush_lock = threading.Lock()
        self._busy = False  # a batch is being sent
        self._up = False
        self.outages = 0  # times it went from up (or starting) to down
        self._down_since: float | None = None
        self._error: str | None = None
        self._retry_at = 0.0
        self._pause = 0.1
        self._syncers: list[Syncer] = []
        self._closed = False
        self._last_sync = 0.0
        self._connect()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="router-redis", daemon=True)
            self._thread.start()

    # -- health -------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    def _text(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", [self._secret])

    def _mark_down(self, exc: BaseException) -> None:
        with self._lock:
            was_up = self._up
            self._up = False
            self._error = self._text(exc)
            if was_up or self._down_since is None:
                self.outages += 1
                self._down_since = time.time()
                self._retry_at = self._clock() + self._pause
        if was_up:  # once per outage, not once per request
            log.warning(
                "%s: Redis at %s unreachable (%s); %s",
                self.role,
                self.url,
                self._error,
                self._fallback,
            )

    def _connect(self) -> bool:
        """Ping and load the scripts (a restarted Redis has none); mark up on success."""
        try:
            self.slow.ping()
            for name, text in self._scripts.items():
                self._sha[name] = self.slow.script_load(text)
        except self._errors as exc:
            if self._down_since is None:
                log.warning(
                    "%s: Redis at %s unreachable (%s); %s",
                    self.role,
                    self.url,
                    self._text(exc),
                    self._fallback,
                )
            self._mark_down(exc)
            self._pause = min(self._pause * 2, 5.0)
            with self._lock:
                self._retry_at = self._clock() + self._pause
            return False
        was_down = self._down_since is not None
        with self._lock:
            self._up = True
            self._down_since = None
            self._error = None
            self._pause = 0.1
        if was_down:
            log.warning("%s: Redis at %s is back", self.role, self.url)
        return True

    # -- calls --------------------------------------------------------------------------

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script now (one round trip); `DOWN` when Redis is away or too slow."""
        if not self._up:
            return DOWN
        try:
            return self._eval(self.fast, script, keys, args)
        except self._errors as exc:
            self._mark_down(exc)
            return DOWN

    def command(self, fn: Callable[[Any], Any]) -> Any:
        """Run `fn(client)` now; `DOWN` when Redis is away or too slow."""
        if not self._up:
            return DOWN
        try:
            return fn(self.fast)
        except self._errors as exc:
            self._mark_down(exc)
            return DOWN

    def _eval(self, client: Any, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self._sha[script], len(keys), *keys, *args)
        except self._redis.exceptions.NoScriptError:
            self._sha[script] = client.script_load(SCRIPTS[script])
            return client.evalsha(self._sha[script], len(keys), *keys, *args)

    def submit(self, op: Op) -> None:
        """Queue a write for the background thread."""
        with self._lock:
            if len(self._queue) >= _MAX_QUEUE:
                self._queue = deque(o for o in self._queue if o.durable)
            if op.durable or self._up:
                self._queue.append(op)
            if len(self._queue) >= _BATCH:
                self._wake.notify()
            # Else the thread sends them within `_FLUSH_S`: waking it per request would
            # cost the request path a thread switch each time.

    def add_syncer(self, syncer: Syncer) -> None:
        self._syncers.append(syncer)

    # -- the background thread ------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                pause = _FLUSH_S if self._queue and self._up else self.sync_interval
                self._wake.wait(timeout=pause)
            try:
                self.tick()
            except Exception:  # never let the thread die: state would stop syncing
                log.exception("shared state: background step failed")
                time.sleep(self.sync_interval)

    def tick(self) -> None:
        """One round of the background work (tests call it directly)."""
        if self._closed:
            return
        if not self._up:
            if self._clock() < self._retry_at or not self._connect():
                return
            self._last_sync = 0.0  # re-sync at once
        self.flush()
        now = self._clock()
        if self._up and now - self._last_sync >= self.sync_interval * 0.9:
            self._last_sync = now
            for syncer in self._syncers:
                try:
                    syncer(self.slow)
                except self._errors as exc:
                    self._mark_down(exc)
                    return

    def sync_now(self) -> bool:
        """Send the queued writes and read the fleet's views now (tests, benchmarks)."""
        if not self.flush():
            return False
        for syncer in self._syncers:
            try:
                syncer(self.slow)
            except self._errors as exc:
                self._mark_down(exc)
                return False
        return True

    def flush(self) -> bool:
        """Send queued writes; False if Redis went away (they stay queued)."""
        with self._flush_lock:  # one sender at a time: a batch is popped once sent
            return self._flush()

    def _flush(self) -> bool:
        while self._up:
            with self._lock:
                batch = [self._queue[i] for i in range(min(_BATCH, len(self._queue)))]
                self._busy = bool(batch)
            if not batch:
                return True
            try:
                pipe = self.slow.pipeline(transaction=False)
                for op in batch:
                    pipe.evalsha(self._sha[op.script], len(op.keys), *op.keys, *op.args)
                results = pipe.execute(raise_on_error=False)
            except self._errors as exc:
                self._mark_down(exc)
                with self._lock:
                    self._busy = False
                return False
            # A Redis restarted between two batches has lost the scripts: load them
            # and send those writes again, rather than lose spend.
            again = [
                op
                for op, res in zip(batch, results, strict=True)
                if isinstance(res, self._redis.exceptions.NoScriptError)
            ]
            with self._lock:
                for _ in batch:
                    self._queue.popleft()
                self._queue.extendleft(reversed(again))
                self._busy = False
            if again and not self._connect():
                return False
            for op, res in zip(batch, results, strict=True):
                if isinstance(res, Exception) and op not in again:
                    log.error("shared state: %s failed in Redis: %s", op.script, self._text(res))
        return False

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until queued writes are sent (bounded); for tests, close and benchmarks."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if (not self._queue and not self._busy) or not self._up:
                    return not self._queue
                self._wake.notify()
            if self._thread is None:
                self.flush()
            else:
                time.sleep(0.002)
        return False

    def status(self) -> dict[str, Any]:
        with self._lock:
            since = self._down_since
            return {
                "backend": "redis",
                "url": self.url,
                "connected": self._up,
                "down_since": None
                if since is None
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
                "error": self._error,
                "pending_writes": len(self._queue),
                "outages": self.outages,
            }

    def close(self) -> None:
        self.drain(timeout=min(2.0, self.timeout * 20 + 0.5))
        self._closed = True
        with self._lock:
            unsent = sum(1 for op in self._queue if op.durable)
        if unsent:
            log.error(
                "shared state: %d spend writes not sent to Redis at %s before closing;"
                " the local spend log has them unless spend_log is redis",
                unsent,
                self.url,
            )
        with self._lock:
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for c in (self.fast, self.slow):
            with contextlib.suppress(*self._errors):
                c.close()


__all__ = ["DOWN", "Op", "RedisLink"]
