"""Requests and tokens per minute per model, as token buckets.

A bucket holds up to `rpm` (or `tpm`) units and refills at that many per minute, so a
quiet model may take a burst of a minute's worth and a busy one is held to the rate.
A request takes one unit of the rpm bucket and its estimated tokens from the tpm
bucket, both or neither. `settle()` corrects the tpm bucket once the real token count
is known; it may run into debt, which the next callers wait out.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from router.config.model import ModelConfig

Clock = Callable[[], float]
Sleep = Callable[[float], None]
ASleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """Not locked itself: the `RateLimiter` holds one lock per model around its buckets."""

    __slots__ = ("_last", "_level", "capacity", "rate", "unit")

    def __init__(self, per_minute: float, unit: str, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0  # units per second
        self.unit = unit
        self._level = self.capacity
        self._last = now

    def level(self, now: float) -> float:
        """Units available at `now` (negative while in debt). Reads, changes nothing."""
        return min(self.capacity, self._level + max(now - self._last, 0.0) * self.rate)

    def _refill(self, now: float) -> None:
        self._level = self.level(now)
        self._last = max(now, self._last)

    def wait_time(self, n: float, now: float) -> float:
        """Seconds until `n` units are there; a request larger than the bucket waits
        for a full one."""
        need = min(n, self.capacity) - self.level(now)
        return 0.0 if need <= 0 else need / self.rate

    def take(self, n: float, now: float) -> None:
        self._refill(now)
        self._level -= min(n, self.capacity)

    def give(self, n: float, now: float) -> None:
        self._refill(now)
        self._level = min(self.capacity, self._level + n)


class _ModelLimits:
    __slots__ = ("limits", "lock", "rpm", "tpm")

    def __init__(self, rpm: int | None, tpm: int | None, now: float) -> None:
        self.limits = (rpm, tpm)
        self.rpm = TokenBucket(rpm, "rpm", now) if rpm else None
        self.tpm = TokenBucket(tpm, "tpm", now) if tpm else None
        self.lock = threading.Lock()

    def wait(self, tokens: int, now: float) -> tuple[float, TokenBucket | None]:
        """Seconds until this request fits, and the bucket that holds it back."""
        worst, which = 0.0, None
        if self.rpm is not None:
            w = self.rpm.wait_time(1, now)
            if w > worst:
                worst, which = w, self.rpm
        if self.tpm is not None:
            w = self.tpm.wait_time(tokens, now)
            if w > worst:
                worst, which = w, self.tpm
        return worst, which

    def take(self, tokens: int, now: float) -> None:
        if self.rpm is not None:
            self.rpm.take(1, now)
        if self.tpm is not None:
            self.tpm.take(tokens, now)


@dataclass(frozen=True, slots=True)
class Limit:
    rpm: int | None = None
    tpm: int | None = None


def _reason(bucket: TokenBucket | None, wait: float) -> str:
    assert bucket is not None
    return f"rate limit: {bucket.capacity:g} {bucket.unit} reached (next slot in {wait:.1f}s)"


class RateLimiter:
    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        asleep: ASleep = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._asleep = asleep
        self._models: dict[str, _ModelLimits] = {}
        # Per model: [requests that waited, seconds slept]; for metrics and status.
        self._waits: dict[str, list[float]] = {}
        self.update(limits or {})

    def update(self, limits: Mapping[str, Limit]) -> None:
        """New limits from a reload; buckets whose limits did not change carry over."""
        now = self._clock()
        new: dict[str, _ModelLimits] = {}
        for name, lim in limits.items():
            if not lim.rpm and not lim.tpm:
                continue
            old = self._models.get(name)
            if old is not None and old.limits == (lim.rpm, lim.tpm):
                new[name] = old
            else:
                new[name] = _ModelLimits(lim.rpm, lim.tpm, now)
        self._models = new

    def check(self, model: str, tokens: int = 0) -> str | None:
        """Why `model` is at its limit now, or None. Takes nothing, takes no lock."""
        m = self._models.get(model)
        if m is None:
            return None
        # The stored level only grows with time: when it already covers the request,
        # no clock read or refill arithmetic is needed.
        if (m.rpm is None or m.rpm._level >= 1) and (
            m.tpm is None or m.tpm._level >= min(tokens, m.tpm.capacity)
        ):
            return None
        wait, bucket = m.wait(tokens, self._clock())
        return None if wait <= 0 else _reason(bucket, wait)

    def try_acquire(self, model: str, tokens: int = 0) -> str | None:
        """Take one request and `tokens` now, or say why not (and take nothing)."""
        m = self._models.get(model)
        if m is None:
            return None
        with m.lock:
            now = self._clock()
            wait, bucket = m.wait(tokens, now)
            if wait > 0:
                return _reason(bucket, wait)
            m.take(tokens, now)
            return None

    def _try_or_wait(self, model: str, tokens: int, deadline: float | None) -> float | None:
        """0: acquired. >0: seconds to sleep before trying again. None: gave up."""
        m = self._models.get(model)
        if m is None:
            return 0.0
        with m.lock:
            now = self._clock()
            wait, _ = m.wait(tokens, now)
            if wait <= 0:
                m.take(tokens, now)
                return 0.0
        if deadline is not None and now + wait > deadline:
            return None  # would not fit in the time left: do not sleep for nothing
        # Other waiters may take the units first; wake a little after they should be there.
        return wait + 0.001

    def acquire_wait(self, model: str, tokens: int = 0, deadline: float | None = None) -> bool:
        """Wait until the request fits; False when it cannot before `deadline` (clock time)."""
        first = True
        while True:
            step = self._try_or_wait(model, tokens, deadline)
            if step is None:
                return False
            if step == 0:
                return True
            self._count_wait(model, step, first)
            first = False
            self._sleep(step)

    async def aacquire_wait(
        self, model: str, tokens: int = 0, deadline: float | None = None
    ) -> bool:
        """`acquire_wait` for asyncio: sleeps without blocking the loop."""
        first = True
        while True:
            step = self._try_or_wait(model, tokens, deadline)
            if step is None:
                return False
            if step == 0:
                return True
            self._count_wait(model, step, first)
            first = False
            await self._asleep(step)

    def _count_wait(self, model: str, seconds: float, first: bool) -> None:
        w = self._waits.setdefault(model, [0, 0.0])
        w[0] += first
        w[1] += seconds

    def waits(self) -> dict[str, tuple[int, float]]:
        """Per model: how many requests waited for a slot, and the seconds they slept."""
        return {m: (int(w[0]), w[1]) for m, w in list(self._waits.items())}

    def settle(self, model: str, reserved_tokens: int, actual_tokens: int) -> None:
        """Correct the tpm bucket once the real count is known (refund or debt)."""
        m = self._models.get(model)
        if m is None or m.tpm is None or reserved_tokens == actual_tokens:
            return
        with m.lock:
            now = self._clock()
            if actual_tokens < reserved_tokens:
                m.tpm.give(reserved_tokens - actual_tokens, now)
            else:
                m.tpm.take(actual_tokens - reserved_tokens, now)

    def release(self, model: str, tokens: int = 0) -> None:
        """Give back what an attempt took but never used (it was not sent)."""
        m = self._models.get(model)
        if m is None:
            return
        with m.lock:
            now = self._clock()
            if m.rpm is not None:
                m.rpm.give(1, now)
            if m.tpm is not None:
                m.tpm.give(tokens, now)

    def levels(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per limited model: each bucket's limit and what is available now."""
        now = self._clock()
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, m in self._models.items():
            entry: dict[str, dict[str, float]] = {}
            for b in (m.rpm, m.tpm):
                if b is not None:
                    entry[b.unit] = {"limit": b.capacity, "available": round(b.level(now), 1)}
            out[name] = entry
        return out


def limits_of(models: Iterable[ModelConfig]) -> dict[str, Limit]:
    return {m.name: Limit(m.rpm, m.tpm) for m in models if m.rpm or m.tpm}


__all__ = ["Limit", "RateLimiter", "TokenBucket", "limits_of"]
