"""The response cache on the request path: real HTTP to the fake server counts the calls."""

from __future__ import annotations

import asyncio
import json

import pytest

from router import BudgetExceeded, NoRouteError, Router
from router.testing import server_error


def _calls(fake) -> int:
    return len(fake.requests)


def test_a_repeated_request_is_served_from_the_cache_for_nothing(write_config, fake):
    cfg = write_config("  cache: {ttl: 600}\n  request_log: requests.jsonl")
    with Router.from_config(cfg) as r:
        first = r.route("What is 2+2?", temperature=0)
        second = r.route("What is 2+2?", temperature=0)
        assert _calls(fake) == 1
        assert not first.cached and first.cost_usd > 0
        assert second.cached and second.cost_usd == 0.0
        assert second.text == first.text and second.model == first.model
        assert second.usage == first.usage and second.rule == "default"
        rows = r.usage(by=("model",))
    assert rows == [
        {
            "model": "small",
            "requests": 2,
            "input_tokens": 2 * first.usage.input_tokens,
            "output_tokens": 2 * first.usage.output_tokens,
            "cost_usd": pytest.approx(first.cost_usd),
            "cache_hits": 1,
            "unpriced_requests": 0,
        }
    ]
    lines = [json.loads(x) for x in (cfg.parent / "requests.jsonl").read_text().splitlines()]
    assert [x["cache"] for x in lines] == ["miss", "hit"]
    assert lines[1]["cost_usd"] == 0.0


def test_the_key_covers_messages_params_and_the_rule(write_config, fake):
    with Router.from_config(write_config("  cache: {ttl: 600}")) as r:
        r.route("same words")
        r.route("same words", max_tokens=5)  # other params
        r.route("same words", use_case="coding")  # another rule
        r.route("other words")
        r.route(
            messages=[
                {"role": "system", "content": "terse"},
                {"role": "user", "content": "same words"},
            ]
        )
        assert _calls(fake) == 5
        for args, kw in [
            (("same words",), {}),
            (("same words",), {"max_tokens": 5}),
            (("same words",), {"use_case": "coding"}),
        ]:
            assert r.route(*args, **kw).cached
        assert _calls(fake) == 5


def test_sampled_requests_are_not_cached_unless_the_rule_says_so(write_config, fake):
    cfg = write_config("  cache: {ttl: 600}", coding_extra="    cache: {ttl: 60, sampled: true}")
    with Router.from_config(cfg) as r:
        r.route("tell a story", temperature=0.8)
        assert not r.route("tell a story", temperature=0.8).cached
        r.route("tell a story", use_case="coding", temperature=0.8)
        assert r.route("tell a story", use_case="coding", temperature=0.8).cached
    assert _calls(fake) == 3


def test_cache_false_per_request_and_per_rule(write_config, fake):
    cfg = write_config("  cache: {ttl: 600}", coding_extra="    cache: false")
    with Router.from_config(cfg) as r:
        r.route("q")
        assert not r.route("q", cache=False).cached
        assert r.route("q").cached
        r.route("q", use_case="coding")
        assert not r.route("q", use_case="coding").cached
    assert _calls(fake) == 4


def test_a_streamed_request_served_from_the_cache_still_streams(write_config, fake):
    fake.reply_text = "A long enough answer to come back in more than one piece of text."
    with Router.from_config(write_config("  cache: {ttl: 600}")) as r:
        first_stream = r.route("stream me", stream=True)
        assert not getattr(first_stream, "cached", False)
        first = list(first_stream)
        again_stream = r.route("stream me", stream=True)
        assert again_stream.cached  # known before the first chunk: for X-Router-Cache
        again = list(again_stream)
        plain = r.route("stream me")
    assert _calls(fake) == 1
    assert "".join(c.text for c in again) == fake.reply_text
    assert len([c for c in again if c.text]) > 1
    assert again[-1].result is not None and again[-1].result.cached
    assert first[-1].result is not None and not first[-1].result.cached
    assert plain.cached and plain.text == fake.reply_text


async def test_async_routes_share_the_cache(write_config, fake):
    with Router.from_config(write_config("  cache: {ttl: 600}")) as r:
        first = await r.aroute("async q")
        second = await r.aroute("async q")
        stream = await r.aroute("async q", stream=True)
        assert stream.cached
        chunks = [c async for c in stream]
    assert not first.cached and second.cached
    assert chunks[-1].result.cached
    assert _calls(fake) == 1


def test_the_sqlite_cache_serves_after_a_restart(write_config, fake):
    cfg = write_config("  cache: {ttl: 600, backend: sqlite, path: cache.sqlite}")
    with Router.from_config(cfg) as r:
        r.route("persist me")
    with Router.from_config(cfg) as r:
        assert r.route("persist me").cached
    assert _calls(fake) == 1 and (cfg.parent / "cache.sqlite").exists()


def test_a_reload_that_changes_the_rule_does_not_serve_the_old_answer(write_config, fake):
    cfg = write_config("  cache: {ttl: 600}")
    with Router.from_config(cfg) as r:
        r.route("q", use_case="coding")
        write_config("  cache: {ttl: 600}", coding_extra="    system: be brief")
        assert r.reload().ok
        assert not r.route("q", use_case="coding").cached
        assert r.route("q", use_case="coding").cached
    assert _calls(fake) == 2


def test_router_usage_counts_the_hit(write_config, fake, capsys):
    from router.cli import main

    cfg = write_config("  cache: {ttl: 600}").read_text().replace('":memory:"', "usage.sqlite")
    path = write_config()
    path.write_text(cfg)
    with Router.from_config(path) as r:
        r.route("count me")
        r.route("count me")
    assert main(["usage", str(path), "--by", "model"]) == 0
    out = capsys.readouterr().out
    assert "cache hits" in out
    row = next(line for line in out.splitlines() if line.startswith("small"))
    assert row.split()[1:3] == ["2", "1"]  # requests, cache hits


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _refuse_every_candidate(how: str, r: Router, cfg, fake) -> None:
    """Leave no model of rule `default` able to serve, by `how`."""
    if how == "max_cost":
        _edit(cfg, "    targets: [small]\n", "    targets: [small]\n    max_cost: 0.0000000001\n")
        assert r.reload().ok
    elif how == "budget":
        # Less than one request's estimated cost: every model is over budget.
        cfg.write_text(cfg.read_text() + "budgets: {global: {daily: 0.00000001}}\n")
        assert r.reload().ok
    elif how == "circuit":
        _edit(cfg, "output: 2}}", "output: 2}, breaker: {failures: 1, cooldown: 600}}")
        assert r.reload().ok
        fake.enqueue(server_error())
        with pytest.raises(NoRouteError):
            r.route("fails once", cache=False)
    decision = r.explain("cached question")
    assert not decision.served and decision.rejected


@pytest.mark.parametrize("pin", [{}, {"rule": "default"}])
@pytest.mark.parametrize("how", ["max_cost", "budget", "circuit"])
def test_a_request_no_candidate_may_serve_is_refused_not_served_from_the_cache(
    how, pin, write_config, fake
):
    cfg = write_config("  cache: {ttl: 600}")
    with Router.from_config(cfg) as r:
        first = r.route("cached question", **pin)
        assert first.text and r.route("cached question", **pin).cached
        calls = len(fake.requests)
        _refuse_every_candidate(how, r, cfg, fake)
        with pytest.raises((NoRouteError, BudgetExceeded)) as err:
            r.route("cached question", **pin)
        with pytest.raises((NoRouteError, BudgetExceeded)):
            list(r.route("cached question", stream=True, **pin))
        with pytest.raises((NoRouteError, BudgetExceeded)):
            asyncio.run(r.aroute("cached question", **pin))
    assert not err.value.decision.served
    assert len(fake.requests) <= calls + 1  # the one failing or spending call, no more
