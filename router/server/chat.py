"""`POST /v1/chat/completions` and `POST /v1/router/explain`: one request through the Router.

The model a client names picks how it is routed: `auto` lets the rules decide, a
configured model name (or `<provider>/<model id>` for one the config does not list)
pins it, `router/<rule>` forces a rule. `use_case`, `tags`
and `metadata` come as extra body fields or `X-Router-*` headers. Answers carry
`X-Router-Model`, `X-Router-Rule` and (when known before the body) `X-Router-Cost-USD`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, cast

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from router import ApiKey, Chunk, Decision, Result, RouterError
from router.server import wire
from router.server.errors import ApiError, bad_request, from_router_error
from router.server.keys import check_allowed
from router.server.limits import read_json, until_disconnect

if TYPE_CHECKING:
    from router.server.app import ServerState

log = logging.getLogger("router.server")

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def _admit(state: ServerState, request: Request) -> tuple[ApiKey | None, wire.ChatRequest]:
    """Authenticate, read and check the body, apply the key's rate and budget."""
    key = state.authenticate(request)
    body = await read_json(request.receive, request.headers, state.max_body_bytes())
    try:
        chat = wire.parse_chat(body, request.headers)
    except wire.WireError as exc:
        raise bad_request(str(exc), exc.param) from None
    if key is not None:
        check_allowed(key, chat.pinned_model, chat.forced_rule)
        state.gate.rate.admit(key)
        state.gate.spend.check(key)
    return key, chat


def _route_args(chat: wire.ChatRequest, key: ApiKey | None) -> dict[str, Any]:
    return {
        **chat.route_args,
        "messages": chat.messages,
        "model": chat.pinned_model,
        "rule": chat.forced_rule,
        "key": key.name if key is not None else None,
    }


def _check_decision(key: ApiKey | None, state: ServerState, args: dict[str, Any]) -> None:
    """A key limited to some models or rules: the rules' choice must be one of them."""
    if key is None or (key.models is None and key.rules is None) or args["model"]:
        return
    explained = state.router.explain(**{k: v for k, v in args.items() if k != "stream"})
    if explained.served:
        check_allowed(key, explained.model, explained.rule)


def _headers(model: str, rule: str | None, cost: float | None) -> dict[str, str]:
    out = {"X-Router-Model": model, "X-Router-Rule": rule or ""}
    if cost is not None:
        out["X-Router-Cost-USD"] = f"{cost:.8f}"
    return out


async def chat_completions(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        key, chat = await _admit(state, request)
        args = _route_args(chat, key)
        _check_decision(key, state, args)
        if chat.stream:
            return await _stream(state, request, key, chat, args)
        result = await _complete(state, request, args)
    except ApiError as exc:
        return error_response(exc)
    except RouterError as exc:
        return error_response(from_router_error(exc))
    if result is None:  # the client went away; nobody reads this
        return Response(status_code=499)
    if key is not None:
        state.gate.spend.add(key.name, result.cost_usd)  # None: unknown price, counted apart
    return JSONResponse(
        wire.completion_json(result), headers=_headers(result.model, result.rule, result.cost_usd)
    )


_GONE = object()


async def _unless_gone(awaitable: Awaitable[Any], request: Request) -> Any:
    """`awaitable`'s result, or _GONE (with it cancelled: the upstream call, a local
    generation) when the client disconnects first."""
    work = asyncio.ensure_future(awaitable)
    gone = asyncio.ensure_future(until_disconnect(request.receive))
    try:
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this handler was cancelled: so is the work
        work.cancel()
        raise
    finally:
        gone.cancel()
    if not work.done():
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await work
        log.info("client disconnected: request cancelled")
        return _GONE
    return work.result()


async def _complete(state: ServerState, request: Request, args: dict[str, Any]) -> Result | None:
    result = await _unless_gone(state.router.aroute(**args), request)
    return None if result is _GONE else cast(Result, result)


async def _stream(
    state: ServerState,
    request: Request,
    key: ApiKey | None,
    chat: wire.ChatRequest,
    args: dict[str, Any],
) -> Response:
    """Fail over until the first chunk (so a failure is still a proper status), then stream."""
    stream = await state.router.aroute(**args, stream=True)
    try:
        first = await _unless_gone(stream.__anext__(), request)
    except StopAsyncIteration:
        await stream.aclose()
        raise ApiError(502, "the upstream stream ended without a result", "server_error") from None
    except BaseException:
        await stream.aclose()
        raise
    if first is _GONE:
        await stream.aclose()
        return Response(status_code=499)
    assert isinstance(first, Chunk)
    decision: Decision | None = stream.decision
    rule = first.result.rule if first.result else (decision.rule if decision else None)
    writer = wire.ChunkWriter(first.model, chat.include_usage)
    cost = first.result.cost_usd if first.result else None
    return _EventStream(
        _events(state, key, stream, first, writer),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, **_headers(first.model, rule, cost)},
    )


class _EventStream(StreamingResponse):
    """Closes its event generator however the response ends (client gone, send failed),
    so the upstream stream is closed at once rather than when the generator is collected."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


async def _events(
    state: ServerState,
    key: ApiKey | None,
    stream: AsyncIterator[Chunk],
    first: Chunk,
    writer: wire.ChunkWriter,
) -> AsyncIterator[bytes]:
    chunk: Chunk | None = first
    try:
        while chunk is not None:
            if chunk.text:
                yield writer.text(chunk.text)
            if chunk.result is not None:
                if key is not None:
                    state.gate.spend.add(key.name, chunk.result.cost_usd)
                for event in writer.end(chunk.result):
                    yield event
                return
            chunk = await stream.__anext__()
        yield wire.DONE
    except RouterError as exc:
        # Headers are gone: OpenAI's SDKs raise on an `error` event in the stream.
        yield wire.sse(from_router_error(exc).json())
    except StopAsyncIteration:
        yield wire.DONE
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            # A client gone mid-stream lands here too, cancelled: closing (shielded from
            # that cancellation) stops the upstream call and a local generation.
            with anyio.CancelScope(shield=True):
                await aclose()


async def explain(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        key, chat = await _admit(state, request)
        args = _route_args(chat, key)
        decision = state.router.explain(**args)
    except ApiError as exc:
        return error_response(exc)
    except RouterError as exc:
        return error_response(from_router_error(exc))
    return JSONResponse(decision_json(decision))


def decision_json(decision: Decision) -> dict[str, Any]:
    out = dataclasses.asdict(decision)
    out["served"] = decision.served
    out["describe"] = decision.describe()
    return out


def error_response(error: ApiError) -> Response:
    return Response(
        json.dumps(error.json()),
        status_code=error.status,
        media_type="application/json",
        headers=dict(error.headers),
    )
