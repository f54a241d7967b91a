"""Reading configs: YAML with line numbers, interpolation, schema, semantic checks."""

from router.config.model import (
    Budget,
    BreakerPolicy,
    Config,
    Cost,
    ModelConfig,
    ProviderConfig,
    RetryPolicy,
    RoutingTest,
    RuleConfig,
    Settings,
    UseCaseConfig,
    Where,
)
from router.config.loader import load_config

__all__ = [
    "BreakerPolicy",
    "Budget",
    "Config",
    "Cost",
    "ModelConfig",
    "ProviderConfig",
    "RetryPolicy",
    "RoutingTest",
    "RuleConfig",
    "Settings",
    "UseCaseConfig",
    "Where",
    "load_config",
]
