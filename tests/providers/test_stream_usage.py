"""`Usage.estimated` on streams: false when the provider reported the counts, true when
it sent none (a server without `include_usage`) and the adapter or litellm counted them.
Both OpenAI-speaking adapters ask for usage; sync and async."""

from __future__ import annotations

import pytest

from router.providers.base import Delta
from router.testing import FakeProviderServer
from tests.providers.conftest import MakeProvider
from tests.providers.test_contract import ADAPTERS, Adapter

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning"),
    pytest.mark.filterwarnings("ignore:Accessing the .* attribute on the instance is deprecated"),
]


@pytest.fixture(params=ADAPTERS, ids=[a.type for a in ADAPTERS])
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def adapter_type(adapter: Adapter) -> str:
    return adapter.type


def check(pieces: list[Delta], fake: FakeProviderServer, reported: bool) -> None:
    assert "".join(p.text for p in pieces) == "Hello from the fake provider."
    assert fake.last_request.body["stream_options"] == {"include_usage": True}
    usage = pieces[-1].usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.estimated is not reported
    if reported:  # the server's own numbers: 10 in, one per word out
        assert (usage.input_tokens, usage.output_tokens) == (10, 5)


@pytest.mark.parametrize("reported", [True, False], ids=["server-usage", "no-usage"])
def test_stream_usage_says_whether_it_was_estimated(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer, reported: bool
) -> None:
    fake.stream_usage = reported
    check(list(make_provider().stream(adapter.call(prompt="x" * 40))), fake, reported)


@pytest.mark.parametrize("reported", [True, False], ids=["server-usage", "no-usage"])
async def test_async_stream_usage_says_whether_it_was_estimated(
    adapter: Adapter, make_provider: MakeProvider, fake: FakeProviderServer, reported: bool
) -> None:
    fake.stream_usage = reported
    pieces = [p async for p in make_provider().astream(adapter.call(prompt="x" * 40))]
    check(pieces, fake, reported)
