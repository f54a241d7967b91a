"""Models a caller names as `<provider>/<model id>` with no YAML entry (`route(model=...)`).

The engine makes such a model a bare entry, `{provider: <provider>, model: <id>}`, and
asks this module what the adapters know of it (`RuleSet.describe`, handed in by
`Snapshot.build`: the engine imports no adapter):

    the id to send       as the provider's type spells it (`Provider.ad_hoc_id`: litellm
                         keeps a prefix it routes by, `ollama/llama3`)
    price                litellm's map (`known_cost`), else unknown: never $0
    window (`context`)   litellm's map (`max_input_tokens`), else the default of a YAML
                         entry with no `context:`
    capabilities         none claimed; the engine filters a pinned model on capabilities
                         only when the request needs one (tools, vision, json)

A type whose model ids are files on this machine (llama_cpp) takes none: no caller may
make the router load a file the config does not name.
"""

from __future__ import annotations

from dataclasses import replace

from router.config.model import ModelConfig, ProviderConfig
from router.providers import provider_class
from router.providers.prices import shared_price_map
from router.providers.pricing import known_cost

_MAP_TYPES = frozenset({"litellm", "openai"})


def describe(model: ModelConfig, provider: ProviderConfig) -> ModelConfig | None:
    """`model` (a bare `<provider>/<id>` entry) with what is known of it; None when
    `provider`'s type serves only the models its config lists."""
    cls = provider_class(provider.type)
    if not cls.ad_hoc_models:
        return None
    model = replace(model, model=cls.ad_hoc_id(provider, model.model))
    context = model.context
    if provider.type in _MAP_TYPES:
        facts = shared_price_map().facts(model.model, provider.api_base)
        if facts is None and "/" in model.model:  # litellm's prefix: the map lists it bare
            facts = shared_price_map().facts(model.model.partition("/")[2], provider.api_base)
        if facts is not None and facts.max_input_tokens:
            context = facts.max_input_tokens
    return replace(model, cost=known_cost(model, provider), context=context)


__all__ = ["describe"]
