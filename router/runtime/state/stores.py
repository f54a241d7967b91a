"""The stores behind `LiveState`, one Protocol each, and the in-process backend.

| store | Protocol | in process | Redis (`settings.state: redis://...`) |
| --- | --- | --- | --- |
| spend and budgets | `SpendStore` | `BudgetTracker` (seeded from SQLite) | `RedisBudgetTracker` |
| rate limits | `LimitStore` | `RateLimiter` | `RedisRateLimiter` |
| circuit breaker (one per model) | `BreakerStore` | `CircuitBreaker` | `RedisBreaker` |
| latency, in-flight, round-robin | `CounterStore` | `MemoryCounters` | `RedisCounters` |
| spend log | `UsageStore` (usage.py) | SQLite or memory | Redis and SQLite |

A `Backend` makes them for a config; `open_backend` picks one from `settings.state`.
Each Redis store is the in-process one plus the fleet: when Redis is away it carries on
with its local half. tests/runtime/state/test_store_contract.py runs one suite on both.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from router.config.model import BreakerPolicy, Budget, StateSettings
from router.runtime.state.breaker import BreakerState, CircuitBreaker
from router.runtime.state.budgets import BudgetTracker, Reservation
from router.runtime.state.ratelimit import Limit, RateLimiter
from router.runtime.state.usage import UsageStore, open_store
from router.types import BudgetStatus, Rejection

Clock = Callable[[], float]
EWMA_ALPHA = 0.2  # weight of the newest latency: a few calls move the average


class SpendStore(Protocol):
    """Budgets: reserve an estimate, then commit the real cost or release it."""

    def reason(self, model: str, rule: str | None) -> str | None: ...
    def reserve(
        self, model: str, rule: str | None, estimated_cost: float
    ) -> Reservation | None: ...
    def commit(self, reservation: Reservation, actual_cost: float) -> None: ...
    def release(self, reservation: Reservation) -> None: ...
    def add(self, model: str, rule: str | None, cost: float) -> None: ...
    def update_budgets(self, budgets: Iterable[Budget]) -> None: ...
    def status(self) -> tuple[BudgetStatus, ...]: ...


class LimitStore(Protocol):
    """rpm/tpm token buckets per model."""

    def check(self, model: str, tokens: int = 0) -> str | None: ...
    def try_acquire(self, model: str, tokens: int = 0) -> str | None: ...
    def acquire_wait(self, model: str, tokens: int = 0, deadline: float | None = None) -> bool: ...
    async def aacquire_wait(
        self, model: str, tokens: int = 0, deadline: float | None = None
    ) -> bool: ...
    def settle(self, model: str, reserved_tokens: int, actual_tokens: int) -> None: ...
    def release(self, model: str, tokens: int = 0) -> None: ...
    def update(self, limits: Mapping[str, Limit]) -> None: ...
    def levels(self) -> dict[str, dict[str, dict[str, float]]]: ...


class BreakerStore(Protocol):
    """One model's circuit breaker."""

    policy: BreakerPolicy

    @property
    def closed(self) -> bool: ...
    def unavailable_reason(self) -> str | None: ...
    def acquire(self) -> str | None: ...
    def record_success(self) -> None: ...
    def record_failure(self) -> None: ...
    def release(self) -> None: ...
    def state(self) -> BreakerState: ...
    def update_policy(self, policy: BreakerPolicy) -> None: ...
    def reset(self) -> None: ...


class CounterStore(Protocol):
    """What `fastest`, `least_busy`, `round_robin` and `weighted` read."""

    def next_index(self, key: str) -> int: ...
    def latency(self, model: str) -> float | None: ...
    def record_latency(self, model: str, seconds: float) -> None: ...
    def in_flight(self, model: str) -> int: ...
    def enter(self, model: str) -> None: ...
    def leave(self, model: str) -> None: ...
    def forget(self, keep: Collection[str]) -> None: ...


class MemoryCounters:
    """Latency (a moving average), in-flight counts and round-robin positions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, float] = {}
        self._in_flight: dict[str, int] = {}
        self._rr: dict[str, itertools.count[int]] = {}

    def next_index(self, key: str) -> int:
        counter = self._rr.get(key)
        if counter is None:
            counter = self._rr.setdefault(key, itertools.count())
        return next(counter)  # itertools.count is atomic under the GIL

    def latency(self, model: str) -> float | None:
        return self._latency.get(model)

    def record_latency(self, model: str, seconds: float) -> None:
        old = self._latency.get(model)
        new = seconds if old is None else old + EWMA_ALPHA * (seconds - old)
        self._latency[model] = new  # one item store: atomic, readers never wait

    def in_flight(self, model: str) -> int:
        return self._in_flight.get(model, 0)

    def enter(self, model: str) -> None:
        with self._lock:
            self._in_flight[model] = self._in_flight.get(model, 0) + 1

    def leave(self, model: str) -> None:
        with self._lock:
            n = self._in_flight.get(model, 0) - 1
            if n > 0:
                self._in_flight[model] = n
            else:
                self._in_flight.pop(model, None)

    def forget(self, keep: Collection[str]) -> None:
        self._latency = {k: v for k, v in self._latency.items() if k in keep}


class Backend(Protocol):
    """Makes the stores of one `LiveState`."""

    shared: bool

    def usage_store(self, path: str) -> UsageStore: ...
    def budgets(
        self, budgets: Iterable[Budget], store: UsageStore, clock: Clock
    ) -> BudgetTracker: ...
    def rate_limiter(
        self, limits: Mapping[str, Limit], clock: Clock, sleep: Callable[[float], None]
    ) -> RateLimiter: ...
    def breaker(
        self, model: str, policy: BreakerPolicy, clock: Clock, wall: Clock
    ) -> CircuitBreaker: ...
    def counters(self) -> MemoryCounters: ...
    def admit(
        self,
        limiter: RateLimiter,
        tracker: BudgetTracker,
        model: str,
        rule: str | None,
        tokens: int,
        estimated_cost: float,
    ) -> Reservation | Rejection | None:
        """Take the rate limit and reserve the budget together (one round trip to a
        shared store); None: not handled, take them one after the other."""
        ...

    def status(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


class LocalBackend:
    """Everything in this process; spend in SQLite (or memory)."""

    shared = False

    def usage_store(self, path: str) -> UsageStore:
        return open_store(path)

    def budgets(self, budgets: Iterable[Budget], store: UsageStore, clock: Clock) -> BudgetTracker:
        return BudgetTracker(budgets, store, clock=clock)

    def rate_limiter(
        self, limits: Mapping[str, Limit], clock: Clock, sleep: Callable[[float], None]
    ) -> RateLimiter:
        return RateLimiter(limits, clock=clock, sleep=sleep)

    def breaker(
        self, model: str, policy: BreakerPolicy, clock: Clock, wall: Clock
    ) -> CircuitBreaker:
        return CircuitBreaker(policy, clock=clock, wall=wall)

    def counters(self) -> MemoryCounters:
        return MemoryCounters()

    def admit(
        self,
        limiter: RateLimiter,
        tracker: BudgetTracker,
        model: str,
        rule: str | None,
        tokens: int,
        estimated_cost: float,
    ) -> Reservation | Rejection | None:
        return None  # in process, one after the other costs nothing

    def status(self) -> dict[str, Any]:
        return {"backend": "memory"}

    def close(self) -> None:
        pass


def open_backend(settings: StateSettings, *, clock: Clock = time.monotonic) -> Backend:
    """The backend `settings.state` names. The Redis one is imported only then."""
    if not settings.shared:
        return LocalBackend()
    from router.runtime.state.redis_stores import RedisBackend

    return RedisBackend(settings, clock=clock)


__all__ = [
    "Backend",
    "BreakerStore",
    "CounterStore",
    "LimitStore",
    "LocalBackend",
    "MemoryCounters",
    "SpendStore",
    "open_backend",
]
