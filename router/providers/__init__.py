"""Adapters behind one `Provider` interface, created by type name.

Heavy libraries (litellm, llama_cpp) are imported by their adapter module only,
and that module is imported only when a provider of its type is created. `openai`
speaks HTTP itself and imports no client library.
"""

from __future__ import annotations

import importlib

from router.config.model import ModelConfig, ProviderConfig
from router.errors import ConfigError
from router.providers.base import Call, Completion, Delta, Embeddings, Provider

# type name -> "module:Class"; imported on first use.
_REGISTRY: dict[str, str] = {
    "mock": "router.providers.mock:MockProvider",
    "openai": "router.providers.openai_provider:OpenAIProvider",
    "litellm": "router.providers.litellm_provider:LiteLLMProvider",
    "llama_cpp": "router.providers.llama_cpp:LlamaCppProvider",
}

PROVIDER_TYPES = tuple(_REGISTRY)


def provider_class(type_name: str) -> type[Provider]:
    try:
        target = _REGISTRY[type_name]
    except KeyError:
        raise ConfigError(f"unknown provider type {type_name!r}") from None
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise TypeError(f"{target} is not a Provider")
    return cls


def create_provider(config: ProviderConfig) -> Provider:
    return provider_class(config.type)(config)


def serves_free(model: ModelConfig, provider: ProviderConfig) -> bool:
    """What `provider`'s adapter says of `model`'s price (`Provider.serves_free`).

    Imports the adapter's module: ask when the answer is needed, not at load.
    """
    return provider_class(provider.type).serves_free(model)


__all__ = [
    "PROVIDER_TYPES",
    "Call",
    "Completion",
    "Delta",
    "Embeddings",
    "Provider",
    "create_provider",
    "provider_class",
    "serves_free",
]
