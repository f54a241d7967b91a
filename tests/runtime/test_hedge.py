"""A deadline's share per call, and hedged requests, over real HTTP to fake providers.

Both adapters that speak HTTP are used: the native `type: openai` one (whose blocking
calls can be stopped: the fake server sees the hang-up) and litellm's. Who answered,
what was recorded and what each server saw are asserted; never how long it took.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from router import ConfigError, NoRouteError, Router
from router.config import load_config
from router.testing import FakeProviderServer, Outcome, reply, server_error, slow

SLOW = 30.0  # seconds the slow primary would take: far past any deadline used here


@pytest.fixture
def primary() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="primary answers") as server:
        yield server


@pytest.fixture
def second() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="second answers") as server:
        yield server


MakeRouter = Callable[..., Router]


@pytest.fixture
def make_router(
    tmp_path: Path, primary: FakeProviderServer, second: FakeProviderServer
) -> Iterator[MakeRouter]:
    """A Router over a YAML file: models `a` (on `primary`), `b` and `c` (on `second`),
    all of `kind` (openai | litellm); rule `main` (targets a, b) with `rule` added."""
    routers: list[Router] = []

    def build(rule: str, *, kind: str = "openai", timeout: float = 60, third: str = "") -> Router:
        model = "gpt-4o-mini" if kind == "openai" else "openai/gpt-4o-mini"
        path = tmp_path / "router.yaml"
        path.write_text(
            "providers:\n"
            f"  p: {{type: {kind}, api_base: '{primary.base_url}', api_key: sk-fake,"
            f" timeout: {timeout}, retries: 2, backoff: 0.001, max_backoff: 0.005}}\n"
            f"  s: {{type: {kind}, api_base: '{second.base_url}', api_key: sk-fake,"
            f" timeout: {timeout}, retries: 2, backoff: 0.001, max_backoff: 0.005}}\n"
            "models:\n"
            f"  a: {{provider: p, model: {model}, cost: {{input: 1, output: 2}}}}\n"
            f"  b: {{provider: s, model: {model}, cost: {{input: 1, output: 2}}}}\n"
            f"  c: {{provider: s, model: {model}, cost: {{input: 1, output: 2}}}}\n"
            "rules:\n"
            f"{third}\n"
            "  - name: main\n"
            "    targets: [a, b]\n"
            f"    {rule}\n"
            "settings:\n  usage_db: usage.db\n"
        )
        r = Router.from_config(path)
        routers.append(r)
        return r

    yield build
    for r in routers:
        r.close()


def spend_rows(tmp_path: Path) -> list[tuple[str, int, int]]:
    with sqlite3.connect(tmp_path / "usage.db") as db:
        rows = db.execute("SELECT model, input_tokens, output_tokens FROM usage").fetchall()
    return [(str(m), int(i), int(o)) for m, i, o in rows]


# -- the deadline's share --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "litellm"])
def test_a_slow_primary_leaves_the_fallback_its_share_of_the_deadline(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer, kind: str
) -> None:
    r = make_router("deadline: 2", kind=kind)
    primary.enqueue(slow(SLOW))
    res = r.route("hello")
    assert (res.model, res.text) == ("b", "second answers")
    assert [(a.model, a.error) for a in res.attempts] == [("a", "timeout")]
    assert len(primary.requests) == 1  # cut to its share, and not retried in the rest
    assert len(second.requests) == 1


def test_a_chain_of_slow_candidates_still_reaches_the_last(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer
) -> None:
    r = make_router(
        "deadline: 3\n    fallback: spare",
        third="  - {name: spare, when: {tags: [spare]}, targets: [c]}",
    )
    primary.enqueue(slow(SLOW))
    second.enqueue(slow(SLOW), reply("c answers"))
    res = r.route("hello")
    assert (res.model, res.text) == ("c", "c answers")
    assert [(a.model, a.error) for a in res.attempts] == [("a", "timeout"), ("b", "timeout")]


# -- hedging ---------------------------------------------------------------------------


def test_a_slow_primary_is_hedged_and_the_second_answer_wins(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer, tmp_path: Path
) -> None:
    r = make_router("hedge: {after_ms: 50}")
    primary.enqueue(slow(SLOW))
    res = r.route("hello")
    assert (res.model, res.text) == ("b", "second answers")
    [loser] = res.attempts
    assert (loser.model, loser.error) == ("a", "cancelled")
    assert "hedge: b answered first" in loser.message
    # The primary's connection was closed: the server saw the client hang up.
    _wait_for(lambda: primary.disconnects == 1)
    # One answer was really given, and billed once.
    assert spend_rows(tmp_path) == [("b", 10, 2)]
    assert "hedge: after 50 ms" in r.explain("hello").describe()


async def test_async_routes_hedge_too(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer, tmp_path: Path
) -> None:
    r = make_router("hedge: {after_ms: 50}")
    primary.enqueue(slow(SLOW))
    res = await r.aroute("hello")
    assert (res.model, res.text) == ("b", "second answers")
    assert [(a.model, a.error) for a in res.attempts] == [("a", "cancelled")]
    for _ in range(500):  # bounded: the cancelled task closed its connection
        if primary.disconnects:
            break
        await asyncio.sleep(0.01)
    assert primary.disconnects == 1
    assert spend_rows(tmp_path) == [("b", 10, 2)]


def test_a_fast_primary_starts_no_hedge(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer, tmp_path: Path
) -> None:
    r = make_router("hedge: {after_ms: 60000}\n    deadline: 120")
    for _ in range(3):
        res = r.route("hello")
        assert (res.model, res.attempts) == ("a", ())
    assert len(primary.requests) == 3
    assert second.requests == []
    assert [m for m, _, _ in spend_rows(tmp_path)] == ["a"] * 3


def test_when_both_fail_the_fallback_goes_on(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer, tmp_path: Path
) -> None:
    r = make_router(
        "hedge: {after_ms: 50}\n    fallback: backup",
        third="  - {name: backup, when: {tags: [backup]}, targets: [c]}",
    )
    primary.enqueue(late_failure())
    second.enqueue(server_error(500), reply("backup answers"))
    res = r.route("hello")
    assert (res.model, res.rule, res.text) == ("c", "backup", "backup answers")
    kinds = dict((a.model, a.error) for a in res.attempts)
    assert kinds["b"] == "unavailable"  # failed at once: c started in its place
    assert kinds["a"] in ("unavailable", "cancelled")  # failed late, or lost to c
    assert spend_rows(tmp_path) == [("c", 10, 2)]


def test_every_call_in_a_race_failing_is_no_route(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer
) -> None:
    r = make_router("hedge: {after_ms: 50}")
    primary.enqueue(late_failure())
    second.enqueue(server_error(500))
    with pytest.raises(NoRouteError, match="every candidate failed") as info:
        r.route("hello")
    assert sorted((a.model, a.error) for a in info.value.attempts) == [
        ("a", "unavailable"),
        ("b", "unavailable"),
    ]


def test_the_litellm_adapter_hedges_and_discards_the_loser(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer, tmp_path: Path
) -> None:
    r = make_router("hedge: {after_ms: 50}", kind="litellm", timeout=3)
    primary.enqueue(slow(SLOW))
    res = r.route("hello")
    assert (res.model, res.text) == ("b", "second answers")
    assert [(a.model, a.error) for a in res.attempts] == [("a", "cancelled")]
    assert [m for m, _, _ in spend_rows(tmp_path)] == ["b"]


def test_streams_do_not_hedge(
    make_router: MakeRouter, primary: FakeProviderServer, second: FakeProviderServer
) -> None:
    r = make_router("hedge: {after_ms: 50}")
    primary.enqueue(reply(delay=0.3))
    chunks = list(r.route("hello", stream=True))
    assert chunks[-1].result is not None and chunks[-1].result.model == "a"
    assert second.requests == []


def test_hedge_after_ms_is_checked(tmp_path: Path) -> None:
    def config(hedge: str) -> Path:
        path = tmp_path / "h.yaml"
        path.write_text(
            "providers: {m: {type: mock}}\nmodels: {x: {provider: m}, y: {provider: m}}\n"
            f"rules:\n  - {{name: r, targets: [x, y], deadline: 2, hedge: {hedge}}}\n"
        )
        return path

    assert load_config(config("{after_ms: 800}")).rules[0].hedge is not None
    for bad, words in [
        ("{after_ms: 0}", "after_ms"),
        ("{after_ms: -5}", "after_ms"),
        ("{after_ms: 1e9}", "after_ms"),
        ("{}", "after_ms"),
        ("{after_ms: 2000}", "never starts"),
    ]:
        with pytest.raises(ConfigError, match=words):
            load_config(config(bad))


def late_failure() -> Outcome:
    """A 500 that comes well after a 50 ms hedge has started."""
    return replace(server_error(500), delay=0.3)


def _wait_for(check: Callable[[], bool]) -> None:
    """The server notices a hang-up on its next look (every 20 ms); bounded."""
    for _ in range(500):
        if check():
            return
        time.sleep(0.01)
    assert check()
