"""`settings.state`: memory or a Redis URL, interpolated, checked, its password masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import load_config
from router.errors import ConfigError

PASSWORD = "hunter2-canary-pw"


def test_state_url_interpolates_and_masks_its_password(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        """
providers: {echo: {type: mock}}
models: {m: {provider: echo, model: m}}
rules: [{name: chat, targets: [m]}]
settings:
  state: rediss://default:${REDIS_PASSWORD}@cache.example:6380/2
"""
    )
    config = load_config(cfg)
    state = config.settings.state
    assert state.url is not None and state.url.reveal().endswith("@cache.example:6380/2")
    assert state.display() == "rediss://default:****@cache.example:6380/2"
    assert PASSWORD not in repr(config) and PASSWORD not in str(config.settings)


def test_state_url_must_be_a_redis_url(tmp_path: Path) -> None:
    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        """
providers: {echo: {type: mock}}
models: {m: {provider: echo, model: m}}
rules: [{name: chat, targets: [m]}]
settings:
  state: mysql://localhost/0
"""
    )
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "r.yaml:6" in str(err.value) and "settings.state" in str(err.value)
