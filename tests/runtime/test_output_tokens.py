"""One output-token figure per request, from one place, and the defaults that bound a call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router import Router
from router.config import load_config
from router.config.model import Settings
from router.providers.base import Call
from router.providers.mock import MockProvider
from router.testing import FakeProviderServer
from tests.engine.builders import model, rule


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="ok") as server:
        yield server


def _router(tmp_path: Path, fake: FakeProviderServer, models: str, rules: str) -> Router:
    path = tmp_path / "router.yaml"
    path.write_text(
        "providers:\n"
        f"  p: {{type: litellm, api_base: '{fake.base_url}', api_key: sk-fake, retries: 0}}\n"
        f"models:\n{models}rules:\n{rules}settings: {{usage_db: ':memory:'}}\n"
    )
    return Router.from_config(path)


@pytest.mark.parametrize(
    ("model_extra", "rule_extra", "call", "sent"),
    [
        ("", "", {}, 256),  # settings.default_max_tokens
        (", max_output: 50", "", {}, 50),  # the model's max_output
        (", max_output: 50", ", params: {max_tokens: 70}", {}, 70),  # the rule's params
        (", max_output: 50", ", params: {max_tokens: 70}", {"max_tokens": 9}, 9),  # the request
    ],
)
def test_the_adapter_sends_the_one_figure(
    tmp_path: Path,
    fake: FakeProviderServer,
    model_extra: str,
    rule_extra: str,
    call: dict[str, int],
    sent: int,
) -> None:
    with _router(
        tmp_path,
        fake,
        f"  m: {{provider: p, model: openai/gpt-4o-mini, cost: {{input: 1, output: 1}}"
        f"{model_extra}}}\n",
        f"  - {{name: d, targets: [m]{rule_extra}}}\n",
    ) as r:
        assert r.explain("hi", **call).max_tokens == sent
        r.route("hi", **call)
        assert fake.last_request.body["max_tokens"] == sent
        chunks = list(r.route("hi", stream=True, **call))
        assert chunks[-1].result is not None
        assert fake.last_request.body["max_tokens"] == sent


def test_a_small_model_with_a_small_max_output_is_not_rejected(make_config) -> None:
    cfg = make_config(
        [rule("r", ["small", "big"])],
        models=[model("small", context=300, max_output=50), model("big", context=10_000)],
    )
    with Router(cfg) as r:
        d = r.explain("short")
        assert d.model == "small" and d.max_tokens == 50, d.rejected


def test_default_deadline_and_provider_timeout(
    make_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings().deadline == 120.0
    path = tmp_path / "c.yaml"
    path.write_text(
        "providers: {p: {type: mock}}\nmodels: {m: {provider: p}}\n"
        "rules: [{name: d, targets: [m]}]\n"
    )
    assert load_config(path).settings.deadline == 120.0
    path.write_text(path.read_text() + "settings: {deadline: null}\n")
    assert load_config(path).settings.deadline is None
    seen: list[float | None] = []
    original = MockProvider.complete

    def spy(self: MockProvider, call: Call):  # type: ignore[no-untyped-def]
        seen.append(call.timeout)
        return original(self, call)

    monkeypatch.setattr(MockProvider, "complete", spy)
    with Router(make_config([rule("r", ["a"])], settings=Settings(deadline=None))) as r:
        r.route("hi")
    assert seen == [60.0]
