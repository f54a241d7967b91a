"""The console's JSON API, `/v1/router/...`: what the pages read, for scripts too.

    GET  /v1/router/overview              traffic figures, chart buckets, spend by model
    GET  /v1/router/requests?rule=&model=&outcome=&limit=
    GET  /v1/router/models                providers, models, budgets, local pool
    GET  /v1/router/config                version, sha, files, last reload, routing tests
    POST /v1/router/health                probe every provider now
    POST /v1/router/playground/explain    {prompt, use_case, tags, metadata} -> trace
    POST /v1/router/playground/run        the same, routed for real -> answer, cost, attempts

Same access as the pages (an admin key, or loopback with no keys set); POSTs are JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router import Result, RouterError
from router.server.chat import error_response
from router.server.console import access, data
from router.server.console.state import admit, of
from router.server.errors import ApiError, bad_request, from_router_error
from router.server.keys import check_allowed
from router.server.limits import read_json

Handler = Callable[[Request], Awaitable[Response]]
MAX_LIMIT = 1000
_NO_STORE = {"Cache-Control": "no-store"}


def guarded(handler: Handler) -> Handler:
    """Admit the viewer first; errors become OpenAI-shaped JSON, as the rest of the API."""

    async def run(request: Request) -> Response:
        try:
            admit(request)
            return await handler(request)
        except ApiError as exc:
            return error_response(exc)
        except RouterError as exc:
            return error_response(from_router_error(exc))

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _json(body: Any) -> Response:
    return JSONResponse(body, headers=_NO_STORE)


@guarded
async def overview(request: Request) -> Response:
    console, _ = of(request)
    return _json(data.overview(console.router, console.recent))


def _filter(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "")
    return value or None


@guarded
async def requests(request: Request) -> Response:
    console, _ = of(request)
    try:
        limit = int(request.query_params.get("limit", "200"))
    except ValueError:
        raise bad_request("limit must be a whole number", "limit") from None
    body = data.requests(
        console.router,
        console.recent,
        rule=_filter(request, "rule"),
        model=_filter(request, "model"),
        outcome=_filter(request, "outcome"),
        limit=max(1, min(limit, MAX_LIMIT)),
    )
    return _json(body)


@guarded
async def models(request: Request) -> Response:
    console, _ = of(request)
    return _json(data.models(console.router))


@guarded
async def config(request: Request) -> Response:
    console, _ = of(request)
    return _json(data.config(console.router, console.last_reload))


@guarded
async def health(request: Request) -> Response:
    console, _ = of(request)
    access.check_json_post(request)
    rows = await asyncio.to_thread(console.router.health, 10.0)
    return _json({"providers": [r.as_dict() for r in rows]})


def route_args(body: Any) -> dict[str, Any]:
    """The playground's form as `route()` arguments, checked."""
    if not isinstance(body, dict):
        raise bad_request("expected a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("prompt must be non-empty text", "prompt")
    args: dict[str, Any] = {"prompt": prompt}
    use_case = body.get("use_case")
    if use_case not in (None, ""):
        if not isinstance(use_case, str):
            raise bad_request("use_case must be text", "use_case")
        args["use_case"] = use_case
    tags = body.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise bad_request("tags must be a list of text", "tags")
    if tags:
        args["tags"] = tags
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object", "metadata")
    if metadata:
        args["metadata"] = metadata
    return args


async def _body(request: Request) -> dict[str, Any]:
    _, server = of(request)
    access.check_json_post(request)
    return route_args(await read_json(request.receive, request.headers, server.max_body_bytes()))


@guarded
async def playground_explain(request: Request) -> Response:
    console, _ = of(request)
    args = await _body(request)
    decision = console.router.explain(**args)
    return _json(data.explained(decision))


def result_json(result: Result) -> dict[str, Any]:
    return {
        "text": result.text,
        "model": result.model,
        "provider": result.provider,
        "rule": result.rule,
        "cost_usd": result.cost_usd,
        "usage": {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
        },
        "latency_ms": round(result.latency_s * 1000, 3),
        "cached": result.cached,
        "attempts": [
            {
                "model": a.model,
                "provider": a.provider,
                "error": a.error,
                "message": a.message,
                "duration_ms": round(a.duration_s * 1000, 3),
            }
            for a in result.attempts
        ],
        "trace": data.explained(result.decision),
    }


@guarded
async def playground_run(request: Request) -> Response:
    """Routes for real: spent under the viewer's key, within its limits, as any request."""
    console, server = of(request)
    viewer = admit(request)
    args = await _body(request)
    key = viewer.key
    if key is not None:  # the limits of the key, as for any request it sends
        server.gate.rate.admit(key)
        server.gate.spend.check(key)
        if key.models is not None or key.rules is not None:
            decision = console.router.explain(**args)
            if decision.served:
                check_allowed(key, decision.model, decision.rule)
        args["key"] = key.name
    result = await console.router.aroute(**args)
    if key is not None:
        server.gate.spend.add(key.name, result.cost_usd or 0.0)
    return _json(result_json(result))
