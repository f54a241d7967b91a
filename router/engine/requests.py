"""Turn `route()` arguments into the engine's `Request`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from router.config.params import normalise_params
from router.engine.tokens import estimate_tokens, message_text
from router.errors import RequestError
from router.types import Message, Request

_JSON_FORMATS = frozenset({"json_object", "json_schema"})


def build_request(
    prompt: str | None = None,
    *,
    messages: Sequence[Message] | None = None,
    use_case: str | None = None,
    tags: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    response_format: Mapping[str, Any] | None = None,
    stream: bool = False,
    model: str | None = None,
    rule: str | None = None,
    key: str | None = None,
    **params: Any,
) -> Request:
    """The engine's view of one `route()` call; keywords beyond these are call params.

    `model=` pins a configured model (no rule is matched), `rule=` forces a rule
    (its `when:` is not checked); `key=` names who asked, for spend per key.
    """
    if model is not None and rule is not None:
        raise RequestError("route() takes model= or rule=, not both")
    if messages is None:
        if prompt is None:
            raise RequestError("route() needs a prompt or messages")
        msgs: tuple[Message, ...] = ({"role": "user", "content": prompt},)
    else:
        if prompt is not None:
            raise RequestError("route() takes a prompt or messages, not both")
        if not messages:
            raise RequestError("messages is empty")
        for i, m in enumerate(messages):
            if not isinstance(m, Mapping) or "role" not in m:
                raise RequestError(f"messages[{i}] is not a message: needs a 'role'")
        msgs = tuple(dict(m) for m in messages)
    tokens, images = estimate_tokens(msgs)
    text = ""
    for m in reversed(msgs):
        if m.get("role") == "user":
            text = message_text(m)[0]
            break
    needs: set[str] = set()
    if tools:
        needs.add("tools")
    if images:
        needs.add("vision")
    if response_format and response_format.get("type") in _JSON_FORMATS:
        needs.add("json")
    norm = normalise_params(params)
    max_tokens = norm.get("max_tokens")
    return Request(
        messages=msgs,
        text=text,
        use_case=use_case,
        tags=frozenset(tags or ()),
        metadata=dict(metadata or {}),
        params=norm,
        tokens=tokens,
        max_tokens=int(max_tokens) if max_tokens else 0,
        needs=frozenset(needs),
        tools=tuple(tools) if tools else None,
        response_format=dict(response_format) if response_format else None,
        stream=stream,
        model=model,
        rule=rule,
        key=key,
    )
