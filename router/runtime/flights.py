"""Calls in flight side by side, for a hedged request: threads (sync) or tasks (async).

The attempt loop decides when to start a second call and what to record (`hedge.py`);
these only run calls, say which ended first, and stop one that lost.

Sync calls run in daemon threads, each inside a `cancel.CancelScope`: stopping one
shuts its socket down (the native adapter's pool registers it), so its thread ends at
once. A call in a client that does not take part (litellm's) cannot be stopped; its
thread runs to the call's own timeout and the outcome is handed to `hedge.settle_late`.
Async calls are tasks; stopping one cancels it, which closes its connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import deque
from collections.abc import Callable

from router.config.model import ModelConfig
from router.errors import ProviderError
from router.providers import cancel
from router.providers.base import Call, Completion, Provider
from router.runtime.state.live import Ticket
from router.runtime.steps import PENDING, Finished, Outcome

log = logging.getLogger(__name__)

# `hedge.settle_late`: a call stopped or abandoned has ended; its outcome, to record.
Settle = Callable[[Ticket, ModelConfig, object], None]

# How long a sync cancel waits for the stopped thread to end, so that its outcome is
# known (the native adapter's ends within a millisecond once its socket is shut).
CANCEL_GRACE = 0.05


class _Job:
    __slots__ = ("call", "dropped", "ended", "outcome", "scope", "thread", "ticket")

    def __init__(self, ticket: Ticket, call: Call) -> None:
        self.ticket = ticket
        self.call = call
        self.scope = cancel.CancelScope()
        self.thread: threading.Thread | None = None
        self.ended = threading.Event()
        self.dropped = False  # cancelled while running: its thread settles its ticket
        self.outcome: Completion | BaseException | None = None


class ThreadFlights:
    """Sync calls in flight, one thread each."""

    def __init__(self, settle_late: Settle) -> None:
        self._settle_late = settle_late
        self._cond = threading.Condition()
        self._jobs: dict[int, _Job] = {}
        self._ended: deque[_Job] = deque()

    def start(self, ticket: Ticket, provider: Provider, call: Call) -> None:
        job = _Job(ticket, call)
        self._jobs[id(ticket)] = job
        ctx = contextvars.copy_context()
        job.thread = threading.Thread(
            target=ctx.run,
            args=(self._work, job, provider),
            name=f"router-hedge:{call.model.name}",
            daemon=True,
        )
        job.thread.start()

    def _work(self, job: _Job, provider: Provider) -> None:
        outcome: Completion | BaseException
        try:
            with cancel.scope(job.scope):
                outcome = provider.complete(job.call)
        except BaseException as exc:  # handed to the driver's thread, which raises it
            outcome = exc
        with self._cond:
            job.outcome = outcome
            job.ended.set()
            dropped = job.dropped
            if not dropped:
                self._ended.append(job)
                self._cond.notify_all()
        if dropped:
            try:
                self._settle_late(job.ticket, job.call.model, outcome)
            except Exception:  # the router may be closed by now: nothing left to count in
                log.debug("a cancelled call to %s ended unrecorded", job.call.model.name)

    def next(self, timeout: float | None) -> Finished | None:
        """The next call to end, waiting up to `timeout` seconds (None: until one does)."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._ended), timeout):
                return None
            job = self._ended.popleft()
        del self._jobs[id(job.ticket)]
        if isinstance(job.outcome, (Completion, ProviderError)):
            return Finished(job.ticket, job.outcome)
        self._settle_late(job.ticket, job.call.model, None)  # broken: give back, then raise
        assert isinstance(job.outcome, BaseException)
        raise job.outcome

    def cancel(self, ticket: Ticket) -> Outcome:
        """Stop the call; what it had come to (see `steps.Cancel`). A failure after the
        stop is the stop's doing, not the model's: it reads as None."""
        job = self._jobs.pop(id(ticket))
        before = job.ended.is_set()
        if not before:
            job.scope.cancel()
            job.ended.wait(CANCEL_GRACE)
        with self._cond:
            if not job.ended.is_set():
                job.dropped = True
                return PENDING
            self._ended.remove(job)
        if isinstance(job.outcome, Completion) or (
            before and isinstance(job.outcome, ProviderError)
        ):
            return job.outcome
        return None

    def close(self) -> None:
        """Stop whatever is still in flight (the request ended some other way)."""
        for job in list(self._jobs.values()):
            late = self.cancel(job.ticket)
            if late is not PENDING:
                self._settle_late(job.ticket, job.call.model, late)


class TaskFlights:
    """Async calls in flight, one task each."""

    def __init__(self, settle_late: Settle) -> None:
        self._settle_late = settle_late
        self._tasks: dict[asyncio.Task[Completion], tuple[Ticket, ModelConfig]] = {}

    def start(self, ticket: Ticket, provider: Provider, call: Call) -> None:
        task = asyncio.ensure_future(provider.acomplete(call))
        self._tasks[task] = (ticket, call.model)

    async def next(self, timeout: float | None) -> Finished | None:
        done, _ = await asyncio.wait(
            self._tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            return None
        task = next(t for t in self._tasks if t in done)  # in start order: deterministic
        ticket, model = self._tasks.pop(task)
        if task.cancelled():  # by someone else: as if the call had raised it
            self._settle_late(ticket, model, None)
            raise asyncio.CancelledError
        exc = task.exception()
        if exc is None:
            return Finished(ticket, task.result())
        if isinstance(exc, ProviderError):
            return Finished(ticket, exc)
        self._settle_late(ticket, model, None)
        raise exc

    async def cancel(self, ticket: Ticket) -> Outcome:
        """As `ThreadFlights.cancel`; a task is always stopped at once."""
        task = next(t for t, (k, _) in self._tasks.items() if k is ticket)
        del self._tasks[task]
        before = task.done()
        task.cancel()
        await asyncio.wait({task})  # never raises our own CancelledError for theirs
        if task.cancelled():
            return None
        exc = task.exception()
        if exc is None:
            return task.result()
        return exc if before and isinstance(exc, ProviderError) else None

    async def close(self) -> None:
        """Stop whatever is still in flight (the request ended some other way)."""
        for ticket, model in list(self._tasks.values()):
            self._settle_late(ticket, model, await self.cancel(ticket))


__all__ = ["TaskFlights", "ThreadFlights"]
