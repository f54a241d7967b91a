"""Keys in process: lookup, rate windows and budgets on injected clocks."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from router.config import ApiKey
from router.secrets import Secret
from router.server.errors import ApiError
from router.server.keys import KeyRing, KeySpend, RequestRate, check_allowed


def key(name: str, value: str, **kw) -> ApiKey:
    return ApiKey(name=name, key=Secret(value), **kw)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_ring_finds_the_key_sent_as_bearer_or_api_key_header() -> None:
    ring = KeyRing([key("a", "sk-aaaa"), key("b", "sk-bbbb")])
    assert ring.authenticate("Bearer sk-bbbb", None).name == "b"
    assert ring.authenticate("bearer  sk-aaaa ", None).name == "a"
    assert ring.authenticate(None, "sk-aaaa").name == "a"
    for header in (None, "", "Bearer", "Basic sk-aaaa", "Bearer sk-aaa", "Bearer sk-aaaab"):
        with pytest.raises(ApiError) as info:
            ring.authenticate(header, None)
        assert info.value.status == 401
        assert "sk-a" not in info.value.message


def test_no_keys_means_no_authentication() -> None:
    assert KeyRing([]).authenticate(None, None) is None
    assert not KeyRing([]).required


def test_allowed_models_and_rules() -> None:
    k = key("ci", "x", models=frozenset({"m"}), rules=frozenset({"default"}))
    check_allowed(k, "m", "default")
    check_allowed(None, "anything", "anything")
    with pytest.raises(ApiError) as info:
        check_allowed(k, "other", None)
    assert (info.value.status, info.value.code) == (403, "model_not_allowed")
    with pytest.raises(ApiError) as info:
        check_allowed(k, None, "coding")
    assert info.value.code == "rule_not_allowed" and "(allowed: default)" in info.value.message


def test_rpm_is_a_sliding_minute() -> None:
    clock = Clock(1000.0)
    rate = RequestRate(clock)
    k = key("a", "x", rpm=2)
    rate.admit(k)
    clock.now += 10
    rate.admit(k)
    with pytest.raises(ApiError) as info:
        rate.admit(k)
    assert info.value.status == 429 and info.value.headers["Retry-After"] == "50"
    clock.now += 50.5  # the first request left the window
    rate.admit(k)
    rate.admit(key("unlimited", "y"))


def test_budget_is_per_utc_day_and_month_and_seeded_from_usage() -> None:
    start = datetime(2026, 3, 31, 23, 0, tzinfo=timezone.utc).timestamp()
    clock = Clock(start)
    spend = KeySpend(clock)
    spend.seed(
        lambda by, since: [
            {"key": "a", "day": "2026-03-31", "cost_usd": 0.5},
            {"key": "a", "day": "2026-03-02", "cost_usd": 4.0},
            {"key": "-", "day": "2026-03-31", "cost_usd": 9.0},
        ]
    )
    assert (spend.spent("a", "day"), spend.spent("a", "month")) == (0.5, 4.5)
    k = key("a", "x", daily=1.0, monthly=5.0)
    spend.check(k)
    spend.add("a", 0.6)
    with pytest.raises(ApiError) as info:
        spend.check(k)
    assert info.value.code == "budget_exceeded" and "daily budget" in info.value.message
    assert info.value.headers["Retry-After"] == "3600"  # midnight UTC
    clock.now += 3600 + 1  # April: both periods start again
    spend.check(k)
    assert spend.spent("a", "month") == 0.0


def test_an_unknown_price_is_counted_apart_never_as_zero_dollars() -> None:
    start = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc).timestamp()
    clock = Clock(start)
    spend = KeySpend(clock)
    spend.seed(
        lambda by, since: [
            {"key": "a", "day": "2026-03-15", "cost_usd": 0.5, "unpriced_requests": 2},
            {"key": "a", "day": "2026-03-02", "cost_usd": 1.0, "unpriced_requests": 3},
        ]
    )
    assert (spend.unpriced("a", "day"), spend.unpriced("a", "month")) == (2, 5)
    spend.add("a", None)  # served by a model whose price nobody knows
    spend.add("a", 0.25)
    assert spend.snapshot()["a"] == {
        "day": 0.75,
        "month": 1.75,
        "unpriced_day": 3,
        "unpriced_month": 6,
    }
    spend.add("b", None)
    assert spend.snapshot()["b"]["day"] == 0.0 and spend.snapshot()["b"]["unpriced_day"] == 1
    clock.now += 86400  # a new day: the day's count starts again, the month's goes on
    assert (spend.unpriced("a", "day"), spend.unpriced("a", "month")) == (0, 6)
