"""Rate limits and circuit breakers shared through Redis.

`RedisRateLimiter`: one token bucket per model for the whole fleet, taken by a Lua
script that refills with Redis's clock (`TIME`), so hosts whose clocks differ agree.
Refunds and token corrections are queued writes. While Redis is away the in-process
buckets (the parent class) hold the line.

`RedisBreaker`: a `CircuitBreaker` that also keeps the fleet's view of its model.
Failures are written (queued) to a Redis sorted set; the script opens the circuit for
everyone once `failures` land within `window`. Every sync (`sync_ms`, 250 ms by
default) each process reads the fleet's breakers, so a circuit opened anywhere is
skipped everywhere within a second. The half-open probe is a key set with NX in Redis:
exactly one process, and in it one request, gets it; it expires if that process dies.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from router.config.model import BreakerPolicy
from router.runtime.state.breaker import HALF_OPEN, OPEN, BreakerState, CircuitBreaker
from router.runtime.state.ratelimit import Limit, RateLimiter
from router.runtime.state.redis_link import DOWN, Op, RedisLink

Clock = Callable[[], float]


class RedisRateLimiter(RateLimiter):
    def __init__(
        self,
        link: RedisLink,
        limits: Mapping[str, Limit] | None = None,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._link = link
        self._fleet: dict[str, dict[str, dict[str, float]]] = {}
        self._seen: dict[str, tuple[float, float, float]] = {}  # rpm, tpm levels; when
        super().__init__(limits, clock=clock, sleep=sleep, asleep=asleep)

    def plan(self, model: str, tokens: int) -> tuple[str, tuple[int, int, int]] | None:
        """The bucket key and (rpm, tpm, tokens) for a take; None when not limited."""
        m = self._models.get(model)
        if m is None:
            return None
        rpm, tpm = m.limits
        return self._link.key("rate", model), (rpm or 0, tpm or 0, tokens)

    def took(self, model: str, wait: float, r: float, k: float) -> tuple[float, str]:
        """Keep the fleet's levels a script reported; the reason when it had to wait."""
        m = self._models.get(model)
        if m is None:
            return 0.0, ""
        rpm, tpm = m.limits
        levels: dict[str, dict[str, float]] = {}
        if rpm:
            levels["rpm"] = {"limit": float(rpm), "available": round(r, 1)}
        if tpm:
            levels["tpm"] = {"limit": float(tpm), "available": round(k, 1)}
        self._fleet[model] = levels
        self._seen[model] = (r, k, self._clock())
        if wait <= 0:
            return 0.0, ""
        if rpm and r < 1:
            return wait, f"rate limit: {rpm:g} rpm reached (next slot in {wait:.1f}s)"
        return wait, f"rate limit: {tpm:g} tpm reached (next slot in {wait:.1f}s)"

    def _take(self, model: str, tokens: int) -> Any:
        """Seconds to wait (0: taken) and the reason; DOWN if Redis cannot be asked."""
        plan = self.plan(model, tokens)
        if plan is None:
            return 0.0, ""
        bucket, (rpm, tpm, n) = plan
        got = self._link.call("rate_bucket", [bucket], [rpm, tpm, n, "take"])
        if got is DOWN:
            return DOWN
        return self.took(model, float(got[0]), float(got[1]), float(got[2]))

    def try_acquire(self, model: str, tokens: int = 0) -> str | None:
        if model not in self._models:
            return None
        got = self._take(model, tokens)
        if got is DOWN:
            return super().try_acquire(model, tokens)
        wait, why = got
        return why if wait > 0 else None

    def _try_or_wait(self, model: str, tokens: int, deadline: float | None) -> float | None:
        if model not in self._models:
            return 0.0
        got = self._take(model, tokens)
        if got is DOWN:
            return super()._try_or_wait(model, tokens, deadline)
        wait = float(got[0])
        if wait <= 0:
            return 0.0
        if deadline is not None and self._clock() + wait > deadline:
            return None
        return wait + 0.001

    def check(self, model: str, tokens: int = 0) -> str | None:
        """From the fleet's levels the last take saw, refilled since: no I/O. The try's
        admission asks the fleet's bucket itself."""
        if not self._link.up:
            return super().check(model, tokens)
        seen = self._seen.get(model)
        m = self._models.get(model)
        if seen is None or m is None:
            return None
        r, k, at = seen
        rpm, tpm = m.limits
        elapsed = max(self._clock() - at, 0.0)
        wait = 0.0
        if rpm:
            r = min(float(rpm), r + elapsed * rpm / 60)
            wait = 0.0 if r >= 1 else (1 - r) * 60 / rpm
        if tpm:
            k = min(float(tpm), k + elapsed * tpm / 60)
            need = min(tokens, tpm)
            wait = max(wait, 0.0 if k >= need else (need - k) * 60 / tpm)
        return None if wait <= 0 else self.took(model, wait, r, k)[1]

    def _adjust(self, model: str, tokens: int, mode: str, request: bool) -> None:
        m = self._models.get(model)
        if m is None:
            return
        rpm, tpm = m.limits
        key = self._link.key("rate", model)
        args = (rpm or 0, tpm or 0, tokens, mode, "1" if request else "0")
        self._link.submit(Op("rate_bucket", (key,), args, durable=False))

    def settle(self, model: str, reserved_tokens: int, actual_tokens: int) -> None:
        m = self._models.get(model)
        if m is None or m.tpm is None or reserved_tokens == actual_tokens:
            return
        if not self._link.up:
            super().settle(model, reserved_tokens, actual_tokens)
        elif actual_tokens < reserved_tokens:
            self._adjust(model, reserved_tokens - actual_tokens, "give", request=False)
        else:
            self._adjust(model, actual_tokens - reserved_tokens, "debt", request=False)

    def release(self, model: str, tokens: int = 0) -> None:
        if not self._link.up:
            super().release(model, tokens)
        else:
            self._adjust(model, tokens, "give", request=True)

    def levels(self) -> dict[str, dict[str, dict[str, float]]]:
        local = super().levels()
        if not self._link.up:
            return local
        return {name: self._fleet.get(name, entry) for name, entry in local.items()}


class RedisBreaker(CircuitBreaker):
    def __init__(
        self,
        link: RedisLink,
        model: str,
        policy: BreakerPolicy,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        super().__init__(policy, clock=clock, wall=wall)
        self._link = link
        self.model = model
        self._keys = (
            link.key("breaker", model),
            link.key("breaker", model, "fails"),
            link.key("breaker", model, "probe"),
        )
        # The fleet's view, refreshed by `observe` every sync: open until (wall clock),
        # why, and whether a probe is out somewhere.
        self._fleet_until: float | None = None
        self._fleet_why = ""
        self._fleet_probe = False
        self._probe_token: str | None = None  # set while this process holds the probe

    def _args(self, op: str, token: str) -> tuple[Any, ...]:
        p = self.policy
        return (op, p.failures, repr(float(p.window)), repr(float(p.cooldown)), token)

    def _fleet_open(self) -> bool:
        return self._fleet_until is not None and self._link.up

    @property
    def closed(self) -> bool:
        return super().closed and not self._fleet_open()

    def unavailable_reason(self) -> str | None:
        why = super().unavailable_reason()
        if why is not None or not self._fleet_open():
            return why
        until = self._fleet_until
        assert until is not None
        if self._wall() < until:
            at = time.strftime("%H:%M:%S", time.localtime(until))
            return f"circuit open until {at} ({self._fleet_why}; seen by another router)"
        if self._fleet_probe:
            return f"circuit half-open: probe in flight ({self._fleet_why})"
        return None

    def acquire(self) -> str | None:
        if self.closed:
            return None
        if not self._link.up:
            return super().acquire()
        token = uuid.uuid4().hex
        got = self._link.call("breaker", self._keys, self._args("probe", token))
        if got is DOWN:
            return super().acquire()
        self._observe(got)
        state = got[0]
        if state == "ok":  # the fleet sees it closed: this process's own view decides
            return super().acquire()
        if state == "open":
            return self.unavailable_reason() or "circuit open"
        if state == "busy":
            return f"circuit half-open: probe in flight ({self._fleet_why})"
        self._probe_token = token  # "probe": ours, fleet-wide
        with self._lock:
            self._probe_since = self._clock()
        return None

    def _observe(self, got: Any) -> None:
        """Take the fleet's state from a script's answer: {result, seconds open, why}."""
        if got[1] == "":
            self._fleet_until, self._fleet_why, self._fleet_probe = None, "", False
        else:
            self._fleet_until = self._wall() + float(got[1])
            self._fleet_why = str(got[2])

    def observe(self, until_in: float | None, why: str, probe: bool) -> None:
        """The sync's reading: seconds until the circuit half-opens (None: closed)."""
        self._fleet_until = None if until_in is None else self._wall() + until_in
        self._fleet_why = why
        self._fleet_probe = probe

    def record_success(self) -> None:
        fleet = self._fleet_until is not None or self._probe_token is not None
        super().record_success()
        if fleet:
            self._link.submit(Op("breaker", self._keys, self._args("success", ""), durable=False))
            if self._probe_token is not None:
                self._fleet_until, self._fleet_probe, self._probe_token = None, False, None

    def record_failure(self) -> None:
        super().record_failure()
        token = uuid.uuid4().hex
        self._link.submit(Op("breaker", self._keys, self._args("fail", token), durable=False))
        self._probe_token = None

    def release(self) -> None:
        super().release()
        token, self._probe_token = self._probe_token, None
        if token is not None:
            self._link.submit(Op("breaker", self._keys, self._args("release", token), False))

    def state(self) -> BreakerState:
        local = super().state()
        if local.state != "closed" or not self._fleet_open():
            return local
        until = self._fleet_until
        assert until is not None
        name = OPEN if self._wall() < until else HALF_OPEN
        return BreakerState(
            name,
            local.failures,
            until,
            probe_in_flight=self._fleet_probe,
            reason=f"circuit {name.replace('_', '-')} ({self._fleet_why}; fleet)",
            opened=local.opened,
        )

    def reset(self) -> None:
        super().reset()
        self._fleet_until, self._fleet_probe = None, False
        self._link.command(lambda r: r.delete(*self._keys))


def sync_breakers(client: Any, breakers: list[RedisBreaker]) -> None:
    """Read every breaker's fleet state in one pipeline (the background thread)."""
    if not breakers:
        return
    pipe = client.pipeline(transaction=False)
    pipe.time()
    for b in breakers:
        pipe.hmget(b._keys[0], "until", "why")
        pipe.exists(b._keys[2])
    got = pipe.execute()
    sec, usec = got[0]
    now = float(sec) + float(usec) / 1e6
    for i, b in enumerate(breakers):
        until, why = got[1 + 2 * i]
        probe = bool(got[2 + 2 * i])
        b.observe(None if until is None else float(until) - now, why or "", probe)


__all__ = ["RedisBreaker", "RedisRateLimiter", "sync_breakers"]
