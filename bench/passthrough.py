"""The floor for bench/server.py: Starlette forwarding chat completions to one backend.

No routing, no parsing beyond what forwarding needs: the request body goes to
$BACKEND_URL/chat/completions as it came, the answer (or its stream) comes back.
The upstream client is a bare keep-alive HTTP/1.1 pool on asyncio streams (the
least a forwarder can do), or httpx with PASSTHROUGH_CLIENT=httpx (what most write).

    BACKEND_URL=http://127.0.0.1:8000/v1 uvicorn --app-dir bench passthrough:app
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

BACKEND = os.environ.get("BACKEND_URL", "http://127.0.0.1:8000/v1")
CLIENT = os.environ.get("PASSTHROUGH_CLIENT", "raw")
_URL = urlsplit(BACKEND)
_PATH = _URL.path.rstrip("/") + "/chat/completions"
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Pool:
    """Idle keep-alive connections to the backend; a new one when none is idle."""

    def __init__(self) -> None:
        self.idle: list[Conn] = []

    async def get(self) -> Conn:
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection(_URL.hostname, _URL.port)

    def put(self, conn: Conn) -> None:
        self.idle.append(conn)

    async def send(self, body: bytes) -> tuple[Conn, int, bytes]:
        conn = await self.get()
        reader, writer = conn
        writer.write(
            f"POST {_PATH} HTTP/1.1\r\nHost: {_URL.netloc}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer sk-bench\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        return conn, int(head.split(b" ", 2)[1]), head


POOL = Pool()


async def _raw(body: bytes, stream: bool) -> Response:
    conn, status, head = await POOL.send(body)
    reader = conn[0]
    length = _LENGTH.search(head)
    if length:
        data = await reader.readexactly(int(length.group(1)))
        POOL.put(conn)
        return Response(data, status, media_type="application/json")

    async def relay() -> AsyncIterator[bytes]:  # chunked
        while True:
            size = int((await reader.readline()).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                POOL.put(conn)
                return
            yield data[:-2]

    media = "text/event-stream" if stream else "application/json"
    return StreamingResponse(relay(), status, media_type=media)


_httpx_client = None


async def _httpx(body: bytes, stream: bool) -> Response:
    import httpx

    global _httpx_client
    if _httpx_client is None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        _httpx_client = httpx.AsyncClient(base_url=BACKEND, limits=limits, timeout=60)
    client = _httpx_client
    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    if not stream:
        got = await client.post("/chat/completions", content=body, headers=headers)
        return Response(got.content, got.status_code, media_type="application/json")
    req = client.build_request("POST", "/chat/completions", content=body, headers=headers)
    upstream = await client.send(req, stream=True)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for piece in upstream.aiter_raw():
                yield piece
        finally:
            await upstream.aclose()

    return StreamingResponse(relay(), upstream.status_code, media_type="text/event-stream")


async def chat(request: Request) -> Response:
    body = await request.body()
    stream = b'"stream":true' in body.replace(b" ", b"")
    return await (_httpx if CLIENT == "httpx" else _raw)(body, stream)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    for _, writer in POOL.idle:
        writer.close()
    if _httpx_client is not None:
        await _httpx_client.aclose()


app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)
