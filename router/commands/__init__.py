"""Bodies of the provider-manager commands: `router health | compare | batch | pull | rm`.

`router.cli` only registers them (`register(sub)`), so each stays a small module.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the provider-manager subcommands to the `router` parser's subparsers."""
    from router.commands import batch, compare, health, ollama

    health.register(sub)
    compare.register(sub)
    batch.register(sub)
    ollama.register(sub)


def add_config(sp: argparse.ArgumentParser) -> None:
    """An optional CONFIG: the default config (`$ROUTER_CONFIG`, ./router.yaml, ...) if absent."""
    sp.add_argument("config", nargs="?", help="a YAML file or a directory (default: as route())")


__all__ = ["add_config", "register"]
