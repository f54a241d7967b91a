"""`router health` and `router models --discover` from the command line."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest

from router.cli import main
from router.testing import FakeProviderServer


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def config(tmp_path: Path) -> Path:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              ollama: {{type: litellm, api_base: "http://127.0.0.1:{port}", api: ollama}}
              echo: {{type: mock}}
            models:
              llama: {{provider: ollama, model: ollama/llama3}}
              e: {{provider: echo, model: e}}
            rules:
              - {{name: default, targets: [llama, e]}}
            """
        )
    )
    return path


def test_health_says_down_and_exits_1(config: Path, capsys) -> None:
    code, out, _ = run(capsys, "health", str(config), "--timeout", "3")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["provider", "type", "status", "latency"]
    ollama = next(line for line in lines if line.startswith("ollama"))
    assert " down " in ollama and "/api/tags" in ollama
    echo = next(line for line in lines if line.startswith("echo"))
    assert " ok " in echo and "1-token request to e" in echo


def test_health_json(config: Path, capsys) -> None:
    code, out, _ = run(capsys, "health", str(config), "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 1
    assert rows["ollama"]["status"] == "down" and rows["ollama"]["error"]
    assert rows["echo"]["status"] == "ok" and rows["echo"]["latency_ms"] >= 0


def test_models_discover(tmp_path: Path, capsys) -> None:
    with FakeProviderServer(models=("llama3:latest", "qwen2.5:7b")) as fake:
        path = tmp_path / "rules.yaml"
        path.write_text(
            textwrap.dedent(
                f"""\
                providers:
                  ollama: {{type: litellm, api_base: "{fake.url}"}}
                models:
                  llama: {{provider: ollama, model: ollama/llama3:latest}}
                rules:
                  - {{name: default, targets: [llama]}}
                """
            )
        )
        code, out, _ = run(capsys, "models", str(path), "--discover", "--json")
        _, plain, _ = run(capsys, "models", str(path))
    assert code == 0
    rows = json.loads(out)
    assert {(r["id"], r["note"]) for r in rows if r["name"] == "-"} == {
        ("llama3:latest", "declared"),
        ("qwen2.5:7b", "discovered"),
    }
    assert "qwen2.5" not in plain  # no --discover: the config's models only
