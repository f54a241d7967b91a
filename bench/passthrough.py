"""The floor for bench/server.py: Starlette forwarding chat completions to one backend.

No routing, no parsing beyond what forwarding needs: the request body goes to
$BACKEND_URL/chat/completions as it came, the answer (or its stream) comes back.

    BACKEND_URL=http://127.0.0.1:8000/v1 uvicorn --app-dir bench passthrough:app
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

BACKEND = os.environ.get("BACKEND_URL", "http://127.0.0.1:8000/v1")
_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        _client = httpx.AsyncClient(base_url=BACKEND, limits=limits, timeout=60)
    return _client


async def chat(request: Request) -> Response:
    body = await request.body()
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    if b'"stream":true' not in body.replace(b" ", b""):
        got = await client().post("/chat/completions", content=body, headers=headers)
        return Response(got.content, got.status_code, media_type="application/json")
    req = client().build_request("POST", "/chat/completions", content=body, headers=headers)
    upstream = await client().send(req, stream=True)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for piece in upstream.aiter_raw():
                yield piece
        finally:
            await upstream.aclose()

    return StreamingResponse(relay(), upstream.status_code, media_type="text/event-stream")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    if _client is not None:
        await _client.aclose()


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)
