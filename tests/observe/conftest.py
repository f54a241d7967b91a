"""A fake OpenAI-compatible server on 127.0.0.1 and YAML configs that point litellm at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from router.testing import FakeProviderServer

CANARY = "sk-canary-observe-0123456789abcdef"

WriteConfig = Callable[..., Path]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="Hello from the fake provider.") as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()
    fake_server.reply_text = "Hello from the fake provider."


@pytest.fixture
def write_config(
    tmp_path: Path, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> WriteConfig:
    """A config of two priced models behind the fake server; `settings` and rule extras
    are YAML text spliced in."""
    monkeypatch.setenv("FAKE_KEY", CANARY)

    def write(settings: str = "", coding_extra: str = "", name: str = "router.yaml") -> Path:
        text = f"""
providers:
  fake: {{type: litellm, api_key: "${{FAKE_KEY}}", api_base: "{fake.base_url}", retries: 0}}
models:
  small: {{provider: fake, model: openai/small-1, context: 4096, cost: {{input: 1, output: 2}}}}
  large: {{provider: fake, model: openai/large-1, context: 128000, cost: {{input: 10, output: 20}}}}
rules:
  - name: coding
    when: {{use_case: coding}}
    targets: [large, small]
{coding_extra}
  - name: default
    targets: [small]
settings:
  usage_db: ":memory:"
{settings}
"""
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
