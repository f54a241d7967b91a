"""The web console at `/ui`: traffic, spend, health and a playground, served by the
gateway itself, with no build step and no third-party JavaScript.

    app = create_app("router.yaml")          # the console comes with every app
    # open http://127.0.0.1:8080/ui          (an admin key, or loopback with no keys)

`Console` keeps what the Router does not (recent requests, the last reload);
`routes()` are the pages (`pages`) and the JSON API they read (`api`).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from router.server.console import api, pages
from router.server.console.state import Console


def routes() -> list[BaseRoute]:
    return [
        Route("/ui", pages.overview, methods=["GET"]),
        Route("/ui/traffic", pages.traffic, methods=["GET"]),
        Route("/ui/models", pages.models, methods=["GET"]),
        Route("/ui/config", pages.config, methods=["GET"]),
        Route("/ui/playground", pages.playground, methods=["GET"]),
        Route("/ui/login", pages.login, methods=["GET", "POST"]),
        Route("/ui/logout", pages.logout, methods=["POST"]),
        Route("/ui/static/{name}", pages.static, methods=["GET"]),
        Route("/v1/router/overview", api.overview, methods=["GET"]),
        Route("/v1/router/requests", api.requests, methods=["GET"]),
        Route("/v1/router/models", api.models, methods=["GET"]),
        Route("/v1/router/config", api.config, methods=["GET"]),
        Route("/v1/router/health", api.health, methods=["POST"]),
        Route("/v1/router/playground/explain", api.playground_explain, methods=["POST"]),
        Route("/v1/router/playground/run", api.playground_run, methods=["POST"]),
    ]


__all__ = ["Console", "routes"]
