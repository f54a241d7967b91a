"""The Redis backend: the stores of stores.py, shared by every router on one Redis.

Besides the budgets (redis_budgets.py), rate limits and breakers (redis_limits.py),
this module holds the counters that strategies read and the spend log:

- `RedisCounters`: round-robin positions are one `INCR` per pick, so `round_robin`
  spreads across processes. Each process publishes its in-flight counts and latency
  averages every sync (nothing per request) and reads everyone's, so `least_busy`
  and `fastest` see the fleet. A process that stops publishing drops out after
  `_ALIVE_S`.
- `RedisUsageStore`: one JSON row per request in a list per UTC day, plus per-day
  totals (global, per model, per rule) that `spent()` reads in one round trip.
- `TeeUsageStore`: rows go to the local SQLite file (at once) and to Redis (queued);
  reports read the one `spend_log` names, the local file while Redis is away.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from router.config.model import BreakerPolicy, Budget, StateSettings
from router.runtime.state.budgets import BudgetTracker, Reservation
from router.runtime.state.ratelimit import Limit, RateLimiter
from router.runtime.state.redis_budgets import RedisBudgetTracker
from router.runtime.state.redis_limits import RedisBreaker, RedisRateLimiter, sync_breakers
from router.runtime.state.redis_link import DOWN, Op, RedisLink
from router.runtime.state.stores import MemoryCounters
from router.runtime.state.usage import (
    MemoryUsageStore,
    UsageRecord,
    UsageRow,
    UsageStore,
    open_store,
    period_bounds,
)
from router.types import Rejection, RejectionKind

Clock = Callable[[], float]
log = logging.getLogger("router.state")
_ALIVE_S = 5.0  # a process that has not published in-flight counts for this long is gone


class RedisCounters(MemoryCounters):
    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self._link = link
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._others_latency: dict[str, list[float]] = {}
        self._others_in_flight: dict[str, int] = {}
        link.add_syncer(self.sync)

    def next_index(self, key: str) -> int:
        got = self._link.command(lambda r: r.incr(self._link.key("rr", key)))
        if got is DOWN:
            return super().next_index(key)
        return int(got) - 1

    def latency(self, model: str) -> float | None:
        """The mean of every live process's moving average (this one's as of now)."""
        mine = super().latency(model)
        others = self._others_latency.get(model) if self._link.up else None
        if not others:
            return mine
        values = others if mine is None else [*others, mine]
        return sum(values) / len(values)

    def in_flight(self, model: str) -> int:
        mine = super().in_flight(model)
        return mine + self._others_in_flight.get(model, 0) if self._link.up else mine

    def forget(self, keep: Collection[str]) -> None:
        super().forget(keep)
        self._others_latency = {k: v for k, v in self._others_latency.items() if k in keep}

    def sync(self, client: Any) -> None:
        """Publish this process's in-flight counts and latencies (fields `model|process`
        of two hashes); read everyone else's, from processes seen within `_ALIVE_S`."""
        flights, latency, alive = (self._link.key(k) for k in ("inflight", "latency", "alive"))
        with self._lock:  # request threads change it meanwhile
            mine_n = dict(self._in_flight)
        mine_s = dict(self._latency)
        pipe = client.pipeline(transaction=False)
        pipe.time()
        pipe.hgetall(flights)
        pipe.hgetall(latency)
        pipe.hgetall(alive)
        sec, old_n, old_s, seen = pipe.execute()
        now = float(sec[0])
        pipe = client.pipeline(transaction=False)
        pipe.hset(alive, self._me, repr(now))
        for key, old, mine in ((flights, old_n, mine_n), (latency, old_s, mine_s)):
            stale = [f for f in old if f.endswith(f"|{self._me}") and _model(f) not in mine]
            if stale:
                pipe.hdel(key, *stale)
            if mine:
                pipe.hset(key, mapping={f"{m}|{self._me}": repr(v) for m, v in mine.items()})
        dead = [p for p, t in seen.items() if p != self._me and now - float(t) > 60 * _ALIVE_S]
        if dead:
            pipe.hdel(alive, *dead)
        pipe.execute()

        def live(field: str) -> bool:
            proc = field.rpartition("|")[2]
            return proc != self._me and now - float(seen.get(proc, 0)) <= _ALIVE_S

        others_n: dict[str, int] = {}
        for field, n in old_n.items():
            if live(field):
                others_n[_model(field)] = others_n.get(_model(field), 0) + int(float(n))
        others_s: dict[str, list[float]] = {}
        for field, v in old_s.items():
            if live(field):
                others_s.setdefault(_model(field), []).append(float(v))
        self._others_in_flight = others_n
        self._others_latency = others_s


def _model(field: str) -> str:
    return field.rpartition("|")[0]


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


class RedisUsageStore:
    """The spend log in Redis. `record` is queued; reads ask Redis (the slow client)."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link

    def record(self, rec: UsageRecord) -> None:
        day = _day(rec.ts)
        row = json.dumps(
            [
                rec.ts,
                rec.model,
                rec.provider,
                rec.rule,
                rec.input_tokens,
                rec.output_tokens,
                rec.cost_usd,
                rec.config_sha,
            ]
        )
        k = self._link.key
        keys = (k("seen", uuid.uuid4().hex), k("usage", day), k("spend", day), k("usage", "days"))
        args = (row, day, repr(rec.cost_usd), rec.model, rec.rule or "")
        self._link.submit(Op("usage_record", keys, args))

    def spent(self, scope: str, name: str | None, period: str, now: float) -> float:
        start, end = period_bounds(period, now)
        days = []
        t = start
        while t < end and t <= now:
            days.append(_day(t))
            t += 86400.0
        field = "g" if scope == "global" else f"{scope[0]}:{name}"
        client = self._link.slow
        pipe = client.pipeline(transaction=False)
        for d in days:
            pipe.hget(self._link.key("spend", d), field)
        return sum(float(v) for v in pipe.execute() if v is not None)

    def rows(
        self, by: tuple[str, ...] = ("day", "model", "rule"), since: float | None = None
    ) -> list[UsageRow]:
        client = self._link.slow
        days = sorted(client.smembers(self._link.key("usage", "days")))
        if since is not None:
            days = [d for d in days if d >= _day(since)]
        pipe = client.pipeline(transaction=False)
        for d in days:
            pipe.lrange(self._link.key("usage", d), 0, -1)
        acc = MemoryUsageStore()
        for rows in pipe.execute():
            for raw in rows:
                ts, model, provider, rule, tin, tout, cost, sha = json.loads(raw)
                acc.record(UsageRecord(ts, model, provider, rule, tin, tout, cost, sha))
        return acc.rows(by, since)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<RedisUsageStore {self._link.url}>"


class TeeUsageStore:
    """Writes to both stores; reads from Redis, or from the local store (with a
    warning for reports) when Redis does not answer."""

    def __init__(self, local: UsageStore, shared: RedisUsageStore) -> None:
        self.local = local
        self.shared = shared
        self._errors = shared._link._errors

    def record(self, rec: UsageRecord) -> None:
        self.local.record(rec)
        self.shared.record(rec)

    def spent(self, scope: str, name: str | None, period: str, now: float) -> float:
        if self.shared._link.up:
            try:
                return self.shared.spent(scope, name, period, now)
            except self._errors:
                pass
        return self.local.spent(scope, name, period, now)

    def rows(
        self, by: tuple[str, ...] = ("day", "model", "rule"), since: float | None = None
    ) -> list[UsageRow]:
        try:
            if self.shared._link.up:
                return self.shared.rows(by, since)
        except self._errors:
            pass
        log.warning(
            "shared state: Redis at %s unreachable; usage from %r, this process's only",
            self.shared._link.url,
            self.local,
        )
        return self.local.rows(by, since)

    def close(self) -> None:
        self.local.close()

    def __repr__(self) -> str:
        return f"{self.shared._link.url} (a copy in {self.local!r})"


class RedisBackend:
    """The stores of a `LiveState` when `settings.state` names a Redis."""

    shared = True

    def __init__(self, settings: StateSettings, *, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.link = RedisLink(settings, clock=clock)
        self._breakers: list[RedisBreaker] = []
        self._tracker: RedisBudgetTracker | None = None
        self.link.add_syncer(self._sync_breakers)
        self.link.add_syncer(self._sync_budgets)

    def _sync_breakers(self, client: Any) -> None:
        sync_breakers(client, list(self._breakers))

    def usage_store(self, path: str) -> UsageStore:
        mode = self.settings.spend_log
        local = open_store(":memory:" if mode == "redis" else path)
        if mode == "sqlite":
            return local
        return TeeUsageStore(local, RedisUsageStore(self.link))

    def budgets(self, budgets: Iterable[Budget], store: UsageStore, clock: Clock) -> BudgetTracker:
        # Only the newest tracker is synced: the one the state serves from.
        tracker = RedisBudgetTracker(budgets, store, self.link, clock=clock, sync=False)
        self._tracker = tracker
        return tracker

    def _sync_budgets(self, client: Any) -> None:
        if self._tracker is not None:
            self._tracker.sync(client)

    def rate_limiter(
        self, limits: Mapping[str, Limit], clock: Clock, sleep: Callable[[float], None]
    ) -> RateLimiter:
        return RedisRateLimiter(self.link, limits, clock=clock, sleep=sleep)

    def breaker(self, model: str, policy: BreakerPolicy, clock: Clock, wall: Clock) -> RedisBreaker:
        b = RedisBreaker(self.link, model, policy, clock=clock, wall=wall)
        self._breakers = [*(x for x in self._breakers if x.model != model), b]
        return b

    def counters(self) -> MemoryCounters:
        return RedisCounters(self.link)

    def admit(
        self,
        limiter: RateLimiter,
        tracker: BudgetTracker,
        model: str,
        rule: str | None,
        tokens: int,
        estimated_cost: float,
    ) -> Reservation | Rejection | None:
        """Rate limit and budget in one round trip, when both apply to this try.

        A `Reservation` (both taken), the `Rejection` for a refusal, or None: not handled
        here (one of them does not apply, or Redis is away): go step by step.
        """
        if not isinstance(limiter, RedisRateLimiter) or not isinstance(tracker, RedisBudgetTracker):
            return None
        plan = limiter.plan(model, tokens)
        if plan is None or tracker.empty:
            return None
        got = tracker.reserve_with_rate(model, rule, estimated_cost, *plan)
        if got is DOWN:
            return None
        if isinstance(got, tuple) and got[0] == "rate":
            text = limiter.took(model, got[1], got[2], got[3])[1]
            return Rejection(RejectionKind.RATE_LIMIT, text)
        res, r, k = got
        limiter.took(model, 0.0, r, k)
        if res is None:
            text = tracker.reason(model, rule) or "budget spent"
            return Rejection(RejectionKind.BUDGET, text)
        return res  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return {**self.link.status(), "spend_log": self.settings.spend_log}

    def close(self) -> None:
        self.link.close()


__all__ = ["RedisBackend", "RedisCounters", "RedisUsageStore", "TeeUsageStore"]
