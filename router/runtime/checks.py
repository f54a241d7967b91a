"""Checks of a loaded config that need more than the config: what validate warns of."""

from __future__ import annotations

from router.config.model import Config


def config_warnings(config: Config) -> list[str]:
    return []


__all__ = ["config_warnings"]
