"""The litellm adapter over real HTTP to the fake provider server (no mocks of litellm)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import subprocess
import sys
import time
import traceback
from types import SimpleNamespace
from typing import Any

import pytest

from router import errors
from router.config.model import Cost
from router.providers.base import Delta
from router.providers.litellm_support import StreamState
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
from tests.providers.litellm_helpers import CANARY, WEATHER_TOOL, make_call

# litellm builds pydantic schemas lazily; their notes on ReadOnly fields are not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:Accessing the .* attribute on the instance is deprecated"),
]

# gpt-4o-mini in litellm's bundled price map: USD per token.
GPT4O_MINI_IN, GPT4O_MINI_OUT = 0.15e-6, 0.6e-6


def test_import_router_does_not_import_litellm() -> None:
    code = "import router, sys; assert 'litellm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# -- successful calls -----------------------------------------------------------------------


def test_openai_complete_sends_key_params_and_headers(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(settings={"headers": {"X-Team": "router"}})
    params = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 7, "stop": ["\n"], "seed": 42}
    call = make_call(params={**params, "n_ctx": 4096, "use_case": "chat"})

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
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider()
    for _ in range(3):
        provider.complete(make_call())
    list(provider.stream(make_call()))
    provider.close()
    provider.complete(make_call())  # close() released the client; a new one connects
    peers = [r.peer for r in fake.requests]
    assert len(set(peers[:4])) == 1
    assert peers[4] != peers[0]


def test_calls_litellm_may_bridge_keep_litellms_own_client(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """Tools or reasoning options can send a call to the Responses API: no reused client."""
    provider = make_provider()
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    provider.complete(make_call())
    provider.complete(make_call(tools=[tool]))
    provider.complete(make_call())
    plain, with_tools, plain_again = (r.peer for r in fake.requests)
    assert plain == plain_again != with_tools
    assert fake.requests[1].body["tools"] == [tool]


def test_model_settings_headers_add_to_provider_headers(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(settings={"headers": {"X-Team": "router", "X-Env": "test"}})
    provider.complete(make_call(model_settings={"headers": {"X-Env": "prod"}}))
    headers = fake.last_request.headers
    assert (headers["x-team"], headers["x-env"]) == ("router", "prod")


def test_cost_from_litellm_price_map_when_yaml_has_none(make_provider: MakeProvider) -> None:
    done = make_provider().complete(make_call(cost=None))
    assert done.cost_usd == pytest.approx(10 * GPT4O_MINI_IN + 5 * GPT4O_MINI_OUT)


def test_cost_left_to_the_runtime_when_yaml_has_one(make_provider: MakeProvider) -> None:
    done = make_provider().complete(make_call(cost=Cost(input=1.0, output=2.0)))
    assert done.cost_usd is None


def test_unknown_model_has_no_cost(make_provider: MakeProvider) -> None:
    done = make_provider().complete(make_call("openai/not-a-priced-model"))
    assert done.usage.input_tokens == 10
    assert done.cost_usd is None


def test_tools_response_format_and_image_parts_go_over_the_wire(
    make_provider: MakeProvider, fake: FakeProviderServer
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

    done = make_provider().complete(make_call(prompt=parts, tools=[tool], response_format=schema))

    body = fake.last_request.body
    assert body["tools"] == [tool]
    assert body["response_format"] == schema
    assert body["messages"][0]["content"] == parts
    assert done.finish_reason == "tool_calls"
    assert done.tool_calls is not None
    [tool_call] = done.tool_calls
    assert tool_call["function"]["name"] == "get_weather"
    assert tool_call["function"]["arguments"] == '{"city": "Oslo"}'


STREAMED_CALLS = [
    {"name": "get_weather", "arguments": {"city": "Oslo", "units": "metric", "days": [1, 2]}},
    {"name": "get_time", "arguments": {"tz": "Europe/Oslo"}},
]


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
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """OpenAI streams each call's arguments in fragments; the last piece has them whole,
    shaped as a non-streamed reply's."""
    provider = make_provider()
    fake.enqueue(
        reply("Checking.", tool_calls=STREAMED_CALLS), reply("", tool_calls=STREAMED_CALLS)
    )

    pieces = list(provider.stream(make_call(tools=[WEATHER_TOOL])))
    whole = provider.complete(make_call(tools=[WEATHER_TOOL]))

    _assert_streamed_tool_calls(pieces, "Checking.")
    assert pieces[-1].tool_calls == whole.tool_calls
    assert fake.requests[0].body["tools"] == [WEATHER_TOOL]


async def test_async_stream_assembles_tool_calls(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(reply("", tool_calls=STREAMED_CALLS))
    pieces = [p async for p in make_provider().astream(make_call(tools=[WEATHER_TOOL]))]
    _assert_streamed_tool_calls(pieces, "")


def test_stream_without_tool_calls_has_none(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    pieces = list(make_provider().stream(make_call(tools=[WEATHER_TOOL])))
    assert pieces[-1].tool_calls is None
    assert pieces[-1].finish_reason == "stop"


def test_stream_state_joins_tool_calls_without_an_index() -> None:
    """Some OpenAI-compatible servers send no index (a new id starts a new call), or the
    arguments as an object; the pieces still join into the usual shape."""

    def chunk(*calls: dict[str, Any], finish: str | None = None) -> SimpleNamespace:
        delta = SimpleNamespace(content=None, tool_calls=list(calls))
        return SimpleNamespace(
            usage=None, choices=[SimpleNamespace(delta=delta, finish_reason=finish)]
        )

    acc = StreamState()
    acc.feed(chunk({"id": "a", "function": {"name": "f", "arguments": '{"x": '}}))
    acc.feed(chunk({"function": {"arguments": "1}"}}))
    acc.feed(chunk({"id": "b", "function": {"name": "g", "arguments": {"y": 2}}}))
    acc.feed(chunk(finish="tool_calls"))
    assert acc.tool_calls() == (
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"y": 2}'}},
    )
    assert acc.finish_reason == "tool_calls" and not acc.has_text
    assert StreamState().tool_calls() is None


def test_anthropic_stream_assembles_tool_calls(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(reply("Checking.", tool_calls=STREAMED_CALLS[:1]))
    call = make_call("anthropic/claude-3-5-haiku-20241022", tools=[WEATHER_TOOL])
    pieces = list(make_provider("root").stream(call))
    last = pieces[-1]
    assert "".join(p.text for p in pieces) == "Checking."
    assert last.tool_calls is not None
    [tool_call] = last.tool_calls
    assert tool_call["id"] == "toolu_1"
    assert tool_call["function"]["name"] == "get_weather"
    assert json.loads(tool_call["function"]["arguments"]) == STREAMED_CALLS[0]["arguments"]


def test_anthropic_complete_and_stream(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider("root")
    call = make_call("anthropic/claude-3-5-haiku-20241022", params={"max_tokens": 50})

    done = provider.complete(call)
    pieces = list(provider.stream(call))

    assert done.text == "Hello from the fake provider."
    assert (done.usage.input_tokens, done.usage.output_tokens) == (10, 5)
    assert "".join(p.text for p in pieces) == done.text
    assert pieces[-1].usage is not None and pieces[-1].usage.output_tokens == 5
    first, second = fake.requests
    assert first.path == second.path == "/v1/messages"
    assert first.headers["x-api-key"] == CANARY
    assert first.body["model"] == "claude-3-5-haiku-20241022"
    assert first.body["max_tokens"] == 50
    assert second.body["stream"] is True


def test_params_a_provider_does_not_take_are_dropped(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """A rule's params reach every model it targets; Anthropic has no presence_penalty."""
    call = make_call(
        "anthropic/claude-3-5-haiku-20241022",
        params={"temperature": 0.2, "presence_penalty": 0.5, "max_tokens": 20},
    )
    assert make_provider("root").complete(call).text == "Hello from the fake provider."
    body = fake.last_request.body
    assert body["temperature"] == 0.2
    assert "presence_penalty" not in body


def test_openrouter_through_an_openai_compatible_base(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    done = make_provider().complete(make_call("openrouter/meta-llama/llama-3-8b-instruct"))
    assert done.text == "Hello from the fake provider."
    # With no price in the YAML the provider also reads OpenRouter's /models once.
    (sent,) = [q for q in fake.requests if q.path == "/v1/chat/completions"]
    assert sent.headers["authorization"] == f"Bearer {CANARY}"
    assert sent.body["model"] == "meta-llama/llama-3-8b-instruct"


@pytest.mark.parametrize(
    ("model", "path"), [("ollama/llama3", "/api/generate"), ("ollama_chat/llama3", "/api/chat")]
)
def test_ollama_complete_and_stream(
    make_provider: MakeProvider, fake: FakeProviderServer, model: str, path: str
) -> None:
    provider = make_provider("root", key=None)
    call = make_call(model, params={"temperature": 0.1})

    done = provider.complete(call)
    pieces = list(provider.stream(call))

    assert done.text == "Hello from the fake provider."
    assert (done.usage.input_tokens, done.usage.output_tokens) == (10, 5)
    assert "".join(p.text for p in pieces) == done.text
    last = pieces[-1]
    assert last.usage is not None and last.usage.input_tokens == 10
    assert not last.cost_usd  # a local model is free (litellm prices it 0 or not at all)
    assert [r.path for r in fake.requests if r.method == "POST"][-2:] == [path, path]
    assert fake.last_request.body["model"] == "llama3"
    assert "authorization" not in fake.last_request.headers


def test_stream_yields_text_then_usage_and_cost(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    pieces = list(make_provider().stream(make_call()))

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


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-20241022"])
def test_abandoned_stream_is_closed_and_the_provider_goes_on(
    make_provider: MakeProvider, fake: FakeProviderServer, model: str
) -> None:
    provider = make_provider(fake.base_url if model.startswith("openai") else fake.url)
    pieces = provider.stream(make_call(model))
    assert next(iter(pieces)).text == "Hello"
    pieces.close()  # type: ignore[attr-defined]
    assert provider.complete(make_call(model)).text == "Hello from the fake provider."


def test_stream_without_usage_still_reports_usage(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """The server sends no usage chunk: litellm counts tokens, or the adapter estimates."""
    fake.stream_usage = False
    pieces = list(make_provider().stream(make_call(prompt="x" * 40)))
    assert "".join(p.text for p in pieces) == "Hello from the fake provider."
    usage = pieces[-1].usage
    assert usage is not None
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert (usage.input_tokens, usage.output_tokens) != (10, 5)  # not the server's numbers


async def test_async_complete_and_stream(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider()
    call = make_call(params={"temperature": 0.3})

    done = await provider.acomplete(call)
    pieces = [p async for p in provider.astream(call)]

    assert done.text == "Hello from the fake provider."
    assert done.cost_usd == pytest.approx(10 * GPT4O_MINI_IN + 5 * GPT4O_MINI_OUT)
    assert "".join(p.text for p in pieces) == done.text
    assert pieces[-1].usage is not None and pieces[-1].usage.output_tokens == 5
    assert [r.body["temperature"] for r in fake.requests] == [0.3, 0.3]
    assert fake.requests[1].body["stream_options"] == {"include_usage": True}


async def test_async_calls_run_concurrently(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """True async: five slow replies are in flight at once, not queued one by one."""
    provider = make_provider()
    fake.enqueue(*[slow(0.3) for _ in range(5)])
    done = await asyncio.gather(*[provider.acomplete(make_call()) for _ in range(5)])
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
    make_provider: MakeProvider,
    fake: FakeProviderServer,
    outcome: Outcome,
    expected: type[errors.ProviderError],
    status: int | None,
) -> None:
    fake.enqueue(outcome)
    with pytest.raises(errors.ProviderError) as info:
        make_provider().complete(make_call())
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
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(rate_limited(retry_after=7))
    with pytest.raises(errors.RateLimited) as info:
        make_provider().complete(make_call())
    assert info.value.retry_after == 7.0


def test_rate_limit_retry_after_http_date(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.enqueue(rate_limited(retry_after=when))
    with pytest.raises(errors.RateLimited) as info:
        make_provider().complete(make_call())
    assert info.value.retry_after is not None
    assert 25 <= info.value.retry_after <= 31


def test_rate_limit_without_retry_after(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(rate_limited(retry_after=None))
    with pytest.raises(errors.RateLimited) as info:
        make_provider().complete(make_call())
    assert info.value.retry_after is None


def test_anthropic_errors_are_translated(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider("root")
    call = make_call("anthropic/claude-3-5-haiku-20241022")
    fake.enqueue(context_overflow(), rate_limited(retry_after=3), unauthorized())
    with pytest.raises(errors.ContextOverflow):
        provider.complete(call)
    with pytest.raises(errors.RateLimited) as limited:
        provider.complete(call)
    assert limited.value.retry_after == 3.0
    with pytest.raises(errors.AuthError):
        provider.complete(call)


def test_slow_reply_past_the_call_timeout(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow(3.0))
    provider = make_provider(timeout=30.0)  # the call's own timeout wins
    with pytest.raises(errors.Timeout) as info:
        provider.complete(make_call(timeout=0.3))
    assert info.value.retryable
    assert info.value.provider == "fake"


def test_provider_timeout_applies_when_the_call_has_none(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow(3.0))
    with pytest.raises(errors.Timeout):
        make_provider(timeout=0.3).complete(make_call())


def test_connection_refused_is_unavailable(make_provider: MakeProvider, closed_port: int) -> None:
    provider = make_provider(f"http://127.0.0.1:{closed_port}/v1")
    with pytest.raises(errors.Unavailable) as info:
        provider.complete(make_call())
    assert info.value.retryable


def test_disconnect_mid_stream_is_unavailable_and_partial(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(disconnect(after=2))
    got: list[Delta] = []
    with pytest.raises(errors.Unavailable) as info:
        for piece in make_provider().stream(make_call()):
            got.append(piece)
    assert "".join(p.text for p in got) == "Hello from"
    assert info.value.partial


async def test_async_errors_are_translated(
    make_provider: MakeProvider, fake: FakeProviderServer, closed_port: int
) -> None:
    provider = make_provider()
    fake.enqueue(rate_limited(retry_after=4), server_error(), slow(3.0))
    with pytest.raises(errors.RateLimited) as limited:
        await provider.acomplete(make_call())
    assert limited.value.retry_after == 4.0
    with pytest.raises(errors.Unavailable):
        await provider.acomplete(make_call())
    with pytest.raises(errors.Timeout):
        await provider.acomplete(make_call(timeout=0.3))
    refused = make_provider(f"http://127.0.0.1:{closed_port}/v1")
    with pytest.raises(errors.Unavailable):
        await refused.acomplete(make_call())


async def test_async_stream_error_before_any_text(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(rate_limited(retry_after=2))
    with pytest.raises(errors.RateLimited) as info:
        async for _ in make_provider().astream(make_call()):
            pass
    assert info.value.retry_after == 2.0
    assert not info.value.partial


# -- the key never shows -------------------------------------------------------------------


def _exercise(make_provider: MakeProvider, fake: FakeProviderServer, port: int) -> list[Exception]:
    """Every path that can fail or log: success, each error, streams, async, listing."""
    caught: list[Exception] = []
    provider = make_provider(settings={"headers": {"X-Team": "router"}})
    anthropic = make_provider("root")
    refused = make_provider(f"http://127.0.0.1:{port}/v1")
    provider.complete(make_call(params={"temperature": 0.5}))
    list(provider.stream(make_call()))
    for _, outcome, _, _ in ERROR_CASES:
        fake.enqueue(outcome)
        with pytest.raises(errors.ProviderError) as info:
            provider.complete(make_call())
        caught.append(info.value)
    for outcome in (unauthorized(), context_overflow()):
        fake.enqueue(outcome)
        with pytest.raises(errors.ProviderError) as info:
            anthropic.complete(make_call("anthropic/claude-3-5-haiku-20241022"))
        caught.append(info.value)
    fake.enqueue(unauthorized())
    with pytest.raises(errors.AuthError) as auth:
        list(provider.stream(make_call()))
    caught.append(auth.value)
    fake.enqueue(slow(2.0))
    with pytest.raises(errors.Timeout) as slow_info:
        provider.complete(make_call(timeout=0.2))
    caught.append(slow_info.value)
    with pytest.raises(errors.Unavailable) as refused_info:
        refused.complete(make_call())
    caught.append(refused_info.value)

    async def run_async() -> None:
        fake.enqueue(unauthorized(), server_error())
        for _ in range(2):
            with pytest.raises(errors.ProviderError) as info:
                await provider.acomplete(make_call())
            caught.append(info.value)
        fake.enqueue(unauthorized())
        with pytest.raises(errors.AuthError) as info:
            async for _ in provider.astream(make_call()):
                pass
        caught.append(info.value)

    asyncio.run(run_async())
    provider.list_models()
    return caught


def test_canary_key_never_shows(
    make_provider: MakeProvider,
    fake: FakeProviderServer,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caught = _exercise(make_provider, fake, closed_port)

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
    make_provider: MakeProvider, fake: FakeProviderServer, where: str
) -> None:
    # A key sent as a header (an Ollama behind a proxy), echoed back by a 401.
    secret = "hdr-secret-0123456789"
    headers = {"X-Api-Key": secret}
    provider = make_provider(
        "root", key=None, settings={"headers": headers} if where == "provider" else None
    )
    call = make_call(
        "ollama/llama3", model_settings={"headers": headers} if where == "model" else None
    )
    fake.enqueue(unauthorized(), unauthorized())
    with pytest.raises(errors.AuthError) as done:
        provider.complete(call)
    with pytest.raises(errors.AuthError) as streamed:
        list(provider.stream(call))
    assert fake.last_request.headers["x-api-key"] == secret  # it was sent, and echoed
    for exc in (done.value, streamed.value):
        assert "Incorrect API key provided: ****" in str(exc)
        assert secret not in str(exc) and secret not in repr(exc)


def test_litellm_loggers_stay_silent(
    make_provider: MakeProvider, fake: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.enqueue(server_error())
    with pytest.raises(errors.Unavailable):
        make_provider().complete(make_call(prompt="a secret prompt"))
    assert not [r for r in caplog.records if r.name.startswith("LiteLLM")]
    assert "a secret prompt" not in caplog.text


# -- listing and info -----------------------------------------------------------------------


def test_list_models_from_ollama_tags(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    assert make_provider("root", key=None).list_models() == ["gpt-4o-mini", "llama3:latest"]
    assert fake.last_request.path == "/api/tags"


def test_list_models_from_openai_compatible_base(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    assert make_provider().list_models() == ["gpt-4o-mini", "llama3:latest"]
    sent = fake.last_request
    assert sent.path == "/v1/models"
    assert sent.headers["authorization"] == f"Bearer {CANARY}"


def test_list_models_unreachable_is_an_error_in_words(
    make_provider: MakeProvider, closed_port: int
) -> None:
    with pytest.raises(errors.Unavailable) as info:
        make_provider(f"http://127.0.0.1:{closed_port}").list_models()
    assert f"127.0.0.1:{closed_port}/api/tags" in str(info.value)
    assert CANARY not in str(info.value)


def test_info_names_no_key(make_provider: MakeProvider) -> None:
    provider = make_provider(settings={"headers": {"X-Token": "tok-secret"}})
    info = provider.info()
    assert info["type"] == "litellm"
    assert info["has_key"] is True
    assert info["headers"] == ["X-Token"]
    assert CANARY not in str(info) and "tok-secret" not in str(info)


def test_free_is_a_capability_of_the_adapter() -> None:
    from router.config.model import ModelConfig
    from router.providers import provider_class
    from router.providers.litellm_provider import LiteLLMProvider

    assert LiteLLMProvider.serves_free(ModelConfig("o", "p", "ollama_chat/llama3"))
    assert not LiteLLMProvider.serves_free(ModelConfig("g", "p", "openai/gpt-4o-mini"))
    assert provider_class("llama_cpp").free is True
    assert provider_class("mock").free is False
