"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.builders import make_config

__all__ = ["make_config"]


@pytest.fixture(autouse=True)
def _isolated_usage_db(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Iterator[Path]:
    """Spend goes to SQLite by default: give every test its own file, never the user's."""
    path = tmp_path_factory.mktemp("usage") / "usage.sqlite"
    monkeypatch.setenv("ROUTER_USAGE_DB", str(path))
    yield path
