"""A config-driven router for LLM requests.

    from router import Router
    r = Router.from_config("rules/default.yaml")
    print(r.route("Write a haiku", use_case="chat").text)

`import router` is light: litellm and llama_cpp load only when a provider of
their type is created, the runtime only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from router.errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    ConfigError,
    ContextOverflow,
    MissingDependency,
    NoRouteError,
    NotFound,
    ProviderError,
    RateLimited,
    RouterError,
    Timeout,
    Unavailable,
)
from router.types import Attempt, Chunk, Decision, Request, Result, RuleTrace, Usage

if TYPE_CHECKING:
    from router.runtime.router import Router, aroute, default_config_path, explain, route

__version__ = "0.1.0"

_LAZY = {"Router", "route", "aroute", "explain", "default_config_path"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from router.runtime import router as _runtime

        return getattr(_runtime, name)
    raise AttributeError(f"module 'router' has no attribute {name!r}")


__all__ = [
    "Attempt",
    "AuthError",
    "BadRequest",
    "BudgetExceeded",
    "Chunk",
    "ConfigError",
    "ContextOverflow",
    "Decision",
    "MissingDependency",
    "NoRouteError",
    "NotFound",
    "ProviderError",
    "RateLimited",
    "Request",
    "Result",
    "Router",
    "RouterError",
    "RuleTrace",
    "Timeout",
    "Unavailable",
    "Usage",
    "aroute",
    "default_config_path",
    "explain",
    "route",
]
