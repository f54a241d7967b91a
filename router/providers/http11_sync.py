"""The blocking side of `router.providers.http11`: a keep-alive pool shared by threads."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from typing import IO

from router.providers import cancel
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


class _Conn:
    __slots__ = ("file", "sock", "unwatch", "used_at")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file: IO[bytes] = sock.makefile("rb")
        self.used_at = time.monotonic()
        self.unwatch = _nothing

    def watch(self) -> None:
        """While in use, a cancelled call (`cancel.CancelScope`) may shut this down."""
        self.unwatch = cancel.watch(self.sock)

    def close(self) -> None:
        self.unwatch()
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
        proxy: Proxy | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._proxy = proxy
        # A plain-http request through a proxy names the whole URL and shows its credentials.
        plain = proxy is not None and endpoint.scheme == "http"
        self._absolute = f"http://{endpoint.host_header}" if plain else ""
        self._proxy_head = proxy.authorization if proxy is not None and plain else b""
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._idle: deque[_Conn] = deque()
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self, timeout: float | None) -> _Conn:
        ep, proxy = self.endpoint, self._proxy
        via = proxy.endpoint if proxy is not None else ep
        sock = socket.create_connection((via.host, via.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ep.scheme == "https":
                if proxy is not None:
                    sock.sendall(proxy.tunnel_request(ep))
                    status = tunnel_status(_read_head(sock))
                    if status != 200:
                        raise proxy.refused(status)
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
        conn.unwatch()
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
            conn.watch()
            conn.sock.sendall(request)
            line = conn.file.readline(MAX_LINE)
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
            status = status_line(line)
            headers: dict[str, str] = {}
            for _ in range(MAX_HEADERS):
                h = f.readline(MAX_LINE)
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise ProtocolError("the connection closed inside the reply's headers")
                header_line(h, headers)
            else:
                raise ProtocolError("too many header lines")
            if status >= 200 or status == 101:
                return status, headers
            line = f.readline(MAX_LINE)  # 1xx: the real reply follows

    def request(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> Response:
        request = encode_request(method, self._absolute + target, head + self._proxy_head, body)
        conn, status, headers = self._open(request, timeout)
        try:
            data = b"".join(self._body(conn.file, headers))
        except BaseException:
            conn.close()
            raise
        if keeps_alive(headers):
            self._give_back(conn)
        else:
            conn.close()
        return Response(status, headers, data)

    def stream(
        self, method: str, target: str, head: bytes, body: bytes | None, timeout: float | None
    ) -> tuple[Response, Iterator[bytes]]:
        """The status and headers now; the body as pieces, as they arrive. An error status
        comes with its whole body and no pieces."""
        request = encode_request(method, self._absolute + target, head + self._proxy_head, body)
        conn, status, headers = self._open(request, timeout)
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
            if done and keeps_alive(headers):
                self._give_back(conn)
            else:  # abandoned or failed: unread bytes would corrupt the next reply
                conn.close()

    @staticmethod
    def _body(f: IO[bytes], headers: Mapping[str, str]) -> Iterator[bytes]:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = chunk_size(f.readline(MAX_LINE))
                if size == 0:
                    while f.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                data = f.read(size)
                if len(data) < size:
                    raise ProtocolError("the connection closed inside a chunk")
                f.readline(MAX_LINE)
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


def _nothing() -> None:
    pass


def _read_head(sock: socket.socket) -> bytes:
    """A proxy's answer to CONNECT, up to its blank line (it sends nothing after it
    until the tunnel carries bytes, so reading in pieces cannot take the server's)."""
    head = b""
    while b"\r\n\r\n" not in head:
        piece = sock.recv(4096)
        if not piece or len(head) > MAX_LINE:
            raise ProtocolError("the proxy closed the connection during CONNECT")
        head += piece
    return head


def _dropped(sock: socket.socket) -> bool:
    """An idle connection with something to read has been closed (or broken) by the server."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


__all__ = ["SyncPool"]
