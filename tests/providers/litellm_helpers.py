"""Helpers for the chat adapter tests: the canary key, shared tools and a Call builder."""

from __future__ import annotations

from typing import Any

from router.config.model import Cost, ModelConfig
from router.providers.base import Call

# Planted as the API key everywhere; no output may ever contain it.
CANARY = "sk-canary-XXXXXXXXXXXX"

# A tool definition the adapter and router tests both send.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

# Tool calls the fake streams in fragments (contract and litellm-only tests).
STREAMED_CALLS = [
    {"name": "get_weather", "arguments": {"city": "Oslo", "units": "metric", "days": [1, 2]}},
    {"name": "get_time", "arguments": {"tz": "Europe/Oslo"}},
]


def make_call(
    model: str = "openai/gpt-4o-mini",
    prompt: str | list[dict[str, Any]] = "Say hello",
    *,
    cost: Cost | None = None,
    timeout: float | None = None,
    params: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
    model_settings: dict[str, Any] | None = None,
) -> Call:
    content = prompt
    return Call(
        model=ModelConfig(
            name="m", provider="fake", model=model, cost=cost, settings=model_settings or {}
        ),
        messages=({"role": "user", "content": content},),
        params=params or {},
        tools=tuple(tools) if tools else None,
        response_format=response_format,
        timeout=timeout,
    )
