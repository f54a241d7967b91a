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
    ConfigIssue,
    ContextOverflow,
    MissingDependency,
    NoRouteError,
    NotFound,
    ProviderError,
    RateLimited,
    RequestError,
    RouterError,
    Timeout,
    Unavailable,
    UnknownModel,
)
from router.types import (
    Attempt,
    BudgetStatus,
    Chunk,
    Decision,
    EmbeddingResult,
    LiveStatus,
    ModelInfo,
    ModelState,
    ProviderInfo,
    ProviderState,
    Record,
    Rejection,
    RejectionKind,
    Request,
    Result,
    RouterStatus,
    RuleTrace,
    SpendTotals,
    Usage,
    UsageRow,
    plain,
)

if TYPE_CHECKING:
    from router.config.loader import load_config
    from router.config.model import ApiKey, Config
    from router.observe.events import OUTCOMES
    from router.observe.metrics import RouterMetrics
    from router.observe.recent import RecentRequests, RequestSummary, TrafficOverview
    from router.replay import ReplayReport, replay_log
    from router.runtime.default import aroute, default_config_path, explain, route
    from router.runtime.reload.changes import ConfigChanges, ReloadEvent, diff_configs
    from router.runtime.router import Router
    from router.runtime.state.live import LiveState

__version__ = "0.1.0"

# name -> module: loaded on first use, so `import router` stays light.
_LAZY = {
    "ApiKey": "router.config.model",
    "Config": "router.config.model",
    "Router": "router.runtime.router",
    "route": "router.runtime.default",
    "aroute": "router.runtime.default",
    "explain": "router.runtime.default",
    "default_config_path": "router.runtime.default",
    "LiveState": "router.runtime.state.live",
    "ReloadEvent": "router.runtime.reload.changes",
    "ConfigChanges": "router.runtime.reload.changes",
    "diff_configs": "router.runtime.reload.changes",
    "load_config": "router.config.loader",
    "ReplayReport": "router.replay",
    "OUTCOMES": "router.observe.events",
    "RecentRequests": "router.observe.recent",
    "RequestSummary": "router.observe.recent",
    "TrafficOverview": "router.observe.recent",
    "RouterMetrics": "router.observe.metrics",
    "replay_log": "router.replay",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'router' has no attribute {name!r}")


__all__ = [
    "OUTCOMES",
    "ApiKey",
    "Attempt",
    "AuthError",
    "BadRequest",
    "BudgetExceeded",
    "BudgetStatus",
    "Chunk",
    "Config",
    "ConfigChanges",
    "ConfigError",
    "ConfigIssue",
    "ContextOverflow",
    "Decision",
    "EmbeddingResult",
    "LiveState",
    "LiveStatus",
    "MissingDependency",
    "ModelInfo",
    "ModelState",
    "NoRouteError",
    "NotFound",
    "ProviderError",
    "ProviderInfo",
    "ProviderState",
    "RateLimited",
    "RecentRequests",
    "Record",
    "Rejection",
    "RejectionKind",
    "ReloadEvent",
    "ReplayReport",
    "Request",
    "RequestError",
    "RequestSummary",
    "Result",
    "Router",
    "RouterError",
    "RouterMetrics",
    "RouterStatus",
    "RuleTrace",
    "SpendTotals",
    "Timeout",
    "TrafficOverview",
    "Unavailable",
    "UnknownModel",
    "Usage",
    "UsageRow",
    "aroute",
    "default_config_path",
    "diff_configs",
    "explain",
    "load_config",
    "plain",
    "replay_log",
    "route",
]
