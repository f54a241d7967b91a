"""The console's pages under `/ui`: Overview, Traffic, Models, Config, Playground, login.

Pages are rendered on the server from `data` (the same data the JSON API returns);
the overview's charts and the playground are drawn by the console's own script from
that API, so they refresh without reloading the page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from router.server.console import access, data, render
from router.server.console.state import admit, of
from router.server.errors import ApiError

PageHandler = Callable[[Request, access.Viewer], Awaitable[Response]]
NAV = (
    ("overview", "/ui", "Overview"),
    ("traffic", "/ui/traffic", "Traffic"),
    ("models", "/ui/models", "Models"),
    ("config", "/ui/config", "Config"),
    ("playground", "/ui/playground", "Playground"),
)
LOGIN_BODY_LIMIT = 8192


def _denied(error: ApiError) -> Response:
    return render.page("denied.html", error.status, nav=(), active="", viewer=None, error=error)


def guarded(name: str) -> Callable[[PageHandler], Callable[[Request], Awaitable[Response]]]:
    """Admit the viewer: no key sends a browser to the login form, a wrong one is 403."""

    def wrap(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                viewer = admit(request)
            except ApiError as exc:
                if exc.status == 401:
                    target = quote(request.url.path, safe="/")
                    return RedirectResponse(f"/ui/login?next={target}", status_code=303)
                return _denied(exc)
            return await handler(request, viewer)

        run.__name__ = name
        return run

    return wrap


def _page(template: str, active: str, viewer: access.Viewer, **context: Any) -> Response:
    return render.page(template, nav=NAV, active=active, viewer=viewer, **context)


@guarded("overview")
async def overview(request: Request, viewer: access.Viewer) -> Response:
    console, _ = of(request)
    return _page(
        "overview.html", "overview", viewer, o=data.overview(console.router, console.recent)
    )


@guarded("traffic")
async def traffic(request: Request, viewer: access.Viewer) -> Response:
    console, _ = of(request)
    q = request.query_params
    body = data.requests(
        console.router,
        console.recent,
        rule=q.get("rule") or None,
        model=q.get("model") or None,
        outcome=q.get("outcome") or None,
    )
    return _page("traffic.html", "traffic", viewer, t=body)


@guarded("models")
async def models(request: Request, viewer: access.Viewer) -> Response:
    console, _ = of(request)
    return _page("models.html", "models", viewer, m=data.models(console.router))


@guarded("config")
async def config(request: Request, viewer: access.Viewer) -> Response:
    console, _ = of(request)
    return _page(
        "config.html", "config", viewer, c=data.config(console.router, console.last_reload)
    )


@guarded("playground")
async def playground(request: Request, viewer: access.Viewer) -> Response:
    console, _ = of(request)
    use_cases = list(console.router.config.use_cases)
    return _page("playground.html", "playground", viewer, use_cases=use_cases)


async def _read_form(request: Request) -> dict[str, list[str]]:
    """A small urlencoded form (the login's), refusing more than LOGIN_BODY_LIMIT bytes."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > LOGIN_BODY_LIMIT:
            raise ApiError(413, "the form is too large")
    return parse_qs(raw.decode("utf-8", "replace"), max_num_fields=4)


def _next(value: str | None) -> str:
    """Where to go after logging in: a console page, never another site."""
    if value and value.startswith("/ui") and "//" not in value and "\\" not in value:
        return value
    return "/ui"


def _login_form(request: Request, status: int = 200, error: str | None = None) -> Response:
    _, server = of(request)
    keys_set = bool(server.router.config.server.keys)
    return render.page(
        "login.html",
        status,
        nav=(),
        active="",
        viewer=None,
        error=error,
        keys_set=keys_set,
        next=_next(request.query_params.get("next")),
    )


async def login(request: Request) -> Response:
    if request.method == "GET":
        return _login_form(request)
    _, server = of(request)
    try:
        form = await _read_form(request)
    except (ApiError, ValueError) as exc:  # ValueError: more fields than a login has
        return _login_form(request, 400, str(getattr(exc, "message", "bad form")))
    presented = (form.get("key") or [""])[0].strip()
    ring = server.gate.follow(server.router.config)
    if not ring.required:
        return RedirectResponse("/ui", status_code=303)
    try:
        key = ring.authenticate(f"Bearer {presented}", None)
    except ApiError as exc:
        return _login_form(request, 401, exc.message)
    if key is None or not key.admin:
        name = key.name if key is not None else "?"
        return _login_form(request, 403, f"key '{name}' may not open the console (admin: true)")
    response = RedirectResponse(_next((form.get("next") or [""])[0]), status_code=303)
    response.set_cookie(
        access.COOKIE,
        access.session_token(key),
        max_age=access.COOKIE_TTL_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(access.COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def static(request: Request) -> Response:
    return render.static(request.path_params["name"])
