"""`model=` pins a model, `rule=` forces a rule; messages may be OpenAI SDK objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router import NoRouteError, Router, RouterError
from router.errors import RequestError
from router.testing import FakeProviderServer


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="from the fake") as server:
        yield server


@pytest.fixture
def router(tmp_path: Path, fake: FakeProviderServer) -> Iterator[Router]:
    path = tmp_path / "router.yaml"
    path.write_text(
        f"""
providers:
  echo: {{type: mock, reply: "[{{model}}] {{prompt}}"}}
  remote: {{type: litellm, api_base: '{fake.base_url}', api_key: sk-fake, retries: 0}}
models:
  cheap: {{provider: echo, model: cheap-id}}
  claude-sonnet: {{provider: echo, model: sonnet-id, cost: {{input: 3, output: 15}}}}
  tiny: {{provider: echo, context: 50}}
rules:
  - name: coding
    when: {{use_case: coding}}
    targets: [claude-sonnet]
    system: "lang={{{{ metadata.language }}}}"
  - name: default
    targets: [cheap, tiny]
    max_cost: 0.01
settings: {{usage_db: ':memory:'}}
"""
    )
    with Router.from_config(path) as r:
        yield r


def test_model_pins_a_configured_model(router: Router) -> None:
    assert router.route("hi").model == "cheap"
    res = router.route("hi", model="claude-sonnet")
    assert res.model == "claude-sonnet" and res.text == "[sonnet-id] hi"
    d = router.explain("hi", model="claude-sonnet")
    assert d.model == "claude-sonnet" and d.candidates == ("claude-sonnet",)


def test_a_pinned_model_goes_through_the_same_filters(router: Router) -> None:
    with pytest.raises(NoRouteError) as info:
        router.route("hi " * 100, model="tiny")
    assert "tiny: rule model:tiny: context too small" in str(info.value)
    d = router.explain("hi " * 100, model="tiny")
    assert d.model is None and "context too small" in d.rejected["tiny"]


def test_an_unknown_model_or_rule_is_an_error_that_names_it(router: Router) -> None:
    with pytest.raises(RouterError, match="gpt-5"):
        router.route("hi", model="gpt-5")
    with pytest.raises(RouterError, match="codng"):
        router.route("hi", rule="codng")


def test_rule_forces_a_rule(router: Router) -> None:
    res = router.route("hi", rule="coding", metadata={"language": "Rust"})
    assert res.rule == "coding" and res.model == "claude-sonnet"
    assert router.explain("hi", rule="coding").rule == "coding"


def test_templates_see_metadata_x(router: Router) -> None:
    res = router.route("hi", use_case="coding", metadata={"language": "Rust"})
    assert res.text == "[sonnet-id] hi"  # the mock's {prompt} is the last user message
    assert router.route("hi", use_case="coding", metadata={"language": "Go"}).rule == "coding"


def test_openai_sdk_messages_are_accepted(router: Router) -> None:
    from openai.types.chat import ChatCompletionMessage

    previous = ChatCompletionMessage(role="assistant", content="Hello!")
    res = router.route(
        messages=[{"role": "user", "content": "hi"}, previous, {"role": "user", "content": "again"}]
    )
    assert res.text == "[cheap-id] again"


def test_a_list_of_strings_is_not_a_prompt(router: Router) -> None:
    with pytest.raises(RequestError, match="must be a string"):
        router.route(["one", "two"])  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="not a message"):
        router.route(messages=["one", "two"])  # type: ignore[list-item]
