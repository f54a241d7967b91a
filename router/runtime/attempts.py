"""The four drivers of the attempt loop (sync and async, whole and streamed).

What to try, when to stop and what to record is `loop.plan`'s, written once; a driver
only performs each step it is given (`steps.py`: admit, call, pause, and for a hedge
race, await, cancel) and sends back the outcome. Calls raced side by side run in
`flights` (threads or tasks). Streams pass text on as it comes, mark a failure after
the first piece `partial`, and never hedge.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from router.engine.strategies import Candidate
from router.errors import ProviderError
from router.providers.base import Completion, Delta
from router.runtime.calls import cost_of, make_call, render_messages
from router.runtime.flights import TaskFlights, ThreadFlights
from router.runtime.hedge import settle_late
from router.runtime.loop import SKIPPED, Plan, Run, plan
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState
from router.runtime.steps import RACING, Admit, Await, Cancel, Invoke, Outcome, Pause, Race
from router.types import Chunk, Decision, Request, Result, Usage


def _start(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
    *,
    streaming: bool = False,
) -> tuple[Run, Plan]:
    run = Run(snap, request, decision, cands, state)
    run.streaming = streaming
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
    flights: ThreadFlights | None = None  # made at a hedge's first call
    outcome: Outcome = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Admit):
                outcome = run.admit(step)
            elif isinstance(step, Pause):
                time.sleep(step.seconds)
                outcome = None
            elif isinstance(step, Invoke) and step.hedge_after is None:
                try:
                    provider, call = run.prepare(step.call)
                    outcome = provider.complete(call)
                except ProviderError as exc:
                    outcome = exc
                except BaseException:
                    run.abandoned(step.ticket)
                    raise
            elif isinstance(step, (Invoke, Race)):
                flights = flights or ThreadFlights(functools.partial(settle_late, run))
                try:
                    flights.start(step.ticket, *run.prepare(step.call))
                except BaseException:
                    run.abandoned(step.ticket)
                    raise
                if isinstance(step, Race):
                    outcome = flights.next(None)
                else:  # the first call: its own outcome, or RACING past the hedge delay
                    ended = flights.next(step.hedge_after)
                    outcome = RACING if ended is None else ended.outcome
            elif isinstance(step, Await):
                assert flights is not None
                outcome = flights.next(None)
            else:
                assert isinstance(step, Cancel) and flights is not None
                outcome = flights.cancel(step.ticket)
    except StopIteration as stop:
        return _result(stop)
    finally:
        if flights is not None:
            flights.close()


async def aexecute(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Result:
    run, steps = _start(snap, request, decision, cands, state)
    flights: TaskFlights | None = None  # made at a hedge's first call
    outcome: Outcome = None
    try:
        while True:
            step = steps.send(outcome)
            if isinstance(step, Admit):
                outcome = await run.aadmit(step)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
                outcome = None
            elif isinstance(step, Invoke) and step.hedge_after is None:
                try:
                    provider, call = run.prepare(step.call)
                    outcome = await provider.acomplete(call)
                except ProviderError as exc:
                    outcome = exc
                except BaseException:  # cancellation included: give back what was held
                    run.abandoned(step.ticket)
                    raise
            elif isinstance(step, (Invoke, Race)):
                flights = flights or TaskFlights(functools.partial(settle_late, run))
                try:
                    flights.start(step.ticket, *run.prepare(step.call))
                except BaseException:
                    run.abandoned(step.ticket)
                    raise
                if isinstance(step, Race):
                    outcome = await flights.next(None)
                else:  # the first call: its own outcome, or RACING past the hedge delay
                    ended = await flights.next(step.hedge_after)
                    outcome = RACING if ended is None else ended.outcome
            elif isinstance(step, Await):
                assert flights is not None
                outcome = await flights.next(None)
            else:
                assert isinstance(step, Cancel) and flights is not None
                outcome = await flights.cancel(step.ticket)
    except StopIteration as stop:
        return _result(stop)
    finally:
        if flights is not None:
            await flights.close()


def execute_stream(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Iterator[Chunk]:
    run, steps = _start(snap, request, decision, cands, state, streaming=True)
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
                assert isinstance(step, Invoke)  # streams never hedge
                model = step.call.model.name
                got = _Received()
                try:
                    provider, call = run.prepare(step.call)
                    for delta in provider.stream(call):
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
    run, steps = _start(snap, request, decision, cands, state, streaming=True)
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
                assert isinstance(step, Invoke)  # streams never hedge
                model = step.call.model.name
                got = _Received()
                try:
                    provider, call = run.prepare(step.call)
                    async for delta in provider.astream(call):
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
