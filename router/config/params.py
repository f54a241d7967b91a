"""Parameter aliases people write (in YAML `params:` and as `route()` keywords), mapped
to the names adapters take. Part of the config language: the loader and the engine
both normalise with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALIASES: Mapping[str, str] = {
    "temp": "temperature",
    "nucleus_sampling": "top_p",
    "max_length": "max_tokens",
    "max_new_tokens": "max_tokens",
    "context_length": "n_ctx",
    "ctx_size": "n_ctx",
}


def normalise_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Rename aliases; an explicit canonical name wins over its alias."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        canonical = ALIASES.get(key, key)
        if canonical != key and canonical in params:
            continue
        out[canonical] = value
    return out
