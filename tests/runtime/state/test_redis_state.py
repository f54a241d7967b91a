"""Shared state on a real redis-server, several routers in one test: expiry of a dead
process's reservations, Redis down or slow, reconnecting, secrets, `router usage`."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import Router
from router.cli import main
from router.config.model import Budget, StateSettings
from router.errors import RouterError
from router.runtime.state.redis_budgets import RedisBudgetTracker
from router.runtime.state.redis_link import DOWN, RedisLink
from router.runtime.state.redis_stores import RedisBackend
from router.runtime.state.usage import MemoryUsageStore
from router.secrets import Secret
from router.types import Rejection, RejectionKind
from tests.runtime.state.redis_server import RedisServer, free_port, redis_binary

PASSWORD = "hunter2-canary-pw"


def settings(url: str, **kw: object) -> StateSettings:
    return StateSettings(url=Secret(url), **kw)  # type: ignore[arg-type]


class Wall:
    def __init__(self) -> None:
        self.t = 1_767_230_000.0

    def __call__(self) -> float:
        return self.t


def test_reservation_of_a_crashed_process_expires(redis_server: RedisServer) -> None:
    wall = Wall()
    budget = [Budget("global", None, daily=1.0)]
    a = RedisBackend(settings(redis_server.url))
    b = RedisBackend(settings(redis_server.url))
    try:
        dead = RedisBudgetTracker(budget, MemoryUsageStore(), a.link, wall, reservation_ttl=30)
        alive = RedisBudgetTracker(budget, MemoryUsageStore(), b.link, wall, reservation_ttl=30)
        assert dead.reserve("m", None, 0.9) is not None
        a.close()  # "crashes" holding $0.90 it will never commit
        assert alive.reserve("m", None, 0.2) is not None  # 0.9 < 1: granted
        assert alive.reserve("m", None, 0.2) is None  # 0.9 + 0.2 >= 1
        wall.t += 31
        res = alive.reserve("m", None, 0.2)  # the dead one's hold has expired
        assert res is not None
        alive.commit(res, 0.1)
        b.link.sync_now()
        (status,) = alive.status()
        assert status["spent_usd"] == pytest.approx(0.1)
    finally:
        b.close()


def test_two_routers_share_one_budget(redis_server: RedisServer) -> None:
    budget = [Budget("model", "m", daily=1.0)]
    one, two = RedisBackend(settings(redis_server.url)), RedisBackend(settings(redis_server.url))
    try:
        t1 = one.budgets(budget, MemoryUsageStore(), Wall())
        t2 = two.budgets(budget, MemoryUsageStore(), Wall())
        res = t1.reserve("m", None, 0.6)
        assert res is not None
        t1.commit(res, 0.6)
        one.link.sync_now()
        assert t2.reason("m", None) is None  # not synced yet: it has not seen the spend
        assert t2.reserve("m", None, 0.6) is not None  # 0.6 < 1
        assert t2.reserve("m", None, 0.1) is None  # but the fleet's total is what counts
        two.link.sync_now()
        assert t2.status()[0]["spent_usd"] == pytest.approx(0.6)
    finally:
        one.close()
        two.close()


def test_a_breaker_opened_by_one_router_gives_the_probe_to_one(redis_server: RedisServer) -> None:
    from router.config.model import BreakerPolicy

    policy = BreakerPolicy(failures=1, window=60, cooldown=0.2)
    one, two = RedisBackend(settings(redis_server.url)), RedisBackend(settings(redis_server.url))
    try:
        b1 = one.breaker("m", policy, time.monotonic, time.time)
        b2 = two.breaker("m", policy, time.monotonic, time.time)
        b1.record_failure()
        one.link.sync_now()
        two.link.sync_now()
        why = b2.unavailable_reason()
        assert why is not None and "seen by another router" in why
        end = time.monotonic() + 5
        while time.monotonic() < end and b2.state().state == "open":
            time.sleep(0.02)
            two.link.sync_now()
        assert b2.acquire() is None  # the fleet's one probe
        assert "probe in flight" in (b1.acquire() or "")
        b2.record_success()
        two.link.sync_now()
        one.link.sync_now()
        assert b1.unavailable_reason() is None or "probe" not in b1.unavailable_reason()
    finally:
        one.close()
        two.close()


class SilentServer:
    """Accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    s = SilentServer()
    yield s
    s.close()


def test_a_hung_redis_costs_one_timeout_then_no_network(silent: SilentServer, caplog) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{silent.port}/0"
    with caplog.at_level(logging.WARNING, logger="router.state"):
        link = RedisLink(settings(url, timeout_ms=50), background=False)
    try:
        assert not link.up
        assert link.call("rate_bucket", ["k"], [1, 0, 0, "take"]) is DOWN
        before = silent.accepted
        for _ in range(100):  # answered from local state, without touching the socket
            assert link.call("rate_bucket", ["k"], [1, 0, 0, "take"]) is DOWN
        assert silent.accepted == before
        status = link.status()
        assert status["connected"] is False and "Timeout" in status["error"]
        assert status["url"] == f"redis://:****@127.0.0.1:{silent.port}/0"
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1  # logged once, not per request
        assert PASSWORD not in caplog.text and PASSWORD not in repr(status)
    finally:
        link.close()


def test_router_serves_on_local_state_while_redis_is_down_and_catches_up(
    tmp_path: Path,
) -> None:
    binary = redis_binary()
    assert binary is not None
    server = RedisServer(binary, port=free_port())  # not started yet: Redis is down
    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        f"""
providers:
  echo: {{type: mock, reply: "ok"}}
models:
  paid: {{provider: echo, model: p-1, cost: {{input: 0, output: 10000}}}}
rules:
  - {{name: chat, targets: [paid]}}
budgets:
  global: {{daily: 0.05}}
settings:
  default_max_tokens: 1
  usage_db: {tmp_path / "usage.sqlite"}
  state: {{url: "{server.url}", sync_ms: 50}}
"""
    )
    r = Router.from_config(cfg, check_tests=False)
    try:
        shared = r.status()["state"]["shared_state"]
        assert shared["connected"] is False and shared["backend"] == "redis"
        served = [r.route("hi").cost_usd for _ in range(3)]
        assert served == pytest.approx([0.01] * 3)
        assert r.status()["state"]["shared_state"]["pending_writes"] >= 3
        server.start()
        end = time.monotonic() + 15
        while time.monotonic() < end:
            s = r.status()["state"]["shared_state"]
            if s["connected"] and s["pending_writes"] == 0:
                break
            time.sleep(0.05)
        assert s["connected"] and s["pending_writes"] == 0
        # The spend made while Redis was away is in Redis, once.
        rows = r.usage(("model",))
        assert [(x["model"], x["requests"]) for x in rows] == [("paid", 3)]
        assert sum(x["cost_usd"] for x in rows) == pytest.approx(0.03)
        # ... and the shared budget counts it: two more fit under $0.05, then no.
        r.route("hi")
        r.route("hi")
        with pytest.raises(RouterError):
            r.route("hi")
        r._live._backend.link.sync_now()  # type: ignore[attr-defined]
        (budget,) = r.status()["state"]["budgets"]
        assert budget["exhausted"] and budget["spent_usd"] == pytest.approx(0.05)
    finally:
        r.close()
        server.stop()


def test_router_usage_reads_redis_when_the_config_names_it(
    tmp_path: Path, redis_server: RedisServer, capsys
) -> None:
    cfg = tmp_path / "r.yaml"
    body = f"""
providers:
  echo: {{type: mock, reply: "ok"}}
models:
  paid: {{provider: echo, model: p-1, cost: {{input: 0, output: 10000}}}}
rules:
  - {{name: chat, targets: [paid]}}
settings:
  default_max_tokens: 1
  usage_db: {tmp_path / "usage.sqlite"}
  state: {{url: "{redis_server.url}", spend_log: SPEND}}
"""
    cfg.write_text(body.replace("SPEND", "redis+sqlite"))
    with Router.from_config(cfg, check_tests=False) as r:
        r.route("hi")
        r.route("hi")
    other = tmp_path / "other.yaml"  # another router, its own SQLite file, same Redis
    other.write_text(body.replace("SPEND", "redis+sqlite").replace("usage.sqlite", "u2.sqlite"))
    assert main(["usage", str(other), "--by", "model"]) == 0
    out = capsys.readouterr().out
    assert f"usage store: {redis_server.url}" in out
    assert "paid" in out and "       2 " in out
    local_only = tmp_path / "local.yaml"
    local_only.write_text(body.replace("SPEND", "sqlite").replace("usage.sqlite", "u2.sqlite"))
    assert main(["usage", str(local_only), "--by", "model"]) == 0
    out = capsys.readouterr().out
    assert "u2.sqlite" in out and "paid" not in out  # that file never saw a request


def test_memory_state_never_imports_the_redis_client(tmp_path: Path) -> None:
    code = (
        "import sys; from router import Router; "
        "r = Router.from_config('examples/configs/dry-run.yaml'); r.route('hello'); "
        "print('redis' in sys.modules, r.status()['state']['shared_state']); r.close()"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "False {'backend': 'memory'}"


def test_rate_limit_and_budget_are_one_round_trip_and_say_which_refused(
    redis_server: RedisServer,
) -> None:
    from router.config.model import Config, Cost, ModelConfig, ProviderConfig, RuleConfig, Settings
    from router.runtime.state.live import LiveState

    config = Config(
        providers={"p": ProviderConfig("p", "mock")},
        models={"m": ModelConfig("m", "p", "m-1", cost=Cost(0, 1_000_000), rpm=3)},
        rules=(RuleConfig("chat", ("m",)),),
        budgets=(Budget("global", None, daily=1.0),),
        settings=Settings(usage_db=":memory:", state=settings(redis_server.url)),
    )
    state = LiveState(config)
    link = state._backend.link  # type: ignore[attr-defined]
    sent: list[tuple[object, ...]] = []
    original = link.fast.execute_command

    def counted(*args: object, **kw: object) -> object:
        sent.append(args)
        return original(*args, **kw)

    link.fast.execute_command = counted
    try:
        a = state.admit("m", "chat", 0, 0.6)
        assert not isinstance(a, str)
        assert [x[0] for x in sent] == ["EVALSHA"]  # rate limit and budget: one trip
        b = state.admit("m", "chat", 0, 0.6)  # 0.6 < $1: granted, $1.20 held
        assert not isinstance(b, str)
        refused = state.admit("m", "chat", 0, 0.1)
        assert isinstance(refused, Rejection) and refused.kind is RejectionKind.BUDGET
        assert refused.startswith("budget spent")
        state.failed(b)  # never sent: its hold goes back
        link.sync_now()
        d = state.admit("m", "chat", 0, 0.1)  # the refused try took no rpm: 1 is left
        assert not isinstance(d, str)
        e = state.admit("m", "chat", 0, 0.1)
        assert isinstance(e, Rejection) and e.kind is RejectionKind.RATE_LIMIT
        assert e.startswith("rate limit: 3 rpm reached (next slot in ")
        assert [x[0] for x in sent] == ["EVALSHA"] * 5
        assert state.status()["models"]["m"]["rate_limit"]["rpm"]["available"] < 1
    finally:
        link.fast.execute_command = original
        state.close()


def test_fastest_and_least_busy_read_the_fleet(redis_server: RedisServer) -> None:
    one, two = RedisBackend(settings(redis_server.url)), RedisBackend(settings(redis_server.url))
    try:
        c1, c2 = one.counters(), two.counters()
        for _ in range(3):
            c1.enter("busy")  # three calls in flight in the other process
        c1.record_latency("slow", 2.0)
        c2.record_latency("slow", 1.0)  # the fleet's: the mean of each process's average
        for link in (one.link, two.link, one.link, two.link):
            link.sync_now()
        assert c2.in_flight("busy") == 3 and c2.in_flight("idle") == 0
        c2.enter("busy")
        assert c2.in_flight("busy") == 4  # its own, counted at once
        assert c1.latency("slow") == pytest.approx(1.5) == c2.latency("slow")
        assert c1.latency("fast") is None
        c1.leave("busy")
        c1.leave("busy")
        c1.leave("busy")
        one.link.sync_now()
        two.link.sync_now()
        assert c2.in_flight("busy") == 1
        assert two.counters().next_index("rule") == 0 and c1.next_index("rule") == 1
    finally:
        one.close()
        two.close()


def test_queued_spend_survives_a_redis_that_lost_its_scripts(redis_server: RedisServer) -> None:
    backend = RedisBackend(settings(redis_server.url))
    try:
        tracker = backend.budgets([Budget("global", None, daily=5.0)], MemoryUsageStore(), Wall())
        backend.link.slow.script_flush()  # as after a restart between two batches
        tracker.add("m", None, 1.25)
        tracker.add("m", None, 0.5)
        assert backend.link.sync_now()
        assert backend.link.status()["pending_writes"] == 0
        (key,) = [k for k in backend.link.slow.keys("router:budget:*") if not k.endswith(":r")]
        assert float(backend.link.slow.hget(key, "spent")) == pytest.approx(1.75)
    finally:
        backend.close()


def test_the_redis_password_shows_nowhere(tmp_path: Path, caplog) -> None:
    binary = redis_binary()
    assert binary is not None
    server = RedisServer(binary, extra=["--requirepass", PASSWORD, "--save", ""])
    server.start()
    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        f"""
providers:
  echo: {{type: mock, reply: "ok"}}
models:
  paid: {{provider: echo, model: p-1, cost: {{input: 0, output: 10000}}}}
rules:
  - {{name: chat, targets: [paid]}}
budgets:
  global: {{daily: 5}}
settings:
  usage_db: {tmp_path / "usage.sqlite"}
  state: redis://:${{REDIS_PASSWORD}}@127.0.0.1:{server.port}/0
"""
    )
    r = Router.from_config(cfg, check_tests=False, environ={"REDIS_PASSWORD": PASSWORD})
    try:
        with caplog.at_level(logging.DEBUG):
            r.route("hi")
            shown = [repr(r.status()), repr(r.config), repr(r.usage())]
            assert r.status()["state"]["shared_state"]["connected"] is True
            server.stop()  # errors and warnings now
            r.route("hi")
            r.route("hi")
            shown += [repr(r.status()), repr(r.usage())]
        assert r.status()["state"]["shared_state"]["connected"] is False
        assert f"redis://:****@127.0.0.1:{server.port}/0" in shown[0]
        for text in [*shown, caplog.text]:
            assert PASSWORD not in text
    finally:
        r.close()
        server.stop()
