"""Helpers for config tests: write real YAML files, load them, look at the issues."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from router.config import load_config
from router.errors import ConfigError, ConfigIssue

Write = Callable[..., Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """write(text, name="rules.yaml") -> path; the text is dedented, line 1 is its first line."""

    def _write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


def issues_of(path: Path, environ: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    """The issues load_config reports (it must fail)."""
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=environ or {})
    assert info.value.issues, "a ConfigError must carry its issues"
    return list(info.value.issues)


def issue_at(issues: list[ConfigIssue], pointer: str) -> ConfigIssue:
    """The one issue reported at `pointer`."""
    found = [i for i in issues if i.pointer == pointer]
    assert len(found) == 1, f"expected one issue at {pointer!r}, got: {[str(i) for i in issues]}"
    return found[0]


# A small valid base that tests extend.
BASE = """
providers:
  echo: {type: mock}
models:
  small: {provider: echo}
  large: {provider: echo, context: 128000}
"""
