"""When calls fail, every attempt is one line in words: endpoint, status, the provider's
message and a hint; a dead endpoint is marked down at once instead of retried."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import NoRouteError, Router
from router.cli import main
from router.testing import FakeProviderServer
from router.testing.outcomes import bad_request, disconnect


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="one two three four five") as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(tmp_path: Path, fake: FakeProviderServer, closed_port: int) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(
        "providers:\n"
        f"  dead: {{type: litellm, api_base: 'http://127.0.0.1:{closed_port}/v1', api_key: k,"
        " retries: 2, backoff: 0}\n"
        f"  live: {{type: litellm, api_base: '{fake.base_url}', api_key: k, retries: 0}}\n"
        "models:\n"
        "  a: {provider: dead, model: openai/gpt-4o-mini}\n"
        "  b: {provider: live, model: openai/gpt-4o-mini}\n"
        "rules: [{name: d, targets: [a, b]}]\n"
        "settings: {usage_db: ':memory:'}\n"
    )
    return path


def test_connection_refused_is_tried_once_and_marked_down(
    tmp_path: Path, fake: FakeProviderServer, closed_port: int
) -> None:
    with Router.from_config(write(tmp_path, fake, closed_port)) as r:
        res = r.route("hi")
        assert res.model == "b"
        assert [(a.model, a.error) for a in res.attempts] == [("a", "unavailable")]
        message = res.attempts[0].message
        assert message.startswith(f"127.0.0.1:{closed_port}: connection refused")
        assert "is the server running" in message
        d = r.explain("hi")
        assert d.model == "b" and "connection refused" in d.rejected["a"]


def test_every_attempt_is_a_line_without_library_names(
    tmp_path: Path, fake: FakeProviderServer, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, fake, closed_port)
    with Router.from_config(path) as r:
        fake.enqueue(bad_request("model 'gpt-4o-mini' does not take that"))
        with pytest.raises(NoRouteError) as info:
            r.route("hi")
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0].startswith("every candidate failed")
    assert f"a (dead, unavailable): 127.0.0.1:{closed_port}: connection refused" in lines[1]
    assert lines[2] == (
        f"  b (live, bad_request): 127.0.0.1:{fake.port}: HTTP 400: "
        "model 'gpt-4o-mini' does not take that"
    )
    for word in ("litellm", "Exception", "APIConnectionError", "InternalServerError"):
        assert word not in text
    fake.enqueue(bad_request("nope"))
    assert main(["run", str(path), "hi"]) == 1
    err = capsys.readouterr().err
    assert "connection refused" in err and "HTTP 400: nope" in err and "litellm" not in err


def test_a_stream_cut_after_its_first_token_says_the_output_is_incomplete(
    tmp_path: Path, fake: FakeProviderServer, closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, fake, closed_port)
    fake.enqueue(disconnect(after=2))
    assert main(["run", str(path), "hi", "--stream", "--model", "b"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("one two")
    assert "the output above is incomplete" in err and "litellm" not in err


def test_the_openai_type_marks_a_refused_endpoint_down_too(
    tmp_path: Path, fake: FakeProviderServer, closed_port: int
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(
        "providers:\n"
        f"  dead: {{type: openai, api_base: 'http://127.0.0.1:{closed_port}/v1', retries: 2,"
        " backoff: 0}\n"
        f"  live: {{type: openai, api_base: '{fake.base_url}', retries: 0}}\n"
        "models:\n"
        "  a: {provider: dead, model: gpt-4o-mini}\n"
        "  b: {provider: live, model: gpt-4o-mini}\n"
        "rules: [{name: d, targets: [a, b]}]\n"
        "settings: {usage_db: ':memory:'}\n"
    )
    with Router.from_config(path) as r:
        res = r.route("hi")
        assert res.model == "b"
        assert [(a.model, a.error) for a in res.attempts] == [("a", "unavailable")]
        assert "connection refused (is the server running" in res.attempts[0].message
        assert fake.last_request.headers.get("authorization") is None  # no key: none sent


def test_a_dropped_connection_and_a_timeout_in_words(fake: FakeProviderServer) -> None:
    from router.config.model import ProviderConfig
    from router.errors import ProviderError
    from router.providers import create_provider
    from router.secrets import Secret
    from router.testing.outcomes import slow
    from tests.providers.litellm_helpers import make_call

    config = ProviderConfig("p", "litellm", api_key=Secret("k"), api_base=fake.base_url)
    provider = create_provider(config)
    fake.enqueue(disconnect(), slow(1.0))
    lines = []
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            provider.complete(make_call(timeout=0.1))
        lines.append(info.value.describe())
    provider.close()
    assert lines[0] == f"127.0.0.1:{fake.port}: Connection error."  # no made-up HTTP 500
    assert lines[1].startswith(f"127.0.0.1:{fake.port}: Request timed out. (raise the")
    assert "litellm" not in " ".join(lines)
