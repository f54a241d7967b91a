"""What `router validate` checks beyond loading: mistakes that would break every call
and surprises such as a price nobody knows. Reads litellm's price map (a file), never
imports litellm.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.config.model import Config, ModelConfig
from router.providers.prices import shared_price_map
from router.providers.pricing import known_cost

# litellm's own words when a model id names no provider it knows.
_LITELLM_HINT = (
    "LLM Provider NOT provided: litellm needs '<provider>/<model>', e.g. 'openai/{id}' for "
    "an OpenAI-compatible api_base, 'ollama/{id}' for Ollama, 'anthropic/{id}'"
)


@dataclass(frozen=True, slots=True)
class Finding:
    model: ModelConfig
    message: str

    def __str__(self) -> str:
        w = self.model.where
        where = f"{w.file}:{w.line}: " if w.file and w.line else ""
        return f"{where}models.{self.model.name}: {self.message}"


def config_errors(config: Config) -> list[Finding]:
    """Mistakes that make every call of a model fail."""
    found = []
    for m in config.models.values():
        provider = config.providers.get(m.provider)
        if provider is None or provider.type != "litellm" or "/" in m.model:
            continue
        if shared_price_map().facts(m.model, provider.api_base) is None:
            found.append(Finding(m, f"model id '{m.model}': " + _LITELLM_HINT.format(id=m.model)))
    return found


def config_warnings(config: Config) -> list[Finding]:
    """What loads and serves, but not as a user would guess."""
    found = []
    for m in config.models.values():
        provider = config.providers.get(m.provider)
        if provider is None or known_cost(m, provider) is not None:
            continue
        found.append(
            Finding(
                m,
                f"price unknown for '{m.model}' (not in litellm's price map): its cost is "
                "None, not $0, and max_cost or a budget skips it; declare "
                "`cost: {input, output}` (USD per 1M tokens; 0 and 0 if it is free)",
            )
        )
    return found


__all__ = ["Finding", "config_errors", "config_warnings"]
