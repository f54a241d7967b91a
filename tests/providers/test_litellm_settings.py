"""Every key the schema accepts for `type: litellm` reaches the call; no key, no failure."""

from __future__ import annotations

import pytest

from router.testing import FakeProviderServer
from tests.providers.conftest import MakeProvider
from tests.providers.litellm_helpers import make_call


def test_organization_goes_over_the_wire(make_provider: MakeProvider, fake: FakeProviderServer):
    provider = make_provider(settings={"organization": "org-42"})
    provider.complete(make_call())
    assert fake.last_request.headers.get("openai-organization") == "org-42"


def test_api_version_and_verify_reach_litellm(make_provider: MakeProvider) -> None:
    provider = make_provider(settings={"api_version": "2024-02-01", "verify": False})
    kwargs = provider._kwargs(make_call(), stream=False)  # type: ignore[attr-defined]
    assert kwargs["api_version"] == "2024-02-01"
    assert kwargs["ssl_verify"] is False


def test_ssl_verify_is_the_same_setting(make_provider: MakeProvider, fake: FakeProviderServer):
    provider = make_provider(settings={"ssl_verify": False})
    assert provider._kwargs(make_call(), stream=False)["ssl_verify"] is False  # type: ignore[attr-defined]
    done = provider.complete(make_call())  # plain http: the setting must not break a call
    assert done.text == "Hello from the fake provider."


def test_openai_compatible_base_without_a_key_just_works(
    make_provider: MakeProvider, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = make_provider(key=None)
    done = provider.complete(make_call())
    assert done.text == "Hello from the fake provider."
    assert fake.last_request.headers.get("authorization") == "Bearer no-key"
    chunks = list(provider.stream(make_call()))
    assert "".join(c.text for c in chunks) == "Hello from the fake provider."


def test_streams_ask_for_usage_and_estimates_say_so(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    from router.providers.litellm_support import estimate_usage

    provider = make_provider()
    last = list(provider.stream(make_call()))[-1]
    assert fake.last_request.body["stream_options"] == {"include_usage": True}
    assert last.usage is not None and not last.usage.estimated
    # What the adapter counts itself when a backend reports nothing is marked so.
    guess = estimate_usage(make_call(prompt="x" * 40), "y" * 20)
    assert guess.estimated and guess.input_tokens == 11 and guess.output_tokens == 6
