"""Where the request path meets the response cache and the observers.

`Router.route()` calls `RequestHooks` at a few fixed points: after the decision
(`lookup`: a cached answer, or the key to keep the new one under), when the request
ends (`served`, `failed`, or a wrapped stream's end) and after a reload. With no
cache and no observer configured every hook returns at once, so a router that asks
for none of this pays one attribute check per request.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from router.cache.backends import CacheBackend, Clock
from router.cache.response_cache import (
    BackendFactory,
    CacheLookup,
    ResponseCache,
    replay_chunks,
    uses_cache,
)
from router.config.model import CacheStore, Config
from router.errors import RouterError
from router.observe.events import Observer, Observers, RequestEnded
from router.observe.request_log import RequestLog
from router.runtime.state.live import LiveState
from router.runtime.state.usage import UsageRecord
from router.types import Chunk, Decision, Request, Result

if TYPE_CHECKING:
    from router.runtime.reload.changes import ReloadEvent
    from router.runtime.snapshot import Snapshot

log = logging.getLogger("router.observe")


def _base_dir(config: Config) -> str | None:
    return os.path.dirname(config.files[0]) if config.files else None


def _redis_cache(store: CacheStore, base_dir: str | None, clock: Clock) -> CacheBackend:
    from router.runtime.state.redis_cache import RedisCache  # imports redis: only then

    return RedisCache.from_store(store, clock)


# Cache backends the cache package cannot build itself (it may import only the config).
CACHE_BACKENDS: Mapping[str, BackendFactory] = {"redis": _redis_cache}


def _default_observers() -> tuple[Observer, ...]:
    """Spans whenever opentelemetry-api is installed (`ROUTER_TRACING=off` turns it off)."""
    from router.observe.tracing import RouterTracer, otel_available

    if os.environ.get("ROUTER_TRACING", "").lower() in ("0", "off", "false", "no"):
        return ()
    return (RouterTracer(),) if otel_available() else ()


class CachedStream:
    """The chunks of an answer served from the cache. `cached` is known before the first
    chunk, so a server can say `X-Router-Cache: hit` in its headers."""

    cached = True

    def __init__(self, it: Iterator[Chunk]) -> None:
        self._it = it

    def __iter__(self) -> CachedStream:
        return self

    def __next__(self) -> Chunk:
        return next(self._it)

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is not None:
            close()


class AsyncCachedStream:
    """The async twin of `CachedStream`."""

    cached = True

    def __init__(self, it: CachedStream) -> None:
        self._it = it

    def __aiter__(self) -> AsyncCachedStream:
        return self

    async def __anext__(self) -> Chunk:
        try:
            return next(self._it)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._it.close()


class RequestHooks:
    def __init__(self, config: Config, live: LiveState, observers: Sequence[Observer] = ()) -> None:
        self._live = live
        self._given = tuple(observers) + _default_observers()  # kept across reloads
        self._log: RequestLog | None = None
        self.cache: ResponseCache | None = None
        self.observers = Observers()
        self._configure(None, config)

    def add(self, observer: Observer) -> None:
        self._given = (*self._given, observer)
        self.observers = Observers([*self.observers.items, observer])

    @property
    def request_log(self) -> RequestLog | None:
        return self._log

    def _configure(self, old: Config | None, new: Config) -> None:
        """Open what `new` asks for; keep what it asks for unchanged."""
        s_old = old.settings if old is not None else None
        if s_old is None or s_old.request_log != new.settings.request_log:
            if self._log is not None:
                self._log.close()
                self._log = None
            if new.settings.request_log is not None:
                self._log = RequestLog.from_settings(new.settings.request_log, _base_dir(new))
        store_changed = s_old is not None and s_old.cache_store != new.settings.cache_store
        if self.cache is not None and (store_changed or not uses_cache(new)):
            self.cache.close()
            self.cache = None
        if self.cache is None:
            self.cache = ResponseCache.for_config(new, factories=CACHE_BACKENDS)
        items: list[Observer] = [*self._given]
        if self._log is not None:
            items.append(self._log)
        self.observers = Observers(items)

    def reloaded(self, old: Config, new: Config, event: ReloadEvent) -> None:
        if event.ok and old is not new:
            try:
                self._configure(old, new)
            except (OSError, RouterError) as exc:
                # A log directory that cannot be made, a Redis cache without its client
                # (MissingDependency): keep serving, without it.
                log.error("request log or cache could not be opened after reload: %s", exc)
        self.observers.reloaded(event)

    # -- the cache ----------------------------------------------------------------
    def cache_status(self) -> dict[str, Any] | None:
        return None if self.cache is None else self.cache.status()

    def lookup(
        self, snap: Snapshot, request: Request, decision: Decision, use_cache: bool
    ) -> CacheLookup | None:
        if self.cache is None or not use_cache or decision.rule is None:
            return None
        rule = snap.ruleset.by_name.get(decision.rule)
        if rule is None:
            return None
        return self.cache.lookup(snap.config, rule.config, request, decision)

    def serve_hit(
        self, snap: Snapshot, request: Request, lookup: CacheLookup, t0: float, started: float
    ) -> Result:
        """The answer of a hit, counted at $0; releases `snap` (a hit holds nothing)."""
        assert lookup.hit is not None
        try:
            return self.hit(snap, request, lookup.hit, t0, started)
        finally:
            snap.exit()

    def hit(
        self, snap: Snapshot, request: Request, hit: Result, t0: float, started: float
    ) -> Result:
        """The cached answer as this request's result; counted as a hit at $0."""
        try:
            self._live.store.record(
                UsageRecord(
                    time.time(),
                    hit.model,
                    hit.provider,
                    hit.rule,
                    hit.usage.input_tokens,
                    hit.usage.output_tokens,
                    0.0,
                    snap.config.sha256,
                    cached=True,
                    key=request.key,
                )
            )
        except Exception as exc:
            log.error("cache hit not recorded in %s: %s", self._live.store, exc)
        result = replace(hit, latency_s=time.perf_counter() - t0)
        if not request.stream:
            self.served(snap, request, result, t0, started, "hit")
        return result

    def hit_stream(
        self,
        snap: Snapshot,
        request: Request,
        lookup: CacheLookup,
        result: Result,
        t0: float,
        started: float,
    ) -> CachedStream:
        """A request for a stream that the cache serves still gets a stream."""
        chunks = replay_chunks(result)
        return CachedStream(self.watch(chunks, snap, request, result.decision, lookup, t0, started))

    def ahit_stream(
        self,
        snap: Snapshot,
        request: Request,
        lookup: CacheLookup,
        result: Result,
        t0: float,
        started: float,
    ) -> AsyncCachedStream:
        return AsyncCachedStream(self.hit_stream(snap, request, lookup, result, t0, started))

    # -- the end of a request -----------------------------------------------------
    def served(
        self,
        snap: Snapshot,
        request: Request,
        result: Result,
        t0: float,
        started: float,
        cache: str | None,
        ttft: float | None = None,
    ) -> None:
        if not self.observers:
            return
        self.observers.request_ended(
            RequestEnded(
                started,
                time.perf_counter() - t0,
                request,
                result.decision,
                result,
                None,
                ttft,
                cache,
                snap.version,
                snap.config.sha256,
            )
        )

    def failed(
        self,
        snap: Snapshot,
        request: Request,
        decision: Decision | None,
        error: BaseException,
        t0: float,
        started: float,
        cache: str | None = None,
        ttft: float | None = None,
    ) -> None:
        if not self.observers:
            return
        if decision is None:
            decision = getattr(error, "decision", None)
        self.observers.request_ended(
            RequestEnded(
                started,
                time.perf_counter() - t0,
                request,
                decision,
                None,
                error,
                ttft,
                cache,
                snap.version,
                snap.config.sha256,
            )
        )

    def finished(
        self,
        snap: Snapshot,
        request: Request,
        result: Result,
        lookup: CacheLookup | None,
        t0: float,
        started: float,
        ttft: float | None = None,
    ) -> None:
        """A served answer: keep it in the cache if the request was cacheable, then tell."""
        cache = None
        if lookup is not None and self.cache is not None:
            cache = "hit" if result.cached else "miss"
            if not result.cached:
                self.cache.keep(lookup, result)
        self.served(snap, request, result, t0, started, cache, ttft)

    def watch(
        self,
        it: Iterator[Chunk],
        snap: Snapshot,
        request: Request,
        decision: Decision,
        lookup: CacheLookup | None,
        t0: float,
        started: float,
    ) -> Iterator[Chunk]:
        if not self.observers and lookup is None:
            return it
        return self._watch(it, snap, request, decision, lookup, t0, started)

    def _watch(
        self,
        it: Iterator[Chunk],
        snap: Snapshot,
        request: Request,
        decision: Decision,
        lookup: CacheLookup | None,
        t0: float,
        started: float,
    ) -> Iterator[Chunk]:
        ttft: float | None = None
        result: Result | None = None
        try:
            for chunk in it:
                if ttft is None and chunk.text:
                    ttft = time.perf_counter() - t0
                if chunk.result is not None:
                    result = chunk.result
                yield chunk
        except BaseException as exc:
            self.failed(snap, request, decision, exc, t0, started, None, ttft)
            raise
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # the attempt loop gives back what it holds, now, not when collected
        if result is not None:
            self.finished(snap, request, result, lookup, t0, started, ttft)

    def awatch(
        self,
        it: AsyncIterator[Chunk],
        snap: Snapshot,
        request: Request,
        decision: Decision,
        lookup: CacheLookup | None,
        t0: float,
        started: float,
    ) -> AsyncIterator[Chunk]:
        if not self.observers and lookup is None:
            return it
        return self._awatch(it, snap, request, decision, lookup, t0, started)

    async def _awatch(
        self,
        it: AsyncIterator[Chunk],
        snap: Snapshot,
        request: Request,
        decision: Decision,
        lookup: CacheLookup | None,
        t0: float,
        started: float,
    ) -> AsyncIterator[Chunk]:
        ttft: float | None = None
        result: Result | None = None
        try:
            async for chunk in it:
                if ttft is None and chunk.text:
                    ttft = time.perf_counter() - t0
                if chunk.result is not None:
                    result = chunk.result
                yield chunk
        except BaseException as exc:
            self.failed(snap, request, decision, exc, t0, started, None, ttft)
            raise
        finally:
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                await aclose()
        if result is not None:
            self.finished(snap, request, result, lookup, t0, started, ttft)

    def close(self) -> None:
        self.observers.close()
        if self.cache is not None:
            self.cache.close()
            self.cache = None
        self._log = None


__all__ = ["AsyncCachedStream", "CachedStream", "RequestHooks"]
