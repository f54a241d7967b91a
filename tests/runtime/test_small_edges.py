"""Smaller edges: route() after close(), control characters in what the CLI prints."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from router import Router
from router.errors import RouterError

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
providers: {echo: {type: mock}}
models: {"m\\e[2J": {provider: echo}}
rules:
  - {name: "evil\\e]0;pwned\\a\\e[31m", targets: ["m\\e[2J"]}
tests:
  - {prompt: "hi\\e[5m", expect: {model: "m\\e[2J"}}
"""


def test_route_after_close_raises_clearly(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG)
    router = Router.from_config(path)
    assert router.route("hi").text
    router.close()
    for attempt in (
        lambda: router.route("hi"),
        lambda: router.route("hi", stream=True),
        lambda: asyncio.run(router.aroute("hi")),
    ):
        with pytest.raises(RouterError, match="this Router is closed"):
            attempt()


@pytest.mark.parametrize("command", ["explain", "run", "models", "test"])
def test_cli_escapes_control_characters(tmp_path: Path, command: str) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG)
    args = [str(path)] if command in ("models", "test") else [str(path), "hello"]
    done = subprocess.run(
        [sys.executable, "-m", "router", command, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out = done.stdout + done.stderr
    assert "\x1b" not in out and "\x07" not in out
    shown = "\\x1b[5m" if command == "test" else "m\\x1b[2J"
    assert shown in out  # still shown, escaped
    if command in ("explain", "run"):
        assert "evil\\x1b]0;pwned\\x07\\x1b[31m" in out
