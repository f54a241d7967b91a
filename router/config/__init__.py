"""Reading configs: YAML with line numbers, interpolation, schema, semantic checks."""

from router.config.loader import load_config
from router.config.model import (
    ApiKey,
    BreakerPolicy,
    Budget,
    Config,
    Cost,
    ModelConfig,
    ProviderConfig,
    RetryPolicy,
    RoutingTest,
    RuleConfig,
    ServerConfig,
    Settings,
    UseCaseConfig,
    Where,
)

__all__ = [
    "ApiKey",
    "BreakerPolicy",
    "Budget",
    "Config",
    "Cost",
    "ModelConfig",
    "ProviderConfig",
    "RetryPolicy",
    "RoutingTest",
    "RuleConfig",
    "ServerConfig",
    "Settings",
    "UseCaseConfig",
    "Where",
    "load_config",
]
