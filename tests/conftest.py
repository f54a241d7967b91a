"""Fixtures shared by the whole suite."""

from tests.engine.builders import make_config

__all__ = ["make_config"]
