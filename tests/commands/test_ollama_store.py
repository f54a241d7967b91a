"""`Router.pull()` / `router pull` and `Router.rm()` / `router rm` against the fake Ollama."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import Router
from router.cli import main
from router.commands.ollama import PullBar
from router.errors import ProviderError, RequestError
from router.providers.ollama_admin import PullProgress
from router.testing import FakeProviderServer


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(models=("llama3.2:latest",)) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, fake: FakeProviderServer) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              ollama: {{type: litellm, api_base: "{fake.url}", api: ollama}}
              echo: {{type: mock}}
            models:
              llama: {{provider: ollama, model: ollama_chat/qwen2.5:0.5b}}
              e: {{provider: echo}}
            rules:
              - {{name: default, targets: [llama, e]}}
            """
        )
    )
    return path


def test_pull_streams_progress_and_the_model_appears(
    config: Path, fake: FakeProviderServer
) -> None:
    steps: list[PullProgress] = []
    with Router.from_config(config) as r:
        last = r.pull("llama", progress=steps.append)  # a config model: its Ollama id
        assert last.status == "success"
        assert fake.last_request.path == "/api/pull"
        assert fake.last_request.body == {"model": "qwen2.5:0.5b", "stream": True}
        downloads = [s for s in steps if s.total]
        assert [s.completed for s in downloads] == [0, 1000, 2000, 3000]
        assert steps[0].status == "pulling manifest" and steps[-1].status == "success"
        listed = {row["id"] for row in r.models(discover=True) if row["name"] == "-"}
        assert "qwen2.5:0.5b" in listed
        r.rm("qwen2.5:0.5b")
        assert fake.last_request.method == "DELETE" and fake.last_request.path == "/api/delete"
        assert "qwen2.5:0.5b" not in fake.models


def test_errors_in_ollamas_words(config: Path) -> None:
    with Router.from_config(config) as r:
        with pytest.raises(ProviderError, match="file does not exist"):
            r.pull("missing-model")
        with pytest.raises(ProviderError, match="404: model 'nope' not found"):
            r.rm("nope")
        with pytest.raises(RequestError, match="not an Ollama provider"):
            r.pull("x", provider="echo")


def test_pull_bar_draws_a_bar_on_a_tty() -> None:
    out = io.StringIO()
    bar = PullBar(out, tty=True)
    bar(PullProgress("pulling manifest"))
    bar(PullProgress("pulling ab12", 1500, 3000))
    bar(PullProgress("success"))
    text = out.getvalue()
    assert "\rpulling ab12 [############............]  50% 1.5 kB/3.0 kB" in text
    assert text.endswith("\nsuccess\n")


def test_cli_pull_and_rm(config: Path, fake: FakeProviderServer, capsys) -> None:
    assert main(["pull", str(config), "phi3"]) == 0
    captured = capsys.readouterr()
    assert "pulled phi3" in captured.out
    assert "pulling manifest" in captured.err and "success" in captured.err
    assert "phi3" in fake.models
    assert main(["rm", str(config), "phi3"]) == 0
    assert "deleted phi3" in capsys.readouterr().out
    assert main(["rm", str(config), "phi3"]) == 1
    assert "model 'phi3' not found" in capsys.readouterr().err


def test_ollama_chat_models_talk_to_api_chat(config: Path, fake: FakeProviderServer) -> None:
    with Router.from_config(config) as r:
        res = r.route("hello")
    assert res.model == "llama" and res.text == "Hello from the fake provider."
    paths = [q.path for q in fake.requests]
    (chat,) = [q for q in fake.requests if q.path == "/api/chat"]
    assert chat.body["model"] == "qwen2.5:0.5b" and "/api/generate" not in paths
