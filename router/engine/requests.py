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
    if tags is not None and not isinstance(tags, (str, bytes, Mapping)) and _iterable(tags):
        tags = list(tags)  # a generator is read once, here
    _check_arguments(prompt, messages, use_case, tags, metadata, tools, response_format)
    for name, value in (("model", model), ("rule", rule)):
        if value is not None and (not isinstance(value, str) or not value):
            raise RequestError(f"{name}= must be a name, not {value!r}")
    if messages is None:
        if prompt is None:
            raise RequestError("route() needs a prompt or messages")
        msgs: tuple[Message, ...] = ({"role": "user", "content": prompt},)
    else:
        if prompt is not None:
            raise RequestError("route() takes a prompt or messages, not both")
        if not messages:
            raise RequestError("messages is empty")
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
        max_tokens=_max_tokens(max_tokens),
        needs=frozenset(needs),
        tools=tuple(tools) if tools else None,
        response_format=dict(response_format) if response_format else None,
        stream=stream,
        model=model,
        rule=rule,
        key=key,
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
    content = m.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise RequestError(f"messages[{i}].content must be text or a list of parts")
    return dict(m)


def _check_arguments(
    prompt: Any,
    messages: Any,
    use_case: Any,
    tags: Any,
    metadata: Any,
    tools: Any,
    response_format: Any,
) -> None:
    """A RequestError that names the argument, instead of a TypeError from deep inside."""
    if prompt is not None and not isinstance(prompt, str):
        raise RequestError(
            f"the prompt must be a string, not {type(prompt).__name__}: "
            "pass a conversation as messages=[{'role': 'user', 'content': ...}, ...]"
        )
    if messages is not None and (isinstance(messages, (str, bytes)) or not _iterable(messages)):
        raise RequestError("messages must be a list of messages")
    if use_case is not None and not isinstance(use_case, str):
        raise RequestError(f"use_case must be text, not {type(use_case).__name__}")
    if tags is not None and (
        isinstance(tags, (str, bytes))
        or not _iterable(tags)
        or not all(isinstance(t, str) for t in tags)
    ):
        raise RequestError("tags must be a list of strings")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise RequestError(f"metadata must be a mapping, not {type(metadata).__name__}")
    if tools is not None and (
        isinstance(tools, (str, bytes, Mapping))
        or not _iterable(tools)
        or not all(isinstance(t, Mapping) for t in tools)
    ):
        raise RequestError("tools must be a list of tool definitions (mappings)")
    if response_format is not None and not isinstance(response_format, Mapping):
        raise RequestError("response_format must be a mapping such as {'type': 'json_object'}")


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _max_tokens(value: Any) -> int:
    if not value:
        return 0
    try:
        count = int(value)
    except (TypeError, ValueError, OverflowError):
        raise RequestError(f"max_tokens must be a whole number, not {value!r}") from None
    if count < 0:
        raise RequestError(f"max_tokens must not be negative, not {count}")
    return count
