"""The Router end to end on the mock provider (engine-level: no network, no loader)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading

import pytest

from router import Chunk, NoRouteError, Result, Router
from router.config.model import ProviderConfig, RetryPolicy
from router.errors import ProviderError, RequestError, RouterError
from router.secrets import Secret
from tests.engine.builders import model, rule

CANARY = "sk-canary-router-0123456789"


def echo_provider(**settings):
    # No retries: these tests are about falling over to the next candidate.
    return ProviderConfig(
        "echo", "mock", api_key=Secret(CANARY), retry=RetryPolicy(retries=0), settings=settings
    )


@pytest.fixture
def router(make_config):
    cfg = make_config(
        [
            rule(
                "coding",
                ["bad", "good"],
                when={"use_case": "coding"},
                params={"temperature": 0.2, "max_tokens": 32},
                system="You are a careful {{ language | default('Python') }} engineer.",
                prompt="Task: {{ prompt }}",
            ),
            rule("default", ["good"]),
        ],
        models=[
            model("bad", settings={"fail": "unavailable"}),
            model("good", model="vendor/good", cost=(1.0, 2.0)),
        ],
        providers=[echo_provider(reply="{system}|{prompt}|{params}")],
    )
    with Router(cfg) as r:
        yield r


def test_route_falls_back_and_says_so(router):
    res = router.route("Fix this bug", use_case="coding", temp=0)
    assert isinstance(res, Result)
    assert res.model == "good" and res.provider == "echo" and res.rule == "coding"
    system, prompt, params = res.text.split("|")
    assert system == "You are a careful Python engineer."
    assert prompt == "Task: Fix this bug"
    # `temp` is normalised and the request's value wins over the rule's.
    assert json.loads(params) == {"max_tokens": 32, "temperature": 0}
    assert [(a.model, a.error) for a in res.attempts] == [("bad", "unavailable")]
    assert res.decision.candidates == ("bad", "good")
    expected_cost = (res.usage.input_tokens * 1.0 + res.usage.output_tokens * 2.0) / 1e6
    assert res.cost_usd == pytest.approx(expected_cost)
    assert res.latency_s > 0


def test_metadata_feeds_templates(router):
    res = router.route("x", use_case="coding", metadata={"language": "Rust"})
    assert res.text.startswith("You are a careful Rust engineer.|")


def test_explain_takes_the_same_arguments_and_calls_nothing(router):
    d = router.explain("Fix this bug", use_case="coding", temperature=0, max_tokens=5)
    assert (d.rule, d.model, d.provider) == ("coding", "bad", "echo")
    assert d.max_tokens == 5
    # the failing model was not called: explain picks it first
    assert d.candidates == ("bad", "good")


def test_messages_are_accepted_wherever_a_prompt_is(router):
    res = router.route(
        messages=[
            {"role": "system", "content": "old system"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
        ],
        use_case="coding",
    )
    system, prompt, _ = res.text.split("|")
    assert system.startswith("You are a careful") and prompt == "Task: second"


def test_stream_yields_chunks_and_a_final_result(router):
    chunks = list(router.route("one two three", stream=True))
    assert all(isinstance(c, Chunk) for c in chunks)
    assert len(chunks) > 2
    final = chunks[-1].result
    assert final is not None and final.model == "good"
    assert "".join(c.text for c in chunks) == final.text
    assert final.text.split("|")[1] == "one two three"


def test_aroute_and_async_stream(router):
    async def go():
        res = await router.aroute("Fix", use_case="coding")
        pieces = [c async for c in await router.aroute("a b c", stream=True)]
        return res, pieces

    res, pieces = asyncio.run(go())
    assert res.model == "good" and res.attempts[0].model == "bad"
    assert pieces[-1].result is not None
    assert "".join(p.text for p in pieces) == pieces[-1].result.text


def test_stream_falls_back_before_first_token(router):
    chunks = list(router.route("go", use_case="coding", stream=True))
    result = chunks[-1].result
    assert result.model == "good"
    assert [a.model for a in result.attempts] == ["bad"]


def test_every_candidate_failing_raises_no_route_with_attempts(make_config):
    cfg = make_config(
        [rule("r", ["x", "y"])],
        models=[model("x", settings={"fail": "timeout"}), model("y", settings={"fail": "auth"})],
        providers=[echo_provider()],
    )
    with pytest.raises(NoRouteError) as info:
        Router(cfg).route("hi")
    err = info.value
    assert [(a.model, a.error) for a in err.attempts] == [("x", "timeout"), ("y", "auth")]
    assert err.decision is not None and err.decision.rule == "r"


def test_no_candidate_raises_no_route_with_trace(make_config):
    cfg = make_config(
        [rule("r", ["x"])],
        models=[model("x", context=10)],
        providers=[echo_provider()],
    )
    with pytest.raises(NoRouteError, match="context too small") as info:
        Router(cfg).route("a long prompt " * 10)
    assert info.value.decision.rules[0].note == "no candidate left"


def test_bad_arguments_are_clear(router):
    with pytest.raises(RequestError, match="needs a prompt or messages"):
        router.route()
    with pytest.raises(RequestError, match="not both"):
        router.route("x", messages=[{"role": "user", "content": "y"}])
    with pytest.raises(RequestError, match=r"messages\[0\]"):
        router.route(messages=[{"content": "no role"}])


def test_undefined_template_variable_is_a_request_error(make_config):
    cfg = make_config(
        [rule("r", ["good"], system="Hi {{ name }}")],
        models=[model("good")],
        providers=[echo_provider()],
    )
    with pytest.raises(RequestError, match="rule r: system template: 'name' is undefined"):
        Router(cfg).route("x")


def test_status_and_reprs_never_show_the_key(router, capsys):
    res = router.route("Fix", use_case="coding")
    texts = [
        repr(router),
        json.dumps(router.status(), default=str),
        repr(router.config),
        str(router.config),
        repr(res),
        res.decision.describe(),
    ]
    print(*texts)
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err
    assert all(CANARY not in t for t in texts)
    assert router.status()["config_version"] == 1


def test_routing_tests_run_on_load(make_config):
    from router.config.model import RoutingTest, Where
    from router.errors import ConfigError

    cfg = make_config(
        [rule("r", ["a"])],
        providers=[echo_provider()],
    )
    good = RoutingTest("hello", expect={"model": "a", "rule": "r"})
    bad = RoutingTest("hello", expect={"model": "b"}, where=Where("rules.yaml", 12, "tests[1]"))
    ok = Router(dataclasses.replace(cfg, tests=(good,)))
    assert [o.ok for o in ok.run_tests()] == [True]
    with pytest.raises(ConfigError) as info:
        Router(dataclasses.replace(cfg, tests=(good, bad)))
    assert info.value.line == 12 and info.value.file == "rules.yaml"
    assert "routed to model 'a' (expected 'b')" in str(info.value)


def test_spend_goes_to_sqlite_by_default_and_survives_a_restart(make_config, _isolated_usage_db):
    cfg = make_config(
        [rule("r", ["good"])],
        models=[model("good", cost=(1.0, 2.0))],
        providers=[echo_provider()],
    )
    with Router(cfg) as first:
        res = first.route("hello")
    assert _isolated_usage_db.exists()
    with Router(cfg) as second:
        rows = second.usage(by=("model",))
    assert rows == [
        {
            "model": "good",
            "requests": 1,
            "input_tokens": res.usage.input_tokens,
            "output_tokens": res.usage.output_tokens,
            "cost_usd": pytest.approx(res.cost_usd),
            "unpriced_requests": 0,
            "cache_hits": 0,
        }
    ]


def test_a_stream_holds_its_snapshot_until_it_ends_closes_or_is_dropped(router):
    snap = router.snapshot
    s = router.route("a b c", stream=True)
    assert snap._users == 1  # held from the decision on, not from the first next()
    list(s)
    assert snap._users == 0
    s = router.route("a b c", stream=True)
    next(s)
    s.close()
    assert snap._users == 0
    s = router.route("a b c", stream=True)
    del s
    assert snap._users == 0


def test_requests_enter_and_leave_a_snapshot_while_a_provider_is_being_created(router, monkeypatch):
    from router.runtime import snapshot as snapshot_module

    real_create = snapshot_module.create_provider
    others_ran = threading.Event()
    seen: list[bool] = []

    def slow_create(config):
        # Creating a litellm provider imports litellm: seconds, on a cold process.
        seen.append(others_ran.wait(10))
        return real_create(config)

    monkeypatch.setattr(snapshot_module, "create_provider", slow_create)
    snap = router.snapshot
    creator = threading.Thread(target=snap.provider, args=("echo",))
    creator.start()

    def enter_and_exit():
        snap.enter()
        snap.exit()
        others_ran.set()

    other = threading.Thread(target=enter_and_exit)
    other.start()
    creator.join(20)
    other.join(20)
    assert seen == [True]
    assert "echo" in snap.loaded_providers()


def test_an_async_stream_holds_its_snapshot_too(router):
    snap = router.snapshot

    async def go():
        s = await router.aroute("a b c", stream=True)
        held = snap._users
        await s.__anext__()
        await s.aclose()
        return held

    assert asyncio.run(go()) == 1
    assert snap._users == 0


def test_a_reload_applies_the_new_debounce_unless_one_was_given(tmp_path):
    path = tmp_path / "r.yaml"
    body = (
        "providers: {echo: {type: mock}}\n"
        "models: {a: {provider: echo}}\n"
        "rules: [{name: r, targets: [a]}]\n"
        "settings: {debounce_ms: 100}\n"
    )
    path.write_text(body)
    with Router.from_config(path, watch=True) as r:
        assert r._watcher.debounce == pytest.approx(0.1)
        path.write_text(body.replace("debounce_ms: 100", "debounce_ms: 20"))
        assert r.reload().ok
        assert r._watcher.debounce == pytest.approx(0.02)
    path.write_text(body)
    with Router.from_config(path, watch=True, debounce_ms=5) as r:
        path.write_text(body.replace("debounce_ms: 100", "debounce_ms: 30"))
        assert r.reload().ok
        assert r._watcher.debounce == pytest.approx(0.005)


def test_caller_mistakes_are_request_errors_not_provider_errors(router):
    with pytest.raises(RequestError) as info:
        router.route()
    assert not isinstance(info.value, ProviderError)
    assert isinstance(info.value, RouterError)


def test_status_models_and_usage_are_typed_views_with_plain_json(router):
    from router import ModelInfo, RouterStatus, UsageRow

    router.route("Fix", use_case="coding")
    status = router.status()
    assert isinstance(status, RouterStatus)
    assert status.config_version == 1 and status.state.models["good"].in_flight == 0
    assert status.state.models["good"].breaker.state == "closed"
    data = json.loads(json.dumps(status.to_dict()))
    assert data["state"]["models"]["good"]["breaker"]["state"] == "closed"
    assert data["providers"]["echo"] == {"type": "mock", "enabled": True, "disabled_reason": None}
    assert CANARY not in json.dumps(data)
    models = router.models()
    assert all(isinstance(m, ModelInfo) for m in models)
    assert {m.name for m in models} >= {"good", "bad"}
    assert json.loads(json.dumps([m.to_dict() for m in models]))[0]["name"] == models[0].name
    rows = router.usage(by=("model",))
    assert all(isinstance(r, UsageRow) for r in rows)
    assert rows[0].group == {"model": rows[0]["model"]} and rows[0].requests >= 1
    assert set(rows[0].to_dict()) == {
        "model",
        "requests",
        "cache_hits",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "unpriced_requests",
    }


def test_stream_true_returns_chunks_and_the_decision_formats_itself(router):
    chunks = list(router.route("Fix", use_case="coding", stream=True))
    assert chunks[-1].result is not None and chunks[-1].result.model == "good"
    table = chunks[-1].result.decision.describe(table=True)
    assert "coding                   serves     strategy ordered" in table
    assert chunks[-1].result.decision.to_dict()["rule"] == "coding"


def test_model_pins_a_model_and_rule_forces_a_rule(router):
    pinned = router.route("Fix this bug", use_case="coding", model="good")
    assert pinned.model == "good" and pinned.rule == "model:good"
    assert pinned.attempts == ()  # the rule's other target was never tried
    assert pinned.text.split("|")[1] == "Fix this bug"  # no rule templates on a pinned model
    forced = router.route("hello", rule="coding")  # `when:` is not checked
    assert forced.rule == "coding" and forced.model == "good"
    assert router.explain("hello", rule="coding").rule == "coding"


def test_unknown_pinned_model_or_forced_rule_is_not_found(router):
    from router import NotFound

    with pytest.raises(NotFound) as info:
        router.route("x", model="gpt-9")
    assert info.value.what == "model" and "unknown model 'gpt-9'" in str(info.value)
    with pytest.raises(NotFound) as info:
        router.explain("x", rule="nope")
    assert info.value.what == "rule"
    with pytest.raises(RequestError, match="not both"):
        router.route("x", model="good", rule="coding")


def test_spend_is_kept_under_the_key_that_asked(router):
    router.route("hello", key="alice")
    router.route("hello", key="alice")
    router.route("hello")
    rows = {r["key"]: r.requests for r in router.usage(("key",))}
    assert rows == {"alice": 2, "-": 1}
