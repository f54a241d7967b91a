"""Bounds that keep one worker serving under load: body size and requests at once.

Beyond `max_concurrent` a request gets 503 with Retry-After at once rather than a
place in an unbounded queue: a client (or its load balancer) can go elsewhere,
and latency for the admitted ones stays what it was. Health probes are never
refused, so an orchestrator does not restart a busy worker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from router.server.errors import ApiError, bad_request, retry_after

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})  # a scrape still answers when full


async def send_error(send: Send, error: ApiError) -> None:
    body = error.body()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ConcurrencyLimit:
    """At most `limit()` requests in the app at once; the rest get 503 + Retry-After."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        if self.in_flight >= limit:
            await send_error(
                send,
                ApiError(
                    503,
                    f"server busy: {limit} requests in flight (server.max_concurrent)",
                    "server_error",
                    "overloaded",
                    None,
                    retry_after(1),
                ),
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def read_json(receive: Receive, headers: Any, limit: int) -> Any:
    """The request body as JSON, refusing more than `limit` bytes (413) or bad JSON (400)."""
    declared = headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise bad_request("Content-Length is not a number") from None
        if size > limit:
            raise _too_large(limit)
    parts: list[bytes] = []
    got = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError("client went away")
        chunk = message.get("body", b"")
        got += len(chunk)
        if got > limit:
            raise _too_large(limit)
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    raw = b"".join(parts)
    if not raw:
        raise bad_request("the request body is empty: expected a JSON object")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 text") from None
    except ValueError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"request body larger than {limit} bytes (server.max_body_bytes)",
        code="request_too_large",
    )


async def until_disconnect(receive: Receive) -> None:
    """Returns when the client has gone (after the body was read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
