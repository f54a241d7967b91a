"""A small HTTP/1.1 client for one JSON API: keep-alive pools, sync and async, SSE events.

Why not httpx or aiohttp (figures from `python bench/http_clients.py`, same fake server,
and a profile of httpx at 200 concurrent requests): TCP_NODELAY is not the cause,
httpcore and asyncio both set it. httpx's async pool re-plans every connection on
every request event (`_assign_requests_to_connections` walks all connections, and its
idle check builds a list of all of them for each one: quadratic in the pool's size),
and each expiry check asks anyio for the socket (`get_extra_info`); at 200 in flight
that is ~8,000 `is_idle` calls and 3-6 ms of CPU per request, so a bigger pool is
slower, not faster. Its sync client costs ~0.6 ms of CPU a request in its layers.
aiohttp is fast (~0.2 ms) but is one more import the first request pays, and its
session is bound to one event loop.

An OpenAI-compatible API needs little of HTTP: one host, POST JSON, a reply with
Content-Length or chunked SSE, keep-alive. That much is written here, on the standard
library: each request goes out in one write on a TCP_NODELAY socket (no Nagle or
delayed-ACK stalls), headers are parsed by splitting lines, and idle connections are
kept up to the pool's size (no separate, smaller keep-alive limit to churn against).

This module holds what both sides share (the endpoint, parsing, SSE); the pools are
`http11_sync.SyncPool` (threads) and `http11_async.AsyncPool` (asyncio).
HTTP proxies are spoken as the OpenAI SDK (httpx) speaks them: `HTTPS_PROXY` /
`HTTP_PROXY` / `NO_PROXY` from the environment, or the provider's `proxy:`; an
https endpoint is reached through a CONNECT tunnel, a plain one with absolute URLs.
Not spoken: HTTP/2, redirects, compressed bodies (none is asked for).
Failures are stdlib exceptions: `TimeoutError`, `OSError` (refused, reset, TLS) and
`ProtocolError` (a reply that is not HTTP/1.1 as expected); the adapter maps them.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

MAX_LINE = 65536
MAX_HEADERS = 200


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


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: where it is, and the Proxy-Authorization header its URL's
    user:password asks for (never shown: `shown_url` drops it)."""

    endpoint: Endpoint
    authorization: bytes = b""  # a whole header line, or empty
    password: str = ""  # for masking in messages

    @classmethod
    def parse(cls, url: str) -> Proxy:
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// proxies are spoken, not {shown_url(url)!r}")
        auth, password = b"", ""
        if parts.username is not None:
            password = unquote(parts.password or "")
            token = f"{unquote(parts.username)}:{password}".encode()
            auth = b"Proxy-Authorization: Basic " + base64.b64encode(token) + b"\r\n"
        return cls(Endpoint.parse(url), auth, password)

    def tunnel_request(self, target: Endpoint) -> bytes:
        host = f"[{target.host}]" if ":" in target.host else target.host
        where = f"{host}:{target.port}"
        return (
            f"CONNECT {where} HTTP/1.1\r\nHost: {where}\r\n".encode("latin-1")
            + self.authorization
            + b"\r\n"
        )

    def refused(self, status: int) -> ProxyRefused:
        url = f"http://{self.endpoint.host_header}"
        return ProxyRefused(f"the proxy at {url} answered CONNECT with HTTP {status}")


class ProxyRefused(ConnectionError):
    """A proxy would not open a tunnel (407 without credentials, 403, 502, ...)."""


def proxy_for(endpoint: Endpoint, setting: str | bool | None) -> Proxy | None:
    """The proxy for an endpoint: the `proxy:` setting (a URL, or false for none), else
    the environment's HTTPS_PROXY / HTTP_PROXY, unless NO_PROXY names the host."""
    if setting is False or setting == "":
        return None
    if isinstance(setting, str):
        return Proxy.parse(setting)
    if endpoint.scheme == "https":
        names = ("https_proxy", "HTTPS_PROXY")
    else:
        names = ("http_proxy", "HTTP_PROXY")
    url = next((os.environ[n] for n in names if os.environ.get(n)), "")
    if not url or _bypassed(endpoint.host):
        return None
    return Proxy.parse(url)


def _bypassed(host: str) -> bool:
    raw = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in (e.strip().lower() for e in raw.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.lstrip(".").split(":")[0] if not entry.startswith("[") else entry
        if host.lower() == entry or host.lower().endswith("." + entry):
            return True
    return False


def tunnel_status(head: bytes) -> int:
    """The status of a proxy's answer to CONNECT (its head, up to the blank line)."""
    return status_line(head.split(b"\r\n", 1)[0])


def encode_request(method: str, target: str, head: bytes, body: bytes | None) -> bytes:
    """The whole request as one buffer: one write, one TCP segment for small requests."""
    line = f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
    if body is None:
        return line + head + b"\r\n"
    length = b"Content-Length: %d\r\n\r\n" % len(body)
    return line + head + length + body


def status_line(line: bytes) -> int:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
    try:
        return int(parts[1])
    except ValueError:
        raise ProtocolError(f"bad status line: {line[:80]!r}") from None


def header_line(line: bytes, headers: dict[str, str]) -> None:
    name, sep, value = line.partition(b":")
    if not sep:
        raise ProtocolError(f"bad header line: {line[:80]!r}")
    key = name.strip().lower().decode("latin-1")
    text = value.strip().decode("latin-1")
    headers[key] = f"{headers[key]}, {text}" if key in headers else text


def keeps_alive(headers: Mapping[str, str]) -> bool:
    return "close" not in headers.get("connection", "").lower()


def chunk_size(line: bytes) -> int:
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


__all__ = [
    "MAX_HEADERS",
    "MAX_LINE",
    "Endpoint",
    "ProtocolError",
    "Proxy",
    "ProxyRefused",
    "Response",
    "SSEParser",
    "chunk_size",
    "encode_request",
    "header_line",
    "keeps_alive",
    "proxy_for",
    "shown_url",
    "status_line",
    "tls_context",
    "tunnel_status",
]
