"""LiveState: the engine's view of breakers, budgets, limits; status; reloads."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from router.config.model import (
    BreakerPolicy,
    Budget,
    Config,
    Cost,
    ModelConfig,
    ProviderConfig,
    RuleConfig,
    Settings,
)
from router.engine.routing_state import RoutingState
from router.errors import AuthError, BadRequest, Unavailable
from router.providers import serves_free
from router.runtime.state.live import LiveState, Ticket, usage_path
from router.runtime.state.spend import is_free
from router.runtime.state.usage import MemoryUsageStore, UsageRecord
from router.secrets import Secret
from tests.threads import Workers, run_threads


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_700_000_000.0 + self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def make_config(**kw: object) -> Config:
    providers = {
        "cloud": ProviderConfig("cloud", "litellm", api_key=Secret("sk-canary")),
        "local": ProviderConfig("local", "llama_cpp"),
    }
    models = {
        "gpt": ModelConfig(
            "gpt",
            "cloud",
            "openai/gpt",
            cost=Cost(1_000_000, 0),  # $1 per input token: easy sums
            breaker=BreakerPolicy(failures=2, window=60, cooldown=30),
        ),
        "mini": ModelConfig("mini", "cloud", "openai/mini", cost=Cost(1, 1), rpm=2),
        "gemma": ModelConfig("gemma", "local", "gemma.gguf"),
    }
    rules = (
        RuleConfig("chat", ("gpt", "mini", "gemma")),
        RuleConfig("batch", ("mini",), on_rate_limit="wait"),
    )
    base = Config(providers, models, rules, budgets=(Budget("model", "gpt", daily=2.0),))
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> LiveState:
    s = LiveState(
        make_config(),
        MemoryUsageStore(),
        clock=clock,
        wall=clock.wall,
        sleep=clock.sleep,
        serves_free=serves_free,
    )
    yield s  # type: ignore[misc]
    s.close()


def record(model: str, cost: float, rule: str = "chat") -> UsageRecord:
    return UsageRecord(1_700_001_000.0, model, "cloud", rule, 3, 4, cost, "sha")


def test_is_a_routing_state(state: LiveState) -> None:
    rs: RoutingState = state
    assert rs.unavailable_reason("gpt", "chat") is None
    assert rs.latency("gpt") is None
    assert rs.in_flight("gpt") == 0
    assert [rs.next_index("rr:chat") for _ in range(3)] == [0, 1, 2]
    assert rs.next_index("rr:other") == 0


def test_free_models() -> None:
    cfg = make_config()
    # The provider's adapter says (Provider.free / serves_free); a YAML price wins.
    assert is_free(cfg.models["gemma"], cfg.providers["local"], serves_free)
    assert not is_free(cfg.models["gpt"], cfg.providers["cloud"], serves_free)
    ollama = ProviderConfig("p", "litellm")
    assert is_free(ModelConfig("o", "p", "ollama/llama3"), ollama, serves_free)
    assert is_free(ModelConfig("z", "p", "x", cost=Cost(0, 0)), None, serves_free)
    assert not is_free(ModelConfig("u", "p", "x"), ProviderConfig("p", "litellm"), serves_free)
    # without what providers say, only a YAML price of 0 is free
    assert not is_free(cfg.models["gemma"], cfg.providers["local"], None)


def test_usage_path_is_relative_to_the_config(tmp_path: Path) -> None:
    cfg = make_config(
        settings=Settings(usage_db="data/usage.db"), files=(str(tmp_path / "router.yaml"),)
    )
    assert usage_path(cfg) == str(tmp_path / "data" / "usage.db")
    # unset: SQLite at the default place ($ROUTER_USAGE_DB, set per test by conftest)
    assert usage_path(make_config()) == os.environ["ROUTER_USAGE_DB"]
    assert usage_path(make_config(settings=Settings(usage_db=":memory:"))) == ":memory:"


def test_breaker_opens_and_is_shown(state: LiveState, clock: Clock) -> None:
    for _ in range(2):
        t = state.admit("gpt", "chat", 10, 0.0)
        assert isinstance(t, Ticket)
        state.failed(t, Unavailable("503"))
    why = state.unavailable_reason("gpt", "chat")
    assert why is not None and why.startswith("circuit open until ")
    assert "(2 failures in 60s)" in why
    assert state.admit("gpt", "chat") == why
    st = state.status()["models"]["gpt"]["breaker"]
    assert st["state"] == "open" and st["failures"] == 2 and st["open_until"]
    clock.t += 31
    assert state.status()["models"]["gpt"]["breaker"]["state"] == "half_open"
    probe = state.admit("gpt", "chat")
    assert isinstance(probe, Ticket)
    other = state.admit("gpt", "chat")
    assert isinstance(other, str) and "probe in flight" in other
    state.succeeded(probe, None, latency_s=0.2)
    assert state.unavailable_reason("gpt", "chat") is None
    assert state.status()["models"]["gpt"]["breaker"]["state"] == "closed"


def test_bad_requests_do_not_trip_the_breaker(state: LiveState) -> None:
    for _ in range(5):
        t = state.admit("gpt", "chat")
        assert isinstance(t, Ticket)
        state.failed(t, BadRequest("400"))
    assert state.unavailable_reason("gpt", "chat") is None


def test_auth_error_disables_the_provider_until_its_key_changes(state: LiveState) -> None:
    t = state.admit("gpt", "chat")
    assert isinstance(t, Ticket)
    state.failed(t, AuthError("invalid api key", provider="cloud", status=401))
    why = state.unavailable_reason("mini", "chat")
    assert why == "provider cloud disabled: authentication failed (401): invalid api key"
    assert state.admit("gpt", "chat") == state.unavailable_reason("gpt", "chat")
    assert state.unavailable_reason("gemma", "chat") is None
    assert state.status()["providers"]["cloud"] == {
        "enabled": False,
        "disabled_reason": "authentication failed (401): invalid api key",
    }
    state.update_config(make_config())  # same key: stays disabled
    assert state.unavailable_reason("gpt", "chat") is not None
    cfg = make_config()
    new_cloud = replace(cfg.providers["cloud"], api_key=Secret("sk-new"))
    state.update_config(replace(cfg, providers={**cfg.providers, "cloud": new_cloud}))
    assert state.unavailable_reason("gpt", "chat") is None


def test_auth_error_after_a_reload_removed_its_provider(state: LiveState) -> None:
    t = state.admit("gpt", "chat")
    assert isinstance(t, Ticket)
    cfg = make_config()
    without_cloud = replace(
        cfg,
        providers={"local": cfg.providers["local"]},
        models={"gemma": cfg.models["gemma"]},
        rules=(RuleConfig("chat", ("gemma",)),),
        budgets=(),
    )
    state.update_config(without_cloud)
    # The try admitted before the reload comes back with an auth error.
    state.failed(t, AuthError("invalid api key", provider="cloud", status=401))
    state.update_config(cfg)  # cloud is back, its old settings unknown: enabled
    assert state.unavailable_reason("gpt", "chat") is None
    assert state.status()["providers"]["cloud"]["enabled"] is True


def test_budget_drops_paid_models_but_not_free_ones(state: LiveState) -> None:
    t = state.admit("gpt", "chat", 1, 1.0)
    assert isinstance(t, Ticket)
    state.succeeded(t, record("gpt", 2.5))
    why = state.unavailable_reason("gpt", "chat")
    assert why == "budget spent: model gpt daily $2.00 (spent $2.50)"
    assert state.admit("gpt", "chat", 1, 1.0) == why
    assert state.unavailable_reason("gemma", "chat") is None
    assert state.store.spent("model", "gpt", "day", 1_700_001_000.0) == 2.5


def test_global_budget_spares_the_free_model(clock: Clock) -> None:
    cfg = make_config(budgets=(Budget("global", None, daily=1.0),))
    s = LiveState(cfg, MemoryUsageStore(), clock=clock, wall=clock.wall, serves_free=serves_free)
    s.record_usage(record("mini", 1.0))
    assert s.unavailable_reason("mini", "chat") is not None
    assert s.unavailable_reason("gemma", "chat") is None
    assert isinstance(s.admit("gemma", "chat", 10, 0.0), Ticket)


def test_rate_limit_skips_unless_the_rule_waits(state: LiveState, clock: Clock) -> None:
    for _ in range(2):
        t = state.admit("mini", "chat", 5)
        assert isinstance(t, Ticket)
        state.succeeded(t, record("mini", 0.0))
    why = state.unavailable_reason("mini", "chat")
    assert why is not None and why.startswith("rate limit: 2 rpm reached")
    assert state.unavailable_reason("mini", "batch") is None  # batch waits instead
    assert isinstance(state.admit("mini", "chat"), str)
    before = clock.t
    t = state.admit("mini", "batch", wait_until=float("inf"))
    assert isinstance(t, Ticket)
    assert clock.t - before == pytest.approx(30, abs=0.1)
    assert state.status()["models"]["mini"]["rate_limit"]["rpm"]["limit"] == 2


async def test_async_admit_waits_too(state: LiveState) -> None:
    for _ in range(2):
        t = state.admit("mini", "chat")
        assert isinstance(t, Ticket)
    refused = await state.aadmit("mini", "batch", wait_until=0.0)
    assert isinstance(refused, str) and "rate limit" in refused
    assert isinstance(await state.aadmit("gpt", "chat"), Ticket)


async def test_a_cancelled_rate_limit_wait_gives_the_breaker_probe_back(
    state: LiveState, clock: Clock
) -> None:
    breaker = state.breaker("mini")
    for _ in range(breaker.policy.failures):
        breaker.record_failure()
    clock.t += breaker.policy.cooldown + 1  # half-open: the next admit takes the probe
    while state.rate_limits.try_acquire("mini") is None:
        pass  # rpm spent: a waiting rule waits about 30 s
    waiting = asyncio.create_task(state.aadmit("mini", "batch", wait_until=float("inf")))
    await asyncio.sleep(0.05)
    assert state.breaker_state("mini").probe_in_flight
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not state.breaker_state("mini").probe_in_flight
    assert state.breaker("mini").acquire() is None  # another request may probe now


def test_refusal_gives_back_what_was_taken(state: LiveState) -> None:
    cfg = make_config(budgets=(Budget("model", "mini", daily=0.5),))
    state.update_config(cfg)
    state.record_usage(record("mini", 1.0))
    assert isinstance(state.admit("mini", "chat"), str)  # budget refuses
    # The rpm slot taken before the budget said no was handed back.
    assert state.status()["models"]["mini"]["rate_limit"]["rpm"]["available"] == 2


def test_in_flight_and_latency(state: LiveState, clock: Clock) -> None:
    a = state.admit("gpt", "chat")
    b = state.admit("gpt", "chat")
    assert isinstance(a, Ticket) and isinstance(b, Ticket)
    assert state.in_flight("gpt") == 2
    clock.t += 1.0
    state.succeeded(a)
    state.succeeded(a)  # a second end is ignored
    assert state.in_flight("gpt") == 1
    assert state.latency("gpt") == pytest.approx(1.0)
    state.failed(b)
    assert state.in_flight("gpt") == 0
    c = state.admit("gpt", "chat")
    assert isinstance(c, Ticket)
    state.succeeded(c, latency_s=2.0)
    assert state.latency("gpt") == pytest.approx(1.2)  # EWMA, alpha 0.2
    assert state.status()["models"]["gpt"]["latency_ms"] == 1200.0


def test_update_config_keeps_state_of_models_that_remain(state: LiveState, clock: Clock) -> None:
    for _ in range(2):
        t = state.admit("gpt", "chat")
        assert isinstance(t, Ticket)
        state.failed(t, Unavailable("503"))
    t = state.admit("gemma", "chat")
    assert isinstance(t, Ticket)
    state.succeeded(t, latency_s=0.5)
    state.record_usage(record("gpt", 2.0))
    cfg = make_config()
    models = dict(cfg.models)
    del models["gemma"]
    gpt = replace(models["gpt"], breaker=BreakerPolicy(failures=2, window=60, cooldown=5))
    models["gpt"] = gpt
    state.update_config(replace(cfg, models=models, rules=(RuleConfig("chat", ("gpt", "mini")),)))
    why = state.unavailable_reason("gpt", "chat")
    assert why is not None and why.startswith("circuit open")  # breaker carried
    assert state.latency("gemma") is None
    assert "gemma" not in state.status()["models"]
    assert state.budgets.reason("gpt", "chat") is not None  # spend carried
    clock.t += 6  # the new, shorter cooldown applies
    assert state.breaker_state("gpt").state == "half_open"


def test_status_is_complete(state: LiveState) -> None:
    state.record_usage(record("gpt", 0.25))
    st = state.status()
    assert set(st) == {"models", "providers", "budgets", "spend", "usage_db"}
    assert st["spend"]["today_usd"] == 0.25
    assert st["models"]["gemma"]["free"] is True
    assert st["models"]["gpt"]["breaker"]["state"] == "closed"
    assert st["budgets"][0]["name"] == "gpt"
    assert "sk-canary" not in repr(st)


def test_sqlite_spend_survives_a_restart(tmp_path: Path, clock: Clock) -> None:
    cfg = make_config(
        settings=Settings(usage_db="usage.db"), files=(str(tmp_path / "router.yaml"),)
    )
    s = LiveState(cfg, clock=clock, wall=clock.wall)
    t = s.admit("gpt", "chat", 1, 1.0)
    assert isinstance(t, Ticket)
    s.succeeded(t, replace(record("gpt", 2.0), ts=clock.wall()))
    s.close()
    assert (tmp_path / "usage.db").exists()
    again = LiveState(cfg, clock=clock, wall=clock.wall)
    assert again.unavailable_reason("gpt", "chat") == (
        "budget spent: model gpt daily $2.00 (spent $2.00)"
    )
    assert again.status()["usage_db"] == str(tmp_path / "usage.db")
    again.close()


def test_threads_admitting_concurrently_keep_counts_straight(state: LiveState) -> None:
    def worker() -> None:
        for _ in range(200):
            t = state.admit("gemma", "chat")
            assert isinstance(t, Ticket)
            state.succeeded(t, latency_s=0.01)

    run_threads(worker, [()] * 8)
    assert state.in_flight("gemma") == 0
    assert state.latency("gemma") == pytest.approx(0.01)


def test_unusable_usage_db_on_reload_keeps_the_old_store(tmp_path: Path, clock: Clock) -> None:
    cfg = make_config(settings=Settings(usage_db="usage.db"), files=(str(tmp_path / "r.yaml"),))
    s = LiveState(cfg, clock=clock, wall=clock.wall)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    s.update_config(replace(cfg, settings=Settings(usage_db=str(blocker / "usage.db"))))
    assert s.status()["usage_db"] == str(tmp_path / "usage.db")
    s.record_usage(record("gpt", 0.5))
    s.close()


class SlowStore(MemoryUsageStore):
    """A store whose reads wait, once armed, until a request has gone through."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.reading = threading.Event()
        self.request_done = threading.Event()
        self.waits: list[bool] = []

    def spent(self, scope: str, name: str | None, period: str, now: float) -> float:
        if self.armed:
            self.reading.set()
            self.waits.append(self.request_done.wait(10))
        return super().spent(scope, name, period, now)


def test_requests_go_on_while_a_reload_seeds_a_new_budget(clock: Clock) -> None:
    store = SlowStore()
    state = LiveState(make_config(), store, clock=clock, wall=clock.wall)
    new_budget = Budget("model", "mini", daily=1.0)
    store.armed = True
    workers = Workers(timeout=20)
    workers.start(
        state.update_config,
        make_config(budgets=(Budget("model", "gpt", daily=2.0), new_budget)),
    )
    assert store.reading.wait(10)

    def request() -> None:
        # gpt has a budget already: its reserve and commit must not wait on the reload.
        t = state.admit("gpt", "chat", 1, 0.5)
        assert isinstance(t, Ticket)
        state.succeeded(t, record("gpt", 0.25))
        store.request_done.set()

    workers.start(request)
    workers.join()
    assert store.waits == [True]
    assert state.status()["budgets"][1]["name"] == "mini"
    state.close()


class LockedStore(MemoryUsageStore):
    def record(self, rec: UsageRecord) -> None:
        raise sqlite3.OperationalError("database is locked")


def test_a_served_try_counts_even_when_the_store_cannot_write(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    state = LiveState(make_config(), LockedStore(), clock=clock, wall=clock.wall)
    t = state.admit("gpt", "chat", 1, 0.5)
    assert isinstance(t, Ticket)
    with caplog.at_level(logging.ERROR, logger="router.state"):
        state.succeeded(t, record("gpt", 2.0), latency_s=0.5)  # does not raise
    assert "database is locked" in caplog.text
    assert state.in_flight("gpt") == 0
    assert state.latency("gpt") == 0.5
    assert state.budgets.reason("gpt", "chat") is not None  # counted in memory
    state.close()
