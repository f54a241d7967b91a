"""Through `Router`: a stream the caller abandons, or a request past its deadline,
closes the upstream connection, so the backend stops generating (the fake server,
mid-answer, sees its client go). Both OpenAI-speaking adapter types."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import NoRouteError, Router, Timeout
from router.testing import FakeProviderServer, slow, slow_stream

LONG = " ".join(f"w{i}" for i in range(40))
GONE_WITHIN = 5.0  # seconds the server waits to see the connection closed
TYPES = ("litellm", "openai")


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture(params=TYPES)
def router(
    request: pytest.FixtureRequest, tmp_path: Path, fake: FakeProviderServer
) -> Iterator[Router]:
    kind = request.param
    model = "openai/gpt-4o-mini" if kind == "litellm" else "gpt-4o-mini"
    path = tmp_path / "router.yaml"
    path.write_text(
        f"""
providers:
  up: {{type: {kind}, api_base: '{fake.base_url}', api_key: sk-fake, retries: 0}}
models:
  m: {{provider: up, model: {model}, cost: {{input: 1, output: 1}}}}
rules:
  - {{name: hurried, when: {{use_case: hurried}}, targets: [m], deadline: 0.5}}
  - {{name: default, targets: [m]}}
settings: {{usage_db: ':memory:'}}
"""
    )
    with Router.from_config(path, warm=False) as r:
        yield r


def test_closing_a_routed_stream_closes_the_upstream(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow_stream(0.25, LONG))
    chunks = router.route("hi", stream=True)
    assert next(iter(chunks)).text == "w0"
    chunks.close()  # type: ignore[attr-defined]
    assert fake.wait_for_disconnects(1, GONE_WITHIN)


def test_breaking_out_of_a_routed_stream_closes_the_upstream(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow_stream(0.25, LONG))
    for chunk in router.route("hi", stream=True):
        assert chunk.text == "w0"
        break  # the stream is dropped here, never read to its end
    assert fake.wait_for_disconnects(1, GONE_WITHIN)


def test_a_request_past_its_deadline_closes_the_upstream(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow(3.0), slow_stream(3.0, LONG))
    with pytest.raises(NoRouteError, match="timeout"):
        router.route("hi", use_case="hurried")
    assert fake.wait_for_disconnects(1, GONE_WITHIN)
    got = []
    with pytest.raises(Timeout) as info:
        for chunk in router.route("hi", use_case="hurried", stream=True):
            got.append(chunk.text)
    assert got == ["w0"] and info.value.partial
    assert fake.wait_for_disconnects(2, GONE_WITHIN)


async def test_abandoned_async_streams_close_the_upstream(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow_stream(0.25, LONG), slow_stream(0.25, LONG))
    chunks = await router.aroute("hi", stream=True)
    assert (await chunks.__anext__()).text == "w0"
    await chunks.aclose()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(fake.wait_for_disconnects, 1, GONE_WITHIN)
    async for chunk in await router.aroute("hi", stream=True):
        assert chunk.text == "w0"
        break
    assert await asyncio.to_thread(fake.wait_for_disconnects, 2, GONE_WITHIN)


async def test_an_async_request_past_its_deadline_closes_the_upstream(
    router: Router, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow(3.0), slow_stream(3.0, LONG))
    with pytest.raises(NoRouteError, match="timeout"):
        await router.aroute("hi", use_case="hurried")
    assert await asyncio.to_thread(fake.wait_for_disconnects, 1, GONE_WITHIN)
    got = []
    with pytest.raises(Timeout) as info:
        async for chunk in await router.aroute("hi", use_case="hurried", stream=True):
            got.append(chunk.text)
    assert got == ["w0"] and info.value.partial
    assert await asyncio.to_thread(fake.wait_for_disconnects, 2, GONE_WITHIN)
