"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the
status OpenAI's SDKs map to their own classes (401 AuthenticationError, 404
NotFoundError, 429 RateLimitError, ...). The message says why, as the router's
errors do; a key never appears in one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from router.errors import (
    AuthError,
    BadRequest,
    BudgetExceeded,
    NoRouteError,
    NotFound,
    ProviderError,
    RateLimited,
    RequestError,
    RouterError,
    Timeout,
)
from router.types import RejectionKind

# Attempt kinds that say the request itself was wrong, not the upstream.
_CLIENT_KINDS = frozenset({"bad_request", "context_overflow"})
_SKIPPED = "skipped"
# Rejections no retry can change: no configured model fits this request.
_UNFIT = frozenset({RejectionKind.CONTEXT, RejectionKind.CAPABILITY})
_LIMITED = frozenset({RejectionKind.RATE_LIMIT, RejectionKind.HELD})


@dataclass(eq=False)
class ApiError(Exception):
    """An error response: status, OpenAI's type and code, and extra headers."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return json.dumps(self.json()).encode()

    def json(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def bad_request(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, code="invalid_request", param=param)


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def _until_tomorrow(now: float) -> float:
    return 86400.0 - (now % 86400.0)  # budgets reset at UTC midnight


def from_router_error(exc: RouterError, now: float | None = None) -> ApiError:
    """The status and body a router error becomes."""
    if isinstance(exc, NotFound):
        code = "model_not_found" if exc.what == "model" else "rule_not_found"
        return ApiError(404, str(exc), code=code, param="model")
    if isinstance(exc, RequestError):
        return ApiError(400, str(exc), code="invalid_request")
    if isinstance(exc, BudgetExceeded):
        wait = _until_tomorrow(time.time() if now is None else now)
        return ApiError(
            429, str(exc), "insufficient_quota", "budget_exceeded", None, retry_after(wait)
        )
    if isinstance(exc, NoRouteError):
        return _no_route(exc)
    if isinstance(exc, ProviderError):
        return _provider(exc)
    return ApiError(500, str(exc), "server_error", "internal_error")


def _provider(exc: ProviderError) -> ApiError:
    if isinstance(exc, BadRequest):
        return ApiError(400, str(exc), code=exc.kind)
    if isinstance(exc, RateLimited):
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        return ApiError(429, str(exc), "rate_limit_error", "rate_limited", None, retry_after(wait))
    if isinstance(exc, Timeout):
        return ApiError(504, str(exc), "server_error", "upstream_timeout")
    if isinstance(exc, AuthError):
        return ApiError(502, str(exc), "server_error", "upstream_auth")
    return ApiError(502, str(exc), "server_error", "upstream_error")


def _no_route(exc: NoRouteError) -> ApiError:
    tried = [a for a in exc.attempts if a.error != _SKIPPED]
    if not tried:
        # Nothing could serve: every candidate was filtered out, each for a kind of reason.
        rejected = exc.decision.rejected.values() if exc.decision is not None else ()
        kinds = {getattr(r, "kind", RejectionKind.OTHER) for r in rejected}
        if kinds and kinds <= _UNFIT:
            return ApiError(400, str(exc), code="no_capable_model")
        if kinds and kinds <= _LIMITED:
            return ApiError(429, str(exc), "rate_limit_error", "rate_limited", None, retry_after(1))
        if kinds == {RejectionKind.BUDGET}:
            wait = _until_tomorrow(time.time())
            return ApiError(429, str(exc), "insufficient_quota", "budget_exceeded", None,
                            retry_after(wait))  # fmt: skip
        return ApiError(503, str(exc), "server_error", "no_route", None, retry_after(1))
    kinds = {a.error for a in tried}
    if kinds <= _CLIENT_KINDS:
        return ApiError(400, str(exc), code="upstream_rejected")
    if kinds == {"timeout"}:
        return ApiError(504, str(exc), "server_error", "upstream_timeout")
    if kinds == {"rate_limited"}:
        return ApiError(429, str(exc), "rate_limit_error", "rate_limited", None, retry_after(1))
    return ApiError(502, str(exc), "server_error", "upstream_error")
