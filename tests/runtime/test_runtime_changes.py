"""add_provider / remove_provider / add_model / remove_model, and what a file reload does."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import ConfigError, Router
from router.errors import RequestError
from router.testing import FakeProviderServer

BASE = textwrap.dedent(
    """\
    providers:
      echo: {type: mock, reply: "echo: {prompt}"}
    models:
      a: {provider: echo, model: a}
      b: {provider: echo, model: b}
    rules:
      - {name: default, targets: [a, b]}
    tests:
      - {prompt: "hi", expect: {rule: default}}
    settings: {usage_db: ":memory:"}
    """
)


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="from the fake") as server:
        yield server


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(BASE)
    return p


def test_add_provider_and_model_serve_at_once(path: Path, fake: FakeProviderServer) -> None:
    events = []
    with Router.from_config(path) as r:
        r.on_reload(events.append)
        r.add_provider("cloud", {"type": "litellm", "api_key": "k", "api_base": fake.base_url})
        event = r.add_model("extra", {"provider": "cloud", "model": "openai/x", "context": 4096})
        assert event.ok and event.version == 3 and r.snapshot.version == 3
        (row,) = r.compare("hello", models=["extra"])
        assert row.ok and row.text == "from the fake"
        assert r.config.models["extra"].context == 4096
        assert r.status()["runtime_changes"] == {
            "added": {"models": ["extra"], "providers": ["cloud"]},
            "removed": {},
        }
    assert [e.version for e in events] == [2, 3]
    assert any("extra" in line for line in events[1].changes.describe())


def test_an_invalid_change_is_refused_and_changes_nothing(path: Path) -> None:
    with Router.from_config(path) as r:
        with pytest.raises(ConfigError) as info:
            r.add_provider("bad", {"type": "litellmm"})
        assert "<runtime>" in str(info.value) and "providers.bad.type" in str(info.value)
        with pytest.raises(ConfigError, match="unknown provider 'nowhere'"):
            r.add_model("m", {"provider": "nowhere", "model": "x"})
        with pytest.raises(ConfigError, match="duplicate model 'a'"):
            r.add_model("a", {"provider": "echo", "model": "again"})
        # a rule still targets it
        with pytest.raises(ConfigError, match="'a'"):
            r.remove_model("a")
        with pytest.raises(RequestError, match="no provider 'ghost' to remove"):
            r.remove_provider("ghost")
        assert r.snapshot.version == 1 and r.status()["last_error"] is None
        assert r.route("hi").model == "a"


def test_remove_model_then_provider(path: Path) -> None:
    path.write_text(BASE.replace("[a, b]", "[b]"))
    with Router.from_config(path) as r:
        r.add_provider("spare", {"type": "mock"})
        with pytest.raises(ConfigError):
            r.remove_provider("echo")  # models a and b still name it
        r.remove_model("a")
        assert "a" not in r.config.models
        r.remove_provider("spare")  # added at run time: removing undoes the addition
        assert r.runtime_changes() == {"added": {}, "removed": {"models": ["a"]}}


def test_a_file_reload_keeps_runtime_changes(path: Path) -> None:
    with Router.from_config(path) as r:
        r.add_provider("spare", {"type": "mock", "reply": "spare"})
        r.add_model("c", {"provider": "spare", "model": "c"})
        path.write_text(
            BASE.replace("[a, b]", "[b, a]").replace("b: {provider: echo", "b: {provider: spare")
        )
        event = r.reload()
        assert event.ok
        # the file's edit and the runtime additions, together
        assert r.config.models["b"].provider == "spare" and "c" in r.config.models
        assert r.route("hi").text == "spare"
        # the file now defines a name added at run time: refused, the old config serves
        path.write_text(BASE.replace("models:\n", "models:\n  c: {provider: echo, model: c}\n"))
        event = r.reload()
        assert not event.ok
        assert "duplicate model 'c'" in str(event.error) and "<runtime>" in str(event.error)
        assert r.config.models["c"].provider == "spare"
        # removing the runtime addition lets the file's definition in
        r.remove_model("c")
        assert r.config.models["c"].provider == "echo"


def test_needs_a_router_from_a_file(make_config) -> None:
    from router.errors import RouterError
    from tests.engine.builders import rule

    with Router(make_config([rule("d", ["a"])])) as r, pytest.raises(RouterError, match="file"):
        r.add_provider("x", {"type": "mock"})
