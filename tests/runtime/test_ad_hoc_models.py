"""`model="<provider>/<id>"` calls a model the config does not list, through the same
filters, limits and budgets; a pinned request keeps the `max_cost` of its rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router import NoRouteError, NotFound, RejectionKind, Router, UnknownModel
from router.testing import FakeProviderServer, reply

pytestmark = pytest.mark.filterwarnings("ignore:.*ReadOnly.*:UserWarning")

# gpt-4o-mini in litellm's map: USD per 1M tokens (input, output), window.
MINI_PRICE = (0.15, 0.6)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="from the fake") as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


def write(tmp_path: Path, fake: FakeProviderServer, extra: str = "", max_cost: str = "") -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(
        f"""
providers:
  echo: {{type: mock, reply: "[{{model}}] {{prompt}}"}}
  remote: {{type: litellm, api_base: '{fake.base_url}', api_key: sk-fake, retries: 0}}
  native: {{type: openai, api_base: '{fake.base_url}', api_key: sk-fake, retries: 0}}
  openai: {{type: litellm, api_base: '{fake.base_url}', api_key: sk-fake, retries: 0}}
  ollama: {{type: litellm, api_base: '{fake.url}', retries: 0}}
  local: {{type: llama_cpp, models_dir: '{tmp_path}'}}
models:
  cheap: {{provider: echo, model: cheap-id, cost: {{input: 0, output: 0}}}}
  native/listed: {{provider: echo, model: listed-id}}
rules:
  - name: default
    targets: [cheap]
    {max_cost}
settings: {{usage_db: ':memory:'}}
{extra}
"""
    )
    return path


@pytest.fixture
def router(tmp_path: Path, fake: FakeProviderServer) -> Iterator[Router]:
    with Router.from_config(write(tmp_path, fake), warm=False) as r:
        yield r


def test_provider_slash_id_calls_an_unlisted_model_through_litellm(
    router: Router, fake: FakeProviderServer
) -> None:
    res = router.route("hi", model="remote/gpt-4o-mini")
    assert res.text == "from the fake"
    assert (res.model, res.provider, res.rule) == (
        "remote/gpt-4o-mini",
        "remote",
        "model:remote/gpt-4o-mini",
    )
    assert fake.last_request.body["model"] == "gpt-4o-mini"  # the provider's own id
    # litellm's map knows its price: the cost is counted, not taken as $0.
    n_in, n_out = res.usage.input_tokens, res.usage.output_tokens
    expected = (n_in * MINI_PRICE[0] + n_out * MINI_PRICE[1]) / 1e6
    assert res.cost_usd == pytest.approx(expected)
    d = router.explain("hi", model="remote/gpt-4o-mini")
    assert (d.model, d.provider, d.candidates) == (
        "remote/gpt-4o-mini",
        "remote",
        ("remote/gpt-4o-mini",),
    )
    assert d.unpriced == ()


def test_a_provider_named_as_litellm_names_one_keeps_its_prefix(
    router: Router, fake: FakeProviderServer
) -> None:
    """litellm routes `openai/...`, `openrouter/...`, `ollama/...` by that prefix."""
    res = router.route("hi", model="openai/gpt-4o-mini")
    assert res.model == "openai/gpt-4o-mini" and res.provider == "openai"
    assert fake.last_request.body["model"] == "gpt-4o-mini"
    assert res.cost_usd is not None
    assert router.explain("hi", model="openai/gpt-4o-mini").unpriced == ()
    res = router.route("hi", model="ollama/llama3")  # "llama3" alone: litellm cannot route
    assert res.text == "from the fake" and res.provider == "ollama"
    assert fake.last_request.path.startswith("/api/")
    assert fake.last_request.body["model"] == "llama3"
    assert res.cost_usd == 0.0  # a local Ollama: free, as its YAML entry would be


def test_provider_slash_id_through_the_native_openai_adapter(
    router: Router, fake: FakeProviderServer
) -> None:
    chunks = list(router.route("hi", model="native/my-own-model", stream=True))
    assert "".join(c.text for c in chunks) == "from the fake"
    assert fake.last_request.body["model"] == "my-own-model"
    result = chunks[-1].result
    assert result is not None and result.model == "native/my-own-model"
    assert result.cost_usd is None  # nobody knows its price: unknown, not $0
    assert router.usage(by=("model",))[0]["unpriced_requests"] == 1


def test_a_configured_name_with_a_slash_wins(router: Router, fake: FakeProviderServer) -> None:
    res = router.route("hi", model="native/listed")
    assert res.text == "[listed-id] hi" and res.provider == "echo"
    assert fake.requests == []


def test_a_name_that_is_neither_is_unknown_model(router: Router) -> None:
    for name, hint in (
        ("gpt-9", "e.g. model='echo/gpt-9'"),
        ("remot/gpt-4o", "did you mean 'remote/gpt-4o'?"),
        ("chaep", "did you mean 'cheap'?"),
    ):
        with pytest.raises(NoRouteError) as info:
            router.route("hi", model=name)
        exc = info.value
        assert isinstance(exc, UnknownModel) and isinstance(exc, NotFound)
        assert exc.decision is not None and exc.decision.model is None
        assert exc.decision.rejected[name].kind is RejectionKind.UNKNOWN_MODEL
        text = str(exc)
        assert f"unknown model '{name}'" in text and hint in text
        assert "cheap" in text and "echo, local, native, ollama, openai, remote" in text
        with pytest.raises(UnknownModel):
            router.explain("hi", model=name)


def test_a_local_provider_takes_no_unlisted_file(router: Router) -> None:
    with pytest.raises(UnknownModel, match="serves only the models the config lists"):
        router.route("hi", model="local/../../etc/passwd.gguf")


def test_an_unlisted_model_goes_through_the_same_filters(
    router: Router, fake: FakeProviderServer
) -> None:
    # No window in litellm's map for this id: the default of a YAML entry (8192).
    with pytest.raises(NoRouteError, match="context too small"):
        router.route("word " * 9000, model="native/my-own-model")
    # Tools: the request needs a capability nobody claimed for it.
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    d = router.explain("hi", model="native/my-own-model", tools=[tool])
    assert d.rejected["native/my-own-model"].kind is RejectionKind.CAPABILITY
    assert fake.requests == []


def test_a_pinned_model_keeps_the_max_cost_of_the_rule_it_matches(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    path = write(tmp_path, fake, max_cost="max_cost: 0.00001")
    with Router.from_config(path, warm=False) as r:
        d = r.explain("hi", model="remote/gpt-4o-mini", max_tokens=100)
        assert d.model is None
        why = d.rejected["remote/gpt-4o-mini"]
        assert why.kind is RejectionKind.COST
        assert "over max_cost $1e-05 (rule default's, which this request matches)" in why
        # Unknown price: max_cost cannot hold it; said so rather than served as $0.
        d = r.explain("hi", model="native/my-own-model")
        assert d.rejected["native/my-own-model"].kind is RejectionKind.PRICE
        # Under the ceiling it serves.
        assert r.route("hi", model="remote/gpt-4o-mini", max_tokens=1).model == (
            "remote/gpt-4o-mini"
        )
        assert r.explain("hi", model="cheap").model == "cheap"  # free: $0 is under it
    assert [q.body["model"] for q in fake.requests] == ["gpt-4o-mini"]


def test_a_pinned_model_is_held_back_by_a_spent_budget(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    path = write(tmp_path, fake, extra="budgets: {global: {daily: 0.5}}")
    fake.enqueue(reply(usage=(10_000_000, 0)))  # $1.50 at gpt-4o-mini's price
    with Router.from_config(path, warm=False) as r:
        r.route("hi", model="remote/gpt-4o-mini")  # spends past the budget
        with pytest.raises(NoRouteError) as info:
            r.route("hi", model="remote/gpt-4o-mini")
        assert info.value.decision is not None
        assert info.value.decision.rejected["remote/gpt-4o-mini"].kind is RejectionKind.BUDGET
    assert len(fake.requests) == 1
