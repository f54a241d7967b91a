"""An unknown price is a state of its own, never $0."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import NoRouteError, Router
from router.cli import main
from router.config.model import ModelConfig, ProviderConfig
from router.providers.pricing import FREE, known_cost
from router.testing import FakeProviderServer


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="priced or not") as server:
        yield server


def write(tmp_path: Path, fake: FakeProviderServer, rule: str = "", extra: str = "") -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(
        "providers:\n"
        f"  p: {{type: litellm, api_base: '{fake.base_url}', api_key: sk-fake, retries: 0}}\n"
        "models:\n"
        "  opus: {provider: p, model: openai/claude-3-opus}\n"  # not in litellm's map
        "  mini: {provider: p, model: openai/gpt-4o-mini}\n"
        "rules:\n"
        f"  - {{name: d, targets: [opus, mini]{rule}}}\n"
        f"settings: {{usage_db: usage.sqlite{extra}}}\n"
    )
    return path


def test_prices_are_settled_at_load(tmp_path: Path, fake: FakeProviderServer) -> None:
    with Router.from_config(write(tmp_path, fake)) as r:
        assert r.config.models["opus"].cost is None
        mini = r.config.models["mini"].cost
        assert mini is not None and mini.input == pytest.approx(0.15)
    local = ModelConfig("g", "l", "g.gguf")
    assert known_cost(local, ProviderConfig("l", "llama_cpp")) == FREE


def test_unknown_price_costs_none_and_is_counted_apart(
    tmp_path: Path, fake: FakeProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, fake)
    with Router.from_config(path) as r:
        d = r.explain("hi")
        assert d.model == "opus" and "opus" in d.unpriced and "mini" not in d.unpriced
        assert "1. opus (price unknown)" in d.describe()
        res = r.route("hi")
        assert res.model == "opus" and res.cost_usd is None
        assert r.route("hi", model="mini").cost_usd is not None
        rows = {row["model"]: row for row in r.usage(by=("model",))}
    assert rows["opus"]["unpriced_requests"] == 1 and rows["opus"]["cost_usd"] == 0
    assert rows["mini"]["unpriced_requests"] == 0 and rows["mini"]["cost_usd"] > 0
    assert main(["usage", str(path)]) == 0
    assert "1 request(s) of models whose price is unknown" in capsys.readouterr().out
    assert main(["explain", str(path), "hi"]) == 0
    assert "1. opus (price unknown)" in capsys.readouterr().out


@pytest.mark.parametrize("rule", [", max_cost: 1.0", ""])
def test_max_cost_or_a_budget_drops_an_unknown_price(
    tmp_path: Path, fake: FakeProviderServer, rule: str
) -> None:
    path = write(tmp_path, fake, rule)
    if not rule:
        path.write_text(path.read_text() + "budgets: {global: {daily: 5}}\n")
    with Router.from_config(path) as r:
        d = r.explain("hi")
        assert d.model == "mini"
        assert d.rejected["opus"].startswith("price unknown: openai/claude-3-opus")
        if not rule:  # a global budget covers a pinned model too
            with pytest.raises(NoRouteError, match="price unknown"):
                r.route("hi", model="opus")


def test_declared_free_or_opting_out_keeps_the_model(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    path = write(tmp_path, fake, ", max_cost: 1.0")
    free = path.read_text().replace(
        "model: openai/claude-3-opus}",
        "model: openai/claude-3-opus, cost: {input: 0, output: 0}}",
    )
    path.write_text(free)
    with Router.from_config(path) as r:
        assert r.explain("hi").model == "opus"
        assert r.route("hi").cost_usd == 0
    path = write(tmp_path, fake, ", max_cost: 1.0", ", allow_unknown_prices: true")
    with Router.from_config(path) as r:
        assert r.explain("hi").model == "opus"


def test_validate_warns_of_each_unknown_price(
    tmp_path: Path, fake: FakeProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, fake)
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert "models.opus: price unknown for 'openai/claude-3-opus'" in err
    assert "models.mini" not in err
    assert main(["validate", "--json", str(path)]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert len(warnings) == 1 and "opus" in warnings[0]


def test_validate_catches_a_model_id_litellm_cannot_place(
    tmp_path: Path, fake: FakeProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, fake)
    path.write_text(path.read_text().replace("model: openai/gpt-4o-mini", "model: gemma"))
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert "ok" not in captured.out
    assert "models.mini.model: model id 'gemma': LLM Provider NOT provided" in captured.err
    assert "'openai/gemma'" in captured.err
