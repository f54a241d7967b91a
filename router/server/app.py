"""`create_app(config)`: the OpenAI-compatible gateway over one `Router`, as an ASGI app.

    uvicorn --factory 'router.server:app_from_env'      # ROUTER_CONFIG=rules/default.yaml
    router serve rules/default.yaml --port 8080          # the same, with checks and workers

Any ASGI server runs it (uvicorn, gunicorn with uvicorn workers, granian). The
Router is created with the app (hot reload on unless `watch=False`) and closed
when the server shuts down, after in-flight requests are done.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import router as router_package
from router import ApiKey, Router
from router.server import chat, console, embeddings, metrics_route
from router.server.errors import ApiError
from router.server.keys import Gate
from router.server.limits import ConcurrencyLimit
from router.server.wire import AUTO, RULE_PREFIX


class ServerState:
    """What every handler shares: the Router and the keys of its current config."""

    def __init__(self, router: Router, owns_router: bool) -> None:
        self.router = router
        self.owns_router = owns_router
        self.gate = Gate(router.config)
        self.started = time.time()
        self.limit: ConcurrencyLimit | None = None

    def max_body_bytes(self) -> int:
        return self.router.config.server.max_body_bytes

    def max_concurrent(self) -> int:
        return self.router.config.server.max_concurrent

    def authenticate(self, request: Request) -> ApiKey | None:
        ring = self.gate.follow(self.router.config)
        return ring.authenticate(
            request.headers.get("authorization"), request.headers.get("api-key")
        )

    def seed_spend(self) -> None:
        if self.router.config.server.keys:
            self.gate.spend.seed(lambda by, since: self.router.usage(by, since))


def create_app(
    config: str | os.PathLike[str] | Router, *, watch: bool = True, debounce_ms: int | None = None
) -> Starlette:
    """The gateway for a config (a YAML file or directory) or an existing Router.

    A Router passed in stays the caller's to close; one built here is closed at shutdown.
    """
    if isinstance(config, Router):
        router, owns = config, False
    else:
        router = Router.from_config(Path(config), watch=watch, debounce_ms=debounce_ms)
        owns = True
    state = ServerState(router, owns)
    state.seed_spend()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if state.owns_router:
                router.close()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
            Route("/chat/completions", chat.chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model:path}", model, methods=["GET"]),
            Route("/v1/embeddings", embeddings.embeddings, methods=["POST"]),
            Route("/embeddings", embeddings.embeddings, methods=["POST"]),
            Route("/metrics", metrics_route.MetricsEndpoint(state), methods=["GET"]),
            Route("/v1/router/explain", chat.explain, methods=["POST"]),
            Route("/v1/router/status", status, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *console.routes(),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed, 500: internal_error},
    )
    app.state.server = state
    app.state.console = console.Console(router)
    limit = ConcurrencyLimit(app.build_middleware_stack(), state.max_concurrent)
    state.limit = limit
    app.middleware_stack = limit  # outermost: a refused request costs almost nothing
    return app


def app_from_env() -> Starlette:
    """A factory for ASGI servers: the config at $ROUTER_CONFIG; $ROUTER_NO_WATCH=1 to not watch."""
    watch = os.environ.get("ROUTER_NO_WATCH") != "1"
    return create_app(router_package.default_config_path(), watch=watch)


def _model_entries(state: ServerState, key: ApiKey | None) -> list[dict[str, Any]]:
    cfg = state.router.config
    created = int(state.started)
    out = [{"id": AUTO, "object": "model", "created": created, "owned_by": "router"}]
    for rule in cfg.rules:
        if key is None or key.rules is None or rule.name in key.rules:
            out.append(
                {
                    "id": RULE_PREFIX + rule.name,
                    "object": "model",
                    "created": created,
                    "owned_by": "router",
                }
            )
    for m in cfg.models.values():
        if key is None or key.models is None or m.name in key.models:
            out.append(
                {"id": m.name, "object": "model", "created": created, "owned_by": m.provider}
            )
    return out


async def models(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        key = state.authenticate(request)
    except ApiError as exc:
        return chat.error_response(exc)
    return JSONResponse({"object": "list", "data": _model_entries(state, key)})


async def model(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        key = state.authenticate(request)
    except ApiError as exc:
        return chat.error_response(exc)
    wanted = request.path_params["model"]
    for entry in _model_entries(state, key):
        if entry["id"] == wanted:
            return JSONResponse(entry)
    return chat.error_response(ApiError(404, f"unknown model '{wanted}'", code="model_not_found"))


async def status(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        state.authenticate(request)
    except ApiError as exc:
        return chat.error_response(exc)
    out = state.router.status().to_dict()
    out["server"] = {
        "in_flight": state.limit.in_flight if state.limit else 0,
        "max_concurrent": state.max_concurrent(),
        "max_body_bytes": state.max_body_bytes(),
        "keys": [k.name for k in state.router.config.server.keys],
        "spend_by_key": state.gate.spend.snapshot(),
        "started_at": state.started,
    }
    return JSONResponse(out)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when a config is loaded and at least one model can serve."""
    state: ServerState = request.app.state.server
    status = state.router.status()
    live = status.state
    serving = [
        m.name
        for m in state.router.config.models.values()
        if status.providers[m.provider].enabled
        and live.providers.get(m.provider, status.providers[m.provider]).enabled
        and (m.name not in live.models or live.models[m.name].breaker["state"] != "open")
    ]
    body = {
        "ready": bool(serving),
        "config_version": status.config_version,
        "models_serving": len(serving),
        "last_error": status.last_error,
    }
    return JSONResponse(body, status_code=200 if serving else 503)


async def not_found(request: Request, exc: Exception) -> Response:
    return chat.error_response(
        ApiError(404, f"no such endpoint: {request.method} {request.url.path}", code="not_found")
    )


async def not_allowed(request: Request, exc: Exception) -> Response:
    return chat.error_response(
        ApiError(
            405, f"{request.method} is not allowed on {request.url.path}", code="method_not_allowed"
        )
    )


async def internal_error(request: Request, exc: Exception) -> Response:
    # One bad request never takes the worker down; the message names the failure, not data.
    return chat.error_response(
        ApiError(500, f"internal error: {type(exc).__name__}", "server_error", "internal_error")
    )
