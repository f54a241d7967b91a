"""Failures, fallbacks, breakers and spend, end to end: the Router, the litellm adapter
and fake provider servers on 127.0.0.1 with injected faults. Backoffs are tiny so the
suite stays fast; behaviour is asserted, never speed."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from router import BudgetExceeded, NoRouteError, ProviderError, Router
from router.cli import main as cli_main
from router.config import load_config
from router.runtime.state import stores as state_module
from router.runtime.state.live import LiveState
from router.runtime.state.ratelimit import Limit, RateLimiter
from router.testing import (
    FakeProviderServer,
    context_overflow,
    disconnect,
    rate_limited,
    reply,
    server_error,
    slow,
    unauthorized,
)
from tests.providers.litellm_helpers import WEATHER_TOOL
from tests.threads import run_threads

RETRYABLE_KINDS = {"rate_limited", "unavailable", "timeout", "skipped"}


@pytest.fixture
def flaky() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="flaky says hi") as server:
        yield server


@pytest.fixture
def good() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="good says hi") as server:
        yield server


MakeRouter = Callable[..., Router]


class ManualClock:
    """Monotonic time that moves only when the test says so."""

    def __init__(self) -> None:
        self.t = time.monotonic()

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return time.time() + (self.t - time.monotonic())

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def make_router(
    tmp_path: Path, flaky: FakeProviderServer, good: FakeProviderServer
) -> Iterator[MakeRouter]:
    """A Router over a YAML file: providers `flaky` and `good`, then `body` (models, rules)."""
    routers: list[Router] = []

    def build(
        body: str,
        *,
        retry: str = "retries: 2, backoff: 0.001, max_backoff: 0.005",
        timeout: float = 5.0,
        clock: ManualClock | None = None,
    ) -> Router:
        path = tmp_path / "router.yaml"
        path.write_text(
            "providers:\n"
            f"  flaky: {{type: litellm, api_base: '{flaky.base_url}', api_key: sk-fake,"
            f" timeout: {timeout}, {retry}}}\n"
            f"  good: {{type: litellm, api_base: '{good.base_url}', api_key: sk-fake,"
            f" timeout: 5, {retry}}}\n"
            "settings:\n  usage_db: usage.db\n" + body
        )
        if clock is None:
            r = Router.from_config(path)
        else:  # breakers and holds on the test's clock: a cooldown passes at once
            config = load_config(path)
            state = LiveState(config, clock=clock, wall=clock.wall)
            r = Router(config, path=path, state=state)
        routers.append(r)
        return r

    yield build
    for r in routers:
        r.close()


TWO_MODELS = """
models:
  a: {provider: flaky, model: openai/gpt-4o-mini, cost: {input: 1, output: 2},
      breaker: {failures: 3, window: 30, cooldown: 0.3}}
  b: {provider: good, model: openai/gpt-4o-mini, cost: {input: 1, output: 2}}
rules:
  - name: default
    targets: [a, b]
"""


# `make test` runs 400; CI (or anyone) can set ROUTER_SOAK_REQUESTS=2000 for the full soak,
# which `python bench/faults.py -n 2000 --rates 0.3` also runs, beside litellm.Router.
SOAK_REQUESTS = int(os.environ.get("ROUTER_SOAK_REQUESTS", "400"))


@pytest.mark.slow
def test_soak_requests_with_30_percent_faults_all_succeed(
    make_router: MakeRouter, flaky: FakeProviderServer, good: FakeProviderServer
) -> None:
    flaky.fault_rate = 0.3
    flaky.fault_kinds = ("rate_limited", "server_error", "disconnect", "slow")
    flaky._random.seed(1234)  # "slow" answers after 1 s: past the 0.1 s timeout
    r = make_router(TWO_MODELS.replace("failures: 3", "failures: 20"), timeout=0.1)
    served: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(n):
            res = r.route(f"request {i}")  # every one must succeed: an error fails the test
            with lock:
                served[res.model] += 1
                kinds.update(a.error for a in res.attempts)
            assert res.text == ("flaky says hi" if res.model == "a" else "good says hi")
            assert res.cost_usd > 0

    run_threads(worker, [(SOAK_REQUESTS // 4,)] * 4)
    assert sum(served.values()) == SOAK_REQUESTS // 4 * 4
    assert served["a"] > 0 and served["b"] > 0
    # the flaky model keeps being tried; under a loaded CPU its breaker opens more often
    # (timeouts are wall-clock), so the floor is loose
    assert len(flaky.requests) > SOAK_REQUESTS // 40
    assert set(kinds) <= RETRYABLE_KINDS
    assert kinds["rate_limited"] + kinds["unavailable"] + kinds["timeout"] > 0
    usage = {row["model"]: row["requests"] for row in r.usage(by=("model",))}
    assert usage == dict(served)


async def test_async_requests_with_faults_all_succeed(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    flaky.fault_rate = 0.3
    flaky.fault_kinds = ("server_error", "disconnect")
    r = make_router(TWO_MODELS.replace("failures: 3", "failures: 1000"))
    results = await asyncio.gather(*(r.aroute(f"q {i}") for i in range(200)))
    assert len(results) == 200
    assert all(res.model in ("a", "b") for res in results)
    assert any(res.attempts for res in results)


def test_breaker_opens_then_a_probe_closes_it(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    clock = ManualClock()
    r = make_router(TWO_MODELS, retry="retries: 0", clock=clock)
    flaky.enqueue(server_error(), server_error(500), server_error(503))
    for _ in range(3):
        res = r.route("hello")
        assert res.model == "b"
        assert [(a.model, a.error) for a in res.attempts] == [("a", "unavailable")]
    calls = len(flaky.requests)
    decision = r.explain("hello")
    why = decision.rejected["a"]
    assert why.startswith("circuit open until ") and why.endswith("(3 failures in 30s)")
    breaker = r.status()["state"]["models"]["a"]["breaker"]
    assert breaker["state"] == "open" and breaker["failures"] == 3 and breaker["open_until"]
    assert r.route("hello").model == "b"
    assert len(flaky.requests) == calls  # skipped: not called while open
    clock.advance(0.35)
    assert r.status()["state"]["models"]["a"]["breaker"]["state"] == "half_open"
    assert r.explain("hello").model == "a"
    res = r.route("hello")  # the probe
    assert res.model == "a" and res.attempts == ()
    assert r.status()["state"]["models"]["a"]["breaker"]["state"] == "closed"


def test_failed_probe_opens_the_breaker_again(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    clock = ManualClock()
    r = make_router(TWO_MODELS, retry="retries: 0", clock=clock)
    flaky.enqueue(*(server_error() for _ in range(4)))
    for _ in range(3):
        r.route("hello")
    clock.advance(0.35)
    res = r.route("hello")  # the probe fails: b serves
    assert res.model == "b" and res.attempts[0].model == "a"
    why = r.explain("hello").rejected["a"]
    assert why.startswith("circuit open until") and "(probe failed)" in why
    assert r.status()["state"]["models"]["a"]["breaker"]["opened"] == 2


def test_retry_after_is_honoured_on_the_only_candidate(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(
        TWO_MODELS.replace("targets: [a, b]", "targets: [a]"),
        retry="retries: 2, backoff: 0.001, max_backoff: 0.005",
    )
    flaky.enqueue(rate_limited(retry_after=1), reply("after the wait"))
    started = time.monotonic()
    res = r.route("hello")
    waited = time.monotonic() - started
    assert res.text == "after the wait" and res.model == "a"
    assert [a.error for a in res.attempts] == ["rate_limited"]
    assert waited >= 1.0  # the server's 1 s, not the 5 ms backoff
    assert len(flaky.requests) == 2


def test_retry_after_holds_the_model_for_every_request(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(TWO_MODELS)
    flaky.enqueue(rate_limited(retry_after=30))
    res = r.route("hello")
    # 30 s is longer than this model's backoff allows and b can serve now: move on.
    assert res.model == "b"
    assert [(a.model, a.error) for a in res.attempts] == [("a", "rate_limited")]
    res = r.route("again")  # a is held: not even tried, and the trace says why
    assert res.model == "b" and res.attempts == ()
    why = res.decision.rejected["a"]
    assert why.startswith("rate limited by the provider: retry after")
    assert len(flaky.requests) == 1
    assert r.explain("hello").rejected["a"] == why
    assert r.status()["state"]["models"]["a"]["held"] == why


def test_auth_error_disables_the_provider_with_a_reason(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(TWO_MODELS)
    flaky.enqueue(unauthorized())
    res = r.route("hello")
    assert res.model == "b"
    assert [(a.model, a.error) for a in res.attempts] == [("a", "auth")]  # not retried
    assert len(flaky.requests) == 1
    why = r.explain("hello").rejected["a"]
    assert why.startswith("provider flaky disabled: authentication failed (401)")
    provider = r.status()["state"]["providers"]["flaky"]
    assert provider["enabled"] is False and "authentication failed" in provider["disabled_reason"]
    assert "sk-fake" not in str(r.status())


def test_bad_request_is_not_retried(make_router: MakeRouter, flaky: FakeProviderServer) -> None:
    from router.testing import bad_request

    r = make_router(TWO_MODELS)
    flaky.enqueue(bad_request("unsupported parameter"))
    res = r.route("hello")
    assert [(a.model, a.error) for a in res.attempts] == [("a", "bad_request")]
    assert len(flaky.requests) == 1
    assert r.status()["state"]["models"]["a"]["breaker"]["failures"] == 0


def test_context_overflow_moves_to_a_larger_window(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(
        """
models:
  small: {provider: flaky, model: openai/gpt-4o-mini, context: 8000}
  same: {provider: good, model: openai/gpt-4o-mini, context: 8000}
  large: {provider: good, model: openai/gpt-4o, context: 128000}
rules:
  - name: default
    targets: [small, same, large]
"""
    )
    flaky.enqueue(context_overflow())
    res = r.route("a prompt the estimate thought would fit")
    assert res.model == "large"
    assert [(a.model, a.error) for a in res.attempts] == [
        ("small", "context_overflow"),
        ("same", "skipped"),
    ]
    assert len(flaky.requests) == 1


def test_rule_fallback_takes_over_when_every_candidate_fails(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(
        """
models:
  a: {provider: flaky, model: openai/gpt-4o-mini}
  b: {provider: good, model: openai/gpt-4o-mini}
rules:
  - name: primary
    when: {use_case: chat}
    targets: [a]
    retries: 1
    fallback: backup
  - name: backup
    when: {use_case: never}
    targets: [b]
  - name: default
    targets: [a]
"""
    )
    flaky.enqueue(server_error(), server_error())
    res = r.route("hello", use_case="chat")
    assert (res.model, res.rule) == ("b", "backup")
    assert res.decision.rule == "primary"  # what was decided, and what really served
    assert [(a.model, a.error) for a in res.attempts] == [("a", "unavailable")] * 2


def test_deadline_bounds_retries_and_fallbacks(
    make_router: MakeRouter, flaky: FakeProviderServer, good: FakeProviderServer
) -> None:
    r = make_router(TWO_MODELS.replace("targets: [a, b]", "targets: [a, b]\n    deadline: 0.4"))
    flaky.enqueue(*(slow(3) for _ in range(3)))
    good.enqueue(slow(3))
    with pytest.raises(NoRouteError, match=r"deadline of 0.4s reached") as info:
        r.route("hello")
    assert [(a.model, a.error) for a in info.value.attempts] == [("a", "timeout")]
    # The one call took the whole deadline (its share: no less than MIN_SHARE when that
    # fits); nothing was retried or tried after it. Creating the adapter (importing
    # litellm, seconds when this test runs alone) does not count against the deadline.
    assert (len(flaky.requests), len(good.requests)) == (1, 0)


def test_every_candidate_failing_lists_every_attempt(
    make_router: MakeRouter, flaky: FakeProviderServer, good: FakeProviderServer
) -> None:
    r = make_router(TWO_MODELS, retry="retries: 1, backoff: 0.001, max_backoff: 0.001")
    flaky.enqueue(server_error(), server_error())
    good.enqueue(server_error(503), server_error(503))
    with pytest.raises(NoRouteError, match=r"every candidate failed: a \(unavailable x2\)") as info:
        r.route("hello")
    assert [(a.model, a.error) for a in info.value.attempts] == [
        ("a", "unavailable"),
        ("a", "unavailable"),
        ("b", "unavailable"),
        ("b", "unavailable"),
    ]
    assert all(a.duration_s > 0 for a in info.value.attempts)


def test_stream_fails_over_before_the_first_token(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(TWO_MODELS, retry="retries: 0")
    flaky.enqueue(server_error())
    chunks = list(r.route("hello", stream=True))
    assert "".join(c.text for c in chunks) == "good says hi"
    assert {c.model for c in chunks} == {"b"}
    final = chunks[-1].result
    assert final is not None and final.model == "b"
    assert [(a.model, a.error) for a in final.attempts] == [("a", "unavailable")]


def test_stream_error_after_the_first_token_is_partial(
    make_router: MakeRouter, flaky: FakeProviderServer, good: FakeProviderServer
) -> None:
    r = make_router(TWO_MODELS)
    flaky.enqueue(disconnect(after=1))
    got: list[str] = []
    with pytest.raises(ProviderError) as info:
        for chunk in r.route("hello", stream=True):
            got.append(chunk.text)
    assert info.value.partial is True
    assert got and "".join(got) != "flaky says hi"
    assert good.requests == []  # no silent switch halfway through an answer


async def test_async_stream_fails_over(make_router: MakeRouter, flaky: FakeProviderServer) -> None:
    r = make_router(TWO_MODELS, retry="retries: 0")
    flaky.enqueue(rate_limited(retry_after=None))
    stream = await r.aroute("hello", stream=True)
    chunks = [c async for c in stream]
    assert chunks[-1].result is not None and chunks[-1].result.model == "b"


CALLS = [
    {"name": "get_weather", "arguments": {"city": "Oslo", "days": [1, 2, 3]}},
    {"name": "get_weather", "arguments": {"city": "Bergen", "days": []}},
]
TOOL_MODELS = """
models:
  a: {provider: flaky, model: openai/gpt-4o-mini, capabilities: [tools]}
  b: {provider: good, model: openai/gpt-4o-mini, capabilities: [tools]}
rules:
  - name: default
    targets: [a, b]
"""


def _assert_tool_calls(calls: object) -> None:
    assert isinstance(calls, tuple)
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        c["arguments"] for c in CALLS
    ]
    assert [(c["id"], c["type"]) for c in calls] == [("call_0", "function"), ("call_1", "function")]


def test_streamed_tool_calls_reach_the_result_after_a_failover(
    make_router: MakeRouter, flaky: FakeProviderServer, good: FakeProviderServer
) -> None:
    r = make_router(TOOL_MODELS, retry="retries: 0")
    flaky.enqueue(server_error())
    good.enqueue(reply("Let me check.", tool_calls=CALLS))

    chunks = list(r.route("Weather in Oslo and Bergen?", stream=True, tools=[WEATHER_TOOL]))

    assert "".join(c.text for c in chunks) == "Let me check."
    assert all(c.result is None for c in chunks[:-1])
    final = chunks[-1].result
    assert final is not None and final.model == "b"
    assert final.finish_reason == "tool_calls"
    _assert_tool_calls(final.tool_calls)
    assert [(a.model, a.error) for a in final.attempts] == [("a", "unavailable")]
    assert good.last_request.body["tools"] == [WEATHER_TOOL]
    assert good.last_request.body["stream"] is True
    # The same calls, in the same shape, as a request that does not stream.
    flaky.enqueue(reply("", tool_calls=CALLS))
    whole = r.route("Weather in Oslo and Bergen?", tools=[WEATHER_TOOL])
    assert whole.model == "a" and whole.tool_calls == final.tool_calls


async def test_async_streamed_tool_calls_reach_the_result(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(TOOL_MODELS)
    flaky.enqueue(reply("", tool_calls=CALLS))
    stream = await r.aroute("Weather in Oslo and Bergen?", stream=True, tools=[WEATHER_TOOL])
    chunks = [c async for c in stream]
    final = chunks[-1].result
    assert final is not None and final.model == "a" and final.text == ""
    _assert_tool_calls(final.tool_calls)


def test_streams_without_tool_calls_have_none(make_router: MakeRouter) -> None:
    r = make_router(TOOL_MODELS)
    final = list(r.route("hello", stream=True, tools=[WEATHER_TOOL]))[-1].result
    assert final is not None and final.text == "flaky says hi"
    assert final.tool_calls is None and final.finish_reason == "stop"


BUDGETED = """
models:
  paid: {provider: good, model: openai/gpt-4o-mini, cost: {input: 1000, output: 1000}}
  free: {provider: flaky, model: openai/local, cost: {input: 0, output: 0}}
rules:
  - name: strict
    when: {use_case: strict}
    targets: [paid]
    on_budget: error
  - name: default
    targets: [paid, free]
budgets:
  models: {paid: {daily: 0.05}}
"""


def test_spend_survives_a_restart_and_the_cli_prints_it(
    make_router: MakeRouter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = make_router(BUDGETED)
    costs = [r.route("hello").cost_usd for _ in range(3)]
    assert all(c > 0 for c in costs)
    r.close()
    again = Router.from_config(tmp_path / "router.yaml")
    try:
        spend = again.status()["state"]["spend"]["today_usd"]
        assert spend == pytest.approx(sum(costs))
        paid = next(b for b in again.status()["state"]["budgets"] if b["name"] == "paid")
        assert paid["spent_usd"] == pytest.approx(sum(costs))
    finally:
        again.close()
    assert cli_main(["usage", str(tmp_path / "router.yaml")]) == 0
    out = capsys.readouterr().out
    assert "paid" in out and "default" in out
    assert f"{sum(costs):.6f}" in out


def test_spent_budget_falls_back_to_the_free_model_or_raises(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(BUDGETED)
    while (res := r.route("hello")).model == "paid":
        pass
    assert res.model == "free"
    assert r.explain("hello").rejected["paid"].startswith("budget spent: model paid daily $0.05")
    with pytest.raises(BudgetExceeded, match="rule strict: paid: budget spent"):
        r.route("hello", use_case="strict")


def test_16_threads_overshoot_a_daily_budget_by_at_most_one_request(
    make_router: MakeRouter,
) -> None:
    r = make_router(BUDGETED.replace("daily: 0.05", "daily: 1.0"))
    costs: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                res = r.route("hello", use_case="strict", max_tokens=16)
            except BudgetExceeded:
                return
            with lock:
                costs.append(res.cost_usd)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(costs) > 16
    assert 1.0 <= sum(costs) <= 1.0 + max(costs) + 1e-9


def test_a_model_at_its_rpm_is_skipped_with_the_reason(
    make_router: MakeRouter, flaky: FakeProviderServer
) -> None:
    r = make_router(TWO_MODELS.replace("cooldown: 0.3}}", "cooldown: 0.3}, rpm: 2}"))
    assert [r.route("hello").model for _ in range(3)] == ["a", "a", "b"]
    why = r.explain("hello").rejected["a"]
    assert why.startswith("rate limit: 2 rpm reached (next slot in")
    assert r.status()["state"]["models"]["a"]["rate_limit"]["rpm"]["limit"] == 2
    assert len(flaky.requests) == 2


# -- on_rate_limit: wait ---------------------------------------------------------------------


class VirtualTime:
    """The rate limiter's clock: the monotonic time it was made at plus whatever it
    slept, which returns at once. A 30 s wait for an rpm slot is taken, and costs no
    real time; real time (a slow first import of litellm) does not refill a bucket."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.offset = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.start + self.offset

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.offset += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def limiter_time(monkeypatch: pytest.MonkeyPatch) -> VirtualTime:
    """Routers built in the test get rate limiters on virtual time."""
    clock = VirtualTime()

    def limiter(limits: Mapping[str, Limit], **_: object) -> RateLimiter:
        return RateLimiter(limits, clock=clock, sleep=clock.sleep, asleep=clock.asleep)

    monkeypatch.setattr(state_module, "RateLimiter", limiter)  # what LocalBackend makes
    return clock


def _rpm_rule(on_rate_limit: str, deadline: float) -> str:
    return TWO_MODELS.replace("cooldown: 0.3}}", "cooldown: 0.3}, rpm: 2}").replace(
        "targets: [a, b]",
        f"targets: [a, b]\n    on_rate_limit: {on_rate_limit}\n    deadline: {deadline}",
    )


def test_on_rate_limit_wait_waits_for_a_slot_on_the_same_model(
    make_router: MakeRouter,
    flaky: FakeProviderServer,
    good: FakeProviderServer,
    limiter_time: VirtualTime,
) -> None:
    r = make_router(_rpm_rule("wait", deadline=60))
    served = [r.route("hello") for _ in range(2)]
    assert limiter_time.slept == []
    assert r.explain("hello").model == "a"  # at its rpm, yet not dropped for this rule

    third = r.route("hello")

    assert [res.model for res in served] == ["a", "a"]
    assert third.model == "a" and third.text == "flaky says hi"
    assert third.attempts == ()  # waited: neither skipped nor failed
    # 2 rpm refill one request every 30 s: that is what it waited (on the virtual clock).
    assert sum(limiter_time.slept) == pytest.approx(30, abs=1)
    assert len(flaky.requests) == 3 and good.requests == []


async def test_on_rate_limit_wait_in_async_routes(
    make_router: MakeRouter, good: FakeProviderServer, limiter_time: VirtualTime
) -> None:
    r = make_router(_rpm_rule("wait", deadline=60))
    results = [await r.aroute("hello") for _ in range(3)]
    assert [(res.model, res.attempts) for res in results] == [("a", ())] * 3
    assert sum(limiter_time.slept) == pytest.approx(30, abs=1)
    assert good.requests == []


def test_on_rate_limit_wait_skips_when_the_slot_is_past_the_deadline(
    make_router: MakeRouter,
    flaky: FakeProviderServer,
    good: FakeProviderServer,
    limiter_time: VirtualTime,
) -> None:
    r = make_router(_rpm_rule("wait", deadline=10))  # the next slot is 30 s away
    assert [r.route("hello").model for _ in range(2)] == ["a", "a"]
    third = r.route("hello")
    assert third.model == "b" and third.text == "good says hi"
    [attempt] = third.attempts
    assert (attempt.model, attempt.error) == ("a", "skipped")
    assert attempt.message.startswith("rate limit: 2 rpm reached (next slot in")
    assert limiter_time.slept == []  # no sleeping for a slot it could not use
    assert len(flaky.requests) == 2 and len(good.requests) == 1


def test_on_rate_limit_skip_goes_to_the_other_candidate(
    make_router: MakeRouter,
    flaky: FakeProviderServer,
    good: FakeProviderServer,
    limiter_time: VirtualTime,
) -> None:
    r = make_router(_rpm_rule("skip", deadline=60))
    assert [r.route("hello").model for _ in range(2)] == ["a", "a"]
    third = r.route("hello")
    assert third.model == "b" and third.text == "good says hi"
    assert third.attempts == ()  # dropped when deciding, with the reason in the trace
    assert third.decision.rejected["a"].startswith("rate limit: 2 rpm reached (next slot in")
    assert limiter_time.slept == []
    assert len(flaky.requests) == 2 and len(good.requests) == 1
