"""A timed-out or abandoned call closes its upstream connection, so the backend stops
generating: the fake server, mid-answer, sees its client go. Both OpenAI-speaking
adapters (`litellm` and the native `openai`), sync and async."""

from __future__ import annotations

import asyncio

import pytest

from router import errors
from router.testing import FakeProviderServer, slow, slow_stream
from tests.providers.conftest import MakeProvider
from tests.providers.test_contract import ADAPTERS, Adapter

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:Accessing the .* attribute on the instance is deprecated"),
]

LONG = " ".join(f"w{i}" for i in range(40))  # 40 pieces: seconds of generating left
GONE_WITHIN = 5.0  # seconds the server waits to see the connection closed


@pytest.fixture(params=ADAPTERS, ids=[a.type for a in ADAPTERS])
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def adapter_type(adapter: Adapter) -> str:
    return adapter.type


def test_an_abandoned_stream_closes_the_connection(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow_stream(0.25, LONG))
    pieces = make_provider().stream(adapter.call())
    assert next(pieces).text == "w0"
    pieces.close()  # type: ignore[attr-defined]
    assert fake.wait_for_disconnects(1, GONE_WITHIN)


def test_a_stream_past_its_timeout_closes_the_connection(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow_stream(3.0, LONG))
    got = []
    with pytest.raises(errors.Timeout):
        for piece in make_provider(timeout=30.0).stream(adapter.call(timeout=0.5)):
            got.append(piece.text)
    assert got == ["w0"]
    assert fake.wait_for_disconnects(1, GONE_WITHIN)


def test_a_call_past_its_timeout_closes_the_connection(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow(5.0))
    with pytest.raises(errors.Timeout):
        make_provider(timeout=30.0).complete(adapter.call(timeout=0.3))
    assert fake.wait_for_disconnects(1, GONE_WITHIN)


async def test_an_abandoned_async_stream_closes_the_connection(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    fake.enqueue(slow_stream(0.25, LONG))
    pieces = make_provider().astream(adapter.call())
    first = await pieces.__anext__()
    assert first.text == "w0"
    await pieces.aclose()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(fake.wait_for_disconnects, 1, GONE_WITHIN)


async def test_async_calls_past_their_timeout_close_the_connection(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(timeout=30.0)
    fake.enqueue(slow(5.0))
    with pytest.raises(errors.Timeout):
        await provider.acomplete(adapter.call(timeout=0.3))
    assert await asyncio.to_thread(fake.wait_for_disconnects, 1, GONE_WITHIN)
    fake.enqueue(slow_stream(3.0, LONG))
    with pytest.raises(errors.Timeout):
        async for _ in provider.astream(adapter.call(timeout=0.5)):
            pass
    assert await asyncio.to_thread(fake.wait_for_disconnects, 2, GONE_WITHIN)


async def test_a_cancelled_async_call_closes_the_connection(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """The caller's task is cancelled (a client gone, an outer timeout)."""
    fake.enqueue(slow(5.0))
    task = asyncio.ensure_future(make_provider().acomplete(adapter.call()))
    for _ in range(500):  # until the server has the request (bounded: 5 s)
        if fake.requests:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.wait_for_disconnects, 1, GONE_WITHIN)
