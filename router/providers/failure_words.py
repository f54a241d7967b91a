"""A failed call in words a person can act on: endpoint, status, the provider's own
message and a hint, never a library's class names.

Library exceptions arrive wrapped several times (litellm wraps the OpenAI SDK's, which
wraps httpx's, which wraps the socket's); the cause chain says what really happened.
"""

from __future__ import annotations

import json
import re
import socket
from urllib.parse import urlsplit

_MAX_CHAIN = 12
# "litellm.BadRequestError: ", "InternalServerError: ", "OpenAIException - ", ...
_PREFIX = re.compile(r"^\s*(?:litellm\.\w+:\s*|[\w.]+(?:Error|Exception)\s*(?::|-)\s*)+")
# The names of library exceptions that mean the connection broke before any answer.
_CONNECTION = frozenset(
    {"APIConnectionError", "ConnectError", "RemoteProtocolError", "ReadError", "WriteError"}
)


def endpoint_of(api_base: str | None) -> str | None:
    """host:port of an API base URL (no scheme, path or credentials)."""
    if not api_base:
        return None
    try:
        parts = urlsplit(api_base if "://" in api_base else f"http://{api_base}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return f"{host}:{port}" if port else host


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and len(seen) < _MAX_CHAIN and node not in seen:
        seen.append(node)
        node = node.__cause__ or node.__context__
    return seen


def unreachable_cause(exc: BaseException) -> str | None:
    """ "connection refused" / "cannot resolve the host name" when nothing could be
    reached; None when the server was reached (or it cannot be told)."""
    for e in _chain(exc):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "cannot resolve the host name"
        if type(e).__name__ == "ConnectError" and "refused" in str(e).lower():
            return "connection refused"
    return None


def connection_failed(exc: BaseException) -> bool:
    """The connection broke (or never was) before an answer: there is no HTTP status."""
    return any(type(e).__name__ in _CONNECTION for e in _chain(exc))


def provider_words(text: str) -> str:
    """The provider's own message out of a library's error text."""
    text = _PREFIX.sub("", text.strip())
    text = text.split(" Error_str:", 1)[0]  # litellm repeats the message after this
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            body = None
        if isinstance(body, dict):
            err = body.get("error", body)
            message = err.get("message") if isinstance(err, dict) else err
            if isinstance(message, str) and message:
                return message
    return text or "no message"


def hint_for(kind: str, status: int | None, unreachable: bool) -> str | None:
    if unreachable:
        return "is the server running, and is api_base right?"
    if status in (401, 403) or kind == "auth":
        return "check the provider's api_key"
    if status == 404:
        return "check the model id and api_base"
    if kind == "timeout":
        return "raise the provider's `timeout` or the rule's `deadline`"
    return None


__all__ = ["endpoint_of", "hint_for", "provider_words", "unreachable_cause"]
