"""Prices and context windows from litellm's shipped price map, without importing litellm.

litellm ships `model_prices_and_context_window_backup.json` inside its package. The
file is found through the import system's metadata (`find_spec` locates a top-level
package without running it) and read on the first lookup. Parsing all of it costs
tens of milliseconds, which the first request would pay, so only the entry asked for
is decoded: the file writes each model as a top-level key on a line of its own, and
a lookup finds that line and decodes the one object after it.

Unknown stays unknown: a model not in the map has no price and no window here (the
config's `cost:` and `context:` say what the map does not).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"

# API hosts whose models litellm's map lists under a provider prefix.
_HOST_PREFIXES: Mapping[str, str] = {
    "openrouter.ai": "openrouter/",
    "api.groq.com": "groq/",
    "api.together.xyz": "together_ai/",
    "api.deepseek.com": "deepseek/",
    "api.mistral.ai": "mistral/",
    "api.fireworks.ai": "fireworks_ai/",
    "api.x.ai": "xai/",
    "api.perplexity.ai": "perplexity/",
}


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the price map says of one model (USD per token; tokens)."""

    key: str  # the entry's name in the map
    input_cost_per_token: float | None
    output_cost_per_token: float | None
    max_input_tokens: int | None
    max_output_tokens: int | None
    mode: str | None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        if self.input_cost_per_token is None and self.output_cost_per_token is None:
            return None
        return (self.input_cost_per_token or 0.0) * input_tokens + (
            self.output_cost_per_token or 0.0
        ) * output_tokens


class PriceMap:
    """Lookups in one price-map file; thread-safe, each model decoded once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._text: str | None = None
        self._whole: Mapping[str, Any] | None = None  # only if the layout is not as expected
        self._facts: dict[str, ModelFacts | None] = {}
        self._lock = threading.Lock()

    def facts(self, model: str, api_base: str | None = None) -> ModelFacts | None:
        """The map's entry for an API model id, tried as given and under the prefix the
        map uses for the API's host (e.g. `openrouter/` for openrouter.ai)."""
        keys = [model]
        prefix = _HOST_PREFIXES.get(urlsplit(api_base or "").hostname or "")
        if prefix and not model.startswith(prefix):
            keys.insert(0, prefix + model)
        for key in keys:
            found = self._entry(key)
            if found is not None:
                return found
        return None

    def _entry(self, key: str) -> ModelFacts | None:
        if key in self._facts:
            return self._facts[key]
        with self._lock:
            raw = self._decode(key)
            facts = _facts(key, raw) if isinstance(raw, Mapping) else None
            self._facts[key] = facts
        return facts

    def _decode(self, key: str) -> Any:
        if self.path is None:
            return None
        if self._text is None:
            try:
                self._text = self.path.read_text("utf-8")
            except OSError:
                self.path = None
                return None
        text = self._text
        if self._whole is not None:
            return self._whole.get(key)
        needle = "\n    " + json.dumps(key) + ":"
        at = text.find(needle)
        if at < 0:
            if '\n    "' in text[:4096]:  # the usual layout: the model is not in the map
                return None
            # Another layout (a future litellm): parse the whole file, once.
            try:
                whole = json.loads(text)
            except ValueError:
                whole = {}
            self._whole = whole if isinstance(whole, dict) else {}
            return self._whole.get(key)
        start = at + len(needle)
        try:
            value, _ = json.JSONDecoder().raw_decode(text, _skip_spaces(text, start))
        except ValueError:
            return None
        return value


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _number(raw: Mapping[str, Any], name: str) -> float | None:
    value = raw.get(name)
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


def _count(raw: Mapping[str, Any], name: str) -> int | None:
    value = raw.get(name)
    return int(value) if isinstance(value, (int, float)) and value > 0 else None


def _facts(key: str, raw: Mapping[str, Any]) -> ModelFacts:
    mode = raw.get("mode")
    return ModelFacts(
        key=key,
        input_cost_per_token=_number(raw, "input_cost_per_token"),
        output_cost_per_token=_number(raw, "output_cost_per_token"),
        max_input_tokens=_count(raw, "max_input_tokens"),
        max_output_tokens=_count(raw, "max_output_tokens"),
        mode=str(mode) if mode else None,
    )


def litellm_price_map_path() -> Path | None:
    """The JSON file inside the installed litellm package, found without importing it."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / PRICE_MAP_FILE
        if path.is_file():
            return path
    return None


@functools.cache
def shared_price_map() -> PriceMap:
    """One map per process, read from the installed litellm on first use."""
    return PriceMap(litellm_price_map_path())


__all__ = ["ModelFacts", "PriceMap", "litellm_price_map_path", "shared_price_map"]
