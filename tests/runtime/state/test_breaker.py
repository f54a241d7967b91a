"""Circuit breaker: closed -> open -> half-open (one probe) -> closed or open again."""

from __future__ import annotations

import re
import threading

from router.config.model import BreakerPolicy
from router.runtime.state.breaker import CircuitBreaker
from tests.threads import run_threads


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


WALL0 = 1_700_000_000.0


def make(failures: int = 3, window: float = 60.0, cooldown: float = 30.0):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    wall = lambda: WALL0 + (clock.t - 1000.0)  # noqa: E731
    b = CircuitBreaker(BreakerPolicy(failures, window, cooldown), clock=clock, wall=wall)
    return b, clock


def test_stays_closed_below_threshold() -> None:
    b, _ = make(failures=3)
    b.record_failure()
    b.record_failure()
    assert b.unavailable_reason() is None
    assert b.acquire() is None
    s = b.state()
    assert (s.state, s.failures, s.open_until) == ("closed", 2, None)


def test_opens_after_failures_within_window_and_says_until_when() -> None:
    b, _ = make(failures=3, window=60, cooldown=30)
    for _ in range(3):
        b.record_failure()
    why = b.unavailable_reason()
    assert why is not None
    assert re.fullmatch(r"circuit open until \d\d:\d\d:\d\d \(3 failures in 60s\)", why)
    assert b.acquire() == why
    s = b.state()
    assert s.state == "open"
    assert s.open_until == WALL0 + 30
    assert s.reason == why
    assert s.opened == 1
    assert s.as_dict()["state"] == "open"


def test_failures_outside_the_window_do_not_count() -> None:
    b, clock = make(failures=3, window=10)
    b.record_failure()
    b.record_failure()
    clock.advance(11)
    b.record_failure()
    assert b.unavailable_reason() is None
    assert b.state().failures == 1


def test_half_open_allows_exactly_one_probe_and_success_closes() -> None:
    b, clock = make(failures=2, cooldown=30)
    b.record_failure()
    b.record_failure()
    clock.advance(29.9)
    assert b.acquire() is not None
    clock.advance(0.2)
    assert b.unavailable_reason() is None  # a probe may go
    assert b.state().state == "half_open"
    assert b.acquire() is None  # this caller holds the probe
    refused = b.acquire()
    assert refused is not None and refused.startswith("circuit half-open: probe in flight")
    assert b.unavailable_reason() == refused
    assert b.state().probe_in_flight
    b.record_success()
    assert b.state().state == "closed"
    assert b.state().failures == 0
    assert b.acquire() is None and b.acquire() is None


def test_failed_probe_reopens_for_another_cooldown() -> None:
    b, clock = make(failures=2, cooldown=30)
    b.record_failure()
    b.record_failure()
    clock.advance(31)
    assert b.acquire() is None
    b.record_failure()
    why = b.unavailable_reason()
    assert why is not None and "(probe failed)" in why
    assert b.state().state == "open"
    assert b.state().opened == 2
    clock.advance(29)
    assert b.acquire() is not None
    clock.advance(2)
    assert b.acquire() is None


def test_released_probe_lets_the_next_caller_probe() -> None:
    b, clock = make(failures=1, cooldown=5)
    b.record_failure()
    clock.advance(6)
    assert b.acquire() is None
    assert b.acquire() is not None
    b.release()
    assert b.acquire() is None


def test_a_lost_probe_does_not_wedge_the_breaker() -> None:
    b, clock = make(failures=1, cooldown=5)
    b.record_failure()
    clock.advance(6)
    assert b.acquire() is None  # this probe never reports back
    clock.advance(4)
    assert b.acquire() is not None
    clock.advance(2)  # more than one cooldown since the probe went out
    assert b.acquire() is None


def test_concurrent_callers_get_one_probe() -> None:
    b, clock = make(failures=1, cooldown=1)
    b.record_failure()
    clock.advance(2)
    granted: list[bool] = []
    start = threading.Barrier(16)

    def worker() -> None:
        start.wait()
        granted.append(b.acquire() is None)

    run_threads(worker, [()] * 16)
    assert granted.count(True) == 1


def test_concurrent_failures_open_it_once() -> None:
    b, _ = make(failures=50, window=60)
    run_threads(lambda: [b.record_failure() for _ in range(20)], [()] * 8)
    s = b.state()
    assert s.state == "open"
    assert s.opened == 1  # later failures while open count nothing more


def test_policy_update_keeps_state() -> None:
    b, clock = make(failures=2, cooldown=30)
    b.record_failure()
    b.update_policy(BreakerPolicy(failures=2, window=60, cooldown=5))
    b.record_failure()
    assert b.state().state == "open"
    clock.advance(6)
    assert b.acquire() is None


def test_reset_closes() -> None:
    b, _ = make(failures=1)
    b.record_failure()
    b.reset()
    assert b.unavailable_reason() is None
    assert b.closed


def test_shorter_cooldown_applies_to_an_open_circuit() -> None:
    b, clock = make(failures=1, cooldown=30)
    b.record_failure()
    b.update_policy(BreakerPolicy(failures=1, window=60, cooldown=5))
    assert b.state().open_until == WALL0 + 5
    clock.advance(5)
    assert b.acquire() is None
