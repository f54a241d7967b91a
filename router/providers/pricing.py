"""What each model costs, settled once per config: declared, known, free, or unknown.

    cost: in the YAML            declared (`cost: {input: 0, output: 0}` declares free)
    llama_cpp, ollama/...        free: it runs on a machine already paid for
    litellm / openai types       litellm's shipped price map, read without importing litellm
    anything else                unknown: `ModelConfig.cost` stays None

An unknown price is never taken as $0: a rule with `max_cost` or a budget drops such
a model (unless `settings.allow_unknown_prices`), `explain` and `validate` say so, a
`Result` of it has `cost_usd=None` and `router usage` counts it apart.
"""

from __future__ import annotations

from dataclasses import replace

from router.config.model import Config, Cost, ModelConfig, ProviderConfig
from router.providers.prices import shared_price_map

FREE = Cost(0.0, 0.0)
_FREE_TYPES = frozenset({"llama_cpp", "mock"})
_MAP_TYPES = frozenset({"litellm", "openai"})
_LOCAL_PREFIXES = ("ollama/", "ollama_chat/")
# litellm prefixes whose models the price map lists without the prefix.
_UNPREFIXED = frozenset({"openai", "anthropic", "azure"})


def known_cost(model: ModelConfig, provider: ProviderConfig | None) -> Cost | None:
    """The model's price per 1M tokens, or None when nothing says what it is."""
    if model.cost is not None:
        return model.cost
    if provider is None:
        return None
    if provider.type in _FREE_TYPES or model.model.startswith(_LOCAL_PREFIXES):
        return FREE
    if provider.type not in _MAP_TYPES:
        return None
    prices = shared_price_map()
    facts = prices.facts(model.model, provider.api_base)
    prefix, _, rest = model.model.partition("/")
    if facts is None and rest and prefix in _UNPREFIXED:
        facts = prices.facts(rest, provider.api_base)
    if facts is None or facts.input_cost_per_token is None:
        return None
    return Cost(
        facts.input_cost_per_token * 1_000_000, (facts.output_cost_per_token or 0.0) * 1_000_000
    )


def with_prices(config: Config) -> Config:
    """`config` with every price that is known written into its models."""
    models = dict(config.models)
    changed = False
    for name, m in config.models.items():
        if m.cost is None:
            cost = known_cost(m, config.providers.get(m.provider))
            if cost is not None:
                models[name] = replace(m, cost=cost)
                changed = True
    return replace(config, models=models) if changed else config


def unpriced(config: Config) -> list[ModelConfig]:
    """Models whose price is unknown (after `with_prices`)."""
    return [
        m for m in config.models.values() if known_cost(m, config.providers.get(m.provider)) is None
    ]


__all__ = ["FREE", "known_cost", "unpriced", "with_prices"]
