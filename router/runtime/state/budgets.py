"""Budgets in USD per day and per month: for the whole config, per rule, per model.

Running totals live in memory, seeded from the usage store when a budget is first
seen, so no request waits on SQLite. Concurrency is handled by reserve/commit:

    res = tracker.reserve(model, rule, estimated_cost)   # None: a budget is spent
    ... call the model ...
    tracker.commit(res, actual_cost)                     # or tracker.release(res)
    store.record(...); tracker.forget(res)               # the spend is in the file

With a SQLite spend file, `reserve` also holds the estimate in the file, in one
`BEGIN IMMEDIATE` transaction that reads every process's spend and holds, so
processes sharing the file share the budgets; `forget` drops the hold once the
spend is recorded (a hold of a process that died expires after RESERVATION_TTL).

A reservation is granted while a budget has any room left (spent + reserved < limit),
and it holds its estimate until committed. So however many threads race, the total can
pass the limit by at most one request's cost (when the estimate is an upper bound,
which it is: the estimate assumes all of `max_tokens` comes back).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from router.config.model import Budget
from router.runtime.state.usage import UsageStore, period_bounds
from router.types import BudgetStatus

log = logging.getLogger("router.budgets")

Clock = Callable[[], float]
_Key = tuple[str, str | None, str]  # scope, name, period


def usd(value: float) -> str:
    """$1.00 for money people set; more digits for the fractions of a cent of one call."""
    if value == 0 or abs(value) >= 10 or abs(round(value, 2) - value) < 1e-9:
        return f"${value:,.2f}"
    return f"${value:.4f}"


def _label(scope: str, name: str | None, period: str, limit: float) -> str:
    who = "global" if scope == "global" else f"{scope} {name}"
    return f"{who} {'daily' if period == 'day' else 'monthly'} {usd(limit)}"


class _Counter:
    """One budget in one period. Fields change under the tracker's lock only."""

    __slots__ = ("end", "label", "limit", "name", "period", "reserved", "scope", "spent", "start")

    def __init__(self, scope: str, name: str | None, period: str, limit: float) -> None:
        self.scope = scope
        self.name = name
        self.period = period
        self.limit = limit
        self.start = 0.0
        self.end = 0.0  # 0 forces a first roll, which seeds the totals
        self.spent = 0.0
        self.reserved = 0.0
        self.label = _label(scope, name, period, limit)

    def over(self) -> bool:
        return self.spent + self.reserved >= self.limit


@dataclass(frozen=True, slots=True)
class Reservation:
    """An estimate held against the budgets of one (model, rule) until committed."""

    model: str
    rule: str | None
    amount: float
    counters: tuple[_Counter, ...]
    shared_id: int | None = None  # its row in a spend file other processes share


class BudgetTracker:
    def __init__(
        self,
        budgets: Iterable[Budget],
        store: UsageStore,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._counters: dict[_Key, _Counter] = {}
        self._global: tuple[_Counter, ...] = ()
        self._by_model: dict[str, tuple[_Counter, ...]] = {}
        self._by_rule: dict[str, tuple[_Counter, ...]] = {}
        self.update_budgets(budgets)

    # -- the hot path (no lock, no I/O) -------------------------------------------

    def reason(self, model: str, rule: str | None) -> str | None:
        """Why `model` may not spend more under `rule`, or None."""
        if not self._counters:
            return None
        now = self._clock()
        by_rule = self._by_rule.get(rule, ()) if rule is not None else ()
        for group in (self._global, self._by_model.get(model, ()), by_rule):
            for c in group:
                if now >= c.end:
                    self._roll_all(now)
                if c.spent + c.reserved >= c.limit:
                    return f"budget spent: {c.label} (spent {usd(c.spent)})"
        return None

    # -- reserve / commit ---------------------------------------------------------

    def reserve(self, model: str, rule: str | None, estimated_cost: float) -> Reservation | None:
        """Hold `estimated_cost` against every budget that applies; None if one is spent.

        With a spend file other processes may share (SQLite), the hold is also made
        there, in one transaction that sees every process's spend and holds: the
        budgets are shared, not multiplied by the number of processes.
        """
        amount = max(float(estimated_cost), 0.0)
        if not self._counters:
            return Reservation(model, rule, amount, ())
        with self._lock:
            now = self._clock()
            counters = tuple(self._applicable(model, rule))
            for c in counters:
                if now >= c.end:
                    self._roll(c, now)
                if c.over():
                    return None
            for c in counters:
                c.reserved += amount
        shared_id = None
        if counters and getattr(self._store, "shares_budgets", False):
            checks = [(c.scope, c.name, c.period, c.limit) for c in counters]
            try:
                shared_id, spent = self._store.reserve_budget(  # type: ignore[attr-defined]
                    checks, model, rule, amount, now
                )
            except BaseException:
                self._release(counters, amount)
                raise
            with self._lock:
                for c in counters:  # what every process spent, as the file says
                    c.spent = spent.get((c.scope, c.name, c.period), c.spent)
            if shared_id is None:
                self._release(counters, amount)
                return None
        return Reservation(model, rule, amount, counters, shared_id)

    def forget(self, reservation: Reservation) -> None:
        """Drop the shared hold once its spend is in the file (or nothing was spent)."""
        if reservation.shared_id is None:
            return
        try:
            self._store.unreserve(reservation.shared_id)  # type: ignore[attr-defined]
        except Exception as exc:  # the hold expires on its own; the request goes on
            log.error(
                "budget hold %d in %s not dropped: %s", reservation.shared_id, self._store, exc
            )

    def _release(self, counters: tuple[_Counter, ...], amount: float) -> None:
        with self._lock:
            for c in counters:
                c.reserved = max(c.reserved - amount, 0.0)

    def commit(self, reservation: Reservation, actual_cost: float) -> None:
        """The call is done: free the estimate, count what it really cost."""
        cost = max(float(actual_cost), 0.0)
        if not self._counters and not reservation.counters:
            return
        with self._lock:
            self._unreserve(reservation)
            now = self._clock()
            # The budgets in force now, not those of the reservation: a reload may have
            # added one while the call ran, and it must see this spend too.
            for c in self._applicable(reservation.model, reservation.rule):
                if now >= c.end:
                    self._roll(c, now)
                c.spent += cost

    def release(self, reservation: Reservation) -> None:
        """The call failed or never went out: nothing was spent."""
        if not reservation.counters:
            return
        with self._lock:
            self._unreserve(reservation)
        self.forget(reservation)

    def add(self, model: str, rule: str | None, cost: float) -> None:
        """Count spend that had no reservation."""
        self.commit(Reservation(model, rule, 0.0, ()), cost)

    # -- config and views ---------------------------------------------------------

    def update_budgets(self, budgets: Iterable[Budget]) -> None:
        """Take a reloaded config's budgets; totals of budgets that stay are kept."""
        wanted: dict[_Key, float] = {}
        for b in budgets:
            name = None if b.scope == "global" else b.name
            if b.daily is not None:
                wanted[(b.scope, name, "day")] = float(b.daily)
            if b.monthly is not None:
                wanted[(b.scope, name, "month")] = float(b.monthly)
        # New budgets are seeded from the store before the lock is taken: no request
        # sees them until the swap below, and reserve/commit must not wait on SQLite.
        now = self._clock()
        fresh: dict[_Key, _Counter] = {}
        for key, limit in wanted.items():
            if key not in self._counters:
                fresh[key] = _Counter(key[0], key[1], key[2], limit)
                self._roll(fresh[key], now)
        with self._lock:
            counters: dict[_Key, _Counter] = {}
            for key, limit in wanted.items():
                c = self._counters.get(key) or fresh.get(key)
                if c is None:  # a budget removed meanwhile by another update
                    c = _Counter(key[0], key[1], key[2], limit)
                    self._roll(c, now)
                elif key in self._counters:
                    c.limit = limit
                    c.label = _label(key[0], key[1], key[2], limit)
                counters[key] = c
            by_model: dict[str, list[_Counter]] = {}
            by_rule: dict[str, list[_Counter]] = {}
            glob: list[_Counter] = []
            for c in counters.values():
                if c.scope == "global":
                    glob.append(c)
                elif c.scope == "model" and c.name:
                    by_model.setdefault(c.name, []).append(c)
                elif c.scope == "rule" and c.name:
                    by_rule.setdefault(c.name, []).append(c)
            # Swap whole references: lock-free readers see the old or the new index.
            self._global = tuple(glob)
            self._by_model = {k: tuple(v) for k, v in by_model.items()}
            self._by_rule = {k: tuple(v) for k, v in by_rule.items()}
            self._counters = counters

    def status(self) -> tuple[BudgetStatus, ...]:
        """Every budget with its limit, spend, reservations and what is left."""
        with self._lock:
            now = self._clock()
            out: list[BudgetStatus] = []
            for c in self._counters.values():
                if now >= c.end:
                    self._roll(c, now)
                out.append(
                    BudgetStatus(
                        scope=c.scope,
                        name=c.name,
                        period=c.period,
                        limit_usd=c.limit,
                        spent_usd=round(c.spent, 6),
                        reserved_usd=round(c.reserved, 6),
                        remaining_usd=round(max(c.limit - c.spent, 0.0), 6),
                        exhausted=c.over(),
                        resets_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.end)),
                    )
                )
            return tuple(out)

    @property
    def empty(self) -> bool:
        return not self._counters

    # -- internals ----------------------------------------------------------------

    def _applicable(self, model: str, rule: str | None) -> Iterator[_Counter]:
        yield from self._global
        yield from self._by_model.get(model, ())
        if rule is not None:
            yield from self._by_rule.get(rule, ())

    def _roll_all(self, now: float) -> None:
        with self._lock:
            for c in self._counters.values():
                if now >= c.end:
                    self._roll(c, now)

    def _roll(self, c: _Counter, now: float) -> None:
        """Start the period holding `now` (lock held, or `c` not yet shared): seed it
        from the store.

        This is the one read of the store, once per budget per period; another process
        writing to the same file is seen here and on reload.
        """
        start, end = period_bounds(c.period, now)
        c.spent = self._store.spent(c.scope, c.name, c.period, now)
        c.start, c.end = start, end

    def _unreserve(self, reservation: Reservation) -> None:
        for c in reservation.counters:
            c.reserved = max(c.reserved - reservation.amount, 0.0)


__all__ = ["BudgetTracker", "Reservation", "usd"]
