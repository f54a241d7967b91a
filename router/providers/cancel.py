"""Stopping a blocking call from another thread: how a hedge's losing call is closed.

A thread blocked in a socket read cannot be interrupted, but the socket can be shut
down: the read ends at once and the server sees the connection close, so it stops
generating (and, for most APIs, charging for) an answer nobody will read.

The caller runs the call inside `scope(s)` (a context variable, so it follows the call
into the thread that runs it); the blocking HTTP pool (`http11_sync`) registers each
socket it uses with the current scope for as long as it uses it; `s.cancel()` shuts
those sockets down, and any registered after it at once.

Clients that do not take part (litellm's) are not stopped: their call runs to its own
timeout and its outcome is settled when it ends.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar


class CancelScope:
    """The sockets one call is using; `cancel()` closes them, now and from then on."""

    __slots__ = ("_cancelled", "_lock", "_socks")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)

    def watch(self, sock: socket.socket) -> Callable[[], None]:
        """Register `sock` until the returned function is called."""
        with self._lock:
            if not self._cancelled:
                self._socks.add(sock)
                return lambda: self._forget(sock)
        _shut(sock)
        return _nothing

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.discard(sock)


_current: ContextVar[CancelScope | None] = ContextVar("router_cancel_scope", default=None)


@contextlib.contextmanager
def scope(s: CancelScope) -> Iterator[CancelScope]:
    """Calls made inside the block (in this context) can be stopped with `s.cancel()`."""
    token = _current.set(s)
    try:
        yield s
    finally:
        _current.reset(token)


def watch(sock: socket.socket) -> Callable[[], None]:
    """Register `sock` with the current scope, if any; call the result when done with it."""
    s = _current.get()
    return _nothing if s is None else s.watch(sock)


def _nothing() -> None:
    pass


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


__all__ = ["CancelScope", "scope", "watch"]
