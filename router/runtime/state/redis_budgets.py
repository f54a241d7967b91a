"""Budgets shared by every router on one Redis: `RedisBudgetTracker`.

It is a `BudgetTracker` whose counters mirror the fleet's. `reserve()` asks Redis (one
script, atomic across processes) and keeps the estimate locally too; `commit()` and
`release()` count locally at once and queue the Redis write (off the request path).
Every sync the mirrors take the fleet's totals, so `reason()` (no I/O) sees what the
other processes spent.

A reservation in Redis expires after `reservation_ttl` seconds: the estimate of a
process that died mid-call stops holding the budget. While Redis is away, reservations
are made on the local mirror and commits wait in the queue; they are written, once
each (a marker per reservation), when it is back.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from router.config.model import Budget
from router.runtime.state.budgets import BudgetTracker, Reservation, _Counter
from router.runtime.state.redis_link import DOWN, Op, RedisLink
from router.runtime.state.usage import UsageStore, period_bounds

_KEEP = 2 * 86400  # seconds a counter outlives its period: reports of yesterday still see it


@dataclass(frozen=True, slots=True)
class SharedReservation(Reservation):
    rid: str = ""
    shared: bool = False  # held in Redis (False: made locally while Redis was away)


class RedisBudgetTracker(BudgetTracker):
    def __init__(
        self,
        budgets: Iterable[Budget],
        store: UsageStore,
        link: RedisLink,
        clock: Callable[[], float] = time.time,
        reservation_ttl: float = 600.0,
        sync: bool = True,
    ) -> None:
        self._link = link
        self.reservation_ttl = reservation_ttl
        self._sync_lock = threading.Lock()
        super().__init__(budgets, store, clock=clock)
        if sync:  # else the owner calls `sync` (a backend syncs only its newest tracker)
            link.add_syncer(self.sync)

    def _key(self, c: _Counter) -> str:
        return self._link.key("budget", c.scope, c.name or "", c.period, int(c.start))

    def _ttl(self, c: _Counter, now: float) -> int:
        return max(int(c.end - now) + _KEEP, 60)

    def reserve(self, model: str, rule: str | None, estimated_cost: float) -> Reservation | None:
        amount = max(float(estimated_cost), 0.0)
        if self.empty or not self._link.up:
            return self._local(model, rule, amount)
        counters, keys, args = self._plan(model, rule, amount)
        if not counters:
            return SharedReservation(model, rule, amount, (), rid=uuid.uuid4().hex, shared=False)
        got = self._link.call("budget_reserve", keys, args)
        if got is DOWN:
            return self._local(model, rule, amount)
        return self._granted(model, rule, amount, counters, args[0], int(got[0]) == 1, got[1:])

    def reserve_with_rate(
        self,
        model: str,
        rule: str | None,
        estimated_cost: float,
        bucket: str,
        rate: tuple[int, int, int],
    ) -> Any:
        """Take the rate limit (`bucket`: rpm, tpm, tokens) and reserve in one round trip.

        A `Reservation`, None (a budget is spent), ("rate", wait, rpm level, tpm level),
        or DOWN (Redis away: the caller goes step by step on local state).
        """
        amount = max(float(estimated_cost), 0.0)
        if not self._link.up:
            return DOWN
        counters, keys, args = self._plan(model, rule, amount)
        got = self._link.call("admit", [bucket, *keys], [*rate, *args])
        if got is DOWN:
            return DOWN
        verdict, wait, r, k = got[0], float(got[1]), float(got[2]), float(got[3])
        if verdict == "rate":
            return ("rate", wait, r, k)
        res = self._granted(model, rule, amount, counters, args[0], verdict == "ok", got[4:])
        return res, r, k

    def _plan(
        self, model: str, rule: str | None, amount: float
    ) -> tuple[tuple[_Counter, ...], list[str], list[Any]]:
        """The counters that apply, their keys, and the reserve script's arguments."""
        with self._lock:
            now = self._clock()
            counters = tuple(self._applicable(model, rule))
            for c in counters:
                if now >= c.end:
                    self._roll(c, now)
            keys = [self._key(c) for c in counters]
            pairs: list[Any] = []
            for c in counters:
                pairs += [repr(c.limit), repr(c.spent)]
        ttl = max((self._ttl(c, now) for c in counters), default=60)
        rid = uuid.uuid4().hex
        args = [rid, repr(amount), repr(now + self.reservation_ttl), repr(now), ttl, *pairs]
        return counters, keys, args

    def _granted(
        self,
        model: str,
        rule: str | None,
        amount: float,
        counters: tuple[_Counter, ...],
        rid: str,
        ok: bool,
        totals: list[Any],
    ) -> Reservation | None:
        with self._lock:
            for i, c in enumerate(counters):
                # Spend only grows within a period: Redis may not have this process's
                # queued commits yet, nor (after a restart) what it lost.
                c.spent = max(c.spent, float(totals[2 * i]))
            if not ok:
                return None
            for c in counters:
                c.reserved += amount
        return SharedReservation(model, rule, amount, counters, rid=rid, shared=bool(counters))

    def _local(self, model: str, rule: str | None, amount: float) -> Reservation | None:
        res = super().reserve(model, rule, amount)
        if res is None:
            return None
        return SharedReservation(
            res.model, res.rule, amount, res.counters, res.shared_id, rid=uuid.uuid4().hex
        )

    def commit(self, reservation: Reservation, actual_cost: float) -> None:
        super().commit(reservation, actual_cost)
        self._send(reservation, max(float(actual_cost), 0.0))

    def release(self, reservation: Reservation) -> None:
        super().release(reservation)
        if isinstance(reservation, SharedReservation) and reservation.shared:
            self._send(reservation, 0.0)

    def _send(self, reservation: Reservation, cost: float) -> None:
        if not self._counters and not reservation.counters:
            return
        rid = reservation.rid if isinstance(reservation, SharedReservation) else ""
        rid = rid or uuid.uuid4().hex
        with self._lock:
            now = self._clock()
            counters = list(self._applicable(reservation.model, reservation.rule))
            # The counters that hold the reservation, if a reload has dropped them since.
            counters += [c for c in reservation.counters if c not in counters]
            keys = [self._key(c) for c in counters]
            # What this process knew before this cost, for a counter Redis does not have.
            seeds = [repr(max(c.spent - cost, 0.0)) for c in counters]
            ttl = max((self._ttl(c, now) for c in counters), default=60)
        if keys:
            done = self._link.key("done", rid)
            self._link.submit(Op("budget_commit", (done, *keys), (rid, repr(cost), ttl, *seeds)))

    def _roll(self, c: _Counter, now: float) -> None:
        """A new period: the fleet's total if Redis answers, else the local store's."""
        super()._roll(c, now)
        key = self._key(c)
        fleet = self._link.command(lambda r: r.hget(key, "spent"))
        if fleet is not DOWN and fleet is not None:
            c.spent = float(fleet)

    def sync(self, client: Any) -> None:
        """Take the fleet's totals (the background thread, every sync)."""
        with self._sync_lock:
            counters = list(self._counters.values())
            if not counters:
                return
            now = self._clock()
            pipe = client.pipeline(transaction=False)
            keys = []
            for c in counters:
                if now < c.end:
                    keys.append((c, self._key(c)))
                    pipe.hget(keys[-1][1], "spent")
            values = pipe.execute()
            with self._lock:
                for (c, _), value in zip(keys, values, strict=True):
                    if value is not None and period_bounds(c.period, now)[0] == c.start:
                        c.spent = max(c.spent, float(value))


__all__ = ["RedisBudgetTracker", "SharedReservation"]
