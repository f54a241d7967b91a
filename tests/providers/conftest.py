"""Fixtures for the chat adapters: one fake provider server per module, real HTTP.

`make_provider` builds a provider of the type the `adapter_type` fixture names:
`litellm` unless a test module overrides it (the contract suite runs both).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from router.config.model import ProviderConfig
from router.providers.base import Provider
from router.secrets import Secret
from router.testing import FakeProviderServer
from tests.providers.litellm_helpers import CANARY


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="Hello from the fake provider.") as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    """The module's server with no recorded requests, scripted outcomes or odd settings."""
    fake_server.reset()
    yield fake_server
    fake_server.reset()
    fake_server.stream_usage = True
    fake_server.reply_text = "Hello from the fake provider."


MakeProvider = Callable[..., Provider]


@pytest.fixture
def adapter_type() -> str:
    return "litellm"


@pytest.fixture
def make_provider(fake: FakeProviderServer, adapter_type: str) -> Iterator[MakeProvider]:
    """Build a provider; defaults: the canary key and the fake's OpenAI base."""
    from router.providers import create_provider

    made: list[Provider] = []

    def make(
        api_base: str | None = "openai",
        *,
        key: str | None = CANARY,
        timeout: float | None = 5.0,
        settings: dict[str, Any] | None = None,
    ) -> Provider:
        base = {"openai": fake.base_url, "root": fake.url}.get(api_base or "", api_base)
        config = ProviderConfig(
            name="fake",
            type=adapter_type,
            api_key=Secret(key) if key else None,
            api_base=base,
            timeout=timeout,
            settings=settings or {},
        )
        provider = create_provider(config)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
