"""The official `openai` SDK against `router serve` (a real process) before the fake provider."""

from __future__ import annotations

import json

import pytest

from router.testing import reply, server_error
from tests.server.serving import ALICE_KEY, BOB_KEY, CAROL_KEY, run_cli

openai = pytest.importorskip("openai")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def client(keyed_server, fake):
    with openai.OpenAI(base_url=keyed_server.base_url, api_key=ALICE_KEY, max_retries=0) as c:
        yield c


def test_a_completion_is_openai_shaped_and_names_the_model_that_served(client, fake):
    fake.enqueue(reply("Paris is the capital.", usage=(12, 4)))
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    done = raw.parse()
    assert done.object == "chat.completion"
    assert done.id.startswith("chatcmpl-")
    assert done.model == "fast"
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content == "Paris is the capital."
    assert done.choices[0].finish_reason == "stop"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (12, 4)
    assert done.usage.total_tokens == 16
    assert raw.headers["x-router-model"] == "fast"
    assert raw.headers["x-router-rule"] == "default"
    assert float(raw.headers["x-router-cost-usd"]) == pytest.approx((12 * 1.0 + 4 * 2.0) / 1e6)
    # The upstream got the model's own id and the messages, not our routing fields.
    sent = fake.last_request.body
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][-1]["content"] == "Capital of France?"


def test_extra_body_hints_route_by_the_rules(client, fake):
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Fix it"}],
        extra_body={"use_case": "coding", "tags": ["x"], "metadata": {"team": "a"}},
    )
    assert raw.parse().model == "backup"
    assert raw.headers["x-router-rule"] == "coding"
    sent = fake.last_request.body
    assert sent["model"] == "backup-model"
    for field in ("use_case", "tags", "metadata"):
        assert field not in sent


def test_headers_are_routing_hints_too(client, fake):
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "Fix it"}],
        extra_headers={"X-Router-Use-Case": "coding"},
    )
    assert raw.headers["x-router-rule"] == "coding"


def test_a_model_name_pins_it_and_router_rule_forces_the_rule(client, fake):
    pinned = client.chat.completions.with_raw_response.create(
        model="backup", messages=[{"role": "user", "content": "hi"}]
    )
    assert pinned.parse().model == "backup"
    assert pinned.headers["x-router-rule"] == "model:backup"
    forced = client.chat.completions.with_raw_response.create(
        model="router/coding", messages=[{"role": "user", "content": "hi"}]
    )
    assert forced.parse().model == "backup"
    assert forced.headers["x-router-rule"] == "coding"


def test_provider_slash_id_calls_a_model_the_config_does_not_list(keyed_server, client, fake):
    raw = client.chat.completions.with_raw_response.create(
        model="fake/my-unlisted-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().model == "fake/my-unlisted-model"
    assert raw.headers["x-router-rule"] == "model:fake/my-unlisted-model"
    assert "x-router-cost-usd" not in raw.headers  # its price is unknown, not $0
    assert fake.last_request.body["model"] == "my-unlisted-model"
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="nowhere/x", messages=[{"role": "user", "content": "x"}]
        )
    assert "unknown model 'nowhere/x'" in info.value.message
    assert "providers: fake" in info.value.message
    bob = openai.OpenAI(base_url=keyed_server.base_url, api_key=BOB_KEY, max_retries=0)
    with bob, pytest.raises(openai.PermissionDeniedError):  # bob may use `fast` only
        bob.chat.completions.create(
            model="fake/my-unlisted-model", messages=[{"role": "user", "content": "x"}]
        )


def test_params_pass_through_to_the_upstream(client, fake):
    client.chat.completions.create(
        model="fast",
        messages=[{"role": "user", "content": "hi"}],
        temperature=0.25,
        max_tokens=17,
        response_format={"type": "json_object"},
        seed=7,
    )
    sent = fake.last_request.body
    assert sent["temperature"] == 0.25
    assert sent["max_tokens"] == 17
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["seed"] == 7


def test_streaming_frames_chunks_and_sends_usage_last(client, fake):
    fake.enqueue(reply("one two three four", usage=(9, 4)))
    chunks = list(
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert all(c.object == "chat.completion.chunk" and c.model == "fast" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 4)
    assert all(c.usage is None for c in chunks[:-1])


def test_streaming_without_include_usage_sends_no_usage_chunk(client, fake):
    chunks = list(
        client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert all(getattr(c, "usage", None) is None for c in chunks)


def test_tool_calls_come_back_whole_and_streamed(client, fake):
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    fake.enqueue(reply("", tool_calls=[call]))
    done = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]
    )
    calls = done.choices[0].message.tool_calls
    assert done.choices[0].finish_reason == "tool_calls"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert fake.last_request.body["tools"][0]["function"]["name"] == "get_weather"

    fake.enqueue(reply("", tool_calls=[call]))
    with client.chat.completions.stream(
        model="auto", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls"
    assert streamed[0].function.name == "get_weather"
    assert json.loads(streamed[0].function.arguments) == {"city": "Paris"}


async def test_the_async_client_streams_and_completes(keyed_server, fake):
    async with openai.AsyncOpenAI(
        base_url=keyed_server.base_url, api_key=ALICE_KEY, max_retries=0
    ) as client:
        done = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
        assert done.choices[0].message.content == "Hello from the fake provider."
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(parts) == "Hello from the fake provider."


def test_models_lists_configured_models_rules_and_auto(client):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "auto"
    assert {"router/coding", "router/default", "fast", "backup"} <= set(ids)
    assert client.models.retrieve("router/coding").owned_by == "router"


def test_a_wrong_key_is_an_authentication_error(keyed_server):
    c = openai.OpenAI(base_url=keyed_server.base_url, api_key="sk-wrong", max_retries=0)
    with c, pytest.raises(openai.AuthenticationError) as info:
        c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"
    assert "sk-wrong" not in str(info.value)


def test_an_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert "unknown model 'gpt-9'" in info.value.message
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="router/nope", messages=[{"role": "user", "content": "x"}]
        )


def test_a_key_limited_to_some_models_and_rules_gets_403(keyed_server, fake):
    with openai.OpenAI(base_url=keyed_server.base_url, api_key=BOB_KEY, max_retries=0) as bob:
        with pytest.raises(openai.PermissionDeniedError) as info:
            bob.chat.completions.create(model="backup", messages=[{"role": "user", "content": "x"}])
        assert "may not use model 'backup'" in info.value.message
        with pytest.raises(openai.PermissionDeniedError) as info:
            bob.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "x"}],
                extra_body={"use_case": "coding"},
            )
        assert "may not use rule 'coding'" in info.value.message
        assert {m.id for m in bob.models.list()} == {"auto", "router/default", "fast"}


def test_rpm_and_budget_are_rate_limit_errors_with_retry_after(keyed_server, fake):
    bob = openai.OpenAI(base_url=keyed_server.base_url, api_key=BOB_KEY, max_retries=0)
    with bob, pytest.raises(openai.RateLimitError) as info:
        for _ in range(3):  # bob may send 2 a minute; earlier tests may have used some
            bob.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert "rate limit of 2 requests per minute" in info.value.message

    with openai.OpenAI(base_url=keyed_server.base_url, api_key=CAROL_KEY, max_retries=0) as carol:
        carol.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError) as info:
            carol.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert info.value.body["code"] == "budget_exceeded"
    assert "carol" in info.value.message and "daily budget" in info.value.message


def test_upstream_failures_are_status_errors_saying_why(client, fake):
    fake.enqueue(server_error(500, "upstream exploded"))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "fast" in info.value.message
    assert info.value.body["type"] == "server_error"


def test_spend_is_recorded_per_key(keyed_server, client, fake):
    client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    out = run_cli("usage", str(keyed_server.config), "--by", "key", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["key"]: r for r in json.loads(out.stdout)["rows"]}
    assert rows["alice"]["requests"] >= 1 and rows["alice"]["cost_usd"] > 0
    for secret in (ALICE_KEY, BOB_KEY, CAROL_KEY):
        assert secret not in out.stdout


def test_explain_and_status_endpoints(keyed_server, fake):
    import httpx

    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}], "use_case": "coding"}
    before = len(fake.requests)
    got = httpx.post(keyed_server.url + "/v1/router/explain", json=body, headers=headers)
    assert got.status_code == 200
    assert got.json()["rule"] == "coding" and got.json()["model"] == "backup"
    assert got.json()["rules"][0]["candidates"] == ["backup"]
    assert len(fake.requests) == before  # no call made
    status = httpx.get(keyed_server.url + "/v1/router/status", headers=headers).json()
    assert status["config_version"] == 1
    assert status["server"]["keys"] == ["alice", "bob", "carol"]
    assert ALICE_KEY not in json.dumps(status)
    assert httpx.get(keyed_server.url + "/v1/router/status").status_code == 401
    assert httpx.get(keyed_server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(keyed_server.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_image_parts_reach_a_model_that_can_see(client, fake):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    content = [{"type": "text", "text": "What is this?"}, image]
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": content}]
    )
    assert raw.headers["x-router-model"] == "fast"  # the one with `vision`
    assert fake.last_request.body["messages"][-1]["content"][1] == image
    with pytest.raises(openai.BadRequestError) as info:  # no retry could help
        client.chat.completions.create(
            model="backup", messages=[{"role": "user", "content": content}]
        )
    assert info.value.body["code"] == "no_capable_model"
    assert "missing capability: vision" in info.value.message


def test_a_stream_broken_after_its_first_tokens_ends_in_an_error_event(client, fake):
    from router.testing import disconnect

    fake.enqueue(disconnect(after=2))
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received).strip()  # the part that came before the break
    assert "Connection error" in info.value.message  # the provider's own words
