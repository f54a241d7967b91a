"""Several OS processes, one Redis: they must act as one router.

Each process is a fresh interpreter (multiprocessing spawn) running fleet_worker.py
on a config whose `settings.state` names the test's redis-server. Every loop is
bounded in count and time.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.state import fleet_worker
from tests.runtime.state.redis_server import RedisServer, redis_binary

CTX = multiprocessing.get_context("spawn")
pytestmark = pytest.mark.slow  # each test starts several interpreters


def write_config(tmp_path: Path, url: str, body: str, name: str = "fleet.yaml") -> str:
    # A long Redis timeout: on a loaded CI machine a 50 ms one may expire, and the
    # process would (rightly) serve on local state; these tests are about sharing.
    path = tmp_path / name
    path.write_text(
        body
        + f"""
settings:
  default_max_tokens: 1
  usage_db: {tmp_path / "usage.sqlite"}
  state: {{url: "{url}", sync_ms: 100, timeout_ms: 2000}}
"""
    )
    return str(path)


def run(procs: list[Any], out: Any, n: int, timeout: float = 120) -> list[dict[str, Any]]:
    for p in procs:
        if p.pid is None:
            p.start()
    results = []
    end = time.monotonic() + timeout
    try:
        while len(results) < n and time.monotonic() < end:
            try:
                results.append(out.get(timeout=1))
            except queue.Empty:
                if procs and all(p.exitcode not in (None, 0) for p in procs):
                    break
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    assert len(results) == n, f"{len(results)} of {n} processes reported"
    return results


CHEAP = """
providers:
  echo: {type: mock, reply: "ok"}
models:
  paid: {provider: echo, model: paid-1, cost: {input: 0, output: 10000}}
rules:
  - name: chat
    targets: [paid]
    on_budget: error
"""


def test_budget_overshoot_across_4_processes_of_8_threads(tmp_path, redis_server) -> None:
    # Each request costs $0.01 (1 output token at $10,000 per 1M), estimated exactly.
    config = write_config(tmp_path, redis_server.url, CHEAP + "budgets:\n  global: {daily: 1.00}\n")
    start, out = CTX.Event(), CTX.Queue()
    procs = [
        CTX.Process(target=fleet_worker.hammer_budget, args=(config, 8, 60, start, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    time.sleep(0.5)
    start.set()
    results = run(procs, out, 4)
    assert all(not r["errors"] for r in results), [r["errors"] for r in results]
    served = sum(r["served"] for r in results)
    spent = sum(r["cost"] for r in results)
    assert spent == pytest.approx(served * 0.01)
    # The limit is reached, and passed by at most one request per process.
    assert 1.00 - 1e-9 <= spent <= 1.00 + 4 * 0.01 + 1e-9, (served, spent)
    assert 100 <= served <= 104
    # Without the shared budget each process would have spent its own $1.00.
    import redis

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    (key,) = [k for k in client.keys("router:budget:global*") if not k.endswith(":r")]
    assert float(client.hget(key, "spent")) == pytest.approx(spent)
    assert float(client.hget(key, "reserved")) == pytest.approx(0.0, abs=1e-9)


TWO = """
providers:
  echo: {type: mock, reply: "ok"}
models:
  primary: {provider: echo, model: p-1, cost: {input: 0, output: 0},
            breaker: {failures: 3, window: 60, cooldown: 30}}
  backup: {provider: echo, model: b-1, cost: {input: 0, output: 0}}
rules:
  - name: chat
    targets: [primary, backup]
"""


def test_breaker_opened_in_one_process_is_skipped_by_another_within_a_second(
    tmp_path, redis_server
) -> None:
    config = write_config(tmp_path, redis_server.url, TWO)
    opened, out = CTX.Event(), CTX.Queue()
    watcher = CTX.Process(target=fleet_worker.watch_breaker, args=(config, "primary", opened, out))
    watcher.start()
    time.sleep(1.5)  # the watcher has loaded its config and routed to `primary`
    opener_out = CTX.Queue()
    opener = CTX.Process(target=fleet_worker.open_breaker, args=(config, "primary", 3, opener_out))
    (opened_at,) = [r["opened_at"] for r in run([opener], opener_out, 1)]
    opened.set()
    (seen,) = run([], out, 1)
    watcher.join(timeout=10)
    assert seen["skipped"], seen
    assert any("circuit open" in line for line in seen["trace"]), seen["trace"]
    assert seen["seen_at"] - opened_at <= 1.0 + 1.0  # 1 s, plus the opener's exit and close
    assert seen["waited"] <= 1.0, seen


PROBE = """
providers:
  echo: {type: mock, reply: "ok"}
  sleepy: {type: mock, reply: "ok", delay: 3}
models:
  slow: {provider: sleepy, model: s-1, cost: {input: 0, output: 0},
         breaker: {failures: 2, window: 60, cooldown: 1}}
  backup: {provider: echo, model: b-1, cost: {input: 0, output: 0}}
rules:
  - name: chat
    targets: [slow, backup]
"""


def test_exactly_one_half_open_probe_across_the_fleet(tmp_path, redis_server) -> None:
    config = write_config(tmp_path, redis_server.url, PROBE)
    ready, start, out = CTX.Barrier(4), CTX.Event(), CTX.Queue()
    procs = [
        CTX.Process(target=fleet_worker.route_together, args=(config, 6, ready, start, out))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    time.sleep(1.5)
    opener_out = CTX.Queue()
    opener = CTX.Process(target=fleet_worker.open_breaker, args=(config, "slow", 2, opener_out))
    run([opener], opener_out, 1)
    ready.wait(timeout=30)  # every process sees the circuit half-open
    start.set()
    results = run([], out, 3)
    for p in procs:
        p.join(timeout=10)
    models = Counter(m for r in results for m in r["models"])
    assert models == {"slow": 1, "backup": 17}, models


LIMITED = """
providers:
  echo: {type: mock, reply: "ok"}
models:
  limited: {provider: echo, model: l-1, rpm: 12, cost: {input: 0, output: 0}}
  backup: {provider: echo, model: b-1, cost: {input: 0, output: 0}}
rules:
  - name: chat
    targets: [limited, backup]
"""


def test_rate_limit_is_one_bucket_across_processes(tmp_path, redis_server) -> None:
    config = write_config(tmp_path, redis_server.url, LIMITED)
    start, out = CTX.Event(), CTX.Queue()
    procs = [
        CTX.Process(target=fleet_worker.route_many, args=(config, 10, "chat", start, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)
    start.set()
    results = run([], out, 4)
    for p in procs:
        p.join(timeout=10)
    assert all(not r["errors"] for r in results)
    models = Counter(m for r in results for m in r["models"])
    # 40 requests, one bucket of 12 (refilling 0.2 per second): not 4 buckets of 12.
    assert 12 <= models["limited"] <= 14, models
    assert models["limited"] + models["backup"] == 40


SPREAD = """
providers:
  echo: {type: mock, reply: "ok"}
models:
  a: {provider: echo, model: a-1, cost: {input: 0, output: 0}}
  b: {provider: echo, model: b-1, cost: {input: 0, output: 0}}
  c: {provider: echo, model: c-1, cost: {input: 0, output: 0}}
rules:
  - name: chat
    targets: [a, b, c]
    strategy: round_robin
"""


def test_round_robin_spreads_evenly_across_processes(tmp_path, redis_server) -> None:
    config = write_config(tmp_path, redis_server.url, SPREAD)
    start, out = CTX.Event(), CTX.Queue()
    # 10 each: alone, every process would start at `a` and end on it (4+3+3), 16 in all.
    procs = [
        CTX.Process(target=fleet_worker.route_many, args=(config, 10, "chat", start, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)
    start.set()
    results = run([], out, 4)
    for p in procs:
        p.join(timeout=10)
    models = Counter(m for r in results for m in r["models"])
    assert sum(models.values()) == 40
    assert max(models.values()) - min(models.values()) <= 1, models


def test_redis_killed_and_restarted_mid_run_loses_no_request_and_no_spend(tmp_path) -> None:
    binary = redis_binary()
    assert binary is not None
    data = tmp_path / "redis-data"
    data.mkdir()
    # Persistence on: what Redis acknowledged survives the kill; the test is about
    # what the routers kept while it was away.
    server = RedisServer(
        binary, extra=["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)]
    )
    server.start()
    try:
        config = write_config(tmp_path, server.url, CHEAP + "budgets:\n  global: {daily: 1000}\n")
        progress, resume, out = CTX.Value("i", 0), CTX.Event(), CTX.Queue()
        n = 120
        procs = [
            CTX.Process(
                target=fleet_worker.route_through_outage, args=(config, n, progress, resume, out)
            )
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        end = time.monotonic() + 60
        while progress.value < n // 2 and time.monotonic() < end:  # a quarter of all
            time.sleep(0.01)
        server.stop()
        at_kill = progress.value
        while progress.value < at_kill + 40 and time.monotonic() < end:
            time.sleep(0.01)
        assert progress.value >= at_kill + 40, "requests stopped while Redis was down"
        server.start()
        resume.set()
        results = run([], out, 2)
        for p in procs:
            p.join(timeout=10)
        assert [r["errors"] for r in results] == [[], []]
        assert all(len(r["costs"]) == n for r in results)
        assert any(r["went_down"] for r in results)
        assert all(r["settled"] for r in results)
        total = sum(sum(r["costs"]) for r in results)
        assert total == pytest.approx(2 * n * 0.01)

        import redis

        client = redis.Redis.from_url(server.url, decode_responses=True)
        (key,) = [k for k in client.keys("router:budget:global*") if not k.endswith(":r")]
        assert float(client.hget(key, "spent")) == pytest.approx(total)
        rows = sum(client.llen(k) for k in client.keys("router:usage:2*"))
        assert rows == 2 * n
    finally:
        server.stop()
