"""What the console keeps beside the Router: the ring of recent requests and the last
reload, both fed by the Router's public hooks (`add_observer`, `on_reload`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from router import RecentRequests, ReloadEvent, Router
from router.server.console import access, data

if TYPE_CHECKING:
    from router.server.app import ServerState

RING_CAPACITY = 1000


class Console:
    """One per app: created with it, it starts seeing requests at once."""

    def __init__(self, router: Router, capacity: int = RING_CAPACITY) -> None:
        self.router = router
        self.recent = RecentRequests(capacity, keep_text=lambda: data.keeps_text(router))
        router.add_observer(self.recent)
        self._lock = threading.Lock()
        self._last_reload: dict[str, Any] | None = None
        router.on_reload(self._reloaded)

    def _reloaded(self, event: ReloadEvent) -> None:
        with self._lock:
            self._last_reload = {
                "ok": event.ok,
                "at": data.iso(event.loaded_at),
                "version": event.version,
                "sha256": event.sha256,
                "error": event.error,
                "lines": event.describe(),  # the change in words, or the error
            }

    @property
    def last_reload(self) -> dict[str, Any] | None:
        with self._lock:
            return None if self._last_reload is None else dict(self._last_reload)


def of(request: Request) -> tuple[Console, ServerState]:
    return request.app.state.console, request.app.state.server


def admit(request: Request) -> access.Viewer:
    """The viewer of a console request, or an ApiError (401/403)."""
    _, server = of(request)
    ring = server.gate.follow(server.router.config)
    authenticated = None
    if ring.required and (request.headers.get("authorization") or request.headers.get("api-key")):
        authenticated = ring.authenticate(
            request.headers.get("authorization"), request.headers.get("api-key")
        )
    return access.viewer(request, ring.keys, authenticated)


__all__ = ["Console", "admit", "of"]
