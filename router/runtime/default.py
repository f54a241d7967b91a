"""Module-level `route()`, `aroute()` and `explain()` on a default `Router`, made on first use."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal, overload

from router.runtime.router import Router
from router.types import Chunk, Decision, Result

_default: Router | None = None
_default_lock = threading.Lock()


def default_config_path() -> Path:
    """$ROUTER_CONFIG, else ./router.yaml, else the rules/default.yaml shipped in the wheel."""
    env = os.environ.get("ROUTER_CONFIG")
    if env:
        return Path(env)
    local = Path("router.yaml")
    if local.exists():
        return local
    return shipped_default_config()


def shipped_default_config() -> Path:
    """rules/default.yaml as installed with the package (router/rules in the wheel)."""
    from importlib import resources

    return Path(str(resources.files("router").joinpath("rules", "default.yaml")))


def default_router() -> Router:
    global _default
    with _default_lock:
        if _default is None:
            _default = Router.from_config(default_config_path())
        return _default


@overload
def route(
    prompt: str | None = None, *, stream: Literal[False] = False, **kwargs: Any
) -> Result: ...


@overload
def route(
    prompt: str | None = None, *, stream: Literal[True], **kwargs: Any
) -> Iterator[Chunk]: ...


@overload
def route(
    prompt: str | None = None, *, stream: bool, **kwargs: Any
) -> Result | Iterator[Chunk]: ...


def route(
    prompt: str | None = None, *, stream: bool = False, **kwargs: Any
) -> Result | Iterator[Chunk]:
    """`Router.route` on the default config (see `default_config_path`)."""
    return default_router().route(prompt, stream=stream, **kwargs)


@overload
async def aroute(
    prompt: str | None = None, *, stream: Literal[False] = False, **kwargs: Any
) -> Result: ...


@overload
async def aroute(
    prompt: str | None = None, *, stream: Literal[True], **kwargs: Any
) -> AsyncIterator[Chunk]: ...


@overload
async def aroute(
    prompt: str | None = None, *, stream: bool, **kwargs: Any
) -> Result | AsyncIterator[Chunk]: ...


async def aroute(
    prompt: str | None = None, *, stream: bool = False, **kwargs: Any
) -> Result | AsyncIterator[Chunk]:
    """`Router.aroute` on the default config."""
    return await default_router().aroute(prompt, stream=stream, **kwargs)


def explain(prompt: str | None = None, **kwargs: Any) -> Decision:
    return default_router().explain(prompt, **kwargs)
