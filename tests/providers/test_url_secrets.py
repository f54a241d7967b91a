"""Credentials in an api_base (userinfo, `?key=`) and in headers (Cookie, any name with
key, token, secret or auth) never show: not in repr(config), provider.info(), errors,
nor the HTTP client's request log. Real HTTP to the fake server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from router import Router
from router.config import load_config
from router.errors import NoRouteError
from router.secrets import mask_url, mask_urls, url_secrets
from router.testing import FakeProviderServer, server_error

CANARY = "canarysecret0123456789"
CONFIG = """
providers:
  fake:
    type: litellm
    api_key: "${{KEY}}"
    api_base: "http://user:${{KEY}}@127.0.0.1:{port}/v1"
    timeout: 5
    retries: 0
    headers: {{Cookie: "session=${{KEY}}", X-Team-Auth: "${{KEY}}", X-Trace: plain}}
  keyed:
    type: litellm
    api_key: "${{KEY}}"
    api_base: "http://127.0.0.1:{port}/v1?api-version=2024&key=${{KEY}}&sig=${{KEY}}"
models:
  m: {{provider: fake, model: openai/gpt-4o-mini, cost: {{input: 1, output: 1}}}}
  q: {{provider: keyed, model: openai/gpt-4o-mini}}
rules: [{{name: all, targets: [m]}}]
"""


def _hidden(text: str) -> None:
    assert CANARY not in text
    assert "canary" not in text


@pytest.fixture
def fake() -> FakeProviderServer:
    with FakeProviderServer(reply="hello") as server:
        yield server


def test_urls_and_headers_are_masked_in_reprs_and_info(tmp_path: Path, fake) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(port=fake.port))
    config = load_config(path, environ={"KEY": CANARY})
    for thing in (config, config.providers["fake"], config.providers["keyed"]):
        _hidden(repr(thing))
    assert "http://****@127.0.0.1" in repr(config.providers["fake"])
    assert "api-version=2024&key=****&sig=****" in repr(config.providers["keyed"])
    assert "'X-Trace': 'plain'" in repr(config.providers["fake"])  # not everything
    with Router(config) as router:
        for name in ("fake", "keyed"):
            info = router.snapshot.provider(name).info()
            _hidden(repr(info))
        assert router.snapshot.provider("fake").info()["api_base"].startswith("http://****@")
        # the client still sends what it must
        assert router.route("hi").text == "hello"
    sent = fake.last_request.headers
    assert sent["cookie"] == f"session={CANARY}"
    assert sent["x-team-auth"] == CANARY


def test_client_request_logs_and_errors_show_no_credential(
    tmp_path: Path, fake, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(port=fake.port))
    caplog.set_level(logging.DEBUG)
    with Router.from_config(path, environ={"KEY": CANARY}) as router:
        router.route("hi")
        # a server that echoes what it got, URL and cookie included
        fake.enqueue(
            server_error(400, f"bad call to http://user:{CANARY}@x/v1?key={CANARY}"),
        )
        with pytest.raises(NoRouteError) as info:
            router.route("hi")
        _hidden(str(info.value))
        _hidden(repr(info.value.attempts))
    assert "HTTP Request: POST" in caplog.text  # httpx logged the request
    _hidden(caplog.text)
    for record in caplog.records:
        _hidden(record.getMessage())


def test_config_errors_do_not_quote_url_credentials(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(
        'providers:\n  p: {type: litellm, api_base: "http://u:${KEY}@h/v1", timeout: "${KEY}x"}\n'
        "models: {m: {provider: p}}\nrules: [{name: a, targets: [m]}]\n"
    )
    with pytest.raises(Exception) as info:
        load_config(path, environ={"KEY": CANARY})
    _hidden(str(info.value))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://user:pw12345@host/v1", "http://****@host/v1"),
        ("https://tok123456@host:8080", "https://****@host:8080"),
        ("http://h/v1?api_key=abcdef&x=1", "http://h/v1?api_key=****&x=1"),
        ("http://h/v1?access_token=abcdef#frag", "http://h/v1?access_token=****#frag"),
        ("http://h/v1?page=2", "http://h/v1?page=2"),
        ("http://a:p@ss@h/", "http://****@h/"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert mask_urls(f"error: POST {url} failed") == f"error: POST {masked} failed"
    for secret in url_secrets(url):
        assert secret not in masked


def test_a_provider_config_built_in_code_is_masked_too() -> None:
    from router.config.model import ProviderConfig

    config = ProviderConfig("p", "openai", api_base=f"http://u:{CANARY}@h/v1?key={CANARY}")
    _hidden(repr(config))
    assert config.api_base == f"http://u:{CANARY}@h/v1?key={CANARY}"  # still what is sent
