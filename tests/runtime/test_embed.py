"""`Router.embed()`: rules route embeddings; litellm over real HTTP, llama.cpp on Gemma."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import NoRouteError, Router
from router.errors import RequestError
from router.testing import FakeProviderServer, server_error
from tests.providers.llama_fixtures import BASE_SETTINGS, MODEL_FILE, llama_cpp_module, models_dir

__all__ = ["llama_cpp_module", "models_dir"]  # fixtures, used by name


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, fake: FakeProviderServer) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              cloud: {{type: litellm, api_key: k, api_base: "{fake.base_url}", retries: 0}}
            models:
              chat: {{provider: cloud, model: openai/gpt-4o-mini}}
              small-embed:
                provider: cloud
                model: openai/text-embedding-3-small
                capabilities: [embeddings]
                cost: {{input: 20, output: 0}}
              big-embed:
                provider: cloud
                model: openai/text-embedding-3-large
                capabilities: [embeddings]
                cost: {{input: 130, output: 0}}
            rules:
              - {{name: search, when: {{use_case: search}}, targets: [big-embed, small-embed]}}
              - {{name: default, targets: [chat, small-embed]}}
            settings: {{usage_db: ":memory:"}}
            """
        )
    )
    return path


def test_rules_route_embeddings_and_usage_is_recorded(
    config: Path, fake: FakeProviderServer
) -> None:
    with Router.from_config(config) as r:
        res = r.embed(["hello world", "good bye", "hello world"])
        usage = r.usage(by=("model", "rule"))
    assert res.model == "small-embed" and res.rule == "default" and res.provider == "cloud"
    assert len(res.vectors) == 3 and all(len(v) == 8 for v in res.vectors)
    assert res.vectors[0] == res.vectors[2] != res.vectors[1]
    assert math.isclose(sum(x * x for x in res.vectors[0]), 1.0, rel_tol=1e-3)
    assert res.usage.input_tokens == 6
    assert res.cost_usd == pytest.approx(6 * 20 / 1e6)
    assert res.decision is not None
    assert res.decision.rejected == {"chat": "missing capability: embeddings"}
    sent = fake.last_request
    assert sent.path == "/v1/embeddings"
    assert sent.body["model"] == "text-embedding-3-small"
    assert sent.body["input"] == ["hello world", "good bye", "hello world"]
    assert [(u["model"], u["rule"], u["input_tokens"]) for u in usage] == [
        ("small-embed", "default", 6)
    ]


def test_use_case_picks_the_rule_and_a_failure_falls_over(
    config: Path, fake: FakeProviderServer
) -> None:
    fake.enqueue(server_error(503, "overloaded"))
    with Router.from_config(config) as r:
        res = r.embed("a query", use_case="search", dimensions=4)
    assert res.rule == "search" and res.model == "small-embed"
    assert [(a.model, a.error) for a in res.attempts] == [("big-embed", "unavailable")]
    assert "overloaded" in res.attempts[0].message
    assert len(res.vectors[0]) == 4  # dimensions= reaches the provider
    assert fake.last_request.body["dimensions"] == 4


def test_model_named_skips_the_rules_and_errors_are_clear(config: Path) -> None:
    with Router.from_config(config) as r:
        res = r.embed("x", model="big-embed")
        assert res.model == "big-embed" and res.decision is None
        with pytest.raises(RequestError, match="unknown model 'nope'"):
            r.embed("x", model="nope")
        with pytest.raises(RequestError, match="at least one text"):
            r.embed([])


async def test_aembed(config: Path, fake: FakeProviderServer) -> None:
    fake.enqueue(server_error(502, "bad gateway"))
    with Router.from_config(config) as r:
        res = await r.aembed(["one", "two"], use_case="search")
        usage = r.usage(by=("model",))
    assert res.model == "small-embed" and len(res.vectors) == 2
    assert [(a.model, a.error) for a in res.attempts] == [("big-embed", "unavailable")]
    assert [u["model"] for u in usage] == ["small-embed"]


def test_no_embedding_model_is_a_no_route_error(tmp_path: Path, fake: FakeProviderServer) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        f"providers: {{cloud: {{type: litellm, api_base: '{fake.base_url}'}}}}\n"
        "models: {chat: {provider: cloud, model: openai/gpt-4o-mini}}\n"
        "rules: [{name: default, targets: [chat]}]\n"
    )
    with Router.from_config(path) as r, pytest.raises(NoRouteError) as info:
        r.embed("x")
    assert "chat: rule default: missing capability: embeddings" in str(info.value)


@pytest.mark.llama
def test_llama_cpp_embeddings_on_gemma(tmp_path: Path, models_dir: Path) -> None:
    path = tmp_path / "rules.yaml"
    settings = ", ".join(f"{k}: {v}" for k, v in BASE_SETTINGS.items())
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              local: {{type: llama_cpp, models_dir: "{models_dir}", {settings}}}
            models:
              gemma-embed:
                provider: local
                model: {MODEL_FILE}
                context: 1024
                capabilities: [embeddings]
            rules:
              - {{name: default, targets: [gemma-embed]}}
            settings: {{usage_db: ":memory:"}}
            """
        )
    )
    with Router.from_config(path) as r:
        res = r.embed(
            ["The cat sat on the mat.", "Quantum chromodynamics", "The cat sat on the mat."]
        )
        usage = r.usage(by=("model",))
    assert res.model == "gemma-embed" and res.cost_usd == 0
    assert len(res.vectors) == 3 and len(res.vectors[0]) == 640  # Gemma 3 270M's width
    assert res.vectors[0] == res.vectors[2] != res.vectors[1]
    assert res.usage.input_tokens > 0
    assert usage[0]["input_tokens"] == res.usage.input_tokens


def test_the_native_openai_adapter_serves_embeddings(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              native: {{type: openai, api_key: k, api_base: "{fake.base_url}"}}
            models:
              emb: {{provider: native, model: text-embedding-3-small, capabilities: [embeddings],
                    cost: {{input: 20, output: 0}}}}
            rules:
              - {{name: default, targets: [emb]}}
            settings: {{usage_db: ":memory:"}}
            """
        )
    )
    with Router.from_config(path) as r:
        res = r.embed(["a b", "c"])
        usage = r.usage(by=("model",))
    assert res.model == "emb" and len(res.vectors) == 2 and len(res.vectors[0]) == 8
    assert fake.last_request.path == "/v1/embeddings"
    assert fake.last_request.body["model"] == "text-embedding-3-small"
    assert res.cost_usd == pytest.approx(3 * 20 / 1e6)
    assert usage[0]["input_tokens"] == 3


def test_an_unknown_price_is_unknown_not_zero(tmp_path: Path, fake: FakeProviderServer) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              cloud: {{type: litellm, api_key: k, api_base: "{fake.base_url}", retries: 0}}
            models:
              mine: {{provider: cloud, model: openai/my-embedder, capabilities: [embeddings]}}
            rules:
              - {{name: default, targets: [mine]}}
            settings: {{usage_db: ":memory:"}}
            """
        )
    )
    with Router.from_config(path) as r:
        res = r.embed("hello world")
        usage = r.usage(by=("model",))
    assert res.model == "mine" and len(res.vectors) == 1
    assert res.cost_usd is None  # nobody knows its price: not $0
    assert usage[0]["unpriced_requests"] == 1 and usage[0]["cost_usd"] == 0
