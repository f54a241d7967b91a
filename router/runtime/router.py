"""`Router`: holds the current Snapshot, routes requests, reloads configs."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from router.config.loader import Overlay
from router.engine.decide import decide
from router.engine.requests import build_request
from router.engine.strategies import Candidate
from router.errors import ConfigError, NoRouteError, RouterError, unexpected
from router.providers import serves_free
from router.providers.pricing import with_prices
from router.runtime import attempts
from router.runtime.exact_tokens import redecide
from router.runtime.manager import ProviderManager
from router.runtime.observed import RequestHooks
from router.runtime.snapshot import HeldAsyncStream, HeldStream, Snapshot, TestOutcome
from router.runtime.state import spend
from router.runtime.state.live import LiveState
from router.types import (
    Chunk,
    Decision,
    ProviderInfo,
    Request,
    Result,
    RouterStatus,
    UsageRow,
)

if TYPE_CHECKING:
    from router.config.model import Config
    from router.observe.events import Observer
    from router.replay import ReplayReport
    from router.runtime.checks import Finding
    from router.runtime.reload.changes import ReloadEvent
    from router.runtime.reload.watcher import ConfigWatcher

log = logging.getLogger("router.reload")

ReloadCallback = Callable[["ReloadEvent"], None]


def _load(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None,
    overlay: Overlay | None = None,
) -> Config:
    from router.config.loader import load_config

    return load_config(path, environ=environ, overlay=overlay)


_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(doing: str) -> Callable[[_F], _F]:
    """Only RouterErrors leave a public method: anything else becomes one, with words."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def guarded(self: Router, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except (RouterError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise unexpected(exc, doing) from exc

        return guarded  # type: ignore[return-value]

    return wrap


def _aguarded(doing: str) -> Callable[[_F], _F]:
    """`_guarded` for coroutine methods."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        async def guarded(self: Router, *args: Any, **kwargs: Any) -> Any:
            try:
                return await method(self, *args, **kwargs)
            except (RouterError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                raise unexpected(exc, doing) from exc

        return guarded  # type: ignore[return-value]

    return wrap


class Router(ProviderManager):
    """Routes requests by the rules of one config, and follows edits to it."""

    def __init__(
        self,
        config: Config,
        *,
        path: str | os.PathLike[str] | None = None,
        state: LiveState | None = None,
        environ: Mapping[str, str] | None = None,
        check_tests: bool = True,
        warm: bool = True,
        observers: Sequence[Observer] = (),
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._environ = environ
        # Breakers, budgets, rate limits and spend: kept across reloads. Pass a
        # `state` to share one between routers or to give it a clock or a store.
        config = with_prices(config)
        self._live = state if state is not None else LiveState(config, serves_free=serves_free)
        if self._live.serves_free is None:
            self._live.use_price_source(serves_free)
        snap = Snapshot.build(config, 1)
        if check_tests:
            snap.check_tests()
        self._snapshot = snap
        # The request log, the response cache and the caller's observers (metrics, traces).
        self._hooks = RequestHooks(config, self._live, observers)
        self._reload_lock = threading.Lock()
        self._subscribers: list[ReloadCallback] = []
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._watcher: ConfigWatcher | None = None
        self._debounce_given = False  # an explicit debounce_ms wins over the config's
        self._closed = False
        self._overlay = Overlay()  # runtime additions and removals, laid over the files
        self._last_health: dict[str, dict[str, Any]] = {}
        self.warmed = threading.Event()  # set once the adapters' libraries are imported
        if warm:
            threading.Thread(
                target=self._warm, args=(config,), name="router-warm-up", daemon=True
            ).start()
        else:
            self.warmed.set()

    def _warm(self, config: Config) -> None:
        """Import the adapters the config uses (litellm: seconds) off the request path,
        so the first request neither pays for it nor records it as latency."""
        from router.providers import provider_class

        try:
            for kind in sorted({p.type for p in config.providers.values() if p.enabled}):
                try:
                    provider_class(kind)
                except Exception:  # a missing extra: the request that needs it will say so
                    log.debug("warm-up of %s adapters failed", kind, exc_info=True)
        finally:
            self.warmed.set()

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str],
        *,
        watch: bool = False,
        debounce_ms: int | None = None,
        environ: Mapping[str, str] | None = None,
        check_tests: bool = True,
        warm: bool = True,
        observers: Sequence[Observer] = (),
    ) -> Router:
        """Load a YAML file or a directory of them; `watch=True` reloads on edits.

        The config's own `tests:` must pass, unless `check_tests=False` (for
        `router test`, which reports them one by one). `warm=False`: do not import the
        adapters' libraries (litellm) in a background thread now, but on first use.
        """
        router = cls(
            _load(path, environ),
            path=path,
            environ=environ,
            check_tests=check_tests,
            warm=warm,
            observers=observers,
        )
        if watch:
            router.watch(debounce_ms)
        return router

    # -- routing ----------------------------------------------------------------
    def _acquire(self) -> Snapshot:
        """The current snapshot, entered before a reload can retire it.

        Entering after a reload retired it would find its providers closed and make
        new ones (a local model loaded again), so retry on the newer snapshot.
        """
        while True:
            snap = self._snapshot
            snap.enter()
            if snap is self._snapshot:
                return snap
            snap.exit()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def config(self) -> Config:
        return self._snapshot.config

    @_guarded("explain")
    def explain(self, prompt: str | None = None, **kwargs: Any) -> Decision:
        """The decision `route()` would take, with its trace; no model is called.

        Takes exactly the arguments of `route()`.
        """
        request = build_request(prompt, **kwargs)
        snap = self._acquire()
        try:
            decision, cands = decide(snap.ruleset, request, self._live, version=snap.version)
            if snap.config.settings.exact_tokens:
                decision = redecide(snap, request, self._live, decision, cands)[1]
            return decision
        finally:
            snap.exit()

    def _begin(
        self, request: Request, t0: float, started: float
    ) -> tuple[Snapshot, Decision, list[Candidate]]:
        """Decide, holding the snapshot; the caller releases it."""
        if self._closed:  # its spend store is closed: a request would go unrecorded
            raise RouterError("this Router is closed: route() after close(); make a new Router")
        snap = self._acquire()
        try:
            decision, cands = decide(snap.ruleset, request, self._live, version=snap.version)
            if snap.config.settings.exact_tokens:
                _, decision, cands = redecide(snap, request, self._live, decision, cands)
            spend.check_decision(decision, snap.ruleset.configs)
            if not cands:
                raise NoRouteError(_no_route_message(decision), decision)
        except BaseException as exc:
            snap.exit()
            self._hooks.failed(snap, request, None, exc, t0, started)
            raise
        return snap, decision, cands

    @overload
    def route(
        self,
        prompt: str | None = None,
        *,
        stream: Literal[False] = False,
        cache: bool = True,
        **kwargs: Any,
    ) -> Result: ...

    @overload
    def route(
        self, prompt: str | None = None, *, stream: Literal[True], cache: bool = True, **kwargs: Any
    ) -> Iterator[Chunk]: ...

    @overload
    def route(
        self, prompt: str | None = None, *, stream: bool, cache: bool = True, **kwargs: Any
    ) -> Result | Iterator[Chunk]: ...

    @_guarded("route")
    def route(
        self, prompt: str | None = None, *, stream: bool = False, cache: bool = True, **kwargs: Any
    ) -> Result | Iterator[Chunk]:
        """Route and run a request: a `Result`, or an iterator of `Chunk` with stream=True.

        Arguments are those of `build_request`: a prompt or `messages=[...]`, and
        `use_case=`, `tags=`, `metadata=`, `tools=`, `response_format=`, `stream=`;
        any other keyword is a call parameter (`temperature=0`, `max_tokens=64`, ...).
        `cache=False` neither reads nor fills the response cache for this request.
        """
        t0, started = time.perf_counter(), time.time()
        request = build_request(prompt, stream=stream, **kwargs)
        snap, decision, cands = self._begin(request, t0, started)
        hooks = self._hooks
        lookup = hooks.lookup(snap, request, decision, cache)
        if lookup is not None and lookup.hit is not None:
            result = hooks.serve_hit(snap, request, lookup, t0, started)
            if request.stream:
                return hooks.hit_stream(snap, request, lookup, result, t0, started)
            return result
        if request.stream:
            it = attempts.execute_stream(snap, request, decision, cands, self._live)
            watched_it = hooks.watch(it, snap, request, decision, lookup, t0, started)
            return HeldStream(snap, watched_it, decision)
        try:
            result = attempts.execute(snap, request, decision, cands, self._live)
        except BaseException as exc:
            hooks.failed(snap, request, decision, exc, t0, started)
            raise
        finally:
            snap.exit()
        hooks.finished(snap, request, result, lookup, t0, started)
        return result

    @overload
    async def aroute(
        self,
        prompt: str | None = None,
        *,
        stream: Literal[False] = False,
        cache: bool = True,
        **kwargs: Any,
    ) -> Result: ...

    @overload
    async def aroute(
        self, prompt: str | None = None, *, stream: Literal[True], cache: bool = True, **kwargs: Any
    ) -> AsyncIterator[Chunk]: ...

    @overload
    async def aroute(
        self, prompt: str | None = None, *, stream: bool, cache: bool = True, **kwargs: Any
    ) -> Result | AsyncIterator[Chunk]: ...

    @_aguarded("aroute")
    async def aroute(
        self, prompt: str | None = None, *, stream: bool = False, cache: bool = True, **kwargs: Any
    ) -> Result | AsyncIterator[Chunk]:
        """Async `route()`: a `Result`, or an async iterator of `Chunk` with stream=True."""
        t0, started = time.perf_counter(), time.time()
        request = build_request(prompt, stream=stream, **kwargs)
        snap, decision, cands = self._begin(request, t0, started)
        hooks = self._hooks
        lookup = hooks.lookup(snap, request, decision, cache)
        if lookup is not None and lookup.hit is not None:
            result = hooks.serve_hit(snap, request, lookup, t0, started)
            if request.stream:
                return hooks.ahit_stream(snap, request, lookup, result, t0, started)
            return result
        if request.stream:
            ait = attempts.aexecute_stream(snap, request, decision, cands, self._live)
            watched = hooks.awatch(ait, snap, request, decision, lookup, t0, started)
            return HeldAsyncStream(snap, watched, decision)
        try:
            result = await attempts.aexecute(snap, request, decision, cands, self._live)
        except BaseException as exc:
            hooks.failed(snap, request, decision, exc, t0, started)
            raise
        finally:
            snap.exit()
        hooks.finished(snap, request, result, lookup, t0, started)
        return result

    def replay(
        self,
        log: Any,
        *,
        against: Config | str | os.PathLike[str] | None = None,
        examples: int = 3,
    ) -> ReplayReport:
        """Route every logged request through this router's config, no model called,
        and compare with what was logged (or with `against`, another config).

        `log` is a request-log path, several paths, or parsed records (dicts).
        """
        from router.replay import replay

        return replay(self.config, log, against=against, examples=examples)

    # -- reload -----------------------------------------------------------------
    def reload(self) -> ReloadEvent:
        """Load the config again; swap only if all of it is valid. Never raises for a bad file.

        Changes made at run time (`add_provider()`, ...) are laid over the files again.
        """
        if self._path is None:
            raise RouterError("this router was not built from a file: nothing to reload")
        with self._reload_lock:
            old = self._snapshot.config
            event, changed = self._rebuild(self._overlay)
            if not changed:
                return event
        self._notify(event, old)
        return event

    def _apply_overlay(self, overlay: Overlay) -> ReloadEvent:
        """Rebuild with `overlay` instead of the current one; raise ConfigError if invalid."""
        if self._path is None:
            raise RouterError(
                "runtime changes need a router built from a file (Router.from_config)"
            )
        with self._reload_lock:
            old = self._snapshot.config
            event, changed = self._rebuild(overlay, keep_error=True)
            if not event.ok:
                raise ConfigError(str(event.error))
            self._overlay = overlay
        if changed:
            self._notify(event, old)
        return event

    def _rebuild(self, overlay: Overlay, keep_error: bool = False) -> tuple[ReloadEvent, bool]:
        """Build and swap under the reload lock: (the event, whether anything changed)."""
        from router.runtime.reload.changes import ReloadEvent, diff_configs

        assert self._path is not None
        old = self._snapshot
        try:
            config = with_prices(_load(self._path, self._environ, overlay))
            # Providers are carried over only once the new snapshot is sure to serve.
            snap = Snapshot.build(config, old.version + 1)
            snap.check_tests()
        except Exception as exc:  # a ConfigError, or any surprise: words, never a crash
            message = str(unexpected(exc, "reload"))
            if keep_error:  # a runtime change the caller is told about: serving is unchanged
                return ReloadEvent(
                    old.version, False, None, message, time.time(), old.config.sha256
                ), False
            if message != self._last_error:
                log.error(
                    "config reload failed, still serving version %d: %s", old.version, message
                )
            self._last_error = message
            self._last_error_at = time.time()
            return ReloadEvent(
                old.version, False, None, message, time.time(), old.config.sha256
            ), True
        if config.sha256 == old.config.sha256 and old.config.files == config.files:
            # Back to the config that serves after a failed reload: subscribers hear it
            # is good again (the event counts as a change); otherwise nothing to tell.
            recovered = self._last_error is not None
            self._last_error = None
            self._last_error_at = None
            return ReloadEvent(
                old.version,
                True,
                diff_configs(old.config, config),
                None,
                old.loaded_at,
                old.config.sha256,
            ), recovered
        self._live.update_config(config)
        snap.carry_over(old)
        self._snapshot = snap
        old.retire()
        self._last_error = None
        self._last_error_at = None
        log.info("config reloaded: version %d", snap.version)
        self._follow_watch_settings(old.config, config)
        event = ReloadEvent(
            snap.version,
            True,
            diff_configs(old.config, config),
            None,
            snap.loaded_at,
            config.sha256,
        )
        return event, True

    def _notify(self, event: ReloadEvent, old: Config) -> None:
        self._hooks.reloaded(old, self._snapshot.config, event)
        for cb in list(self._subscribers):
            try:
                cb(event)
            except Exception:
                log.exception("on_reload subscriber failed")

    def check(self) -> tuple[list[Finding], list[Finding]]:
        """(errors, warnings) `router validate` adds to loading: a litellm model id that
        names no provider (every call fails); a model whose price is unknown."""
        from router.runtime.checks import config_errors, config_warnings

        config = self._snapshot.config
        return config_errors(config), config_warnings(config)

    def run_tests(self) -> list[TestOutcome]:
        """Run the config's `tests:` routing assertions; no model is called."""
        # Against no live state: an open circuit must not fail a config's own tests.
        return self._snapshot.run_tests()

    def add_observer(self, observer: Observer) -> Observer:
        """Tell `observer` of every request's end and every reload (metrics, traces)."""
        self._hooks.add(observer)
        return observer

    def on_reload(self, callback: ReloadCallback) -> ReloadCallback:
        """Call `callback(event)` after every reload that changed the config or failed.

        A reload that finds the files as they were changes nothing and tells no one.
        """
        self._subscribers.append(callback)
        return callback

    def watch(self, debounce_ms: int | None = None) -> None:
        """Start watching the config's files (idempotent)."""
        from router.runtime.reload.watcher import ConfigWatcher

        if self._path is None:
            raise RouterError("this router was not built from a file: nothing to watch")
        if self._watcher is not None:
            return
        self._debounce_given = debounce_ms is not None
        ms = debounce_ms if debounce_ms is not None else self.config.settings.debounce_ms
        paths = [self._path, *(Path(f) for f in self.config.files)]
        self._watcher = ConfigWatcher(paths, self.reload, debounce=ms / 1000)
        self._watcher.start()

    def _follow_watch_settings(self, old: Config, new: Config) -> None:
        """A reload may change which files make the config, or the debounce."""
        watcher = self._watcher
        if watcher is None or self._path is None:
            return
        if new.files != old.files:
            watcher.set_paths([self._path, *(Path(f) for f in new.files)])
        if not self._debounce_given:
            watcher.debounce = new.settings.debounce_ms / 1000

    def status(self) -> RouterStatus:
        """The config serving, the last reload error, and the live state; `to_dict()` for JSON."""
        snap = self._snapshot
        watcher = self._watcher
        health = watcher.health() if watcher is not None else None
        return RouterStatus(
            config_version=snap.version,
            loaded_at=snap.loaded_at,
            sha256=snap.config.sha256,
            files=tuple(snap.config.files),
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            watching=health is not None and health.worker_alive,
            watcher=health,
            providers={
                name: ProviderInfo(p.type, p.enabled, p.disabled_reason)
                for name, p in snap.config.providers.items()
            },
            state=self._live.status(),
            health=dict(self._last_health),
            runtime_changes=self.runtime_changes(),
            cache=self._hooks.cache_status(),
        )

    def usage(
        self, by: Sequence[str] = ("day", "model", "rule"), since: float | None = None
    ) -> list[UsageRow]:
        """Spend from the usage store, grouped by day/month/model/rule/provider."""
        return [
            UsageRow(
                dict(zip(by, row.key, strict=True)),
                row.requests,
                row.input_tokens,
                row.output_tokens,
                row.cost_usd,
                row.cache_hits,
                row.unpriced,
            )
            for row in self._live.store.rows(tuple(by), since)
        ]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        self._snapshot.retire()
        self._hooks.close()
        self._live.close()

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self._path) if self._path else "<config>"
        return f"<Router {where} version={self._snapshot.version}>"


def _no_route_message(decision: Decision) -> str:
    if not decision.rules:
        return "no rule matches this request"
    reasons = "; ".join(f"{m}: {why}" for m, why in decision.rejected.items())
    if reasons:
        return f"no rule could serve this request ({reasons})"
    notes = "; ".join(t.note for t in decision.rules if t.note)
    return f"no rule matches this request ({notes})" if notes else "no rule matches"
