"""The attempt loop: run the chosen candidates in order until one serves."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from router.config.model import ModelConfig
from router.engine.ruleset import CompiledRule
from router.engine.strategies import Candidate
from router.errors import NoRouteError, ProviderError
from router.providers.base import Call, Completion
from router.runtime.snapshot import Snapshot
from router.types import Attempt, Chunk, Decision, Message, Request, Result, Usage


def render_messages(rule: CompiledRule, request: Request) -> tuple[Message, ...]:
    """Apply the rule's `system` and `prompt` templates to the request's messages."""
    if rule.system is None and rule.prompt is None:
        return request.messages
    variables: dict[str, Any] = {
        **request.metadata,
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
    rule: CompiledRule, request: Request, model: ModelConfig, timeout: float | None = None
) -> Call:
    params = {**rule.config.params, **request.params}
    return Call(
        model=model,
        messages=render_messages(rule, request),
        params=params,
        tools=request.tools,
        response_format=request.response_format,
        timeout=timeout,
    )


def cost_of(model: ModelConfig, usage: Usage, reported: float | None) -> float:
    """YAML prices win; else what the adapter reported (e.g. litellm's map); else 0."""
    if model.cost is not None:
        return model.cost.estimate(usage.input_tokens, usage.output_tokens)
    return reported or 0.0


def _attempt(model: ModelConfig, exc: ProviderError, started: float) -> Attempt:
    return Attempt(
        model=model.name,
        provider=model.provider,
        error=exc.kind,
        message=str(exc),
        duration_s=time.perf_counter() - started,
    )


def _all_failed(decision: Decision, attempts: Sequence[Attempt]) -> NoRouteError:
    tried = ", ".join(f"{a.model} ({a.error})" for a in attempts)
    return NoRouteError(f"every candidate failed: {tried}", decision, attempts)


def _result(
    decision: Decision,
    model: ModelConfig,
    done: Completion,
    started: float,
    attempts: Sequence[Attempt],
) -> Result:
    return Result(
        text=done.text,
        model=model.name,
        provider=model.provider,
        usage=done.usage,
        cost_usd=cost_of(model, done.usage, done.cost_usd),
        latency_s=time.perf_counter() - started,
        decision=decision,
        attempts=tuple(attempts),
        rule=decision.rule,
        finish_reason=done.finish_reason,
        tool_calls=done.tool_calls,
    )


def execute(
    snap: Snapshot, request: Request, decision: Decision, cands: Sequence[Candidate]
) -> Result:
    assert decision.rule is not None
    rule = snap.ruleset.by_name[decision.rule]
    attempts: list[Attempt] = []
    for cand in cands:
        model = cand.model
        call = make_call(rule, request, model)
        started = time.perf_counter()
        try:
            done = snap.provider(model.provider).complete(call)
        except ProviderError as exc:
            attempts.append(_attempt(model, exc, started))
            continue
        return _result(decision, model, done, started, attempts)
    raise _all_failed(decision, attempts)


async def aexecute(
    snap: Snapshot, request: Request, decision: Decision, cands: Sequence[Candidate]
) -> Result:
    assert decision.rule is not None
    rule = snap.ruleset.by_name[decision.rule]
    attempts: list[Attempt] = []
    for cand in cands:
        model = cand.model
        call = make_call(rule, request, model)
        started = time.perf_counter()
        try:
            done = await snap.provider(model.provider).acomplete(call)
        except ProviderError as exc:
            attempts.append(_attempt(model, exc, started))
            continue
        return _result(decision, model, done, started, attempts)
    raise _all_failed(decision, attempts)


def execute_stream(
    snap: Snapshot, request: Request, decision: Decision, cands: Sequence[Candidate]
) -> Iterator[Chunk]:
    assert decision.rule is not None
    rule = snap.ruleset.by_name[decision.rule]
    attempts: list[Attempt] = []
    for cand in cands:
        model = cand.model
        call = make_call(rule, request, model)
        started = time.perf_counter()
        parts: list[str] = []
        usage: Usage | None = None
        finish: str | None = None
        reported: float | None = None
        try:
            for delta in snap.provider(model.provider).stream(call):
                if delta.text:
                    parts.append(delta.text)
                    yield Chunk(delta.text, model.name)
                if delta.usage is not None:
                    usage, finish, reported = delta.usage, delta.finish_reason, delta.cost_usd
        except ProviderError as exc:
            if parts:
                exc.partial = True
                raise
            attempts.append(_attempt(model, exc, started))
            continue
        done = Completion("".join(parts), usage or Usage(), finish, None, reported)
        yield Chunk("", model.name, _result(decision, model, done, started, attempts))
        return
    raise _all_failed(decision, attempts)


async def aexecute_stream(
    snap: Snapshot, request: Request, decision: Decision, cands: Sequence[Candidate]
) -> AsyncIterator[Chunk]:
    assert decision.rule is not None
    rule = snap.ruleset.by_name[decision.rule]
    attempts: list[Attempt] = []
    for cand in cands:
        model = cand.model
        call = make_call(rule, request, model)
        started = time.perf_counter()
        parts: list[str] = []
        usage: Usage | None = None
        finish: str | None = None
        reported: float | None = None
        try:
            async for delta in snap.provider(model.provider).astream(call):
                if delta.text:
                    parts.append(delta.text)
                    yield Chunk(delta.text, model.name)
                if delta.usage is not None:
                    usage, finish, reported = delta.usage, delta.finish_reason, delta.cost_usd
        except ProviderError as exc:
            if parts:
                exc.partial = True
                raise
            attempts.append(_attempt(model, exc, started))
            continue
        done = Completion("".join(parts), usage or Usage(), finish, None, reported)
        yield Chunk("", model.name, _result(decision, model, done, started, attempts))
        return
    raise _all_failed(decision, attempts)
