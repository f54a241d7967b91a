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
    **params: Any,
) -> Request:
    """The engine's view of one `route()` call; keywords beyond these are call params.

    `model=` pins a model (a configured name, or "<provider>/<the provider's id>" for
    one the config does not list); `rule=` makes a rule serve whatever its `when:` says.
    """
    if messages is None:
        if prompt is None:
            raise RequestError("route() needs a prompt or messages")
        if not isinstance(prompt, str):
            raise RequestError(
                f"the prompt must be a string, not {type(prompt).__name__}: "
                "pass a conversation as messages=[{'role': 'user', 'content': ...}, ...]"
            )
        msgs: tuple[Message, ...] = ({"role": "user", "content": prompt},)
    else:
        if prompt is not None:
            raise RequestError("route() takes a prompt or messages, not both")
        if isinstance(messages, (str, bytes)) or not messages:
            raise RequestError("messages must be a non-empty list of messages")
        msgs = tuple(_message(i, m) for i, m in enumerate(messages))
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
    )


def _message(i: int, m: Any) -> Message:
    """A message as a dict: a mapping, or an OpenAI SDK object (`choices[0].message`)."""
    if not isinstance(m, Mapping):
        dump = getattr(m, "model_dump", None)  # pydantic models: the OpenAI SDK's types
        if callable(dump):
            m = dump(exclude_none=True)
    if not isinstance(m, Mapping) or "role" not in m:
        raise RequestError(
            f"messages[{i}] is not a message: needs a 'role' (got {type(m).__name__})"
        )
    return dict(m)
