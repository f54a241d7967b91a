"""What the fake provider server answers: scripted outcomes and random faults."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scripted answer. Build them with `reply`, `rate_limited`, `server_error`, ..."""

    text: str | None = None  # None: the server's default reply
    status: int = 200
    kind: str = "ok"  # error kind: rate_limited, server_error, auth, bad_request, ...
    message: str = ""  # error message
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    disconnect_after: int | None = None  # drop the connection after N text pieces
    piece_delay: float = 0.0  # streams: seconds between pieces (a backend still generating)
    usage: tuple[int, int] | None = None  # (input, output) tokens
    tool_calls: tuple[Mapping[str, Any], ...] = ()


def reply(
    text: str | None = None,
    *,
    usage: tuple[int, int] | None = None,
    tool_calls: Iterable[Mapping[str, Any]] = (),
    delay: float = 0.0,
) -> Outcome:
    """A successful answer; `tool_calls` items are {"name": ..., "arguments": {...}}."""
    return Outcome(text=text, usage=usage, tool_calls=tuple(tool_calls), delay=delay)


def rate_limited(retry_after: float | str | None = 1) -> Outcome:
    """429; `retry_after` is seconds or an HTTP-date string, None for no header."""
    headers = {} if retry_after is None else {"Retry-After": _header_value(retry_after)}
    return Outcome(status=429, kind="rate_limited", message="Rate limit reached", headers=headers)


def server_error(status: int = 500, message: str = "The server had an error") -> Outcome:
    return Outcome(status=status, kind="server_error", message=message)


def unauthorized(status: int = 401) -> Outcome:
    """401 (or 403) whose message quotes the key the client sent, as some APIs do."""
    return Outcome(status=status, kind="auth", message="Incorrect API key provided: {key}")


def bad_request(message: str = "Invalid request") -> Outcome:
    return Outcome(status=400, kind="bad_request", message=message)


def context_overflow() -> Outcome:
    """400 with the API's own "prompt too long" message."""
    return Outcome(status=400, kind="context_overflow")


def slow(seconds: float, text: str | None = None) -> Outcome:
    return Outcome(text=text, delay=seconds)


def slow_stream(seconds_per_piece: float, text: str | None = None) -> Outcome:
    """A stream whose pieces come `seconds_per_piece` apart; the server notices (and
    counts, `FakeProviderServer.disconnects`) a client that closes the connection."""
    return Outcome(text=text, piece_delay=seconds_per_piece)


def disconnect(after: int = 0) -> Outcome:
    """Close the connection: before any reply (0), or after `after` streamed text pieces."""
    return Outcome(disconnect_after=after)


def _header_value(v: float | str) -> str:
    return v if isinstance(v, str) else (str(int(v)) if float(v).is_integer() else str(v))


FAULTS: Mapping[str, Outcome] = {
    "rate_limited": rate_limited(1),
    "server_error": server_error(500),
    "unavailable": server_error(503, "Service unavailable"),
    "disconnect": disconnect(1),
    "auth": unauthorized(),
    "context_overflow": context_overflow(),
}
