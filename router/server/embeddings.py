"""`POST /v1/embeddings` in OpenAI's wire format, over `Router.aembed()`.

`model` is `auto` (the rules choose among models with `capabilities: [embeddings]`)
or a configured embedding model, pinned. `input` is a string or a list of strings
(token arrays are not accepted: the router routes text). `encoding_format: base64`
answers each vector as little-endian float32 bytes in base64, as OpenAI does; the
official Python SDK asks for it by default and decodes it. `dimensions` goes to the
provider; `use_case`, `tags` and `metadata` (body or `X-Router-*` headers) steer the
rules as they do for chat. Errors come in OpenAI's shape (router/server/errors.py).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router import ApiKey, EmbeddingResult, RouterError
from router.server.chat import error_response
from router.server.errors import ApiError, bad_request, from_router_error
from router.server.keys import check_allowed
from router.server.limits import read_json
from router.server.wire import AUTO, RULE_PREFIX, WireError

if TYPE_CHECKING:
    from router.server.app import ServerState

EMBEDDINGS = "embeddings"  # the capability a model lists to serve them
ENCODINGS = ("float", "base64")
MAX_INPUTS = 2048  # OpenAI's own limit on texts per request


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """One `POST /v1/embeddings`, checked."""

    model: str
    texts: tuple[str, ...]
    encoding: str = "float"
    params: Mapping[str, Any] = field(default_factory=dict)  # dimensions, use_case, tags...

    @property
    def pinned_model(self) -> str | None:
        return None if self.model == AUTO else self.model


def parse_embeddings(body: Any, headers: Mapping[str, str]) -> EmbeddingsRequest:
    if not isinstance(body, dict):
        raise WireError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise WireError("'model' is required: an embedding model's name or 'auto'", "model")
    if model.startswith(RULE_PREFIX):
        raise WireError(
            "embeddings are routed by the rules ('auto') or pinned to a model, not to a rule",
            "model",
        )
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise WireError("'input' must be a string or a non-empty list of strings", "input")
    if len(texts) > MAX_INPUTS:
        raise WireError(f"'input' holds {len(texts)} texts; at most {MAX_INPUTS}", "input")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            what = "token arrays are not supported" if isinstance(t, (int, list)) else "not text"
            raise WireError(f"input[{i}] must be a string ({what})", "input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise WireError("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    params: dict[str, Any] = {}
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if type(dimensions) is not int or dimensions < 1:
            raise WireError("'dimensions' must be a positive integer", "dimensions")
        params["dimensions"] = dimensions
    use_case = body.get("use_case", headers.get("x-router-use-case"))
    if use_case is not None and not isinstance(use_case, str):
        raise WireError("'use_case' must be a string", "use_case")
    params["use_case"] = use_case
    tags = body.get("tags")
    if tags is None and headers.get("x-router-tags"):
        tags = [t.strip() for t in headers["x-router-tags"].split(",") if t.strip()]
    if tags is not None:
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise WireError("'tags' must be a list of strings", "tags")
        params["tags"] = tags
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise WireError("'metadata' must be an object", "metadata")
        params["metadata"] = metadata
    return EmbeddingsRequest(model, tuple(texts), encoding, params)


def _vector(values: tuple[float, ...], encoding: str) -> list[float] | str:
    if encoding == "base64":  # what OpenAI sends: float32, little-endian
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
    return list(values)


def embeddings_json(result: EmbeddingResult, encoding: str = "float") -> dict[str, Any]:
    n = result.usage.input_tokens
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _vector(v, encoding)}
            for i, v in enumerate(result.vectors)
        ],
        "model": result.model,
        "usage": {"prompt_tokens": n, "total_tokens": n},
    }


def _check_model(state: ServerState, key: ApiKey | None, req: EmbeddingsRequest) -> None:
    pinned = req.pinned_model
    if pinned is None:
        if key is not None and key.models is not None:
            # The rules could choose a model this key may not use: it names one instead.
            allowed = ", ".join(sorted(key.models)) or "none"
            raise ApiError(
                403,
                f"key '{key.name}' is limited to some models ({allowed}): name one as 'model'",
                "permission_error",
                "model_not_allowed",
                "model",
            )
        return
    model = state.router.config.models.get(pinned)
    if model is None:
        raise ApiError(404, f"unknown model '{pinned}'", code="model_not_found", param="model")
    if EMBEDDINGS not in model.capabilities:
        raise bad_request(
            f"model '{pinned}' does not serve embeddings (no `capabilities: [embeddings]`)",
            "model",
        )
    check_allowed(key, pinned, None)


async def embeddings(request: Request) -> Response:
    state: ServerState = request.app.state.server
    try:
        key = state.authenticate(request)
        body = await read_json(request.receive, request.headers, state.max_body_bytes())
        try:
            req = parse_embeddings(body, request.headers)
        except WireError as exc:
            raise bad_request(str(exc), exc.param) from None
        _check_model(state, key, req)
        if key is not None:
            state.gate.rate.admit(key)
            state.gate.spend.check(key)
        result = await state.router.aembed(
            list(req.texts), model=req.pinned_model, **dict(req.params)
        )
    except ApiError as exc:
        return error_response(exc)
    except RouterError as exc:
        return error_response(from_router_error(exc))
    if key is not None:
        state.gate.spend.add(key.name, result.cost_usd or 0.0)
    headers = {
        "X-Router-Model": result.model,
        "X-Router-Rule": result.rule or "",
        "X-Router-Cost-USD": f"{result.cost_usd:.8f}",
    }
    return JSONResponse(embeddings_json(result, req.encoding), headers=headers)


__all__ = ["EmbeddingsRequest", "embeddings", "embeddings_json", "parse_embeddings"]
