"""Configs built straight from the dataclasses: engine tests need no loader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from router.config.model import (
    Config,
    Cost,
    ModelConfig,
    ProviderConfig,
    RuleConfig,
    Settings,
    UseCaseConfig,
)
from router.engine.requests import build_request
from router.types import Request

ConfigFactory = Callable[..., Config]


def model(name: str, provider: str = "echo", **kw: Any) -> ModelConfig:
    if "cost" in kw and isinstance(kw["cost"], tuple):
        kw["cost"] = Cost(*kw["cost"])
    if "capabilities" in kw:
        kw["capabilities"] = frozenset(kw["capabilities"])
    return ModelConfig(name=name, provider=provider, model=kw.pop("model", name), **kw)


def rule(name: str, targets: list[str], **kw: Any) -> RuleConfig:
    return RuleConfig(name=name, targets=tuple(targets), **kw)


@pytest.fixture
def make_config() -> ConfigFactory:
    def build(
        rules: list[RuleConfig],
        models: list[ModelConfig] | None = None,
        providers: list[ProviderConfig] | None = None,
        use_cases: list[UseCaseConfig] | None = None,
        settings: Settings | None = None,
    ) -> Config:
        models = models or [model("a"), model("b"), model("c")]
        providers = providers or [ProviderConfig(name="echo", type="mock")]
        return Config(
            providers={p.name: p for p in providers},
            models={m.name: m for m in models},
            rules=tuple(rules),
            use_cases={u.name: u for u in use_cases or []},
            settings=settings or Settings(),
        )

    return build


_REQUEST_KEYS = {"messages", "use_case", "tags", "metadata", "tools", "response_format", "stream"}


def req(prompt: str | None = "hello", **kw: Any) -> Request:
    """A request; keywords that are not request fields become params, as in route()."""
    params = {k: kw.pop(k) for k in list(kw) if k not in _REQUEST_KEYS}
    return build_request(prompt, **kw, **params)
