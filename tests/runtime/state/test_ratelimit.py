"""Token buckets for rpm and tpm, sync and async waits, under threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from router.config.model import ModelConfig
from router.runtime.state.ratelimit import Limit, RateLimiter, TokenBucket, limits_of
from tests.threads import run_threads


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.slept.append(dt)
        self.t += dt

    async def asleep(self, dt: float) -> None:
        self.sleep(dt)


def limiter(**limits: Limit) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(limits, clock=clock, sleep=clock.sleep, asleep=clock.asleep), clock


def test_bucket_refills_at_rate_and_caps() -> None:
    b = TokenBucket(60, "rpm", now=0.0)
    assert b.level(0.0) == 60
    b.take(60, 0.0)
    assert b.level(0.0) == 0
    assert b.level(0.5) == pytest.approx(0.5)
    assert b.wait_time(1, 0.0) == pytest.approx(1.0)
    assert b.level(1000.0) == 60  # never above capacity


def test_rpm_allows_a_burst_then_refuses_with_reason() -> None:
    rl, clock = limiter(gpt=Limit(rpm=3))
    assert [rl.try_acquire("gpt") for _ in range(3)] == [None, None, None]
    why = rl.try_acquire("gpt")
    assert why == "rate limit: 3 rpm reached (next slot in 20.0s)"
    assert rl.check("gpt") == why
    clock.t += 20
    assert rl.check("gpt") is None
    assert rl.try_acquire("gpt") is None


def test_unlimited_models_always_pass() -> None:
    rl, _ = limiter(gpt=Limit(rpm=1))
    for _ in range(100):
        assert rl.try_acquire("other", 10_000) is None
    assert rl.check("other") is None


def test_tpm_takes_tokens_and_refusal_takes_nothing() -> None:
    rl, _ = limiter(gpt=Limit(rpm=100, tpm=1000))
    assert rl.try_acquire("gpt", 800) is None
    why = rl.try_acquire("gpt", 300)
    assert why is not None and "1000 tpm" in why
    # The refused request took no rpm slot either.
    assert rl.levels()["gpt"]["rpm"]["available"] == pytest.approx(99, abs=0.1)
    assert rl.try_acquire("gpt", 200) is None


def test_request_larger_than_the_bucket_waits_for_a_full_one() -> None:
    rl, clock = limiter(gpt=Limit(tpm=100))
    assert rl.try_acquire("gpt", 500) is None  # a full bucket serves it
    assert rl.try_acquire("gpt", 500) is not None
    clock.t += 60
    assert rl.try_acquire("gpt", 500) is None


def test_settle_refunds_or_charges_the_difference() -> None:
    rl, _ = limiter(gpt=Limit(tpm=1000))
    assert rl.try_acquire("gpt", 900) is None
    rl.settle("gpt", 900, 100)  # used far fewer tokens than estimated
    assert rl.try_acquire("gpt", 800) is None
    rl.settle("gpt", 0, 500)  # debt: the next caller waits it out
    assert rl.levels()["gpt"]["tpm"]["available"] < 0
    assert rl.check("gpt", 1) is not None


def test_release_gives_back_an_unused_slot() -> None:
    rl, _ = limiter(gpt=Limit(rpm=1, tpm=100))
    assert rl.try_acquire("gpt", 50) is None
    rl.release("gpt", 50)
    assert rl.try_acquire("gpt", 100) is None


def test_acquire_wait_sleeps_until_a_slot_frees() -> None:
    rl, clock = limiter(gpt=Limit(rpm=60))
    for _ in range(60):
        assert rl.try_acquire("gpt") is None
    assert rl.acquire_wait("gpt", deadline=clock.t + 5)
    assert 0.99 < sum(clock.slept) < 1.1


def test_acquire_wait_gives_up_when_the_deadline_is_too_close() -> None:
    rl, clock = limiter(gpt=Limit(rpm=1))
    assert rl.try_acquire("gpt") is None
    assert not rl.acquire_wait("gpt", deadline=clock.t + 30)
    assert clock.slept == []  # did not sleep for nothing
    assert rl.acquire_wait("gpt", deadline=clock.t + 61)


async def test_async_wait_does_the_same() -> None:
    rl, clock = limiter(gpt=Limit(rpm=60))
    for _ in range(60):
        rl.try_acquire("gpt")
    assert await rl.aacquire_wait("gpt", deadline=clock.t + 5)
    assert sum(clock.slept) == pytest.approx(1.001, abs=0.01)
    rl.try_acquire("gpt")
    assert not await rl.aacquire_wait("gpt", deadline=clock.t + 0.1)


async def test_async_wait_with_the_real_loop_lets_other_tasks_run() -> None:
    rl = RateLimiter({"gpt": Limit(rpm=600)})  # one slot per 0.1s
    for _ in range(600):
        rl.try_acquire("gpt")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1

    ok, _ = await asyncio.gather(rl.aacquire_wait("gpt", deadline=None), ticker())
    assert ok and ticks == 5


def test_update_keeps_unchanged_buckets() -> None:
    rl, _ = limiter(a=Limit(rpm=2), b=Limit(rpm=2))
    rl.try_acquire("a")
    rl.try_acquire("a")
    rl.try_acquire("b")
    rl.update({"a": Limit(rpm=2), "b": Limit(rpm=5)})
    assert rl.try_acquire("a") is not None  # still empty
    assert rl.levels()["b"]["rpm"]["available"] == 5  # new limit, new bucket
    rl.update({})
    assert rl.levels() == {}


def test_threads_never_take_more_than_the_bucket() -> None:
    rl = RateLimiter({"gpt": Limit(rpm=6000, tpm=100_000)})  # slow refill vs the test
    got: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        n = 0
        for _ in range(1000):
            if rl.try_acquire("gpt", 100) is None:
                n += 1
        with lock:
            got.append(n)

    run_threads(worker, [()] * 16)
    # 1000 requests fit the tpm bucket; refill adds ~28 per second of test time.
    assert 1000 <= sum(got) <= 1000 + 200


def test_limits_of_models() -> None:
    models = [
        ModelConfig("a", "p", "a", rpm=10),
        ModelConfig("b", "p", "b"),
        ModelConfig("c", "p", "c", tpm=500),
    ]
    assert limits_of(models) == {"a": Limit(10, None), "c": Limit(None, 500)}


def test_waits_are_counted_per_model_with_the_seconds_slept() -> None:
    rl, clock = limiter(gpt=Limit(rpm=60))
    assert rl.waits() == {}
    for _ in range(60):
        assert rl.try_acquire("gpt") is None
    assert rl.acquire_wait("gpt", deadline=clock.t + 5)
    assert rl.acquire_wait("gpt", deadline=clock.t + 5)
    count, seconds = rl.waits()["gpt"]
    assert count == 2 and seconds == pytest.approx(sum(clock.slept))
