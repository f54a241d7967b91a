"""The adapter contract: the same tests, over real HTTP to the fake provider server, for
every adapter that speaks the OpenAI chat-completions API (`litellm` and `openai`), so
that the two stay interchangeable behind one config key."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
import traceback
from dataclasses import dataclass
from typing import Any

import pytest

from router import errors
from router.config.model import Cost
from router.providers.base import Call, Delta
from router.testing import (
    FakeProviderServer,
    Outcome,
    bad_request,
    context_overflow,
    disconnect,
    rate_limited,
    reply,
    server_error,
    slow,
    unauthorized,
)
from tests.providers.conftest import MakeProvider
from tests.providers.litellm_helpers import CANARY, STREAMED_CALLS, WEATHER_TOOL, make_call

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:Accessing the .* attribute on the instance is deprecated"),
]

# gpt-4o-mini in litellm's bundled price map: USD per token.
GPT4O_MINI_IN, GPT4O_MINI_OUT = 0.15e-6, 0.6e-6


@dataclass(frozen=True)
class Adapter:
    """One adapter under contract: its type and how its model ids are written."""

    type: str
    prefix: str  # "openai/" for litellm ids, "" for the API's own ids
    # A keyless server (a local one, or behind a proxy): its api_base and model id.
    keyless: tuple[str, str]

    def call(self, model: str = "gpt-4o-mini", *args: Any, **kw: Any) -> Call:
        return make_call(self.prefix + model, *args, **kw)


ADAPTERS = [
    Adapter("litellm", "openai/", keyless=("root", "ollama/llama3")),
    Adapter("openai", "", keyless=("openai", "llama3")),
]


@pytest.fixture(params=ADAPTERS, ids=[a.type for a in ADAPTERS])
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def adapter_type(adapter: Adapter) -> str:
    return adapter.type


def test_openai_complete_sends_key_params_and_headers(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(settings={"headers": {"X-Team": "router"}})
    params = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 7, "stop": ["\n"], "seed": 42}
    call = adapter.call(params={**params, "n_ctx": 4096, "use_case": "chat"})

    done = provider.complete(call)

    assert done.text == "Hello from the fake provider."
    assert done.finish_reason == "stop"
    assert (done.usage.input_tokens, done.usage.output_tokens) == (10, 5)
    [sent] = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {CANARY}"
    assert sent.headers["x-team"] == "router"
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello"}]
    for key, value in params.items():
        assert sent.body[key] == value
    assert "n_ctx" not in sent.body and "use_case" not in sent.body
    assert "stream" not in sent.body


def test_calls_reuse_one_connection_until_close(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider()
    for _ in range(3):
        provider.complete(adapter.call())
    list(provider.stream(adapter.call()))
    provider.close()
    provider.complete(adapter.call())  # close() released the client; a new one connects
    peers = [r.peer for r in fake.requests]
    assert len(set(peers[:4])) == 1
    assert peers[4] != peers[0]


def test_model_settings_headers_add_to_provider_headers(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(settings={"headers": {"X-Team": "router", "X-Env": "test"}})
    provider.complete(adapter.call(model_settings={"headers": {"X-Env": "prod"}}))
    headers = fake.last_request.headers
    assert (headers["x-team"], headers["x-env"]) == ("router", "prod")


def test_cost_from_litellm_price_map_when_yaml_has_none(
    adapter: Adapter, make_provider: MakeProvider
) -> None:
    done = make_provider().complete(adapter.call(cost=None))
    assert done.cost_usd == pytest.approx(10 * GPT4O_MINI_IN + 5 * GPT4O_MINI_OUT)


def test_cost_left_to_the_runtime_when_yaml_has_one(
    adapter: Adapter, make_provider: MakeProvider
) -> None:
    done = make_provider().complete(adapter.call(cost=Cost(input=1.0, output=2.0)))
    assert done.cost_usd is None


def test_unknown_model_has_no_cost(adapter: Adapter, make_provider: MakeProvider) -> None:
    done = make_provider().complete(adapter.call("not-a-priced-model"))
    assert done.usage.input_tokens == 10
    assert done.cost_usd is None


def test_tools_response_format_and_image_parts_go_over_the_wire(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }
    parts = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    fake.enqueue(reply("", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))

    done = make_provider().complete(
        adapter.call(prompt=parts, tools=[tool], response_format=schema)
    )

    body = fake.last_request.body
    assert body["tools"] == [tool]
    assert body["response_format"] == schema
    assert body["messages"][0]["content"] == parts
    assert done.finish_reason == "tool_calls"
    assert done.tool_calls is not None
    [tool_call] = done.tool_calls
    assert tool_call["function"]["name"] == "get_weather"
    assert tool_call["function"]["arguments"] == '{"city": "Oslo"}'


def _assert_streamed_tool_calls(pieces: list[Delta], text: str) -> None:
    assert "".join(p.text for p in pieces) == text
    assert all(p.tool_calls is None for p in pieces[:-1])  # only the last piece has them
    last = pieces[-1]
    assert last.finish_reason == "tool_calls"
    assert last.usage is not None
    assert last.tool_calls is not None
    assert [c["function"]["name"] for c in last.tool_calls] == ["get_weather", "get_time"]
    assert [json.loads(c["function"]["arguments"]) for c in last.tool_calls] == [
        c["arguments"] for c in STREAMED_CALLS
    ]
    assert [(c["id"], c["type"]) for c in last.tool_calls] == [
        ("call_0", "function"),
        ("call_1", "function"),
    ]


def test_stream_assembles_tool_calls_from_fragments(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """OpenAI streams each call's arguments in fragments; the last piece has them whole,
    shaped as a non-streamed reply's."""
    provider = make_provider()
    fake.enqueue(
        reply("Checking.", tool_calls=STREAMED_CALLS), reply("", tool_calls=STREAMED_CALLS)
    )

    pieces = list(provider.stream(adapter.call(tools=[WEATHER_TOOL])))
    whole = provider.complete(adapter.call(tools=[WEATHER_TOOL]))

    _assert_streamed_tool_calls(pieces, "Checking.")
    assert pieces[-1].tool_calls == whole.tool_calls
    assert fake.requests[0].body["tools"] == [WEATHER_TOOL]


async def test_async_stream_assembles_tool_calls(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(reply("", tool_calls=STREAMED_CALLS))
    pieces = [p async for p in make_provider().astream(adapter.call(tools=[WEATHER_TOOL]))]
    _assert_streamed_tool_calls(pieces, "")


def test_stream_without_tool_calls_has_none(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    pieces = list(make_provider().stream(adapter.call(tools=[WEATHER_TOOL])))
    assert pieces[-1].tool_calls is None
    assert pieces[-1].finish_reason == "stop"


def test_stream_yields_text_then_usage_and_cost(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    pieces = list(make_provider().stream(adapter.call()))

    texts = [p.text for p in pieces[:-1]]
    assert texts == ["Hello", " from", " the", " fake", " provider."]
    assert all(p.usage is None for p in pieces[:-1])
    last = pieces[-1]
    assert last.text == ""
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (10, 5)
    assert last.finish_reason == "stop"
    assert last.cost_usd == pytest.approx(10 * GPT4O_MINI_IN + 5 * GPT4O_MINI_OUT)
    body = fake.last_request.body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_abandoned_stream_is_closed_and_the_provider_goes_on(
    adapter: Adapter, make_provider: MakeProvider
) -> None:
    provider = make_provider()
    pieces = provider.stream(adapter.call())
    assert next(iter(pieces)).text == "Hello"
    pieces.close()  # type: ignore[attr-defined]
    assert provider.complete(adapter.call()).text == "Hello from the fake provider."


def test_stream_without_usage_still_reports_usage(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """The server sends no usage chunk: litellm counts tokens, or the adapter estimates."""
    fake.stream_usage = False
    pieces = list(make_provider().stream(adapter.call(prompt="x" * 40)))
    assert "".join(p.text for p in pieces) == "Hello from the fake provider."
    usage = pieces[-1].usage
    assert usage is not None
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert (usage.input_tokens, usage.output_tokens) != (10, 5)  # not the server's numbers


async def test_async_complete_and_stream(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider()
    call = adapter.call(params={"temperature": 0.3})

    done = await provider.acomplete(call)
    pieces = [p async for p in provider.astream(call)]

    assert done.text == "Hello from the fake provider."
    assert done.cost_usd == pytest.approx(10 * GPT4O_MINI_IN + 5 * GPT4O_MINI_OUT)
    assert "".join(p.text for p in pieces) == done.text
    assert pieces[-1].usage is not None and pieces[-1].usage.output_tokens == 5
    assert [r.body["temperature"] for r in fake.requests] == [0.3, 0.3]
    assert fake.requests[1].body["stream_options"] == {"include_usage": True}


async def test_async_calls_run_concurrently(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """True async: five slow replies are in flight at once, not queued one by one."""
    provider = make_provider()
    fake.enqueue(*[slow(0.3) for _ in range(5)])
    done = await asyncio.gather(*[provider.acomplete(adapter.call()) for _ in range(5)])
    assert [d.text for d in done] == ["Hello from the fake provider."] * 5
    assert fake.max_in_flight == 5


# -- errors ---------------------------------------------------------------------------------


ERROR_CASES: list[tuple[str, Outcome, type[errors.ProviderError], int | None]] = [
    ("429", rate_limited(retry_after=7), errors.RateLimited, 429),
    ("500", server_error(500), errors.Unavailable, 500),
    ("503", server_error(503, "overloaded"), errors.Unavailable, 503),
    ("401", unauthorized(), errors.AuthError, 401),
    ("403", unauthorized(403), errors.AuthError, 403),
    ("context", context_overflow(), errors.ContextOverflow, 400),
    ("400", bad_request("temperature must be <= 2"), errors.BadRequest, 400),
    ("disconnect", disconnect(), errors.Unavailable, None),
]


@pytest.mark.parametrize(
    ("outcome", "expected", "status"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_are_translated(
    adapter: Adapter,
    make_provider: MakeProvider,
    fake: FakeProviderServer,
    outcome: Outcome,
    expected: type[errors.ProviderError],
    status: int | None,
) -> None:
    fake.enqueue(outcome)
    with pytest.raises(errors.ProviderError) as info:
        make_provider().complete(adapter.call())
    exc = info.value
    assert type(exc) is expected
    assert (exc.provider, exc.model) == ("fake", "m")
    if status is not None:
        assert exc.status == status
    assert exc.retryable == expected.retryable
    # Neither cause nor context: the library exception (which holds the key) is gone.
    assert exc.__cause__ is None and exc.__context__ is None and exc.__suppress_context__
    assert len(fake.requests) == 1  # no retries inside litellm or the SDK


def test_rate_limit_retry_after_seconds(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(rate_limited(retry_after=7))
    with pytest.raises(errors.RateLimited) as info:
        make_provider().complete(adapter.call())
    assert info.value.retry_after == 7.0


def test_rate_limit_retry_after_http_date(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.enqueue(rate_limited(retry_after=when))
    with pytest.raises(errors.RateLimited) as info:
        make_provider().complete(adapter.call())
    assert info.value.retry_after is not None
    assert 25 <= info.value.retry_after <= 31


def test_rate_limit_without_retry_after(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(rate_limited(retry_after=None))
    with pytest.raises(errors.RateLimited) as info:
        make_provider().complete(adapter.call())
    assert info.value.retry_after is None


def test_slow_reply_past_the_call_timeout(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow(3.0))
    provider = make_provider(timeout=30.0)  # the call's own timeout wins
    with pytest.raises(errors.Timeout) as info:
        provider.complete(adapter.call(timeout=0.3))
    assert info.value.retryable
    assert info.value.provider == "fake"


def test_provider_timeout_applies_when_the_call_has_none(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow(3.0))
    with pytest.raises(errors.Timeout):
        make_provider(timeout=0.3).complete(adapter.call())


def test_connection_refused_is_unavailable(
    adapter: Adapter, make_provider: MakeProvider, closed_port: int
) -> None:
    provider = make_provider(f"http://127.0.0.1:{closed_port}/v1")
    with pytest.raises(errors.Unavailable) as info:
        provider.complete(adapter.call())
    assert info.value.retryable


def test_disconnect_mid_stream_is_unavailable_and_partial(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(disconnect(after=2))
    got: list[Delta] = []
    with pytest.raises(errors.Unavailable) as info:
        for piece in make_provider().stream(adapter.call()):
            got.append(piece)
    assert "".join(p.text for p in got) == "Hello from"
    assert info.value.partial


async def test_async_errors_are_translated(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer, closed_port: int
) -> None:
    provider = make_provider()
    fake.enqueue(rate_limited(retry_after=4), server_error(), slow(3.0))
    with pytest.raises(errors.RateLimited) as limited:
        await provider.acomplete(adapter.call())
    assert limited.value.retry_after == 4.0
    with pytest.raises(errors.Unavailable):
        await provider.acomplete(adapter.call())
    with pytest.raises(errors.Timeout):
        await provider.acomplete(adapter.call(timeout=0.3))
    refused = make_provider(f"http://127.0.0.1:{closed_port}/v1")
    with pytest.raises(errors.Unavailable):
        await refused.acomplete(adapter.call())


async def test_async_stream_error_before_any_text(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(rate_limited(retry_after=2))
    with pytest.raises(errors.RateLimited) as info:
        async for _ in make_provider().astream(adapter.call()):
            pass
    assert info.value.retry_after == 2.0
    assert not info.value.partial


# -- the key never shows -------------------------------------------------------------------


def _exercise(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer, port: int
) -> list[Exception]:
    """Every path that can fail or log: success, each error, streams, async, listing."""
    caught: list[Exception] = []
    provider = make_provider(settings={"headers": {"X-Team": "router"}})
    refused = make_provider(f"http://127.0.0.1:{port}/v1")
    provider.complete(adapter.call(params={"temperature": 0.5}))
    list(provider.stream(adapter.call()))
    for _, outcome, _, _ in ERROR_CASES:
        fake.enqueue(outcome)
        with pytest.raises(errors.ProviderError) as info:
            provider.complete(adapter.call())
        caught.append(info.value)
    fake.enqueue(unauthorized())
    with pytest.raises(errors.AuthError) as auth:
        list(provider.stream(adapter.call()))
    caught.append(auth.value)
    fake.enqueue(slow(2.0))
    with pytest.raises(errors.Timeout) as slow_info:
        provider.complete(adapter.call(timeout=0.2))
    caught.append(slow_info.value)
    with pytest.raises(errors.Unavailable) as refused_info:
        refused.complete(adapter.call())
    caught.append(refused_info.value)

    async def run_async() -> None:
        fake.enqueue(unauthorized(), server_error())
        for _ in range(2):
            with pytest.raises(errors.ProviderError) as info:
                await provider.acomplete(adapter.call())
            caught.append(info.value)
        fake.enqueue(unauthorized())
        with pytest.raises(errors.AuthError) as info:
            async for _ in provider.astream(adapter.call()):
                pass
        caught.append(info.value)

    asyncio.run(run_async())
    provider.list_models()
    return caught


def test_canary_key_never_shows(
    adapter: Adapter,
    make_provider: MakeProvider,
    fake: FakeProviderServer,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caught = _exercise(adapter, make_provider, fake, closed_port)

    # The fake really echoed the key in 401 bodies, so redaction was put to work.
    assert any(isinstance(e, errors.AuthError) for e in caught)
    for exc in caught:
        shown = [str(exc), repr(exc), *map(str, exc.args), *traceback.format_exception(exc)]
        assert not any(CANARY in text for text in shown), shown
    assert CANARY not in caplog.text
    out, err = capfd.readouterr()
    assert CANARY not in out and CANARY not in err
    provider = make_provider()
    assert CANARY not in repr(provider) and CANARY not in str(provider.info())
    assert any(r.headers.get("authorization") == f"Bearer {CANARY}" for r in fake.requests)


@pytest.mark.parametrize("where", ["provider", "model"])
def test_credential_header_values_never_show_in_errors(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer, where: str
) -> None:
    # A key sent as a header (a server behind a proxy), echoed back by a 401.
    secret = "hdr-secret-0123456789"
    headers = {"X-Api-Key": secret}
    base, model = adapter.keyless
    provider = make_provider(
        base, key=None, settings={"headers": headers} if where == "provider" else None
    )
    call = make_call(model, model_settings={"headers": headers} if where == "model" else None)
    fake.enqueue(unauthorized(), unauthorized())
    with pytest.raises(errors.AuthError) as done:
        provider.complete(call)
    with pytest.raises(errors.AuthError) as streamed:
        list(provider.stream(call))
    assert fake.last_request.headers["x-api-key"] == secret  # it was sent, and echoed
    for exc in (done.value, streamed.value):
        assert "Incorrect API key provided: ****" in str(exc)
        assert secret not in str(exc) and secret not in repr(exc)


def test_list_models_from_openai_compatible_base(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    assert make_provider().list_models() == ["gpt-4o-mini", "llama3:latest"]
    sent = fake.last_request
    assert sent.path == "/v1/models"
    assert sent.headers["authorization"] == f"Bearer {CANARY}"


def test_list_models_unreachable_is_an_error_in_words(
    make_provider: MakeProvider, closed_port: int
) -> None:
    # A down server is down, not a provider with no models (`router health` says so).
    for base in (f"http://127.0.0.1:{closed_port}", f"http://127.0.0.1:{closed_port}/v1"):
        with pytest.raises(errors.Unavailable) as info:
            make_provider(base).list_models()
        assert f"127.0.0.1:{closed_port}" in str(info.value)
        assert CANARY not in str(info.value)


def test_list_models_refused_is_an_error_with_the_servers_words(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    with pytest.raises(errors.BadRequest) as info:
        make_provider(fake.base_url + "/nope/v1").list_models()
    assert "404" in str(info.value) and "no route GET" in str(info.value)


def test_info_names_no_key(adapter: Adapter, make_provider: MakeProvider) -> None:
    provider = make_provider(settings={"headers": {"X-Token": "tok-secret"}})
    info = provider.info()
    assert info["type"] == adapter.type
    assert info["has_key"] is True
    assert info["headers"] == ["X-Token"]
    assert CANARY not in str(info) and "tok-secret" not in str(info)
