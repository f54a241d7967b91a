"""What the request path tells observers: one event when a request ends, one per reload.

The Router calls an `Observer` at two points only (a request ended, a reload
happened), so the request log, metrics and traces live here and not in the attempt
loop. An observer that raises is logged and ignored: seeing a request must never
fail it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from router.errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    NoRouteError,
    ProviderError,
    RateLimited,
    Timeout,
)
from router.types import Decision, Request, Result

if TYPE_CHECKING:
    from router.runtime.reload.changes import ReloadEvent

log = logging.getLogger("router.observe")

# Every value `RequestEnded.outcome` can take: a closed set, safe as a metric label.
OUTCOMES = (
    "ok",
    "no_route",
    "failed",
    "budget",
    "bad_request",
    "rate_limited",
    "cancelled",
    "error",
)
CACHE_RESULTS = ("hit", "miss")


@dataclass(frozen=True, slots=True)
class RequestEnded:
    """One request, from `route()` to its answer or its error."""

    started_at: float  # time.time() when route() was called
    duration_s: float
    request: Request
    decision: Decision | None  # None when the request failed before a decision
    result: Result | None  # None when it failed
    error: BaseException | None = None
    ttft_s: float | None = None  # streams: time to the first piece of text
    cache: str | None = None  # "hit" | "miss"; None when the cache did not apply
    config_version: int = 0
    config_sha: str = ""

    @property
    def outcome(self) -> str:
        """One of `OUTCOMES`."""
        return outcome_of(self.result, self.error)


def outcome_of(result: Result | None, error: BaseException | None) -> str:
    if result is not None:
        return "ok"
    if isinstance(error, BudgetExceeded):
        return "budget"
    if isinstance(error, NoRouteError):
        return "failed" if error.attempts else "no_route"
    if isinstance(error, BadRequest):
        return "bad_request"
    if isinstance(error, RateLimited):
        return "rate_limited"
    if isinstance(error, (Timeout, AuthError, ProviderError)):
        return "failed"
    if isinstance(error, (GeneratorExit, asyncio.CancelledError, KeyboardInterrupt)):
        return "cancelled"  # the caller stopped reading a stream, or gave up waiting
    return "error"


class Observer(Protocol):
    """Receives every request's end and every reload. Must be quick and thread-safe."""

    def request_ended(self, event: RequestEnded) -> None: ...

    def reloaded(self, event: ReloadEvent) -> None: ...

    def close(self) -> None: ...


class Observers:
    """Several observers behind one; a failing one is logged and the others still run."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.items: tuple[Observer, ...] = tuple(observers)

    def __bool__(self) -> bool:
        return bool(self.items)

    def request_ended(self, event: RequestEnded) -> None:
        for o in self.items:
            try:
                o.request_ended(event)
            except Exception:
                log.exception("observer %r failed on a request", type(o).__name__)

    def reloaded(self, event: ReloadEvent) -> None:
        for o in self.items:
            try:
                o.reloaded(event)
            except Exception:
                log.exception("observer %r failed on a reload", type(o).__name__)

    def close(self) -> None:
        for o in self.items:
            try:
                o.close()
            except Exception:
                log.exception("closing observer %r failed", type(o).__name__)


__all__ = ["CACHE_RESULTS", "OUTCOMES", "Observer", "Observers", "RequestEnded", "outcome_of"]
