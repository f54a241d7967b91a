"""`Router.health()` and `Router.models(discover=True)` over real HTTP to the fake server."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import Router
from router.testing import FakeProviderServer

CANARY = "sk-canary-health-0123456789"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    details = {
        "google/gemini-2.5-flash": {
            "context_length": 1048576,
            "pricing": {"prompt": "0.0000003", "completion": "0.0000025"},
        }
    }
    models = ("gpt-4o-mini", "google/gemini-2.5-flash", "llama3:latest")
    with FakeProviderServer(models=models, model_details=details) as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def config(tmp_path: Path, fake: FakeProviderServer, closed_port: int, monkeypatch) -> Path:
    monkeypatch.setenv("HEALTH_TEST_KEY", CANARY)
    monkeypatch.delenv("HEALTH_TEST_UNSET", raising=False)
    return write(
        tmp_path,
        f"""\
        providers:
          cloud: {{type: litellm, api_key: "${{HEALTH_TEST_KEY}}", api_base: "{fake.base_url}"}}
          ollama: {{type: litellm, api_base: "{fake.url}", api: ollama}}
          ollama_down: {{type: litellm, api_base: "http://127.0.0.1:{closed_port}", api: ollama}}
          claude:
            type: litellm
            api_key: "${{HEALTH_TEST_KEY}}"
            api_base: "{fake.url}"
            api: anthropic
          keyless: {{type: litellm, api_key: "${{HEALTH_TEST_UNSET}}"}}
          broken: {{type: mock, fail: unavailable}}
        models:
          mini: {{provider: cloud, model: openai/gpt-4o-mini}}
          llama: {{provider: ollama, model: ollama/llama3:latest}}
          gone: {{provider: ollama_down, model: ollama/llama3}}
          sonnet: {{provider: claude, model: anthropic/claude-sonnet-4-5}}
          nokey: {{provider: keyless, model: openai/gpt-4o}}
          mock: {{provider: broken, model: m}}
        rules:
          - {{name: default, targets: [mini, llama, gone, sonnet, nokey, mock]}}
        """,
    )


def test_health_probes_every_provider_for_real(config: Path, fake: FakeProviderServer) -> None:
    fake.reset()
    with Router.from_config(config) as r:
        assert "ollama_down" not in r.status().health  # not probed yet
        rows = {h.name: h for h in r.health(timeout=5)}
        status = r.status()
    assert status.providers["ollama_down"].enabled is True  # the config's word alone
    assert status.health["ollama_down"]["status"] == "down"
    assert status.to_dict()["health"]["ollama_down"]["error"]
    assert rows["cloud"].status == "ok", rows["cloud"]
    assert rows["cloud"].probe == "listed 3 models"
    assert rows["cloud"].latency_ms is not None and rows["cloud"].latency_ms >= 0
    assert rows["ollama"].status == "ok"
    # A down Ollama is down, in words, not an empty list that looks fine.
    down = rows["ollama_down"]
    assert down.status == "down"
    assert "/api/tags" in (down.error or "") and "127.0.0.1" in (down.error or "")
    assert rows["keyless"].status == "disabled"
    assert rows["keyless"].disabled_reason == "HEALTH_TEST_UNSET is not set"
    # No listing: a 1-token request, whose failure is the probe's answer.
    assert rows["broken"].status == "down" and "mock failure" in (rows["broken"].error or "")
    paths = {(q.method, q.path) for q in fake.requests}
    assert ("GET", "/v1/models") in paths and ("GET", "/api/tags") in paths
    assert all(CANARY not in str(h.as_dict()) for h in rows.values())


def test_anthropic_listing_sends_its_own_headers(config: Path, fake: FakeProviderServer) -> None:
    fake.reset()
    with Router.from_config(config) as r:
        rows = {h.name: h for h in r.health(timeout=5)}
    assert rows["claude"].status == "ok"
    sent = [q for q in fake.requests if q.headers.get("anthropic-version")]
    assert sent, "no request carried anthropic-version"
    assert sent[0].path == "/v1/models"
    assert sent[0].headers["x-api-key"] == CANARY
    assert "authorization" not in sent[0].headers


def test_listing_errors_are_reported_with_the_servers_words(tmp_path: Path) -> None:
    # A 404 from the listing: the server's own words, the status and the endpoint.
    with FakeProviderServer() as strict:
        path = write(
            tmp_path,
            f"""\
            providers:
              p: {{type: litellm, api_base: "{strict.url}/nope/v1"}}
            models:
              m: {{provider: p, model: openai/x}}
            rules:
              - {{name: default, targets: [m]}}
            """,
        )
        with Router.from_config(path) as r:
            rows = r.models(discover=True)
            health = r.health(timeout=5)
    failed = [row for row in rows if row["note"].startswith("listing failed")]
    assert len(failed) == 1
    assert "404" in failed[0]["note"] and "/nope/v1/models" in failed[0]["note"]
    assert "no route GET" in failed[0]["note"]  # the server's own message
    assert health[0].status == "down" and "404" in (health[0].error or "")


def test_discovery_marks_declared_and_fills_openrouter_prices(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    path = write(
        tmp_path,
        f"""\
        providers:
          openrouter: {{type: litellm, api_key: "k", api_base: "{fake.base_url}", api: openrouter}}
        models:
          flash: {{provider: openrouter, model: openrouter/google/gemini-2.5-flash}}
        rules:
          - {{name: default, targets: [flash]}}
        """,
    )
    with Router.from_config(path) as r:
        declared_only = r.models()
        rows = r.models(discover=True)
    assert [row["name"] for row in declared_only] == ["flash"]
    listed = {row["id"]: row for row in rows if row["name"] == "-"}
    flash = listed["google/gemini-2.5-flash"]
    assert flash["note"] == "declared"
    assert flash["context"] == 1048576
    assert flash["cost"] == pytest.approx((0.3, 2.5))
    assert listed["gpt-4o-mini"]["note"] == "discovered"
    # gpt-4o-mini is in litellm's price map: its price comes from there
    assert listed["gpt-4o-mini"]["cost"] is not None


def test_openrouter_price_fills_cost_the_yaml_leaves_out(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    path = write(
        tmp_path,
        f"""\
        providers:
          openrouter: {{type: litellm, api_key: "k", api_base: "{fake.base_url}"}}
        models:
          flash: {{provider: openrouter, model: openrouter/google/gemini-2.5-flash}}
        rules:
          - {{name: default, targets: [flash]}}
        """,
    )
    fake.reset()
    with Router.from_config(path) as r:
        res = r.route("hello", max_tokens=5)
    expected = (res.usage.input_tokens * 0.3 + res.usage.output_tokens * 2.5) / 1e6
    assert res.cost_usd == pytest.approx(expected)


@pytest.mark.llama
def test_gpu_honesty_note(tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    path = write(
        tmp_path,
        f"""\
        providers:
          local: {{type: llama_cpp, models_dir: "{tmp_path}", n_gpu_layers: -1}}
        models:
          g: {{provider: local, model: g.gguf}}
        rules:
          - {{name: default, targets: [g]}}
        """,
    )
    (tmp_path / "g.gguf").write_bytes(b"GGUF")
    with Router.from_config(path) as r:
        (h,) = r.health()
    assert h.status == "ok" and h.probe == f"1 GGUF files under {tmp_path}"
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    noted = any("cannot offload" in n for n in h.notes)
    assert noted is (not offload)


def test_a_provider_disabled_by_a_401_shows_as_disabled_with_why(tmp_path: Path) -> None:
    from router.testing import unauthorized

    with FakeProviderServer() as strict:
        path = write(
            tmp_path,
            f"""\
            providers:
              p: {{type: litellm, api_key: "{CANARY}", api_base: "{strict.base_url}", retries: 0}}
              q: {{type: mock}}
            models:
              m: {{provider: p, model: openai/x}}
              n: {{provider: q, model: n}}
            rules:
              - {{name: default, targets: [m, n]}}
            """,
        )
        strict.enqueue(unauthorized())
        with Router.from_config(path) as r:
            assert r.route("hi").model == "n"  # m's 401 disabled p; n served
            rows = {h.name: h for h in r.health(timeout=5)}
    assert rows["p"].status == "disabled"
    assert "authentication failed (401)" in (rows["p"].disabled_reason or "")
    assert CANARY not in str(rows["p"].as_dict())
    assert rows["q"].status == "ok"


@pytest.mark.llama
def test_gpu_warning_is_said_once(caplog, monkeypatch) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    from types import SimpleNamespace

    from router.providers import llama_cpp as adapter

    monkeypatch.setattr(adapter, "_warned_no_offload", False)
    plan = SimpleNamespace(load_kwargs={"n_gpu_layers": -1})
    with caplog.at_level("WARNING", logger="router.llama_cpp"):
        adapter._warn_no_offload(plan)
        adapter._warn_no_offload(plan)
    said = [r for r in caplog.records if "cannot offload" in r.getMessage()]
    if llama_cpp.llama_supports_gpu_offload():
        assert said == []
    else:
        assert len(said) == 1 and "n_gpu_layers=-1" in said[0].getMessage()
    assert adapter.gpu_warning(0) is None  # no offload asked: nothing to say


def test_the_native_openai_adapter_is_probed_by_its_listing(
    tmp_path: Path, fake: FakeProviderServer, closed_port: int
) -> None:
    path = write(
        tmp_path,
        f"""\
        providers:
          up: {{type: openai, api_key: k, api_base: "{fake.base_url}"}}
          down: {{type: openai, api_key: k, api_base: "http://127.0.0.1:{closed_port}/v1"}}
        models:
          a: {{provider: up, model: gpt-4o-mini}}
          b: {{provider: down, model: gpt-4o-mini}}
        rules:
          - {{name: default, targets: [a, b]}}
        """,
    )
    fake.reset()
    with Router.from_config(path) as r:
        rows = {h.name: h for h in r.health(timeout=5)}
    assert rows["up"].status == "ok" and rows["up"].probe == "listed 3 models"
    assert rows["down"].status == "down" and f"127.0.0.1:{closed_port}" in (
        rows["down"].error or ""
    )
    assert not [q for q in fake.requests if q.path == "/v1/chat/completions"]  # no tokens spent
