"""The asyncio side of `router.providers.http11`: keep-alive pools per event loop."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping

from router.providers.http11 import (
    MAX_HEADERS,
    MAX_LINE,
    Endpoint,
    ProtocolError,
    Proxy,
    Response,
    chunk_size,
    encode_request,
    header_line,
    keeps_alive,
    status_line,
    tls_context,
    tunnel_status,
)

if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    @contextlib.asynccontextmanager
    async def _timeout(seconds: float | None) -> AsyncIterator[None]:
        task = asyncio.current_task()
        handle = None
        if seconds is not None and task is not None:
            handle = asyncio.get_running_loop().call_later(seconds, task.cancel)
        try:
            yield
        except asyncio.CancelledError:
            if handle is not None and handle.when() <= asyncio.get_running_loop().time():
                raise TimeoutError from None
            raise
        finally:
            if handle is not None:
                handle.cancel()


class _AConn:
    __slots__ = ("done", "reader", "used_at", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used_at = time.monotonic()
        self.done = False  # the current reply was read to its end

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class _LoopPool:
    """The idle connections and the connection limit of one event loop."""

    __slots__ = ("idle", "slots")

    def __init__(self, limit: int) -> None:
        self.idle: deque[_AConn] = deque()
        self.slots = asyncio.Semaphore(limit)


class AsyncPool:
    """Keep-alive connections to one endpoint per event loop, at most `max_connections`
    open per loop; a request past the limit waits for a connection to come back."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        verify: bool | str = True,
        max_connections: int = 100,
        keepalive_expiry: float = 30.0,
        proxy: Proxy | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._proxy = proxy
        plain = proxy is not None and endpoint.scheme == "http"
        self._absolute = f"http://{endpoint.host_header}" if plain else ""
        self._proxy_head = proxy.authorization if proxy is not None and plain else b""
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._limit = max_connections
        self._expiry = keepalive_expiry
        # A connection belongs to the loop that opened it.
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = (
            weakref.WeakKeyDictionary()
        )

    def _pool(self) -> _LoopPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            self._forget_closed_loops()
            pool = self._pools[loop] = _LoopPool(self._limit)
        return pool

    def _forget_closed_loops(self) -> None:
        """Drop the pools of loops that have ended (each `asyncio.run` is a new loop).
        Their connections cannot be closed through a closed loop, and they keep the
        loop alive, so the weak key never goes; once dropped, the garbage collector
        closes their sockets (asyncio's transports close theirs when collected)."""
        for loop in [lp for lp in self._pools if lp.is_closed()]:
            pool = self._pools.pop(loop)
            pool.idle.clear()

    async def _connect(self) -> _AConn:
        ep, proxy = self.endpoint, self._proxy
        tls = None
        if ep.scheme == "https":
            if self._tls is None:
                self._tls = tls_context(self._verify)
            tls = self._tls
        if proxy is None:
            # asyncio sets TCP_NODELAY on its TCP transports.
            reader, writer = await asyncio.open_connection(
                ep.host, ep.port, ssl=tls, server_hostname=ep.host if tls else None, limit=MAX_LINE
            )
            return _AConn(reader, writer)
        via = proxy.endpoint
        reader, writer = await asyncio.open_connection(via.host, via.port, limit=MAX_LINE)
        try:
            if tls is not None:
                writer.write(proxy.tunnel_request(ep))
                head = await reader.readuntil(b"\r\n\r\n")
                status = tunnel_status(head)
                if status != 200:
                    raise proxy.refused(status)
                if sys.version_info < (3, 11):  # pragma: no cover
                    raise ProtocolError("https through a proxy needs Python 3.11 or later")
                await writer.start_tls(tls, server_hostname=ep.host)
        except BaseException:
            writer.close()
            raise
        return _AConn(reader, writer)

    def _take_idle(self, pool: _LoopPool) -> _AConn | None:
        now = time.monotonic()
        while pool.idle:
            conn = pool.idle.pop()
            if now - conn.used_at < self._expiry and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    def _give_back(self, pool: _LoopPool, conn: _AConn) -> None:
        conn.used_at = time.monotonic()
        pool.idle.append(conn)

    async def _open(self, pool: _LoopPool, request: bytes) -> tuple[_AConn, int, dict[str, str]]:
        conn = self._take_idle(pool) or await self._connect()
        try:
            conn.writer.write(request)
            line = await conn.reader.readline()
            if not line:
                raise ProtocolError("the server closed the connection without a reply")
            status, headers = await self._head(conn.reader, line)
        except BaseException:
            conn.close()
            raise
        return conn, status, headers

    @staticmethod
    async def _head(r: asyncio.StreamReader, line: bytes) -> tuple[int, dict[str, str]]:
        while True:
            status = status_line(line)
            headers: dict[str, str] = {}
            for _ in range(MAX_HEADERS):
                h = await r.readline()
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise ProtocolError("the connection closed inside the reply's headers")
                header_line(h, headers)
            else:
                raise ProtocolError("too many header lines")
            if status >= 200 or status == 101:
                return status, headers
            line = await r.readline()

    async def request(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> Response:
        pool = self._pool()
        request = encode_request(method, self._absolute + target, head + self._proxy_head, body)
        conn: _AConn | None = None
        try:
            # Waiting for a free connection counts against the timeout too.
            async with _timeout(timeout), pool.slots:
                conn, status, headers = await self._open(pool, request)
                data = b"".join([p async for p in self._body(conn.reader, headers)])
                if keeps_alive(headers):
                    self._give_back(pool, conn)
                    conn = None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        if conn is not None:
            conn.close()
        return Response(status, headers, data)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> AsyncIterator[tuple[Response, AsyncIterator[bytes]]]:
        """As `SyncPool.stream`; `timeout` bounds the head and then each piece."""
        pool = self._pool()
        request = encode_request(method, self._absolute + target, head + self._proxy_head, body)
        async with _timeout(timeout):  # waiting for a free connection counts too
            await pool.slots.acquire()
        try:
            async with _timeout(timeout):
                conn, status, headers = await self._open(pool, request)
            conn.done = False
            try:
                if status >= 400:
                    async with _timeout(timeout):
                        data = b"".join([p async for p in self._body(conn.reader, headers)])
                    conn.done = True
                    yield Response(status, headers, data), _empty()
                    return
                yield Response(status, headers, b""), self._timed(conn, headers, timeout)
            finally:
                if conn.done and keeps_alive(headers):
                    self._give_back(pool, conn)
                else:
                    conn.close()
        finally:
            pool.slots.release()

    async def _timed(
        self, conn: _AConn, headers: Mapping[str, str], timeout: float | None
    ) -> AsyncIterator[bytes]:
        pieces = self._body(conn.reader, headers)
        while True:
            async with _timeout(timeout):
                try:
                    piece = await pieces.__anext__()
                except StopAsyncIteration:
                    break
            yield piece
        conn.done = True

    @staticmethod
    async def _body(r: asyncio.StreamReader, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                while True:
                    size = chunk_size(await r.readline())
                    if size == 0:
                        while await r.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return
                    data = await r.readexactly(size)
                    await r.readline()
                    yield data
            length = headers.get("content-length")
            if length is not None:
                n = int(length)
                yield await r.readexactly(n) if n else b""
                return
            while piece := await r.read(65536):
                yield piece
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError(
                f"the connection closed after {len(exc.partial)} of {exc.expected} bytes"
            ) from None

    def close(self) -> None:
        """Close idle connections of every loop (those still running close at their end)."""
        for pool in list(self._pools.values()):
            while pool.idle:
                pool.idle.pop().close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


__all__ = ["AsyncPool"]
