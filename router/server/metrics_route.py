"""`GET /metrics`: the Router's Prometheus metrics in the text format scrapers read.

The metrics observe the Router from the moment the app is built, so the first scrape
already counts every request. Under `router serve --workers N` each worker process
counts its own requests; prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR,
which `router serve` sets up when N > 1) lets whichever worker answers a scrape add up
every worker's samples.

Access follows `server.metrics`: on by default and behind `server.keys` when there are
any (a scraper sends `Authorization: Bearer <key>`, Prometheus's `authorization:`
setting); `key_required: false` opens it; `enabled: false` answers 404. Without the
`metrics` extra (prometheus-client) the endpoint answers 501 naming it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from router import MissingDependency, RouterMetrics
from router.server.errors import ApiError
from router.server.limits import send_error

if TYPE_CHECKING:
    from router.server.app import ServerState


class MetricsEndpoint:
    """An ASGI app for `Route("/metrics", ...)`, observing the server's Router."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self.metrics: RouterMetrics | None = None
        self.missing: str | None = None
        try:
            self.metrics = RouterMetrics.for_router(state.router)
        except MissingDependency as exc:  # the server serves on; /metrics says what to add
            self.missing = str(exc)

    def _refuse(self, headers: Any) -> ApiError | None:
        access = self._state.router.config.server.metrics
        if not access.enabled:
            return ApiError(404, "metrics are off (server.metrics: false)", code="not_found")
        if self.metrics is None:
            return ApiError(501, self.missing or "metrics unavailable", "server_error")
        if access.key_required:
            ring = self._state.gate.follow(self._state.router.config)
            try:
                ring.authenticate(headers.get("authorization"), headers.get("api-key"))
            except ApiError as exc:
                return exc
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.datastructures import Headers

        refused = self._refuse(Headers(scope=scope))
        if refused is not None:
            await send_error(send, refused)
            return
        assert self.metrics is not None
        # Reading every worker's files (multiprocess mode) is disk work: off the loop.
        body, ctype = await asyncio.to_thread(self.metrics.render)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", ctype.encode()), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body})


__all__ = ["MetricsEndpoint"]
