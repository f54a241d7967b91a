"""Fixtures for the server tests: the fake provider in this process, `router serve` in another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.testing import FakeProviderServer
from tests.server.serving import SECRETS, ServerProcess, fake_config

pytest.importorskip("starlette", reason="needs the `server` extra")
pytest.importorskip("uvicorn", reason="needs the `server` extra")


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="Hello from the fake provider.") as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture(scope="module")
def keyed_server(
    fake_server: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server with keys (alice: all; bob: model fast, rule default, 2 rpm; carol: no
    budget left after one request) in front of the fake provider."""
    root = tmp_path_factory.mktemp("keyed")
    config = root / "router.yaml"
    usage = root / "usage.sqlite"
    config.write_text(fake_config(fake_server.base_url, keys=True, usage_db=str(usage)))
    with ServerProcess(config, "--no-watch") as server:
        yield server
    assert_no_secrets(server.output)


@pytest.fixture(scope="module")
def open_server(
    fake_server: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with no keys (loopback only) and small limits, watching its config."""
    root = tmp_path_factory.mktemp("open")
    config = root / "router.yaml"
    extra = "  max_body_bytes: 65536\n  max_concurrent: 4\n"
    config.write_text(fake_config(fake_server.base_url, server_extra=extra))
    with ServerProcess(config) as server:
        yield server
    assert_no_secrets(server.output)


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "router.yaml"
