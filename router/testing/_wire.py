"""What the fake server writes: reply, stream and error bodies in each API's own shape.

Three dialects: OpenAI chat completions, Anthropic messages, Ollama chat/generate.
Each turns one answer (text, usage, tool calls) into a JSON reply or a list of
stream pieces, and an error into the body that API sends with that status.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    """What one reply says, whatever the dialect."""

    model: str
    text: str
    input_tokens: int
    output_tokens: int
    tool_calls: tuple[Mapping[str, Any], ...] = ()  # {"name": ..., "arguments": {...}}
    include_usage: bool = True  # OpenAI streams: only when stream_options asks for it

    @property
    def finish(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"


def words(text: str) -> list[str]:
    """The text in stream-sized pieces that join back to it exactly."""
    parts = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(parts)] if text else []


def fragments(text: str, size: int = 5) -> list[str]:
    """`text` cut every `size` characters, as a model streams tool-call arguments."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def embedding(text: str, size: int) -> list[float]:
    """A unit vector that depends only on the text: equal texts, equal vectors."""
    seed = hashlib.sha256(text.encode()).digest()
    raw = [seed[i % len(seed)] / 127.5 - 1.0 + i * 1e-3 for i in range(size)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def sse(data: JSON | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def ndjson(data: JSON) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


class Dialect:
    stream_type = "text/event-stream"

    def reply(self, a: Answer) -> JSON:
        raise NotImplementedError

    def stream(self, a: Answer) -> list[tuple[bytes, bool]]:
        """Stream pieces, each with whether it carries text (for mid-stream disconnects)."""
        raise NotImplementedError

    def error(self, status: int, message: str, kind: str) -> JSON:
        raise NotImplementedError


class OpenAI(Dialect):
    def reply(self, a: Answer) -> JSON:
        message: JSON = {"role": "assistant", "content": a.text or None}
        if a.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": t["name"], "arguments": json.dumps(t["arguments"])},
                }
                for i, t in enumerate(a.tool_calls)
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": a.model,
            "choices": [{"index": 0, "message": message, "finish_reason": a.finish}],
            "usage": _openai_usage(a),
        }

    def stream(self, a: Answer) -> list[tuple[bytes, bool]]:
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": a.model,
        }

        def chunk(delta: JSON, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return sse({**base, "choices": [choice]})

        out = [(chunk({"role": "assistant", "content": ""}), False)]
        out += [(chunk({"content": w}), True) for w in words(a.text)]
        for i, t in enumerate(a.tool_calls):
            # As OpenAI streams a call: id and name first, then the JSON arguments in
            # fragments that only join into JSON at the end.
            head = {"name": t["name"], "arguments": ""}
            call = {"index": i, "id": f"call_{i}", "type": "function", "function": head}
            out.append((chunk({"tool_calls": [call]}), True))
            for part in fragments(json.dumps(t["arguments"])):
                piece = {"index": i, "function": {"arguments": part}}
                out.append((chunk({"tool_calls": [piece]}), True))
        out.append((chunk({}, a.finish), False))
        if a.include_usage:
            out.append((sse({**base, "choices": [], "usage": _openai_usage(a)}), False))
        out.append((sse("[DONE]"), False))
        return out

    def error(self, status: int, message: str, kind: str) -> JSON:
        types = {400: "invalid_request_error", 401: "invalid_request_error", 429: "requests"}
        code = {"context_overflow": "context_length_exceeded", "auth": "invalid_api_key"}
        return {
            "error": {
                "message": message,
                "type": types.get(status, "server_error"),
                "param": None,
                "code": code.get(kind, kind),
            }
        }


def _openai_usage(a: Answer) -> JSON:
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
    }


class Anthropic(Dialect):
    def _content(self, a: Answer) -> list[JSON]:
        blocks: list[JSON] = [{"type": "text", "text": a.text}] if a.text else []
        blocks += [
            {"type": "tool_use", "id": f"toolu_{i}", "name": t["name"], "input": t["arguments"]}
            for i, t in enumerate(a.tool_calls)
        ]
        return blocks

    def _stop(self, a: Answer) -> str:
        return "tool_use" if a.tool_calls else "end_turn"

    def reply(self, a: Answer) -> JSON:
        return {
            "id": f"msg_{uuid.uuid4().hex[:12]}",
            "type": "message",
            "role": "assistant",
            "model": a.model,
            "content": self._content(a),
            "stop_reason": self._stop(a),
            "stop_sequence": None,
            "usage": {"input_tokens": a.input_tokens, "output_tokens": a.output_tokens},
        }

    def stream(self, a: Answer) -> list[tuple[bytes, bool]]:
        start = self.reply(a) | {"content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": a.input_tokens, "output_tokens": 1}
        out = [(sse({"type": "message_start", "message": start}, "message_start"), False)]
        index = 0
        if a.text:
            block = {"type": "content_block_start", "index": 0, "content_block": _EMPTY_TEXT}
            out.append((sse(block, "content_block_start"), False))
            for w in words(a.text):
                delta = {"type": "text_delta", "text": w}
                piece = {"type": "content_block_delta", "index": 0, "delta": delta}
                out.append((sse(piece, "content_block_delta"), True))
            out.append((_block_stop(0), False))
            index = 1
        for i, t in enumerate(a.tool_calls, start=index):
            use = {"type": "tool_use", "id": f"toolu_{i}", "name": t["name"], "input": {}}
            block = {"type": "content_block_start", "index": i, "content_block": use}
            out.append((sse(block, "content_block_start"), False))
            delta = {"type": "input_json_delta", "partial_json": json.dumps(t["arguments"])}
            piece = {"type": "content_block_delta", "index": i, "delta": delta}
            out.append((sse(piece, "content_block_delta"), True))
            out.append((_block_stop(i), False))
        end = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop(a), "stop_sequence": None},
            "usage": {"output_tokens": a.output_tokens},
        }
        out.append((sse(end, "message_delta"), False))
        out.append((sse({"type": "message_stop"}, "message_stop"), False))
        return out

    def error(self, status: int, message: str, kind: str) -> JSON:
        types = {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            429: "rate_limit_error",
            529: "overloaded_error",
        }
        return {
            "type": "error",
            "error": {"type": types.get(status, "api_error"), "message": message},
        }


_EMPTY_TEXT: JSON = {"type": "text", "text": ""}


def _block_stop(index: int) -> bytes:
    return sse({"type": "content_block_stop", "index": index}, "content_block_stop")


class Ollama(Dialect):
    """`/api/chat` (messages) or, with `generate=True`, `/api/generate` (prompt)."""

    stream_type = "application/x-ndjson"

    def __init__(self, generate: bool = False) -> None:
        self.generate = generate

    def _piece(self, a: Answer, text: str, done: bool, calls: Sequence[Mapping[str, Any]]) -> JSON:
        out: JSON = {"model": a.model, "created_at": _now_iso()}
        if self.generate:
            out["response"] = text
        else:
            message: JSON = {"role": "assistant", "content": text}
            if calls:
                message["tool_calls"] = [
                    {"function": {"name": t["name"], "arguments": t["arguments"]}} for t in calls
                ]
            out["message"] = message
        out["done"] = done
        if done:
            out |= {
                "done_reason": "stop",
                "total_duration": 1_000_000,
                "load_duration": 1000,
                "prompt_eval_count": a.input_tokens,
                "eval_count": a.output_tokens,
            }
        return out

    def reply(self, a: Answer) -> JSON:
        return self._piece(a, a.text, True, a.tool_calls)

    def stream(self, a: Answer) -> list[tuple[bytes, bool]]:
        out = [(ndjson(self._piece(a, w, False, ())), True) for w in words(a.text)]
        if a.tool_calls:
            out.append((ndjson(self._piece(a, "", False, a.tool_calls)), True))
        out.append((ndjson(self._piece(a, "", True, ())), False))
        return out

    def error(self, status: int, message: str, kind: str) -> JSON:
        return {"error": message}


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


# Messages real APIs send when a prompt does not fit (litellm maps them by text).
CONTEXT_MESSAGES: Mapping[str, str] = {
    "openai": (
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages."
    ),
    "anthropic": "prompt is too long: 210000 tokens > 200000 maximum",
    "ollama": "input length exceeds maximum context length",
}
