"""The `openai` adapter's request bodies and reply parsing: plain JSON, no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from router.config.model import ModelConfig
from router.providers.base import Call

# Keys the adapter sets itself, or that belong to the router or other backends.
_RESERVED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "response_format",
        "api_key",
        "api_base",
        "base_url",
        "timeout",
        "headers",
        "extra_headers",
        "num_retries",
        "max_retries",
        "drop_params",
        "mock_response",
        "n_ctx",
        "n_gpu_layers",
        "n_threads",
        "model_path",
        "use_case",
        "tags",
    }
)


def chat_body(call: Call, stream: bool) -> bytes:
    """The chat-completions request: the call's params as they are, less the router's."""
    body: dict[str, Any] = {
        k: v for k, v in call.params.items() if v is not None and k not in _RESERVED
    }
    body["model"] = call.model.model
    body["messages"] = call.messages
    if call.tools:
        body["tools"] = call.tools
    if call.response_format:
        body["response_format"] = call.response_format
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":"), default=_jsonable).encode()


def embeddings_body(model: ModelConfig, inputs: Sequence[str], params: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in params.items() if v is not None and k not in _RESERVED}
    body["model"] = model.model
    body["input"] = list(inputs)
    return json.dumps(body, separators=(",", ":")).encode()


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def vectors_of(data: Mapping[str, Any] | None) -> tuple[tuple[float, ...], ...] | None:
    try:
        items = sorted(data["data"], key=lambda d: int(d.get("index", 0)))  # type: ignore[index]
        return tuple(tuple(float(x) for x in item["embedding"]) for item in items)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _jsonable(value: Any) -> Any:
    """Mappings and sequences the config froze (MappingProxy, tuples) as JSON."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


__all__ = ["chat_body", "embeddings_body", "json_object", "vectors_of"]
