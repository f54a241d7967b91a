"""The ring of recent requests the console reads: records, filters, figures, text kept or not."""

from __future__ import annotations

import json

import pytest

from router import NoRouteError, RecentRequests, Router
from router.observe.recent import percentile
from router.testing import server_error

from .conftest import CANARY


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        RecentRequests(0)


def test_requests_are_kept_newest_first_and_filtered(write_config, fake):
    ring = RecentRequests(capacity=3)
    with Router.from_config(write_config(), observers=[ring]) as r:
        r.route("hello")
        fake.enqueue(server_error(503))
        r.route("Fix it", use_case="coding")  # large fails, small answers: a fallback
        r.route("Fix it again", use_case="coding")
        r.route("bye")
    rows = ring.records()
    assert len(rows) == 3  # the ring keeps `capacity`: the first request is gone
    assert [x.id for x in rows] == [4, 3, 2]
    fallback = rows[2]
    assert fallback.rule == "coding" and fallback.model == "small"
    assert [(t.model, t.error) for t in fallback.tried] == [("large", "unavailable")]
    assert fallback.fallback and not rows[1].fallback
    assert fallback.cost_usd is not None and fallback.cost_usd > 0
    assert fallback.input_tokens > 0 and fallback.output_tokens > 0
    assert [x.id for x in ring.records(rule="coding")] == [3, 2]
    assert [x.id for x in ring.records(model="large")] == [3]
    assert ring.records(outcome="failed") == []
    assert [x.id for x in ring.records(limit=1)] == [4]
    assert all(x.prompt is None and x.answer is None for x in rows)
    assert CANARY not in json.dumps([x.to_dict() for x in rows])


def test_text_is_kept_only_while_keep_text_says_so(write_config, fake):
    keep = {"on": True}
    ring = RecentRequests(keep_text=lambda: keep["on"])
    with Router.from_config(write_config(), observers=[ring]) as r:
        r.route("a secret plan")
        keep["on"] = False
        r.route("another secret")
    newest, oldest = ring.records()
    assert oldest.prompt == "a secret plan" and oldest.answer == "Hello from the fake provider."
    assert newest.prompt is None and newest.answer is None


def test_overview_counts_rates_and_buckets_by_minute(write_config, fake):
    clock = Clock(1_800_000_000.0)
    ring = RecentRequests(clock=clock)
    with Router.from_config(write_config(), observers=[ring]) as r:
        for _ in range(3):
            r.route("hello")
        fake.enqueue(server_error(503))
        r.route("Fix it", use_case="coding")
        fake.enqueue(*[server_error(503)] * 2)
        with pytest.raises(NoRouteError):
            r.route("Fix it badly", use_case="coding")
    records = ring.records()
    clock.now = max(x.at for x in records) + 1.0
    o = ring.overview(minutes=10)
    assert o.requests == 5
    assert o.error_rate == pytest.approx(1 / 5)
    assert o.fallback_rate == pytest.approx(1 / 5)
    assert o.cache_hit_rate is None  # no cache in this config
    assert o.p50_ms is not None and o.p99_ms is not None and o.p99_ms >= o.p50_ms
    assert len(o.buckets) == 10
    assert sum(b.requests for b in o.buckets) == 5
    assert o.buckets[-1].requests >= 1  # the newest minute holds the last request
    assert o.requests_per_min > 0
    # An hour later the window is empty, and so are the charts.
    clock.now += 3600
    later = ring.overview(minutes=10)
    assert later.requests == 0 and later.error_rate is None
    assert sum(b.requests for b in later.buckets) == 0
