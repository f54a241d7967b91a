"""One suite, every implementation: the in-process stores and the Redis ones (on a real
redis-server) must behave the same to the `LiveState` that uses them.

Redis writes that leave the request path are queued; `settle()` sends them and reads
the fleet's views, as the background thread does every `sync_ms`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from router.config.model import BreakerPolicy, Budget, StateSettings
from router.runtime.state.ratelimit import Limit
from router.runtime.state.stores import Backend, LocalBackend
from router.runtime.state.usage import MemoryUsageStore, UsageRecord, UsageStore
from router.secrets import Secret
from tests.runtime.state.redis_server import RedisServer

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@dataclass
class Harness:
    backend: Backend
    settle: Callable[[], None]


@pytest.fixture(params=["memory", "redis"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        yield Harness(LocalBackend(), lambda: None)
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    from router.runtime.state.redis_stores import RedisBackend

    backend = RedisBackend(StateSettings(url=Secret(server.url)))
    assert backend.link.up
    yield Harness(backend, lambda: (backend.link.sync_now(), None)[1])
    backend.close()


class Wall:
    def __init__(self) -> None:
        self.t = NOW + 3600

    def __call__(self) -> float:
        return self.t


# -- SpendStore ----------------------------------------------------------------------


def test_budget_reserves_while_room_is_left_then_refuses(harness: Harness) -> None:
    tracker = harness.backend.budgets(
        [Budget("global", None, daily=1.0)], MemoryUsageStore(), Wall()
    )
    held = [tracker.reserve("m", "r", 0.4) for _ in range(3)]
    assert all(r is not None for r in held)  # 0, 0.4, 0.8 < 1: each was granted
    assert tracker.reserve("m", "r", 0.4) is None  # 1.2 >= 1
    assert tracker.reason("m", "r") is not None


def test_budget_commit_counts_the_real_cost_and_frees_the_estimate(harness: Harness) -> None:
    wall = Wall()
    tracker = harness.backend.budgets([Budget("model", "m", daily=1.0)], MemoryUsageStore(), wall)
    res = tracker.reserve("m", None, 0.9)
    assert res is not None
    tracker.commit(res, 0.25)
    harness.settle()
    (status,) = tracker.status()
    assert status["spent_usd"] == 0.25 and status["reserved_usd"] == 0.0
    assert tracker.reserve("m", None, 0.5) is not None  # 0.25 < 1: room again
    assert tracker.reason("other", None) is None  # a model budget binds that model only


def test_budget_release_frees_the_estimate_without_spend(harness: Harness) -> None:
    tracker = harness.backend.budgets([Budget("rule", "r", daily=1.0)], MemoryUsageStore(), Wall())
    res = tracker.reserve("m", "r", 5.0)
    assert res is not None
    assert tracker.reserve("m", "r", 0.1) is None
    tracker.release(res)
    harness.settle()
    assert tracker.reserve("m", "r", 0.1) is not None
    assert tracker.status()[0]["spent_usd"] == 0.0


def test_budget_spent_over_the_limit_is_a_reason_with_the_figures(harness: Harness) -> None:
    tracker = harness.backend.budgets(
        [Budget("global", None, daily=2.0)], MemoryUsageStore(), Wall()
    )
    tracker.add("m", None, 2.5)
    harness.settle()
    why = tracker.reason("m", None)
    assert why == "budget spent: global daily $2.00 (spent $2.50)"
    assert tracker.reserve("m", None, 0.0) is None


# -- LimitStore ----------------------------------------------------------------------


def test_rpm_bucket_takes_a_minutes_worth_then_refuses(harness: Harness) -> None:
    limiter = harness.backend.rate_limiter({"m": Limit(rpm=2)}, time.monotonic, time.sleep)
    assert limiter.try_acquire("m") is None
    assert limiter.try_acquire("m") is None
    why = limiter.try_acquire("m")
    assert why is not None and why.startswith("rate limit: 2 rpm reached (next slot in ")
    # The routing-time check (no I/O) says so too, so explain() shows it.
    assert (limiter.check("m") or "").startswith("rate limit: 2 rpm reached")
    assert limiter.try_acquire("unlimited") is None and limiter.check("unlimited") is None


def test_rate_release_gives_the_request_back(harness: Harness) -> None:
    limiter = harness.backend.rate_limiter({"m": Limit(rpm=1)}, time.monotonic, time.sleep)
    assert limiter.try_acquire("m") is None
    assert limiter.try_acquire("m") is not None
    limiter.release("m")
    harness.settle()
    assert limiter.try_acquire("m") is None


def test_tpm_bucket_counts_tokens_and_settles_them(harness: Harness) -> None:
    limiter = harness.backend.rate_limiter({"m": Limit(tpm=1000)}, time.monotonic, time.sleep)
    assert limiter.try_acquire("m", 900) is None
    why = limiter.try_acquire("m", 500)
    assert why is not None and "1000 tpm reached" in why
    limiter.settle("m", 900, 100)  # the call used 100 of the 900 it held
    harness.settle()
    assert limiter.try_acquire("m", 500) is None


def test_rate_wait_gives_up_when_the_deadline_is_too_near(harness: Harness) -> None:
    limiter = harness.backend.rate_limiter({"m": Limit(rpm=1)}, time.monotonic, time.sleep)
    assert limiter.acquire_wait("m", 0, time.monotonic() + 1) is True
    # The next slot is ~60 s away: no sleeping for nothing.
    assert limiter.acquire_wait("m", 0, time.monotonic() + 1) is False


# -- BreakerStore ----------------------------------------------------------------------

FAST = BreakerPolicy(failures=2, window=60, cooldown=0.3)


def _wait_half_open(breaker: object) -> None:
    end = time.monotonic() + 5
    while time.monotonic() < end and breaker.state().state == "open":  # type: ignore[attr-defined]
        time.sleep(0.05)


def test_breaker_opens_after_failures_and_says_why(harness: Harness) -> None:
    b = harness.backend.breaker("m", FAST, time.monotonic, time.time)
    b.record_failure()
    harness.settle()
    assert b.unavailable_reason() is None and b.closed
    b.record_failure()
    harness.settle()
    why = b.unavailable_reason()
    assert why is not None and why.startswith("circuit open until ")
    assert "2 failures in 60s" in why
    assert b.state().state == "open" and not b.closed


def test_breaker_half_open_lets_one_probe_and_closes_on_success(harness: Harness) -> None:
    b = harness.backend.breaker("m", FAST, time.monotonic, time.time)
    b.record_failure()
    b.record_failure()
    harness.settle()
    _wait_half_open(b)
    assert b.acquire() is None  # the probe
    second = b.acquire()
    assert second is not None and "probe in flight" in second
    b.record_success()
    harness.settle()
    assert b.closed and b.acquire() is None and b.state().state == "closed"


def test_breaker_probe_given_back_may_be_taken_again(harness: Harness) -> None:
    b = harness.backend.breaker("m", FAST, time.monotonic, time.time)
    b.record_failure()
    b.record_failure()
    harness.settle()
    _wait_half_open(b)
    assert b.acquire() is None
    b.release()
    harness.settle()
    assert b.acquire() is None


def test_breaker_failed_probe_opens_again(harness: Harness) -> None:
    b = harness.backend.breaker("m", FAST, time.monotonic, time.time)
    b.record_failure()
    b.record_failure()
    harness.settle()
    _wait_half_open(b)
    assert b.acquire() is None
    b.record_failure()
    harness.settle()
    why = b.unavailable_reason()
    assert why is not None and "probe failed" in why


# -- CounterStore ----------------------------------------------------------------------


def test_round_robin_positions_count_up_per_key(harness: Harness) -> None:
    c = harness.backend.counters()
    assert [c.next_index("rule-a") for _ in range(3)] == [0, 1, 2]
    assert c.next_index("rule-b") == 0


def test_latency_is_a_moving_average(harness: Harness) -> None:
    c = harness.backend.counters()
    assert c.latency("m") is None
    c.record_latency("m", 1.0)
    c.record_latency("m", 2.0)
    harness.settle()
    assert c.latency("m") == pytest.approx(1.2)
    c.forget(["other"])
    assert harness.backend.shared or c.latency("m") is None


def test_in_flight_counts_enter_and_leave(harness: Harness) -> None:
    c = harness.backend.counters()
    c.enter("m")
    c.enter("m")
    harness.settle()
    assert c.in_flight("m") == 2
    c.leave("m")
    c.leave("m")
    harness.settle()
    assert c.in_flight("m") == 0


# -- UsageStore (the spend log) ----------------------------------------------------------


def test_spend_log_sums_by_scope_and_groups_rows(harness: Harness, tmp_path) -> None:
    store: UsageStore = harness.backend.usage_store(str(tmp_path / "usage.sqlite"))
    day1, day2 = NOW + 60, NOW + 86400 + 60
    store.record(UsageRecord(day1, "m1", "p", "r1", 10, 5, 0.5, "sha"))
    store.record(UsageRecord(day1, "m2", "p", None, 1, 1, 0.25, "sha"))
    store.record(UsageRecord(day2, "m1", "p", "r1", 2, 2, 1.0, "sha"))
    harness.settle()
    assert store.spent("global", None, "day", day1) == pytest.approx(0.75)
    assert store.spent("model", "m1", "month", day2) == pytest.approx(1.5)
    assert store.spent("rule", "r1", "day", day2) == pytest.approx(1.0)
    rows = store.rows(("day", "model"))
    assert [(r.key, r.requests, r.cost_usd) for r in rows] == [
        (("2026-01-01", "m1"), 1, 0.5),
        (("2026-01-01", "m2"), 1, 0.25),
        (("2026-01-02", "m1"), 1, 1.0),
    ]
    assert [r.key for r in store.rows(("rule",), since=day2)] == [("r1",)]
    store.close()
