"""A small HTTP proxy on 127.0.0.1 for the adapter tests: CONNECT tunnels and
absolute-URL forwarding, recording each request line and Proxy-Authorization."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from urllib.parse import urlsplit


class ProxyServer:
    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse  # answer CONNECT with this status instead of tunnelling
        self.seen: list[tuple[str, str | None]] = []  # (request line, Proxy-Authorization)
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._srv.getsockname()[1]}"

    def __enter__(self) -> ProxyServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._srv.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                piece = client.recv(65536)
                if not piece:
                    return
                head += piece
            raw_head, _, rest = head.partition(b"\r\n\r\n")
            lines = raw_head.decode("latin-1").split("\r\n")
            auth = next(
                (ln.split(":", 1)[1].strip() for ln in lines[1:]
                 if ln.lower().startswith("proxy-authorization:")),
                None,
            )  # fmt: skip
            self.seen.append((lines[0], auth))
            method, target, _ = lines[0].split(" ", 2)
            if method == "CONNECT":
                if self.refuse:
                    client.sendall(b"HTTP/1.1 %d Nope\r\nContent-Length: 0\r\n\r\n" % self.refuse)
                    return
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:  # absolute-form: forward with the origin-form target, drop our header
                url = urlsplit(target)
                upstream = socket.create_connection((url.hostname or "", url.port or 80))
                kept = [ln for ln in lines[1:] if not ln.lower().startswith("proxy-")]
                first = f"{method} {url.path or '/'} HTTP/1.1"
                upstream.sendall(("\r\n".join([first, *kept]) + "\r\n\r\n").encode() + rest)
            with upstream:
                self._relay(client, upstream)

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        """Copy bytes both ways until either side closes (one connection, one upstream:
        enough for tests that keep a connection alive)."""
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.2)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
