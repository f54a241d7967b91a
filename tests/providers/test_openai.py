"""What only the `openai` adapter does (the shared contract is in test_contract.py):
keyless servers, pass-through params, embeddings, its settings, its HTTP client, the
price map read without litellm. Real HTTP to the fake provider server throughout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import errors
from router.config.model import Cost, ModelConfig
from router.errors import ConfigError
from router.providers.http11 import SSEParser
from router.providers.openai_errors import is_context_overflow
from router.providers.openai_provider import OpenAIProvider
from router.providers.prices import PriceMap, litellm_price_map_path
from router.testing import FakeProviderServer, Outcome, server_error, slow, unauthorized
from tests.providers.conftest import MakeProvider
from tests.providers.litellm_helpers import CANARY, make_call
from tests.providers.proxy_server import ProxyServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def adapter_type() -> str:
    return "openai"


def _openai(provider: object) -> OpenAIProvider:
    assert isinstance(provider, OpenAIProvider)
    return provider


# -- what goes over the wire ----------------------------------------------------------------


def test_a_server_without_a_key_gets_no_authorization_header(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(key=None)
    assert provider.complete(make_call("llama3")).text == "Hello from the fake provider."
    assert "authorization" not in fake.last_request.headers


def test_organization_and_project_headers(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(settings={"organization": "org-1", "project": "proj-2"})
    provider.complete(make_call("gpt-4o-mini"))
    headers = fake.last_request.headers
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-1", "proj-2")


def test_any_other_parameter_passes_through_untouched(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    params = {
        "n": 2,
        "logprobs": True,
        "top_logprobs": 3,
        "seed": 7,
        "logit_bias": {"50256": -100},
        "parallel_tool_calls": False,
        "min_p": 0.05,  # a vendor extra (vLLM, llama.cpp)
        "user": "u-1",
    }
    call = make_call("gpt-4o-mini", params={**params, "use_case": "chat", "n_ctx": 9})
    make_provider().complete(call)
    body = fake.last_request.body
    for key, value in params.items():
        assert body[key] == value
    assert "use_case" not in body and "n_ctx" not in body


def test_stream_asks_for_usage_and_event_stream(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    pieces = list(make_provider().stream(make_call("gpt-4o-mini")))
    sent = fake.last_request
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.headers["accept"] == "text/event-stream"
    assert pieces[-1].usage is not None and pieces[-1].usage.output_tokens == 5


def test_list_models_without_a_key(make_provider: MakeProvider, fake: FakeProviderServer) -> None:
    assert make_provider(key=None).list_models() == ["gpt-4o-mini", "llama3:latest"]
    assert "authorization" not in fake.last_request.headers


# -- embeddings -----------------------------------------------------------------------------


def test_embeddings_sync_and_async(make_provider: MakeProvider, fake: FakeProviderServer) -> None:
    provider = _openai(make_provider())
    model = ModelConfig(name="e", provider="fake", model="text-embedding-3-small")
    out = provider.embed(model, ["red apple", "green pear", "red apple"], dimensions=4)
    assert len(out.vectors) == 3 and all(len(v) == 4 for v in out.vectors)
    assert out.vectors[0] == out.vectors[2] != out.vectors[1]
    assert out.usage.input_tokens == 6
    sent = fake.last_request
    assert sent.path == "/v1/embeddings"
    assert sent.body == {
        "model": "text-embedding-3-small",
        "input": ["red apple", "green pear", "red apple"],
        "dimensions": 4,
    }
    assert sent.headers["authorization"] == f"Bearer {CANARY}"
    again = asyncio.run(provider.aembed(model, ["red apple"], dimensions=4))
    assert again.vectors == out.vectors[:1]
    # Priced from the map: text-embedding-3-small is $0.02 per 1M tokens.
    assert out.cost_usd == pytest.approx(6 * 0.02e-6)


def test_embedding_errors_are_translated_and_masked(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = _openai(make_provider())
    model = ModelConfig(name="e", provider="fake", model="text-embedding-3-small", cost=Cost())
    fake.enqueue(unauthorized(), server_error(503))
    with pytest.raises(errors.AuthError) as auth:
        provider.embed(model, ["x"])
    assert CANARY not in str(auth.value) and "Incorrect API key provided: ****" in str(auth.value)
    with pytest.raises(errors.Unavailable) as down:
        asyncio.run(provider.aembed(model, ["x"]))
    assert down.value.status == 503 and "/v1/embeddings" in str(down.value)


# -- errors only this adapter can meet -------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "expected", "words"),
    [
        (
            Outcome(status=413, message="Request too large: prompt is too long"),
            errors.ContextOverflow,
            "prompt is too long",
        ),
        (
            Outcome(status=400, message="input length exceeds maximum context length"),
            errors.ContextOverflow,
            "exceeds",
        ),
        (
            Outcome(status=404, message="The model `nope` does not exist"),
            errors.BadRequest,
            "does not exist",
        ),
        (Outcome(status=408, message="request timeout"), errors.Timeout, "request timeout"),
        (Outcome(status=502, message="bad gateway"), errors.Unavailable, "bad gateway"),
    ],
    ids=["413-too-long", "ollama-context", "404-model", "408", "502"],
)
def test_status_and_words_decide_the_error(
    make_provider: MakeProvider,
    fake: FakeProviderServer,
    outcome: Outcome,
    expected: type[errors.ProviderError],
    words: str,
) -> None:
    fake.enqueue(outcome)
    with pytest.raises(errors.ProviderError) as info:
        make_provider().complete(make_call("gpt-4o-mini"))
    assert type(info.value) is expected
    assert info.value.status == outcome.status
    assert words in str(info.value) and f"HTTP {outcome.status}" in str(info.value)


def test_context_overflow_recognised_from_common_messages() -> None:
    assert is_context_overflow("", "context_length_exceeded")
    assert is_context_overflow("This model's maximum context length is 8192 tokens.")
    assert is_context_overflow("prompt is too long: 210000 tokens > 200000 maximum")
    assert is_context_overflow("the request exceeds the available context size (4096)")
    assert is_context_overflow("Current length is 9000 while limit is 8192")
    assert not is_context_overflow("Invalid 'user': string too long. Expected max 64")
    assert not is_context_overflow("temperature must be <= 2")


def _serve_once(reply: bytes) -> tuple[str, threading.Thread]:
    """A one-shot server on 127.0.0.1 that answers one request with `reply` bytes."""
    srv = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        conn, _ = srv.accept()
        with conn, srv:
            conn.recv(65536)
            conn.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{srv.getsockname()[1]}/v1", thread


@pytest.mark.parametrize(
    ("reply", "expected", "words"),
    [
        (
            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 17\r\n\r\n<html>oops</html>",
            errors.Unavailable,
            "<html>oops</html>",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json",
            errors.Unavailable,
            "not the API's JSON",
        ),
        (b"garbage\r\n\r\n", errors.Unavailable, "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", errors.Unavailable, "closed after"),
    ],
    ids=["html-502", "non-json-200", "not-http", "short-body"],
)
def test_broken_replies_are_unavailable(
    make_provider: MakeProvider, reply: bytes, expected: type[errors.ProviderError], words: str
) -> None:
    base, thread = _serve_once(reply)
    with pytest.raises(errors.ProviderError) as info:
        make_provider(base).complete(make_call("gpt-4o-mini"))
    thread.join(5)
    assert type(info.value) is expected
    assert words in str(info.value)


def test_error_event_inside_a_stream(make_provider: MakeProvider) -> None:
    event = {"error": {"message": "This model's maximum context length is 10", "code": None}}
    data = b"data: " + json.dumps(event).encode() + b"\n\n"
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (len(data), data)
    )
    base, thread = _serve_once(reply)
    with pytest.raises(errors.ContextOverflow) as info:
        list(make_provider(base).stream(make_call("gpt-4o-mini")))
    thread.join(5)
    assert "maximum context length" in str(info.value) and not info.value.partial


# -- the HTTP client ------------------------------------------------------------------------


def test_sse_parser_handles_comments_crlf_and_split_events() -> None:
    parser = SSEParser()
    assert parser.feed(b": keep-alive\r\n\r\nda") == []
    assert parser.feed(b'ta: {"a": 1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n') == ['{"a": 1}']
    assert parser.feed(b"\n") == ["line1\nline2"]
    assert parser.feed(b"data:[DONE]") == []
    assert parser.close() == ["[DONE]"]


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    make_provider: MakeProvider, fake_server: FakeProviderServer, fake: FakeProviderServer
) -> None:
    provider = make_provider()
    provider.complete(make_call("gpt-4o-mini"))
    fake_server._server.close_connections()  # type: ignore[union-attr]  # idle keep-alives
    assert provider.complete(make_call("gpt-4o-mini")).text == "Hello from the fake provider."
    first, second = fake.requests
    assert first.peer != second.peer
    assert len(fake.requests) == 2  # nothing was sent twice


def test_async_pool_limits_connections_and_serves_two_event_loops(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(settings={"max_connections": 2})
    fake.enqueue(*[slow(0.2) for _ in range(5)])

    async def five() -> list[str]:
        done = await asyncio.gather(
            *[provider.acomplete(make_call("gpt-4o-mini")) for _ in range(5)]
        )
        return [d.text for d in done]

    assert asyncio.run(five()) == ["Hello from the fake provider."] * 5
    assert fake.max_in_flight == 2
    # A second loop gets its own connections (the first loop's are gone with it).
    assert asyncio.run(five()) == ["Hello from the fake provider."] * 5


# -- settings --------------------------------------------------------------------------------


def _load(tmp_path: Path, provider_yaml: str) -> object:
    from router.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(
        "providers:\n"
        + textwrap.indent(provider_yaml, "  ")
        + "models:\n  m: {provider: p, model: gpt-4o-mini}\n"
        + "rules:\n  - {name: default, targets: [m]}\n"
    )
    return load_config(str(path))


def test_settings_are_checked_by_the_schema(tmp_path: Path) -> None:
    config = _load(
        tmp_path, "p: {type: openai, api_base: 'http://127.0.0.1:1/v1', verify: false}\n"
    )
    assert config is not None
    with pytest.raises(ConfigError) as typo:
        _load(tmp_path, "p: {type: openai, verfy: false}\n")
    assert typo.value.line == 2
    assert "unknown key 'verfy'" in str(typo.value) and "verify" in str(typo.value)
    with pytest.raises(ConfigError) as bad:
        _load(tmp_path, "p: {type: openai, max_connections: 0}\n")
    assert "max_connections" in str(bad.value)


def test_bad_api_base_and_header_are_config_errors(make_provider: MakeProvider) -> None:
    with pytest.raises(ConfigError, match="api_base"):
        make_provider("ftp://example.invalid/v1")
    with pytest.raises(ConfigError, match="verify names no file"):
        make_provider(settings={"verify": "/nonexistent/ca.pem"})
    with pytest.raises(ConfigError, match="line breaks"):
        make_provider(settings={"headers": {"X-A": "a\r\nX-Injected: 1"}})


def test_an_openai_only_config_never_imports_litellm(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "providers:\n"
        f"  p: {{type: openai, api_base: '{fake.base_url}', api_key: sk-test-0123456789}}\n"
        "models:\n  m: {provider: p, model: gpt-4o-mini}\n"
        "rules:\n  - {name: default, targets: [m]}\n"
    )
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        from router import Router
        r = Router.from_config({str(config)!r})
        res = r.route("hi")
        assert res.text == "Hello from the fake provider.", res.text
        assert res.cost_usd > 0
        assert "".join(c.text for c in r.route("hi", stream=True)) == res.text
        assert asyncio.run(r.aroute("hi")).text == res.text
        r.models()
        r.close()
        loaded = [m for m in ("litellm", "openai", "httpx") if m in sys.modules]
        print("loaded:", loaded)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "loaded: []" in out.stdout
    assert len(fake.requests) >= 3


# -- prices and context windows --------------------------------------------------------------


def test_price_map_is_read_without_importing_litellm() -> None:
    code = textwrap.dedent(
        """
        import sys
        from router.providers.prices import shared_price_map
        facts = shared_price_map().facts("gpt-4o-mini")
        print(facts.input_cost_per_token, facts.output_cost_per_token, facts.max_input_tokens)
        print(shared_price_map().facts("not-a-priced-model"))
        print("litellm" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.split() == ["1.5e-07", "6e-07", "128000", "None", "False"]


def test_provider_knows_the_map_s_context_window(make_provider: MakeProvider) -> None:
    provider = _openai(make_provider())
    assert provider.context_window("gpt-4o-mini") == 128000
    assert provider.context_window("not-a-priced-model") is None


@pytest.fixture
def small_map(tmp_path: Path) -> Iterator[Path]:
    entries = {
        "sample_spec": {"input_cost_per_token": 0},
        "openrouter/vendor/model-x": {
            "input_cost_per_token": 1e-6,
            "output_cost_per_token": 2e-6,
            "max_input_tokens": 32000,
            "mode": "chat",
        },
        "plain-model": {"input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6},
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(entries, indent=4))
    yield path


def test_price_map_uses_the_host_s_prefix(small_map: Path) -> None:
    prices = PriceMap(small_map)
    facts = prices.facts("vendor/model-x", "https://openrouter.ai/api/v1")
    assert facts is not None and facts.key == "openrouter/vendor/model-x"
    assert facts.cost(1000, 100) == pytest.approx(1000 * 1e-6 + 100 * 2e-6)
    assert prices.facts("vendor/model-x", "http://127.0.0.1:8000/v1") is None
    plain = prices.facts("plain-model")
    assert plain is not None and plain.max_input_tokens is None


def test_price_map_in_another_layout_is_parsed_whole(small_map: Path, tmp_path: Path) -> None:
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(json.loads(small_map.read_text())))
    facts = PriceMap(compact).facts("plain-model")
    assert facts is not None and facts.input_cost_per_token == 3e-6
    assert PriceMap(tmp_path / "missing.json").facts("plain-model") is None


def test_the_installed_litellm_ships_the_price_map() -> None:
    path = litellm_price_map_path()
    assert path is not None and path.name == "model_prices_and_context_window_backup.json"


def test_waiting_for_a_free_connection_counts_against_the_timeout(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    provider = make_provider(settings={"max_connections": 1})
    fake.enqueue(slow(1.0))

    async def two() -> list[object]:
        return await asyncio.gather(
            provider.acomplete(make_call("gpt-4o-mini")),
            provider.acomplete(make_call("gpt-4o-mini", timeout=0.2)),
            return_exceptions=True,
        )

    first, second = asyncio.run(two())
    assert getattr(first, "text", None) == "Hello from the fake provider."
    assert isinstance(second, errors.Timeout)
    assert len(fake.requests) == 1  # the second never got a connection


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl's command line)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _tls_server(cert: tuple[Path, Path], replies: int) -> tuple[str, threading.Thread]:
    """HTTPS on 127.0.0.1: answers `replies` chat requests on one kept-alive connection."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    srv = socket.create_server(("127.0.0.1", 0))
    body = json.dumps(
        {
            "choices": [{"message": {"content": "over TLS"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
    ).encode()
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def run() -> None:
        with srv:
            raw, _ = srv.accept()
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                return
            with conn:
                for _ in range(replies):
                    if not conn.recv(65536):
                        return
                    conn.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return f"https://127.0.0.1:{srv.getsockname()[1]}/v1", thread


def test_https_with_a_ca_bundle_reuses_the_tls_connection(
    make_provider: MakeProvider, tls_cert: tuple[Path, Path]
) -> None:
    base, thread = _tls_server(tls_cert, replies=2)
    provider = make_provider(base, settings={"verify": str(tls_cert[0])})
    texts = [provider.complete(make_call("gpt-4o-mini")).text for _ in range(2)]
    thread.join(5)
    assert texts == ["over TLS", "over TLS"]  # the server only ever accepted one connection


def test_https_certificate_not_trusted_is_unavailable(
    make_provider: MakeProvider, tls_cert: tuple[Path, Path]
) -> None:
    base, thread = _tls_server(tls_cert, replies=1)
    with pytest.raises(errors.Unavailable) as info:
        make_provider(base).complete(make_call("gpt-4o-mini"))
    thread.join(5)
    assert "TLS failed" in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
    base, thread = _tls_server(tls_cert, replies=1)
    insecure = make_provider(base, settings={"verify": False})
    assert insecure.complete(make_call("gpt-4o-mini")).text == "over TLS"
    thread.join(5)


def test_a_provider_without_embeddings_says_so() -> None:
    from router.config.model import ProviderConfig
    from router.providers import create_provider

    mock = create_provider(ProviderConfig(name="echo", type="mock"))
    model = ModelConfig(name="e", provider="echo", model="x")
    with pytest.raises(errors.BadRequest, match="provider type 'mock' does not serve embeddings"):
        mock.embed(model, ["x"])
    with pytest.raises(errors.BadRequest):
        asyncio.run(mock.aembed(model, ["x"]))


# -- HTTP proxies -----------------------------------------------------------------------------


def test_plain_http_through_a_proxy_with_credentials(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    with ProxyServer() as proxy:
        url = proxy.url.replace("http://", "http://bob:pr0xy-pass@")
        provider = make_provider(settings={"proxy": url})
        assert provider.complete(make_call("gpt-4o-mini")).text == "Hello from the fake provider."
        pieces = list(provider.stream(make_call("gpt-4o-mini")))
        assert "".join(p.text for p in pieces) == "Hello from the fake provider."
    line, auth = proxy.seen[0]
    assert line == f"POST {fake.base_url}/chat/completions HTTP/1.1"
    assert auth == "Basic " + base64.b64encode(b"bob:pr0xy-pass").decode()
    assert fake.last_request.headers["authorization"] == f"Bearer {CANARY}"
    assert "pr0xy-pass" not in str(provider.info())


def test_https_through_a_proxy_tunnel(
    make_provider: MakeProvider, tls_cert: tuple[Path, Path]
) -> None:
    """Sync and async each open one tunnel (the TLS server takes one connection each)."""
    ports = []
    with ProxyServer() as proxy:
        for run_async in (False, True):
            base, thread = _tls_server(tls_cert, replies=1)
            ports.append(base.split(":")[2].split("/")[0])
            settings = {"proxy": proxy.url, "verify": str(tls_cert[0])}
            provider = make_provider(base, settings=settings)
            call = make_call("gpt-4o-mini")
            done = asyncio.run(provider.acomplete(call)) if run_async else provider.complete(call)
            assert done.text == "over TLS"
            thread.join(5)
    assert [line for line, _ in proxy.seen] == [
        f"CONNECT 127.0.0.1:{port} HTTP/1.1" for port in ports
    ]


def test_the_environment_s_proxy_and_no_proxy(
    make_provider: MakeProvider, fake: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ProxyServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        make_provider().complete(make_call("gpt-4o-mini"))
        assert len(proxy.seen) == 1
        monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
        make_provider().complete(make_call("gpt-4o-mini"))
        monkeypatch.delenv("NO_PROXY")
        make_provider(settings={"proxy": False}).complete(make_call("gpt-4o-mini"))
        assert len(proxy.seen) == 1  # neither went through the proxy
    assert len(fake.requests) == 3


def test_a_proxy_that_refuses_the_tunnel_is_unavailable(
    make_provider: MakeProvider, tls_cert: tuple[Path, Path]
) -> None:
    with ProxyServer(refuse=407) as proxy:
        url = proxy.url.replace("http://", "http://bob:pr0xy-pass@")
        provider = make_provider("https://127.0.0.1:9/v1", settings={"proxy": url})
        with pytest.raises(errors.Unavailable) as info:
            provider.complete(make_call("gpt-4o-mini"))
        with pytest.raises(errors.Unavailable) as async_info:
            asyncio.run(provider.acomplete(make_call("gpt-4o-mini")))
    for exc in (info.value, async_info.value):
        assert "answered CONNECT with HTTP 407" in str(exc)
        assert "pr0xy-pass" not in str(exc) and "bob" not in str(exc)


def test_a_proxy_that_is_not_http_is_a_config_error(make_provider: MakeProvider) -> None:
    with pytest.raises(ConfigError, match="proxy only http:// proxies"):
        make_provider(settings={"proxy": "socks5://127.0.0.1:1080"})


def test_connections_of_ended_event_loops_are_let_go(
    make_provider: MakeProvider, fake: FakeProviderServer
) -> None:
    """`asyncio.run` per request (a script's habit) must not pile up open sockets."""
    provider = make_provider()
    for _ in range(10):
        asyncio.run(provider.acomplete(make_call("gpt-4o-mini")))
    assert len(fake.requests) == 10
    gc.collect()
    # Only the last loop's pool may still hold its connection.
    assert _client_sockets_to(fake.port) <= 1


def _client_sockets_to(port: int) -> int:
    """Sockets this process holds that are connected to `port` on 127.0.0.1."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    count = 0
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count
