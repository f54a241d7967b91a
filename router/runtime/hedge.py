"""Hedging (`hedge: {after_ms: 800}` on a rule): the next candidate beside a slow first.

A deadline bounds the wait, but a first candidate that is slow (not failing) still
takes its whole share before the next gets a chance. Hedged requests ("The Tail at
Scale", Dean and Barroso) cut that tail: after a short wait, ask another and take
whichever answers first.

    the first call has not answered after `after_ms` -> admit the next candidate, start it
    one answers                                      -> it wins; the other is cancelled:
                                                        its connection closed, its ticket
                                                        given back, marked `cancelled`
    one fails                                        -> recorded (no retry); the next
                                                        candidate starts in its place
    all fail, none left                              -> as when every candidate failed

Spend: a cancelled call that reported no usage records nothing (a provider may still
charge for input it read before the connection closed; no API reports that). One that
answered anyway, in the instant before it was stopped, is recorded: it was billed.
Only whole answers hedge; a stream's first candidate runs alone (`Run.hedge_after`).

`race` is part of the attempt loop's plan (`loop.plan`), a generator of the same steps.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.config.model import ModelConfig
from router.engine.ruleset import CompiledRule
from router.errors import ProviderError
from router.providers.base import Completion
from router.runtime.state.live import Ticket
from router.runtime.steps import PENDING, Admit, Await, Cancel, Finished, Outcome, Race, Step
from router.types import Attempt, Result

if TYPE_CHECKING:
    from router.runtime.loop import Run

CANCELLED = "cancelled"  # Attempt.error of a hedge's loser


@dataclass(frozen=True, slots=True)
class Try:
    """One call in flight: what `Run` needs to record how it ends."""

    ticket: Ticket
    rule: CompiledRule
    model: ModelConfig
    started: float  # perf_counter


def race(run: Run, first: Try) -> Generator[Step, Outcome, Result | None]:
    """`first` outlived its hedge delay: start the next candidate that is admitted, and
    take the first answer. A call that fails gives its place to the next candidate.
    None when every call in the race failed and no candidate is left."""
    run.done.add(first.model.name)  # in flight: never raced against itself
    flying = {id(first.ticket): first}
    while True:
        step = yield from _start_next(run, flying)
        if not flying:
            return None
        done = yield step
        assert isinstance(done, Finished)
        this = flying.pop(id(done.ticket))
        if isinstance(done.outcome, Completion):
            for other in flying.values():
                late = yield Cancel(other.ticket)
                cancelled(run, other, this, late)
            return run.succeeded(this.ticket, this.rule, this.model, done.outcome, this.started)
        run.failed(this.ticket, this.rule, this.model, done.outcome, this.started, 0)
        run.done.add(this.model.name)  # no retry while another call is in flight


def _start_next(run: Run, flying: dict[int, Try]) -> Generator[Step, Outcome, Step]:
    """Admit the next candidate to run beside the one in flight: the `Race` that starts
    it, or `Await` when two are in flight already or none is left to start."""
    while len(flying) < 2 and (item := run.next()) is not None:
        rule, cand = item
        call = run.call(rule, cand.model)
        ticket = yield Admit(rule, cand)
        if isinstance(ticket, Ticket):
            flying[id(ticket)] = Try(ticket, rule, cand.model, time.perf_counter())
            return Race(ticket, call)
    return Await()


def cancelled(run: Run, loser: Try, winner: Try, late: Outcome) -> None:
    """Record a race's loser, stopped once `winner` answered; `late` is what it had come
    to (see `steps.Cancel`). Only an answer it really gave is billed."""
    m, took = loser.model, time.perf_counter() - loser.started
    if isinstance(late, ProviderError):  # it had failed on its own before the stop
        run.state.failed(loser.ticket, late)
        run.attempts.append(Attempt(m.name, m.provider, late.kind, late.describe(), took))
        return
    if isinstance(late, Completion):
        run.bill(loser.ticket, m, late, took)
        note = "it answered too, and its usage is recorded"
    elif late is PENDING:
        note = "its call is being closed; usage is recorded only if it still answers"
    else:
        run.state.failed(loser.ticket)
        note = "connection closed, no usage reported, nothing recorded"
    why = f"hedge: {winner.model.name} answered first; {note}"
    run.attempts.append(Attempt(m.name, m.provider, CANCELLED, why, took))


def settle_late(run: Run, ticket: Ticket, model: ModelConfig, outcome: object) -> None:
    """A call stopped or abandoned in flight has ended: bill what it really answered, give
    back what it held. Runs in the call's thread, perhaps after the request is over."""
    if isinstance(outcome, Completion):
        run.bill(ticket, model, outcome, None)
    else:
        run.state.failed(ticket)


__all__ = ["CANCELLED", "Try", "cancelled", "race", "settle_late"]
