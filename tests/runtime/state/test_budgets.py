"""Budgets: reasons, reserve/commit under concurrency, periods, reloads, restarts."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from router.config.model import Budget
from router.runtime.state.budgets import BudgetTracker, usd
from router.runtime.state.usage import MemoryUsageStore, SQLiteUsageStore, UsageRecord
from tests.threads import run_threads


def ts(y: int, m: int, d: int, h: int = 12) -> float:
    return datetime(y, m, d, h, tzinfo=timezone.utc).timestamp()


class Wall:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_usd_format() -> None:
    assert usd(1) == "$1.00"
    assert usd(1.024) == "$1.0240"
    assert usd(0.0015) == "$0.0015"
    assert usd(1234.5) == "$1,234.50"
    assert usd(0) == "$0.00"


def test_no_budgets_means_no_reason() -> None:
    t = BudgetTracker((), MemoryUsageStore())
    assert t.empty
    assert t.reason("gpt", "chat") is None
    res = t.reserve("gpt", "chat", 5.0)
    assert res is not None
    t.commit(res, 5.0)


def test_reason_names_budget_and_spend() -> None:
    wall = Wall(ts(2024, 3, 10))
    t = BudgetTracker((Budget("model", "gpt-4o", daily=1.0),), MemoryUsageStore(), clock=wall)
    assert t.reason("gpt-4o", "chat") is None
    t.add("gpt-4o", "chat", 1.02)
    assert t.reason("gpt-4o", "chat") == "budget spent: model gpt-4o daily $1.00 (spent $1.02)"
    assert t.reason("other", "chat") is None
    assert t.reserve("gpt-4o", "chat", 0.01) is None


def test_global_and_rule_scopes() -> None:
    wall = Wall(ts(2024, 3, 10))
    budgets = (Budget("global", None, monthly=10.0), Budget("rule", "code", daily=2.0))
    t = BudgetTracker(budgets, MemoryUsageStore(), clock=wall)
    t.add("a", "code", 2.0)
    assert t.reason("b", "code") == "budget spent: rule code daily $2.00 (spent $2.00)"
    assert t.reason("a", "chat") is None
    t.add("a", "chat", 8.0)
    assert t.reason("z", "chat") == "budget spent: global monthly $10.00 (spent $10.00)"
    assert t.reason("z", None) is not None


def test_reserve_holds_room_until_commit_or_release() -> None:
    wall = Wall(ts(2024, 3, 10))
    t = BudgetTracker((Budget("global", None, daily=1.0),), MemoryUsageStore(), clock=wall)
    a = t.reserve("m", "r", 0.6)
    b = t.reserve("m", "r", 0.6)  # room was left (0.6 < 1.0): granted, may overshoot once
    assert a is not None and b is not None
    assert t.reserve("m", "r", 0.01) is None  # 1.2 held: spent
    t.release(b)
    c = t.reserve("m", "r", 0.3)
    assert c is not None
    t.commit(a, 0.5)  # cheaper than estimated
    t.commit(c, 0.3)
    assert t.status()[0]["spent_usd"] == pytest.approx(0.8)
    assert t.status()[0]["reserved_usd"] == 0.0
    assert t.reason("m", "r") is None


def test_totals_are_seeded_from_the_store_across_restart(tmp_path: Path) -> None:
    now = ts(2024, 3, 10)
    path = tmp_path / "usage.db"
    store = SQLiteUsageStore(path)
    store.record(UsageRecord(now - 60, "gpt", "openai", "chat", 1, 1, 0.75, ""))
    store.record(UsageRecord(ts(2024, 3, 9), "gpt", "openai", "chat", 1, 1, 5.0, ""))
    store.close()
    store = SQLiteUsageStore(path)
    t = BudgetTracker((Budget("model", "gpt", daily=1.0, monthly=6.0),), store, clock=Wall(now))
    spent = {s["period"]: s["spent_usd"] for s in t.status()}
    assert spent == {"day": 0.75, "month": 5.75}
    t.add("gpt", "chat", 0.3)
    assert t.reason("gpt", "chat") == "budget spent: model gpt daily $1.00 (spent $1.05)"
    store.close()


def test_new_day_starts_a_new_daily_total() -> None:
    wall = Wall(ts(2024, 3, 10, 23))
    t = BudgetTracker(
        (Budget("global", None, daily=1.0, monthly=100.0),), MemoryUsageStore(), clock=wall
    )
    t.add("m", "r", 1.5)
    assert t.reason("m", "r") is not None
    wall.t = ts(2024, 3, 11, 0) + 1
    assert t.reason("m", "r") is None
    by_period = {s["period"]: s["spent_usd"] for s in t.status()}
    assert by_period == {"day": 0.0, "month": 1.5}
    assert t.reserve("m", "r", 0.1) is not None


def test_update_budgets_keeps_totals_and_applies_new_limits() -> None:
    wall = Wall(ts(2024, 3, 10))
    store = MemoryUsageStore()
    t = BudgetTracker((Budget("model", "gpt", daily=1.0),), store, clock=wall)
    t.add("gpt", "chat", 0.8)
    t.update_budgets((Budget("model", "gpt", daily=0.5), Budget("rule", "chat", daily=10.0)))
    assert t.reason("gpt", "chat") == "budget spent: model gpt daily $0.50 (spent $0.80)"
    t.update_budgets(())
    assert t.empty
    assert t.reason("gpt", "chat") is None


def test_commit_counts_against_budgets_added_while_in_flight() -> None:
    wall = Wall(ts(2024, 3, 10))
    t = BudgetTracker((Budget("global", None, daily=100.0),), MemoryUsageStore(), clock=wall)
    res = t.reserve("gpt", "chat", 1.0)
    assert res is not None
    t.update_budgets((Budget("global", None, daily=100.0), Budget("model", "gpt", daily=1.0)))
    t.commit(res, 1.0)
    assert t.reason("gpt", "chat") is not None


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_sixteen_threads_overshoot_by_at_most_one_request(tmp_path: Path, backend: str) -> None:
    limit = 2.0
    store = MemoryUsageStore() if backend == "memory" else SQLiteUsageStore(tmp_path / "u.db")
    t = BudgetTracker((Budget("global", None, daily=limit),), store)
    max_cost = 0.05
    served = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        while True:
            estimate = max_cost  # the estimate is an upper bound: all of max_tokens
            res = t.reserve("gpt", "chat", estimate)
            if res is None:
                return
            time.sleep(rng.random() / 1000)  # the call
            actual = estimate * rng.uniform(0.2, 1.0)
            t.commit(res, actual)
            store.record(UsageRecord(time.time(), "gpt", "p", "chat", 1, 1, actual, ""))
            t.forget(res)  # the spend is in the file: the shared hold may go
            with lock:
                served.append(actual)

    run_threads(worker, [(i,) for i in range(16)])
    total = sum(served)
    assert limit <= total <= limit + max_cost
    assert store.spent("global", None, "day", time.time()) == pytest.approx(total)
    assert t.reason("gpt", "chat") is not None
    assert t.status()[0]["reserved_usd"] == 0.0
    store.close()


def test_status_lists_every_budget() -> None:
    wall = Wall(ts(2024, 3, 10))
    t = BudgetTracker(
        (Budget("global", None, daily=1.0, monthly=20.0), Budget("model", "gpt", daily=0.5)),
        MemoryUsageStore(),
        clock=wall,
    )
    t.add("gpt", "chat", 0.5)
    rows = {(s["scope"], s["name"], s["period"]): s for s in t.status()}
    assert set(rows) == {
        ("global", None, "day"),
        ("global", None, "month"),
        ("model", "gpt", "day"),
    }
    gpt = rows[("model", "gpt", "day")]
    assert gpt["exhausted"] is True and gpt["remaining_usd"] == 0.0
    assert rows[("global", None, "day")]["resets_at"] == "2024-03-11T00:00:00Z"
