"""OpenAI's wire format: a chat request in, `route()` arguments out; results back.

Field names, chunk shapes and SSE framing follow OpenAI's Chat Completions API so
that its SDKs (and every client built on them) read our answers as theirs.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.types import Result, Usage

AUTO = "auto"
RULE_PREFIX = "router/"

# Body fields that steer routing; never sent upstream.
_ROUTING_FIELDS = ("use_case", "tags", "metadata")
# Body fields handled here, or that a client may not set (`key`: spend goes to the key
# that authenticated); everything else is a call parameter passed through.
_OWN_FIELDS = frozenset(
    {"model", "messages", "stream", "stream_options", "key", "rule", "prompt", *_ROUTING_FIELDS}
)


class WireError(Exception):
    """A request that is not a valid chat completion request; `param` names the field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One `POST /v1/chat/completions`, checked and split into route() arguments."""

    model: str  # as the client wrote it: auto, a model name, <provider>/<id>, router/<rule>
    messages: Sequence[Mapping[str, Any]]
    stream: bool
    include_usage: bool
    route_args: dict[str, Any] = field(default_factory=dict)  # use_case, tags, metadata, params

    @property
    def pinned_model(self) -> str | None:
        return None if self.model == AUTO or self.model.startswith(RULE_PREFIX) else self.model

    @property
    def forced_rule(self) -> str | None:
        return self.model[len(RULE_PREFIX) :] if self.model.startswith(RULE_PREFIX) else None


def _split(header: str | None) -> list[str]:
    return [t.strip() for t in (header or "").split(",") if t.strip()]


def parse_chat(body: Any, headers: Mapping[str, str]) -> ChatRequest:
    """Check a decoded JSON body; routing hints from the body win over X-Router-* headers."""
    if not isinstance(body, dict):
        raise WireError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError(
            "'model' is required: a model name, '<provider>/<model id>', 'auto' or 'router/<rule>'",
            "model",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise WireError("'messages' must be a non-empty list of messages", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise WireError(f"messages[{i}] must be an object with a 'role'", f"messages[{i}]")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise WireError(
                f"messages[{i}].content must be a string or a list of parts",
                f"messages[{i}].content",
            )
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise WireError("'stream' must be true or false", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise WireError("'stream_options' must be an object", "stream_options")
    use_case = body.get("use_case", headers.get("x-router-use-case"))
    if use_case is not None and not isinstance(use_case, str):
        raise WireError("'use_case' must be a string", "use_case")
    tags = body.get("tags")
    if tags is None:
        tags = _split(headers.get("x-router-tags"))
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise WireError("'tags' must be a list of strings", "tags")
    metadata = body.get("metadata")
    if metadata is None and headers.get("x-router-metadata"):
        try:
            metadata = json.loads(headers["x-router-metadata"])
        except ValueError:
            raise WireError("X-Router-Metadata must be a JSON object", "metadata") from None
    if metadata is not None and not isinstance(metadata, dict):
        raise WireError("'metadata' must be an object", "metadata")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise WireError("'tools' must be a list", "tools")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise WireError("'response_format' must be an object", "response_format")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (type(value) is not int or value < 1):
            raise WireError(f"'{name}' must be a positive integer", name)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = body.get(name)
        if value is not None and (type(value) not in (int, float)):
            raise WireError(f"'{name}' must be a number", name)
    if body.get("n") not in (None, 1):
        raise WireError("'n' above 1 is not supported: one choice per request", "n")
    args: dict[str, Any] = {k: v for k, v in body.items() if k not in _OWN_FIELDS and v is not None}
    if "max_completion_tokens" in args and "max_tokens" not in args:
        args["max_tokens"] = args.pop("max_completion_tokens")
    args.update(use_case=use_case, tags=tags or None, metadata=metadata or None)
    return ChatRequest(
        model=model,
        messages=messages,
        stream=bool(stream),
        include_usage=bool(options.get("include_usage")),
        route_args=args,
    )


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _tool_calls(calls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(calls):
        fn = c.get("function") or {}
        out.append(
            {
                "id": c.get("id") or f"call_{i}",
                "type": c.get("type") or "function",
                "function": {
                    "name": fn.get("name") or "",
                    "arguments": fn.get("arguments") or "",
                },
            }
        )
    return out


def _finish(result: Result) -> str:
    if result.tool_calls:
        return "tool_calls"
    return result.finish_reason or "stop"


def completion_json(result: Result, cid: str | None = None) -> dict[str, Any]:
    """A `chat.completion` object; `model` names the model that served."""
    message: dict[str, Any] = {"role": "assistant", "content": result.text, "refusal": None}
    if result.tool_calls:
        message["tool_calls"] = _tool_calls(result.tool_calls)
        message["content"] = result.text or None
    return {
        "id": cid or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(result)}
        ],
        "usage": usage_json(result.usage),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """`chat.completion.chunk` events of one stream, SSE-framed, as bytes."""

    __slots__ = ("_text_head", "_text_tail", "cid", "created", "include_usage", "model", "started")

    def __init__(self, model: str, include_usage: bool) -> None:
        self.cid = completion_id()
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage
        self.started = False
        # A text chunk is most of a stream: render its fixed parts once, so each piece
        # costs one json.dumps of its text (the bytes are what _event would write).
        marker = "\x00"
        whole = self._event({"content": marker}).decode()
        head, _, tail = whole.partition(json.dumps(marker))
        self._text_head, self._text_tail = head.encode(), tail.encode()

    def _event(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": self.cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            body["usage"] = None
        return sse(body)

    def text(self, text: str) -> bytes:
        if not self.started:
            self.started = True
            return self._event({"role": "assistant", "content": text})
        return self._text_head + json.dumps(text).encode() + self._text_tail

    def end(self, result: Result) -> Iterator[bytes]:
        """Tool calls (joined upstream, sent as OpenAI sends a call's first and rest
        pieces), the finish reason, the usage chunk when asked for, then [DONE]."""
        if not self.started:
            yield self.text("")
        for i, call in enumerate(_tool_calls(result.tool_calls or ())):
            fn = call["function"]
            head = {"index": i, "id": call["id"], "type": call["type"]}
            yield self._event(
                {"tool_calls": [{**head, "function": {"name": fn["name"], "arguments": ""}}]}
            )
            yield self._event(
                {"tool_calls": [{"index": i, "function": {"arguments": fn["arguments"]}}]}
            )
        yield self._event({}, _finish(result))
        if self.include_usage:
            yield sse(
                {
                    "id": self.cid,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "system_fingerprint": None,
                    "choices": [],
                    "usage": usage_json(result.usage),
                }
            )
        yield DONE


DONE = b"data: [DONE]\n\n"


def sse(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
