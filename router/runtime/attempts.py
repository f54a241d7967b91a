"""The four drivers of the attempt loop (sync and async, whole and streamed).

What to try, when to stop and what to record is `loop.plan`'s, written once; a driver
only performs each step it is given (admit, call, pause) and sends back the outcome.
Streams pass text on as it comes, and mark a failure after the first piece `partial`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from router.engine.strategies import Candidate
from router.errors import ProviderError
from router.providers.base import Completion, Delta
from router.runtime.calls import cost_of, make_call, render_messages
from router.runtime.loop import SKIPPED, Admit, Outcome, Pause, Plan, Run, plan
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState
from router.types import Chunk, Decision, Request, Result, Usage


def _start(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> tuple[Run, Plan]:
    run = Run(snap, request, decision, cands, state)
    return run, plan(run)


def _result(stop: StopIteration) -> Result:
    assert isinstance(stop.value, Result)
    return stop.value


class _Received:
    """What one try's stream has delivered: text, then (from its last pieces) usage,
    finish reason, the cost the adapter reported and the assembled tool calls."""

    __slots__ = ("cost", "finish", "parts", "tool_calls", "usage")

    def __init__(self) -> None:
        self.parts: list[str] = []  # not empty once text has gone to the caller
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.cost: float | None = None
        self.tool_calls: tuple[Mapping[str, Any], ...] | None = None

    def take(self, delta: Delta) -> str:
        """Note `delta`; returns its text, to pass on when there is some."""
        if delta.text:
            self.parts.append(delta.text)
        if delta.tool_calls is not None:
            self.tool_calls = delta.tool_calls
        if delta.usage is not None:
            self.usage, self.finish, self.cost = delta.usage, delta.finish_reason, delta.cost_usd
        return delta.text

    def completion(self) -> Completion:
        text = "".join(self.parts)
        usage = self.usage or Usage(estimated=True)
        return Completion(text, usage, self.finish, self.tool_calls, self.cost)


def execute(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Result:
    run, steps = _start(snap, request, decision, cands, state)
    outcome: Outcome = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Admit):
                outcome = run.admit(step)
            elif isinstance(step, Pause):
                time.sleep(step.seconds)
                outcome = None
            else:
                try:
                    outcome = run.provider(step.call.model.provider).complete(step.call)
                except ProviderError as exc:
                    outcome = exc
                except BaseException:
                    run.abandoned(step.ticket)
                    raise
    except StopIteration as stop:
        return _result(stop)


async def aexecute(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Result:
    run, steps = _start(snap, request, decision, cands, state)
    outcome: Outcome = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Admit):
                outcome = await run.aadmit(step)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                outcome = None
            else:
                provider = run.provider(step.call.model.provider)
                try:
                    outcome = await provider.acomplete(step.call)
                except ProviderError as exc:
                    outcome = exc
                except BaseException:  # cancellation included: give back what was held
                    run.abandoned(step.ticket)
                    raise
    except StopIteration as stop:
        return _result(stop)


def execute_stream(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Iterator[Chunk]:
    run, steps = _start(snap, request, decision, cands, state)
    outcome: Outcome = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Admit):
                outcome = run.admit(step)
            elif isinstance(step, Pause):
                time.sleep(step.seconds)
                outcome = None
            else:
                model = step.call.model.name
                got = _Received()
                try:
                    for delta in run.provider(step.call.model.provider).stream(step.call):
                        if got.take(delta):
                            yield Chunk(delta.text, model)
                except ProviderError as exc:
                    exc.partial = exc.partial or bool(got.parts)
                    outcome = exc
                except BaseException:  # the caller stopped reading, or worse
                    run.abandoned(step.ticket)
                    raise
                else:
                    outcome = got.completion()
    except StopIteration as stop:
        result = _result(stop)
    yield Chunk("", result.model, result)


async def aexecute_stream(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> AsyncIterator[Chunk]:
    run, steps = _start(snap, request, decision, cands, state)
    outcome: Outcome = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Admit):
                outcome = await run.aadmit(step)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                outcome = None
            else:
                model = step.call.model.name
                got = _Received()
                try:
                    provider = run.provider(step.call.model.provider)
                    async for delta in provider.astream(step.call):
                        if got.take(delta):
                            yield Chunk(delta.text, model)
                except ProviderError as exc:
                    exc.partial = exc.partial or bool(got.parts)
                    outcome = exc
                except BaseException:
                    run.abandoned(step.ticket)
                    raise
                else:
                    outcome = got.completion()
    except StopIteration as stop:
        result = _result(stop)
    yield Chunk("", result.model, result)


__all__ = [
    "SKIPPED",
    "aexecute",
    "aexecute_stream",
    "cost_of",
    "execute",
    "execute_stream",
    "make_call",
    "render_messages",
]
