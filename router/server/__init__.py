"""The OpenAI-compatible HTTP gateway over one `Router` (`router serve`).

    from router.server import create_app
    app = create_app("rules/default.yaml")          # any ASGI server runs it

Needs the `server` extra (Starlette, uvicorn); `import router` never imports it.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install
    from router.errors import MissingDependency

    raise MissingDependency("starlette", "server") from None

from router.server.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
