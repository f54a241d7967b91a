"""What one try sends: the rule's templates applied, params merged; and what it cost."""

from __future__ import annotations

from typing import Any

from router.config.model import ModelConfig
from router.engine.ruleset import CompiledRule
from router.providers.base import Call
from router.types import Message, Request, Usage


def render_messages(rule: CompiledRule, request: Request) -> tuple[Message, ...]:
    """Apply the rule's `system` and `prompt` templates to the request's messages."""
    if rule.system is None and rule.prompt is None:
        return request.messages
    variables: dict[str, Any] = {
        **request.metadata,
        "metadata": request.metadata,
        "use_case": request.use_case,
        "tags": sorted(request.tags),
        "prompt": request.text,
    }
    messages = list(request.messages)
    if rule.prompt is not None:
        for i in range(len(messages) - 1, -1, -1):
            if messages[i].get("role") == "user":
                messages[i] = {**messages[i], "content": rule.prompt.render(variables)}
                break
    if rule.system is not None:
        system = {"role": "system", "content": rule.system.render(variables)}
        if messages and messages[0].get("role") == "system":
            messages[0] = system
        else:
            messages.insert(0, system)
    return tuple(messages)


def make_call(
    rule: CompiledRule,
    request: Request,
    model: ModelConfig,
    timeout: float | None = None,
    *,
    max_tokens: int | None = None,
) -> Call:
    """`max_tokens`: the request's one output-token figure (`effective_max_tokens`)."""
    params = {**rule.config.params, **request.params}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return Call(
        model=model,
        messages=render_messages(rule, request),
        params=params,
        tools=request.tools,
        response_format=request.response_format,
        timeout=timeout,
    )


def cost_of(model: ModelConfig, usage: Usage, reported: float | None) -> float | None:
    """The config's price (declared, or settled from litellm's map at load) wins; else
    what the adapter reported; else None: the price is unknown, never taken as $0."""
    if model.cost is not None:
        return model.cost.estimate(usage.input_tokens, usage.output_tokens)
    return reported


__all__ = ["cost_of", "make_call", "render_messages"]
