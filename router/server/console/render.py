"""HTML for the console: jinja2 templates with autoescape on, shipped in the package.

Every value reaches a page through a template's `{{ }}` (escaped: a rule named
`<script>` shows as text) or through the console's script, which writes text with
`textContent` only. The Content-Security-Policy sent with each page lets no inline
script or style run, so markup that slipped through would still do nothing.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jinja2
from starlette.responses import HTMLResponse, Response

PACKAGE = "router.server.console"
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _usd(value: Any) -> str:
    if value is None:
        return "price unknown"
    v = float(value)
    return f"${v:.6f}" if 0 < abs(v) < 0.01 else f"${v:.2f}"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f}%"


def _ms(value: Any) -> str:
    return "–" if value is None else f"{float(value):.0f} ms"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["usd"] = _usd
    env.filters["pct"] = _pct
    env.filters["ms"] = _ms
    return env


def page(template: str, status_code: int = 200, **context: Any) -> Response:
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


@functools.lru_cache(maxsize=len(STATIC))
def static_bytes(name: str) -> bytes:
    return resources.files(PACKAGE).joinpath("static", name).read_bytes()


def static(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        static_bytes(name),
        media_type=STATIC[name],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )
