"""A small HTTP/1.1 client for one JSON API: keep-alive pools, sync and async, SSE events.

Why not httpx or aiohttp (figures from `python bench/http_clients.py`, same fake server):
httpx spends most of a request in its own layers (httpcore's pool bookkeeping, anyio,
h11's parser), and its async pool keeps only 20 idle connections by default, so beyond
20 concurrent requests it closes and reopens connections all the time. aiohttp is fast
but costs an import (and its own event-loop-bound session) the first request pays.
An OpenAI-compatible API needs little of HTTP: one host, POST JSON, a reply with
Content-Length or chunked SSE, keep-alive. That much is written here, on the standard
library: each request goes out in one write on a TCP_NODELAY socket (no Nagle or
delayed-ACK stalls), headers are parsed by splitting lines, and idle connections are
kept up to the pool's size.

Not spoken: HTTP/2, proxies, redirects, compressed bodies (none is asked for).
Failures are stdlib exceptions: `TimeoutError`, `OSError` (refused, reset, TLS) and
`ProtocolError` (a reply that is not HTTP/1.1 as expected); the adapter maps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

_MAX_LINE = 65536
_MAX_HEADERS = 200


class ProtocolError(ConnectionError):
    """The server's reply broke HTTP/1.1 (or the connection closed mid-reply)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go: scheme, host, port and the path prefix (e.g. /v1)."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {shown_url(url)!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host_header}{self.prefix}{path}"


def shown_url(url: str) -> str:
    """A URL fit for an error message: no user:password, no query (either may hold a key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def tls_context(verify: bool | str) -> ssl.SSLContext:
    """`verify`: True (system CAs), False (no checks), or a CA bundle file."""
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)


def encode_request(method: str, target: str, head: bytes, body: bytes | None) -> bytes:
    """The whole request as one buffer: one write, one TCP segment for small requests."""
    line = f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
    if body is None:
        return line + head + b"\r\n"
    length = b"Content-Length: %d\r\n\r\n" % len(body)
    return line + head + length + body


def _status_line(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    try:
        return int(parts[1])
    except ValueError:
        raise ProtocolError(f"bad status line: {line[:80]!r}") from None


def _header(line: bytes, headers: dict[str, str]) -> None:
    name, sep, value = line.partition(b":")
    if not sep:
        raise ProtocolError(f"bad header line: {line[:80]!r}")
    key = name.strip().lower().decode("latin-1")
    text = value.strip().decode("latin-1")
    headers[key] = f"{headers[key]}, {text}" if key in headers else text


def _keeps_alive(headers: Mapping[str, str]) -> bool:
    return "close" not in headers.get("connection", "").lower()


def _chunk_size(line: bytes) -> int:
    try:
        return int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        raise ProtocolError(f"bad chunk size line: {line[:80]!r}") from None


class SSEParser:
    """Server-sent events from byte pieces: yields each event's data (lines joined)."""

    __slots__ = ("_buf", "_data")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []

    def feed(self, piece: bytes) -> list[str]:
        buf = self._buf + piece if self._buf else piece
        out: list[str] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = buf[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:  # a blank line ends an event
                if self._data:
                    out.append("\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append((value[1:] if value[:1] == b" " else value).decode())
            # event:, id:, retry: and ":" comments carry nothing the adapter reads
        self._buf = buf[start:]
        return out

    def close(self) -> list[str]:
        """Data left when the body ended without a final blank line."""
        out = self.feed(b"\n\n") if self._buf else []
        if self._data:
            out.append("\n".join(self._data))
            self._data = []
        return out


# -- sync -------------------------------------------------------------------------------------


class _Conn:
    __slots__ = ("file", "sock", "used_at")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file: IO[bytes] = sock.makefile("rb")
        self.used_at = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.sock.close()


class SyncPool:
    """Keep-alive connections to one endpoint, shared by threads (one request each)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        verify: bool | str = True,
        max_idle: int = 100,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._idle: deque[_Conn] = deque()
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self, timeout: float | None) -> _Conn:
        ep = self.endpoint
        sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ep.scheme == "https":
                if self._tls is None:
                    self._tls = tls_context(self._verify)
                sock = self._tls.wrap_socket(sock, server_hostname=ep.host)
        except BaseException:
            sock.close()
            raise
        return _Conn(sock)

    def _take(self, timeout: float | None) -> _Conn:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                conn = self._idle.pop()  # the most recently used: the likeliest alive
                if now - conn.used_at < self._expiry and not _dropped(conn.sock):
                    conn.sock.settimeout(timeout)
                    return conn
                conn.close()
        return self._connect(timeout)

    def _give_back(self, conn: _Conn) -> None:
        conn.used_at = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def _open(self, request: bytes, timeout: float | None) -> tuple[_Conn, int, dict[str, str]]:
        """Send and read the head. No retry here: a server that drops a connection may have
        read the request, and the router decides about tries (`_take` skips idle connections
        the server has closed)."""
        conn = self._take(timeout)
        try:
            conn.sock.sendall(request)
            line = conn.file.readline(_MAX_LINE)
            if not line:
                raise ProtocolError("the server closed the connection without a reply")
            status, headers = self._head(conn.file, line)
        except BaseException:
            conn.close()
            raise
        return conn, status, headers

    @staticmethod
    def _head(f: IO[bytes], line: bytes) -> tuple[int, dict[str, str]]:
        while True:
            status = _status_line(line)
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS):
                h = f.readline(_MAX_LINE)
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise ProtocolError("the connection closed inside the reply's headers")
                _header(h, headers)
            else:
                raise ProtocolError("too many header lines")
            if status >= 200 or status == 101:
                return status, headers
            line = f.readline(_MAX_LINE)  # 1xx: the real reply follows

    def request(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> Response:
        conn, status, headers = self._open(encode_request(method, target, head, body), timeout)
        try:
            data = b"".join(self._body(conn.file, headers))
        except BaseException:
            conn.close()
            raise
        if _keeps_alive(headers):
            self._give_back(conn)
        else:
            conn.close()
        return Response(status, headers, data)

    def stream(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> tuple[Response, Iterator[bytes]]:
        """The status and headers now; the body as pieces, as they arrive. An error status
        comes with its whole body and no pieces."""
        conn, status, headers = self._open(encode_request(method, target, head, body), timeout)
        if status >= 400:
            try:
                data = b"".join(self._body(conn.file, headers))
            finally:
                conn.close()
            return Response(status, headers, data), iter(())
        return Response(status, headers, b""), self._pieces(conn, headers)

    def _pieces(self, conn: _Conn, headers: Mapping[str, str]) -> Iterator[bytes]:
        done = False
        try:
            yield from self._body(conn.file, headers)
            done = True
        finally:
            if done and _keeps_alive(headers):
                self._give_back(conn)
            else:  # abandoned or failed: unread bytes would corrupt the next reply
                conn.close()

    @staticmethod
    def _body(f: IO[bytes], headers: Mapping[str, str]) -> Iterator[bytes]:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = _chunk_size(f.readline(_MAX_LINE))
                if size == 0:
                    while f.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                data = f.read(size)
                if len(data) < size:
                    raise ProtocolError("the connection closed inside a chunk")
                f.readline(_MAX_LINE)
                yield data
        length = headers.get("content-length")
        if length is not None:
            n = int(length)
            data = f.read(n) if n else b""
            if len(data) < n:
                raise ProtocolError(f"the connection closed after {len(data)} of {n} bytes")
            yield data
            return
        while piece := f.read(65536):  # no length: the body runs to the connection's end
            yield piece

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), deque()
        for conn in idle:
            conn.close()


def _dropped(sock: socket.socket) -> bool:
    """An idle connection with something to read has been closed (or broken) by the server."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


# -- async ------------------------------------------------------------------------------------

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
    ) -> None:
        self.endpoint = endpoint
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
            pool = self._pools[loop] = _LoopPool(self._limit)
        return pool

    async def _connect(self) -> _AConn:
        ep = self.endpoint
        tls = None
        if ep.scheme == "https":
            if self._tls is None:
                self._tls = tls_context(self._verify)
            tls = self._tls
        # asyncio sets TCP_NODELAY on its TCP transports.
        reader, writer = await asyncio.open_connection(
            ep.host, ep.port, ssl=tls, server_hostname=ep.host if tls else None, limit=_MAX_LINE
        )
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
            status = _status_line(line)
            headers: dict[str, str] = {}
            for _ in range(_MAX_HEADERS):
                h = await r.readline()
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise ProtocolError("the connection closed inside the reply's headers")
                _header(h, headers)
            else:
                raise ProtocolError("too many header lines")
            if status >= 200 or status == 101:
                return status, headers
            line = await r.readline()

    async def request(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> Response:
        pool = self._pool()
        async with pool.slots:
            conn: _AConn | None = None
            try:
                async with _timeout(timeout):
                    conn, status, headers = await self._open(
                        pool, encode_request(method, target, head, body)
                    )
                    data = b"".join([p async for p in self._body(conn.reader, headers)])
            except BaseException:
                if conn is not None:
                    conn.close()
                raise
            if _keeps_alive(headers):
                self._give_back(pool, conn)
            else:
                conn.close()
            return Response(status, headers, data)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> AsyncIterator[tuple[Response, AsyncIterator[bytes]]]:
        """As `SyncPool.stream`; `timeout` bounds the head and then each piece."""
        pool = self._pool()
        async with pool.slots:
            async with _timeout(timeout):
                conn, status, headers = await self._open(
                    pool, encode_request(method, target, head, body)
                )
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
                if conn.done and _keeps_alive(headers):
                    self._give_back(pool, conn)
                else:
                    conn.close()

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
                    size = _chunk_size(await r.readline())
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


__all__ = [
    "AsyncPool",
    "Endpoint",
    "ProtocolError",
    "Response",
    "SSEParser",
    "SyncPool",
    "shown_url",
    "tls_context",
]
