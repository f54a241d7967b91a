"""Who may open the console: a key with `admin: true`, or loopback when no key is set.

Scripts send the key as they do to the API (`Authorization: Bearer <key>`). A
browser cannot add that header to a page it navigates to, so `/ui/login` takes the
key once in a form and sets a cookie. The cookie never holds the key: it holds the
key's name, an expiry and an HMAC of both made with the key itself, so it is checked
in any worker without shared state, and it stops working when the key is removed or
changed in the config. It is HttpOnly (no script reads it) and SameSite=Strict (no
other site's page sends it). A key in a URL (`?key=`) is not accepted: URLs end up
in history and access logs.

With no key configured the console answers only requests from loopback whose Host
header names loopback too: a page elsewhere that gets its name resolved to 127.0.0.1
(DNS rebinding) is refused. Requests that change something (playground, health
probe) must be JSON, which another site's form cannot send without a CORS preflight
this server never grants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from starlette.requests import Request

from router import ApiKey
from router.server.errors import ApiError

COOKIE = "router_console"
COOKIE_TTL_S = 12 * 3600
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: an admin key (by name), or loopback with no keys configured."""

    name: str
    key: ApiKey | None  # None: loopback, no keys configured


def _sign(key: ApiKey, expires: int) -> str:
    msg = f"router-console|{key.name}|{expires}".encode("utf-8", "surrogatepass")
    return hmac.new(
        key.key.reveal().encode("utf-8", "surrogatepass"), msg, hashlib.sha256
    ).hexdigest()


def session_token(key: ApiKey, now: float | None = None) -> str:
    """The cookie's value for `key`: name, expiry and signature, never the key."""
    expires = int((time.time() if now is None else now) + COOKIE_TTL_S)
    name = base64.urlsafe_b64encode(key.name.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"{expires}.{_sign(key, expires)}.{name}"


def key_of_token(token: str, keys: tuple[ApiKey, ...], now: float | None = None) -> ApiKey | None:
    """The key a cookie was made for, while it is valid; None otherwise."""
    try:
        expires_s, sig, name_b64 = token.split(".", 2)
        expires = int(expires_s)
        name = base64.urlsafe_b64decode(name_b64.encode("ascii")).decode("utf-8", "surrogatepass")
    except (ValueError, UnicodeError):
        return None
    if expires < (time.time() if now is None else now):
        return None
    found = None
    for key in keys:  # every key is looked at: the name picks, the signature decides
        if key.name == name and hmac.compare_digest(_sign(key, expires), sig):
            found = key
    return found


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_loopback_name(name: str) -> bool:
    return name in LOOPBACK_HOSTS or name.startswith("127.")


def is_loopback(request: Request) -> bool:
    """From loopback, to a loopback name (not a rebound DNS name)."""
    client = request.client.host if request.client else ""
    host = _host_name(request.headers.get("host", ""))
    return _is_loopback_name(client) and _is_loopback_name(host)


def viewer(request: Request, keys: tuple[ApiKey, ...], authenticated: ApiKey | None) -> Viewer:
    """The viewer, or an ApiError: 401 with no valid key or cookie, 403 for a non-admin
    key or (no keys set) a request not from loopback.

    `authenticated` is the key the request's header presented (already checked by the
    server's key ring), None when it sent none.
    """
    if not keys:
        if is_loopback(request):
            return Viewer("loopback", None)
        raise ApiError(
            403,
            "the console answers only loopback (127.0.0.1) while no server.keys are set",
            "permission_error",
            "console_loopback_only",
        )
    key = authenticated
    if key is None:
        token = request.cookies.get(COOKIE)
        key = key_of_token(token, keys) if token else None
    if key is None:
        raise ApiError(
            401, "the console needs an admin key: log in at /ui/login", code="invalid_api_key"
        )
    if not key.admin:
        raise ApiError(
            403,
            f"key '{key.name}' may not open the console (it needs admin: true)",
            "permission_error",
            "console_admin_only",
        )
    return Viewer(key.name, key)


def check_json_post(request: Request) -> None:
    """Changes come as JSON from this origin: another site's form cannot send them."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise ApiError(415, "send the body as application/json", code="unsupported_media_type")
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1].rstrip("/").lower() != host.lower():
            raise ApiError(403, "cross-origin request refused", "permission_error", "bad_origin")
