"""The steps the attempt loop (`loop.plan`) asks a driver to perform, and what comes back.

    Admit  -> the Ticket, or None (refused: skipped, recorded)
    Invoke -> the Completion, or the ProviderError it raised; with `hedge_after` set,
              RACING when the call has not answered by then (it stays in flight)
    Pause  -> None, once the pause is over
    Race   -> start this call beside the one in flight; Finished (whichever ends first)
    Await  -> Finished, when the next call in flight ends
    Cancel -> stop that call in flight; what it had come to (see `Cancel`)

They live apart from the loop so that the hedging plan (`hedge.py`) and the drivers
(`attempts.py`) share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.engine.ruleset import CompiledRule
from router.engine.strategies import Candidate
from router.errors import ProviderError
from router.providers.base import Call, Completion
from router.runtime.state.live import Ticket


@dataclass(frozen=True, slots=True)
class Admit:
    """Claim a try at `cand` under `rule`: `Run.admit` (or `aadmit`) with these."""

    rule: CompiledRule
    cand: Candidate


@dataclass(frozen=True, slots=True)
class Invoke:
    """Call `call.model` on its provider; the ticket is held until the outcome is sent.

    `hedge_after` (seconds): the call runs in the background; if it has not ended by
    then the driver answers RACING and keeps it in flight.
    """

    ticket: Ticket
    call: Call
    hedge_after: float | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Race:
    """Start `call` beside the call in flight; answer with the first `Finished`."""

    ticket: Ticket
    call: Call


@dataclass(frozen=True, slots=True)
class Await:
    """Wait for the next call in flight to end; answer with its `Finished`."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop the call in flight under `ticket` (its connection is closed).

    The answer: its Completion or ProviderError when it had ended before it could be
    stopped, None when it was stopped, PENDING when it cannot be stopped at once (a
    thread in a client with no way in): the driver then hands its outcome to
    `hedge.settle_late` when it ends.
    """

    ticket: Ticket


@dataclass(frozen=True, slots=True)
class Finished:
    """A call in flight ended: which (its ticket) and how."""

    ticket: Ticket
    outcome: Completion | ProviderError


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


RACING = _Marker("RACING")  # the call outlived its hedge delay and is still in flight
PENDING = _Marker("PENDING")  # a cancelled call that is still running (a blocked thread)

Step = Admit | Invoke | Pause | Race | Await | Cancel
Outcome = Ticket | Completion | ProviderError | Finished | _Marker | None

__all__ = [
    "PENDING",
    "RACING",
    "Admit",
    "Await",
    "Cancel",
    "Finished",
    "Invoke",
    "Outcome",
    "Pause",
    "Race",
    "Step",
]
