"""The litellm adapter over real HTTP to the fake provider server (no mocks of litellm).

What both chat adapters must do is in test_contract.py; here is what only litellm does
(Anthropic, Ollama's native API, dropped params, its loggers, its SDK client reuse)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from router import errors
from router.providers.litellm_support import StreamState
from router.testing import (
    FakeProviderServer,
    context_overflow,
    rate_limited,
    reply,
    server_error,
    unauthorized,
)
from tests.providers.conftest import MakeProvider
from tests.providers.litellm_helpers import CANARY, STREAMED_CALLS, WEATHER_TOOL, make_call

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


def test_abandoned_anthropic_stream_is_closed_and_the_provider_goes_on(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    model = "anthropic/claude-3-5-haiku-20241022"
    provider = make_provider("root")
    pieces = provider.stream(make_call(model))
    assert next(iter(pieces)).text == "Hello"
    pieces.close()  # type: ignore[attr-defined]
    assert provider.complete(make_call(model)).text == "Hello from the fake provider."


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


def test_free_is_a_capability_of_the_adapter() -> None:
    from router.config.model import ModelConfig
    from router.providers import provider_class
    from router.providers.litellm_provider import LiteLLMProvider

    assert LiteLLMProvider.serves_free(ModelConfig("o", "p", "ollama_chat/llama3"))
    assert not LiteLLMProvider.serves_free(ModelConfig("g", "p", "openai/gpt-4o-mini"))
    assert provider_class("llama_cpp").free is True
    assert provider_class("mock").free is False
