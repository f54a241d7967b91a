"""The fake provider server itself, spoken to with plain HTTP clients."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

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
from router.testing import fake_server as module

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="one two three", input_tokens=7) as server:
        yield server


@pytest.fixture
def client(fake: FakeProviderServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=5) as c:
        yield c


def sse_data(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_openai_json_reply(fake: FakeProviderServer, client: httpx.Client) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.1},
        headers={"Authorization": "Bearer sk-test-1234", "X-Extra": "yes"},
    )
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(r.content))
    data = r.json()
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "one two three"}
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == "Bearer sk-test-1234"
    assert sent.headers["x-extra"] == "yes"
    assert sent.body["temperature"] == 0.1


def test_keep_alive_serves_many_requests_on_one_connection(fake: FakeProviderServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    body = json.dumps({"model": "m", "messages": MESSAGES})
    for _ in range(3):
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read())["choices"][0]["message"]["content"] == "one two three"
    conn.close()
    assert len({r.peer for r in fake.requests}) == 1


def test_each_reply_is_one_write_on_a_nodelay_socket(
    fake: FakeProviderServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    nodelay: list[int] = []
    setup = module._Handler.setup

    class Counting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def write(self, data: bytes) -> int:
            writes.append(len(data))
            return int(self.inner.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    def counting_setup(self: Any) -> None:
        setup(self)
        nodelay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        self.wfile = Counting(self.wfile)

    monkeypatch.setattr(module._Handler, "setup", counting_setup)
    with httpx.Client(base_url=fake.url) as fresh:  # a new connection gets the patched setup
        fresh.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
        fresh.post("/v1/chat/completions", json={"model": "m", "stream": True})
        fresh.get("/v1/models")
    assert len(writes) == 3  # headers and body together, whole stream included
    assert nodelay and all(nodelay)


def test_openai_stream_with_and_without_usage(client: httpx.Client) -> None:
    body: dict[str, Any] = {"model": "m", "messages": MESSAGES, "stream": True}
    plain = sse_data(client.post("/v1/chat/completions", json=body).text)
    asked = sse_data(
        client.post(
            "/v1/chat/completions", json={**body, "stream_options": {"include_usage": True}}
        ).text
    )
    assert plain[-1] == asked[-1] == "[DONE]"
    chunks = [json.loads(d) for d in asked[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "one two three"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert not any("usage" in json.loads(d) for d in plain[:-1])


def test_anthropic_messages_json_and_stream(client: httpx.Client) -> None:
    body = {"model": "claude", "messages": MESSAGES, "max_tokens": 10}
    data = client.post("/v1/messages", json=body).json()
    assert data["content"] == [{"type": "text", "text": "one two three"}]
    assert data["usage"] == {"input_tokens": 7, "output_tokens": 3}

    r = client.post("/v1/messages", json={**body, "stream": True})
    events = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    assert events.count("content_block_delta") == 3
    delta = json.loads(sse_data(r.text)[-2])
    assert delta["usage"] == {"output_tokens": 3}


@pytest.mark.parametrize(
    ("path", "field"), [("/api/chat", "message"), ("/api/generate", "response")]
)
def test_ollama_json_and_ndjson(client: httpx.Client, path: str, field: str) -> None:
    data = client.post(path, json={"model": "llama3", "stream": False}).json()
    assert data["done"] is True
    assert (data["prompt_eval_count"], data["eval_count"]) == (7, 3)
    # Like Ollama, a request that does not say `stream` gets a stream.
    lines = [json.loads(x) for x in client.post(path, json={"model": "llama3"}).text.splitlines()]
    assert [line["done"] for line in lines] == [False, False, False, True]
    pieces = [line[field]["content"] if field == "message" else line[field] for line in lines[:-1]]
    assert "".join(pieces) == "one two three"
    assert lines[-1]["eval_count"] == 3


def test_listings(fake: FakeProviderServer, client: httpx.Client) -> None:
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    names = [m["name"] for m in client.get("/api/tags").json()["models"]]
    assert ids == names == list(fake.models)
    assert client.get("/models").status_code == 200  # an OpenAI base without /v1
    assert client.get("/nowhere").status_code == 404


def test_scripted_outcomes_in_order_then_default(
    fake: FakeProviderServer, client: httpx.Client
) -> None:
    fake.enqueue(
        rate_limited(retry_after=12),
        server_error(503),
        unauthorized(),
        context_overflow(),
        reply("scripted", usage=(1, 2)),
    )
    body = {"model": "m", "messages": MESSAGES}
    got = [client.post("/v1/chat/completions", json=body) for _ in range(6)]
    assert [r.status_code for r in got] == [429, 503, 401, 400, 200, 200]
    assert got[0].headers["retry-after"] == "12"
    assert got[3].json()["error"]["code"] == "context_length_exceeded"
    assert got[4].json()["choices"][0]["message"]["content"] == "scripted"
    assert got[4].json()["usage"]["total_tokens"] == 3
    assert got[5].json()["choices"][0]["message"]["content"] == "one two three"
    assert fake.pending == 0


def test_unauthorized_quotes_the_key_that_was_sent(
    client: httpx.Client, fake: FakeProviderServer
) -> None:
    fake.enqueue(unauthorized())
    r = client.post("/v1/messages", json={"model": "c"}, headers={"x-api-key": "sk-ant-999999"})
    assert r.status_code == 401
    assert "sk-ant-999999" in r.json()["error"]["message"]


def test_tool_calls_in_each_dialect(fake: FakeProviderServer, client: httpx.Client) -> None:
    call = {"name": "lookup", "arguments": {"q": "x"}}
    fake.enqueue(reply("", tool_calls=[call]), reply("", tool_calls=[call]))
    openai = client.post("/v1/chat/completions", json={"model": "m"}).json()["choices"][0]
    anthropic = client.post("/v1/messages", json={"model": "c"}).json()
    assert openai["finish_reason"] == "tool_calls"
    assert json.loads(openai["message"]["tool_calls"][0]["function"]["arguments"]) == {"q": "x"}
    assert anthropic["stop_reason"] == "tool_use"
    assert anthropic["content"] == [
        {"type": "tool_use", "id": "toolu_0", "name": "lookup", "input": {"q": "x"}}
    ]


def test_openai_stream_sends_tool_calls_in_fragments(
    fake: FakeProviderServer, client: httpx.Client
) -> None:
    """As OpenAI does: id and name first, then argument fragments under the same index."""
    calls = [
        {"name": "lookup", "arguments": {"q": "a longer query"}},
        {"name": "t", "arguments": {}},
    ]
    fake.enqueue(reply("", tool_calls=calls))
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    events = [
        json.loads(d) for d in sse_data(client.post("/v1/chat/completions", json=body).text)[:-1]
    ]
    pieces = [
        p for e in events if e["choices"] for p in e["choices"][0]["delta"].get("tool_calls", [])
    ]
    heads = [p for p in pieces if "id" in p]
    assert [(p["index"], p["id"], p["function"]["name"]) for p in heads] == [
        (0, "call_0", "lookup"),
        (1, "call_1", "t"),
    ]
    first = [p["function"]["arguments"] for p in pieces if p["index"] == 0]
    assert len(first) > 2  # really in pieces, none of them JSON on its own
    assert json.loads("".join(first)) == {"q": "a longer query"}
    assert all("name" not in p["function"] for p in pieces if "id" not in p)
    finishes = [e["choices"][0]["finish_reason"] for e in events if e["choices"]]
    assert finishes[-1] == "tool_calls"


def test_disconnects(fake: FakeProviderServer) -> None:
    fake.enqueue(disconnect(), disconnect(after=1))
    with httpx.Client(base_url=fake.url) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/v1/chat/completions", json={"model": "m"})
        got: list[str] = []
        body = {"model": "m", "stream": True}
        with (
            pytest.raises(httpx.TransportError),
            c.stream("POST", "/v1/chat/completions", json=body) as r,
        ):
            got.extend(r.iter_lines())
    assert any('"content":"one"' in line for line in got)
    assert not any("[DONE]" in line for line in got)


def test_slow_reply_and_stop_while_waiting(fake: FakeProviderServer) -> None:
    fake.enqueue(slow(30.0))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(fake.base_url + "/chat/completions", json={"model": "m"}, timeout=60)
        except BaseException as exc:  # the server goes away mid-wait
            errors.append(exc)

    t = threading.Thread(target=call)
    t.start()
    while fake.max_in_flight == 0:
        threading.Event().wait(0.01)
    fake.stop()  # wakes the sleeping handler instead of waiting 30 s
    t.join(timeout=5)
    assert not t.is_alive()
    assert errors and isinstance(errors[0], httpx.TransportError)


def test_seeded_fault_injection_is_reproducible() -> None:
    def statuses(seed: int) -> list[int]:
        kinds = ("rate_limited", "server_error", "auth")
        server = FakeProviderServer(fault_rate=0.5, fault_kinds=kinds, seed=seed)
        with server, httpx.Client(base_url=server.base_url) as c:
            return [c.post("/chat/completions", json={}).status_code for _ in range(40)]

    first, again, other = statuses(7), statuses(7), statuses(8)
    assert first == again
    assert first != other
    assert set(first) == {200, 429, 500, 401}
    assert 8 <= first.count(200) <= 32


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FakeProviderServer(fault_kinds=("meteor",))


def test_concurrent_requests_are_served_in_parallel(fake: FakeProviderServer) -> None:
    fake.enqueue(*[slow(0.3) for _ in range(4)])
    threads = [
        threading.Thread(
            target=httpx.post, args=(fake.base_url + "/chat/completions",), kwargs={"json": {}}
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.max_in_flight == 4
    assert len(fake.requests) == 4
