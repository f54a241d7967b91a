"""Pieces of the chat adapters that need no litellm: stream state, usage, Retry-After.

Kept apart so the litellm adapter stays readable; the `openai` adapter shares them
(its chunks are plain dicts where litellm's are objects: `_get` reads both).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from router.config.model import ModelConfig
from router.providers.base import Call
from router.secrets import is_sensitive_name
from router.types import Usage


class StreamState:
    """What a stream has said so far: its text, usage, finish reason and tool calls."""

    __slots__ = ("_calls", "finish_reason", "has_text", "texts", "usage")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.usage: Usage | None = None  # as the stream's chunks said it
        self.finish_reason: str | None = None
        self.has_text = False
        self._calls: dict[int, _ToolCallParts] = {}  # by the stream's index, in order seen

    def feed(self, chunk: Any) -> str:
        u = usage_of(_get(chunk, "usage"))
        if u is not None and (u.input_tokens or u.output_tokens):
            self.usage = u
        choices = _get(chunk, "choices")
        if not choices:
            return ""
        choice = choices[0]
        finish = _get(choice, "finish_reason")
        if finish:
            self.finish_reason = finish
        delta = _get(choice, "delta")
        pieces = _get(delta, "tool_calls")
        if pieces:
            self._feed_tool_calls(pieces)
        text = _get(delta, "content") or ""
        if text:
            self.texts.append(text)
            self.has_text = True
        return str(text)

    def _feed_tool_calls(self, pieces: Any) -> None:
        """OpenAI streams a tool call in pieces sharing an `index`: the first has its id
        and name, the rest fragments of the JSON arguments, to be joined in order."""
        for piece in pieces:
            index = _get(piece, "index")
            call_id = _get(piece, "id")
            if not isinstance(index, int):
                # No index (some OpenAI-compatible servers): a new id starts a new call.
                last = next(reversed(self._calls), None)
                same = last is not None and call_id in (None, self._calls[last].id)
                index = last if same and last is not None else max(self._calls, default=-1) + 1
            parts = self._calls.get(index)
            if parts is None:
                parts = self._calls[index] = _ToolCallParts()
            parts.feed(call_id, _get(piece, "type"), _get(piece, "function"))

    def tool_calls(self) -> tuple[Mapping[str, Any], ...] | None:
        """The assembled calls, shaped as `tool_calls_of` shapes a whole reply's."""
        if not self._calls:
            return None
        return tuple(p.assembled() for p in self._calls.values())

    def counted_by_litellm(self, stream: Any) -> None:
        """Mark the usage estimated when the provider sent none and litellm counted it.

        Asked for `include_usage`, litellm ends every stream with a usage chunk of its
        own making: the provider's numbers when the provider sent some, else its own
        tokenizer's count. Only the chunks litellm received (`CustomStreamWrapper.chunks`)
        tell the two apart: a provider's usage chunk is among them, litellm's count is
        not. A stream that keeps no such list leaves the usage as reported.
        """
        chunks = getattr(stream, "chunks", None)
        if self.usage is None or not isinstance(chunks, list):
            return
        if not any(_get(c, "usage") is not None for c in chunks):
            self.usage = Usage(self.usage.input_tokens, self.usage.output_tokens, estimated=True)

    def output_text(self) -> str:
        """What the model wrote (text and tool-call arguments), for a usage estimate."""
        return "".join(self.texts) + "".join("".join(p.arguments) for p in self._calls.values())


class _ToolCallParts:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def feed(self, call_id: Any, kind: Any, function: Any) -> None:
        # id, type and name come once (some servers repeat them): the first one holds.
        if call_id and self.id is None:
            self.id = str(call_id)
        if kind and self.type is None:
            self.type = str(kind)
        name = _get(function, "name")
        if name and self.name is None:
            self.name = str(name)
        args = _get(function, "arguments")
        if isinstance(args, Mapping):  # already parsed (Ollama-style): one whole piece
            args = json.dumps(args)
        if args:
            self.arguments.append(str(args))

    def assembled(self) -> Mapping[str, Any]:
        return _tool_call(self.id, self.type, self.name, "".join(self.arguments))


def _get(obj: Any, name: str) -> Any:
    """A field of a litellm object or of a plain dict."""
    if type(obj) is dict:
        return obj.get(name)
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _tool_call(
    call_id: str | None, kind: str | None, name: str | None, arguments: str | None
) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": kind or "function",
        "function": {"name": name, "arguments": arguments or "{}"},
    }


def usage_of(u: Any) -> Usage | None:
    if u is None:
        return None
    n_in = _get(u, "prompt_tokens")
    n_out = _get(u, "completion_tokens")
    if n_in is None and n_out is None:
        return None
    return Usage(int(n_in or 0), int(n_out or 0))


def estimate_usage(call: Call, text: str) -> Usage:
    """~4 characters a token, when a backend reports no usage."""
    chars = 0
    for m in call.messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return Usage(chars // 4 + 1, len(text) // 4 + (1 if text else 0), estimated=True)


def tool_calls_of(calls: Any) -> tuple[Mapping[str, Any], ...] | None:
    if not calls:
        return None
    out = []
    for c in calls:
        fn = _get(c, "function")
        out.append(
            _tool_call(_get(c, "id"), _get(c, "type"), _get(fn, "name"), _get(fn, "arguments"))
        )
    return tuple(out)


def status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def retry_after(exc: Exception) -> float | None:
    """Retry-After (seconds or HTTP-date) or retry-after-ms from the provider's response.

    litellm keeps the response headers on a different exception per provider (its own,
    the provider's, or the httpx one underneath), so the chain is searched.
    """
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        response = getattr(seen, "response", None)
        for headers in (getattr(seen, "headers", None), getattr(response, "headers", None)):
            seconds = _retry_after_from(headers)
            if seconds is not None:
                return seconds
        seen = seen.__cause__ or seen.__context__
    return None


def _retry_after_from(headers: Any) -> float | None:
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms") or headers.get("Retry-After-Ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after") or headers.get("Retry-After")
    except (AttributeError, TypeError, ValueError):
        return None
    return parse_retry_after(str(value)) if value is not None else None


def parse_retry_after(value: str) -> float | None:
    """Seconds from a Retry-After value: a number of seconds or an HTTP-date."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # only for the rare HTTP-date form: ~10 ms of imports

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def credentials(headers: Mapping[str, Any] | None) -> list[str]:
    """Values of headers named like credentials (X-Api-Key, Authorization, ...): a server
    may echo them in an error message, as it may echo the API key."""
    if not headers:
        return []
    return [str(v) for k, v in headers.items() if v and is_sensitive_name(str(k))]


def error_message(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = str(text)
    return text if len(text) <= 1000 else text[:1000] + "..."


def embeddings_of(response: Any) -> tuple[tuple[tuple[float, ...], ...], Usage]:
    """Vectors in input order and input tokens from litellm's EmbeddingResponse."""
    data = sorted(response.data, key=lambda d: _field(d, "index") or 0)
    vectors = tuple(tuple(float(x) for x in _field(d, "embedding")) for d in data)
    n_in = int(getattr(getattr(response, "usage", None), "prompt_tokens", 0) or 0)
    return vectors, Usage(n_in, 0)


def _field(item: Any, name: str) -> Any:
    """litellm gives embedding items as dicts or as objects, depending on the backend."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


class NoRetries(int):
    """A zero that is true. litellm's OpenAI embedding path reads `max_retries or 2`, so a
    plain 0 gives the OpenAI SDK two retries of its own; the router does the retrying."""

    def __bool__(self) -> bool:
        return True


NO_RETRIES = NoRetries(0)


def embed_kwargs(
    model: ModelConfig,
    inputs: Sequence[str],
    params: Mapping[str, Any],
    key: str | None,
    api_base: str | None,
    timeout: float | None,
    headers: Mapping[str, str],
) -> dict[str, Any]:
    """`litellm.embedding`'s keywords for one call; no retries of its own."""
    kw: dict[str, Any] = {"model": model.model, "input": list(inputs)}
    kw.update((k, v) for k, v in params.items() if k in ("dimensions", "encoding_format", "user"))
    if key:
        kw["api_key"] = key
    if api_base:
        kw["api_base"] = api_base
    if timeout is not None:
        kw["timeout"] = timeout
    if headers:
        kw["extra_headers"] = dict(headers)
    kw["num_retries"] = 0
    kw["max_retries"] = NO_RETRIES
    return kw
